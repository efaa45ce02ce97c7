"""``satdelta detect BEFORE AFTER -o OUTDIR``: find what changed between two scenes.

A thin front-end over :func:`satdelta.imagery.pipeline.run_detection` and
:func:`satdelta.imagery.outputs.write_outputs`; every error is a SatdeltaError that
``main()`` prints as one line.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from satdelta.imagery.aoi import claim_area
from satdelta.imagery.errors import AreaOfInterestError, InvalidParameterError
from satdelta.plugins.cli.hints import next_steps, shown_path
from satdelta.plugins.cli.options import (
    FiniteFloat,
    detection_options,
    parse_bands,
    runner_option,
)
from satdelta.plugins.cli.progress import progress_bars

if TYPE_CHECKING:
    from satdelta.imagery.options import DetectionOptions

__all__ = ["detect", "parse_bands"]


class _TerminalProgress(logging.Handler):
    """Shows the pipeline's stage timings on stderr, only when it is a terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("stage "):
            click.echo(f"  {msg}", err=True)


@click.command("detect")
@click.argument("before", metavar="BEFORE")
@click.argument("after", metavar="AFTER")
@click.option(
    "-o",
    "--outdir",
    type=click.Path(path_type=Path),
    required=True,
    help="Output folder (created; existing mask.tif, score.tif, changes.geojson, "
    "run.json in it are replaced).",
)
@click.option(
    "--asset",
    metavar="KEY",
    default=None,
    help="For STAC Item inputs: the asset to open [default: visual, else the RGB(N) data].",
)
@click.option(
    "--claim",
    "claim_id",
    type=int,
    help="Analyse the area of this claim of the --store (its box, or its point and --radius) "
    "and import the candidates into the store under it.",
)
@click.option(
    "--radius",
    "radius_m",
    type=FiniteFloat(min=0.0, min_open=True),
    help="With --claim: metres around the claim's point (for a claim without a box).",
)
@runner_option
@detection_options
@click.pass_context
def detect(
    ctx: click.Context,
    before: str,
    after: str,
    outdir: Path,
    asset: str | None,
    claim_id: int | None,
    radius_m: float | None,
    runner: str,
    options: DetectionOptions,
) -> None:
    """Find what changed between BEFORE and AFTER (paths or http(s) URLs of rasters or STAC Items).

    Writes OUTDIR/mask.tif (1 changed, 0 unchanged, 255 no data or outside the area of
    interest), OUTDIR/score.tif, OUTDIR/changes.geojson (RFC 7946; georeferenced input only;
    candidates in rank order) and OUTDIR/run.json.
    """
    from satdelta.imagery.outputs import check_outdir, write_outputs
    from satdelta.imagery.parallel import thread_count
    from satdelta.imagery.pipeline import run_detection

    thread_count()  # a malformed SATDELTA_THREADS fails before the work, not after it
    out = check_outdir(outdir)
    claim = None
    if claim_id is not None:
        from satdelta.plugins.cli.annotation import open_store

        with open_store(ctx) as store:
            claim = store.get_claim(claim_id)
        if options.aoi is not None:
            raise AreaOfInterestError("give either --aoi or --claim, not both.")
        options = replace(options, aoi=claim_area(claim, radius_m))
    elif radius_m is not None:
        raise InvalidParameterError("--radius needs --claim ID (the claim's point is the centre).")
    progress = None
    if sys.stderr.isatty():
        progress = _TerminalProgress(level=logging.INFO)
        pipeline_log = logging.getLogger("satdelta.imagery.pipeline")
        pipeline_log.addHandler(progress)
        if pipeline_log.getEffectiveLevel() > logging.INFO:
            pipeline_log.setLevel(logging.INFO)
            pipeline_log.propagate = False
    try:
        from satdelta.imagery.block_run import detect_in_files, uses_blocks
        from satdelta.imagery.scene import open_scene, with_checksum

        # headers first; the block runner hashes the files beside its first pass
        inputs = tuple(open_scene(s, asset=asset, checksum=False) for s in (before, after))
        if uses_blocks(inputs[0], options, runner):
            with progress_bars(enabled=sys.stderr.isatty()) as show:
                summary = detect_in_files(*inputs, out, options, progress=show)
            _report_blocks(summary, out)
            return
        run = run_detection(with_checksum(inputs[0]), with_checksum(inputs[1]), options)
        written = write_outputs(run, out)
    finally:
        if progress is not None:
            logging.getLogger("satdelta.imagery.pipeline").removeHandler(progress)
    if claim is not None and "changes.geojson" in written:
        with open_store(ctx) as store:
            anns = store.import_geojson(
                written["changes.geojson"], report_id=claim.report_id, claim_id=claim.id
            )
        click.echo(f"imported {len(anns)} candidates under claim {claim.id}", err=True)
    if "changes.geojson" not in written:
        _notice_not_georeferenced()
    if sys.stdout.isatty():
        a = run.aligned
        click.echo(
            f"{len(run.polygons)} changed regions, {100 * run.maps.changed.mean():.2f} % of "
            f"pixels ({run.maps.method} + {run.maps.threshold_method} threshold "
            f"{run.maps.threshold:.4g}); residual shift {a.shift_before_px} -> "
            f"{a.shift_after_px} px; wrote {', '.join(written)} to {out}"
        )
        steps = [f"view {shown_path(before)} {shown_path(after)}   # the desk, to review them"]
        if "changes.geojson" in written:
            geojson = shown_path(out / "changes.geojson")
            steps.insert(0, f"import {geojson} --report ID --claim ID   # into the store")
        for line in next_steps(steps):
            click.echo(line)


def _notice_not_georeferenced() -> None:
    click.echo(
        "satdelta: notice: inputs are not georeferenced; changes.geojson skipped "
        "(GeoJSON needs lon/lat)",
        err=True,
    )


def _report_blocks(summary: dict[str, Any], out: Path) -> None:
    """What a block run wrote (the block runner's counterpart of the lines above).

    A claim's area of interest never runs in blocks (:func:`uses_blocks`).
    """
    names = summary["outputs"]
    if "changes.geojson" not in names:
        _notice_not_georeferenced()
    if sys.stdout.isatty():
        d = summary["detection"]
        click.echo(
            f"{summary['polygons']['count']} changed regions, "
            f"{100 * d['changed_fraction_of_valid']:.2f} % of valid pixels ({d['method']} + "
            f"{d['threshold_method']} threshold {d['threshold']:.4g}); "
            f"{summary['runner']['blocks']} blocks; wrote {', '.join(names)} to {out}"
        )
