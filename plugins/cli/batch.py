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
from satdelta.plugins.cli.options import detection_options
from satdelta.plugins.cli.progress import progress_bars

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
@detection_options
def batch(
    pairs: Path,
    outdir: Path,
    workers: int | None,
    scheduler: str | None,
    force: bool,
    options: DetectionOptions,
) -> None:
    """Find what changed in every pair of PAIRS.

    PAIRS is a CSV with the header name,before,after (one pair per row; paths relative to the
    CSV's folder, or http(s) URLs) or a JSON list of {"name", "before", "after"} objects.
    Each pair writes OUTDIR/<name>/ (mask.tif, score.tif, changes.geojson, run.json); a
    pair that fails is recorded and the others go on. OUTDIR/batch.json records every pair.
    Pairs whose outputs are complete for the same inputs (sha256) and options are skipped
    unless --force. Exit status 1 when any pair failed.
    """
    from satdelta.imagery.batch import BatchError, format_result, read_pairs, run_batch
    from satdelta.imagery.outputs import check_outdir

    pair_list = read_pairs(pairs)  # bad lists fail here, before any work
    out = check_outdir(outdir)
    shown: list[str] = []

    with progress_bars(enabled=sys.stderr.isatty()) as bar:
        bar("pairs", 0, len(pair_list))

        def show(result: PairResult) -> None:
            if not shown:
                click.echo(HEADER)
            shown.append(result.name)
            click.echo(format_result(result))
            sys.stdout.flush()
            bar("pairs", len(shown), len(pair_list))

        res = run_batch(
            pair_list,
            out,
            options=options,
            workers=workers,
            scheduler=scheduler,
            force=force,
            pairs_source=str(pairs.absolute()),
            on_result=show,
        )
    if res.failed:
        names = ", ".join(r.name for r in res.failed[:3]) + (", ..." if len(res.failed) > 3 else "")
        # main() prints it as the one stderr line and exits 1
        raise BatchError(
            f"{len(res.failed)} of {len(res.results)} pairs failed ({names}); "
            f"details in {res.report}"
        )
