"""``satdelta batch PAIRS -o OUTDIR``: change detection over many before/after pairs.

A thin front-end over :mod:`satdelta.imagery.batch`: reads the pairs list (checked before any
work), runs every pair on a local process pool or on a Dask cluster (``--scheduler``), prints
one line per pair as it finishes and exits 1, with one line on stderr, when any pair failed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from satdelta.plugins.cli.options import detection_options, runner_option
from satdelta.plugins.cli.progress import BatchBars

if TYPE_CHECKING:
    from satdelta.imagery.batch import PairResult
    from satdelta.imagery.options import DetectionOptions

__all__ = ["batch"]

HEADER = "name\tstatus\tpolygons\tchanged_m2\tseconds\terror"


@click.command("batch")
@click.argument("pairs", metavar="PAIRS", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--outdir",
    type=click.Path(path_type=Path),
    required=True,
    help="Output folder: one sub-folder per pair (as `satdelta detect` writes it) and batch.json.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes of the local pool [default: CPU count, at most one per pair].",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Run the pairs on this Dask scheduler (tcp://HOST:PORT) instead of a local pool; "
    "its workers must have satdelta and see the same paths.",
)
@click.option("--force", is_flag=True, help="Recompute pairs whose outputs are already up to date.")
@runner_option
@detection_options
def batch(
    pairs: Path,
    outdir: Path,
    workers: int | None,
    scheduler: str | None,
    force: bool,
    runner: str,
    options: DetectionOptions,
) -> None:
    """Find what changed in every pair of PAIRS.

    PAIRS is a CSV with the header name,before,after (one pair per row; paths relative to the
    CSV's folder, or http(s) URLs) or a JSON list of {"name", "before", "after"} objects.
    Each pair writes OUTDIR/<name>/ (mask.tif, score.tif, changes.geojson, run.json); a
    pair that fails is recorded and the others go on. OUTDIR/batch.json records every pair.
    Pairs whose outputs are complete for the same inputs (sha256) and options are skipped
    unless --force. Exit status 1 when any pair failed. On a terminal, stderr shows a bar
    of the pairs and one line per pair in flight (its stage, and its blocks with an ETA).
    """
    from satdelta.imagery.batch import BatchError, format_result, read_pairs, run_batch
    from satdelta.imagery.outputs import check_outdir

    pair_list = read_pairs(pairs)  # bad lists fail here, before any work
    out = check_outdir(outdir)
    shown: list[str] = []
    bars = BatchBars(len(pair_list), enabled=sys.stderr.isatty())

    def show(result: PairResult) -> None:
        if not shown:
            bars.echo(HEADER)
        shown.append(result.name)
        bars.echo(format_result(result))
        bars.finished(result.name, len(shown))

    try:
        res = run_batch(
            pair_list,
            out,
            options=options,
            workers=workers,
            scheduler=scheduler,
            force=force,
            pairs_source=str(pairs.absolute()),
            on_result=show,
            runner=runner,
            progress=bars.pair if bars.enabled else None,
        )
    finally:
        bars.close()
    if res.failed:
        names = ", ".join(r.name for r in res.failed[:3]) + (", ..." if len(res.failed) > 3 else "")
        # main() prints it as the one stderr line and exits 1
        raise BatchError(
            f"{len(res.failed)} of {len(res.results)} pairs failed ({names}); "
            f"details in {res.report}"
        )
