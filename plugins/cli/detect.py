"""``satdelta detect BEFORE AFTER -o OUTDIR``: find what changed between two scenes.

A thin front-end over :func:`satdelta.imagery.pipeline.run_detection` and
:func:`~satdelta.imagery.pipeline.write_outputs`; every error is a SatdeltaError that
``main()`` prints as one line.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from satdelta.imagery.align import RESAMPLING_METHODS
from satdelta.imagery.detect import NORMALISE_METHODS, SCORE_METHODS, THRESHOLD_METHODS
from satdelta.imagery.errors import InvalidParameterError

__all__ = ["detect", "parse_bands"]


def parse_bands(text: str | None) -> list[int | str] | None:
    """``"1,2,3"`` -> ``[1, 2, 3]``; names are kept (``"red,nir"``); None/empty -> None."""
    if text is None or not text.strip():
        return None
    out: list[int | str] = []
    for part in text.split(","):
        p = part.strip()
        if not p:
            raise InvalidParameterError(
                f"--bands expects a comma-separated list such as 1,2,3 or red,nir; got {text!r}."
            )
        out.append(int(p) if p.isdigit() else p)
    return out


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
    "--method",
    type=click.Choice(SCORE_METHODS),
    default="auto",
    show_default=True,
    help="Change score.",
)
@click.option(
    "--threshold",
    "threshold_method",
    type=click.Choice(THRESHOLD_METHODS),
    default="auto",
    show_default=True,
    help="Threshold method.",
)
@click.option(
    "--threshold-value",
    type=float,
    default=None,
    help="Score value for --threshold value; percentile for --threshold percentile.",
)
@click.option(
    "--min-area",
    "min_area",
    type=float,
    default=None,
    help="Drop changed regions smaller than this many m².",
)
@click.option(
    "--bands",
    default=None,
    help="Bands picked from each scene, 1-based: 1,2,3 (or band names: red,nir).",
)
@click.option(
    "--normalise",
    type=click.Choice(NORMALISE_METHODS),
    default="auto",
    show_default=True,
    help="Radiometric normalisation of after onto before.",
)
@click.option(
    "--pixel-size",
    type=float,
    default=None,
    help="Pixel size in metres, for images that are not georeferenced.",
)
@click.option(
    "--max-shift",
    type=float,
    default=5.0,
    show_default=True,
    help="Largest residual misregistration accepted, in pixels.",
)
@click.option(
    "--resampling",
    type=click.Choice(RESAMPLING_METHODS),
    default="cubic",
    show_default=True,
    help="Resampling of the after scene onto the before grid.",
)
def detect(
    before: str,
    after: str,
    outdir: Path,
    method: str,
    threshold_method: str,
    threshold_value: float | None,
    min_area: float | None,
    bands: str | None,
    normalise: str,
    pixel_size: float | None,
    max_shift: float,
    resampling: str,
) -> None:
    """Find what changed between BEFORE and AFTER (paths or http(s) URLs of rasters).

    Writes OUTDIR/mask.tif (1 changed, 0 unchanged, 255 no data), OUTDIR/score.tif,
    OUTDIR/changes.geojson (RFC 7946; georeferenced input only) and OUTDIR/run.json.
    """
    from satdelta.imagery.pipeline import check_outdir, run_detection, write_outputs

    out = check_outdir(outdir)  # fail before the work, not after it
    progress = None
    if sys.stderr.isatty():
        progress = _TerminalProgress(level=logging.INFO)
        pipeline_log = logging.getLogger("satdelta.imagery.pipeline")
        pipeline_log.addHandler(progress)
        if pipeline_log.getEffectiveLevel() > logging.INFO:
            pipeline_log.setLevel(logging.INFO)
            pipeline_log.propagate = False
    try:
        run = run_detection(
            before,
            after,
            method=method,
            threshold=threshold_method,
            threshold_value=threshold_value,
            normalise=normalise,
            min_area_m2=min_area,
            bands=parse_bands(bands),
            pixel_size_m=pixel_size,
            max_shift_px=max_shift,
            resampling=resampling,  # type: ignore[arg-type]
        )
        written = write_outputs(run, out)
    finally:
        if progress is not None:
            logging.getLogger("satdelta.imagery.pipeline").removeHandler(progress)
    if "changes.geojson" not in written:
        click.echo(
            "satdelta: notice: inputs are not georeferenced; changes.geojson skipped "
            "(GeoJSON needs lon/lat)",
            err=True,
        )
    if sys.stdout.isatty():
        a = run.aligned
        click.echo(
            f"{len(run.polygons)} changed regions, {100 * run.maps.changed.mean():.2f} % of "
            f"pixels ({run.maps.method} + {run.maps.threshold_method} threshold "
            f"{run.maps.threshold:.4g}); residual shift {a.shift_before_px} -> "
            f"{a.shift_after_px} px; wrote {', '.join(written)} to {out}"
        )
