"""``satdelta evidence``: a report's evidence package, and ``evidence verify`` to check one."""

from __future__ import annotations

from pathlib import Path

import click
from satdelta.plugins.cli.annotation import info, open_store


@click.group("evidence", invoke_without_command=True)
@click.option("--report", "report_id", type=int, help="Report id.")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="New (or empty) folder for the package.",
)
@click.option(
    "--attribution",
    help="Imagery credit burned into every chip (default: from each scene file's metadata).",
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Context around each polygon, as a fraction of its size on each side.",
)
@click.option(
    "--chip-px",
    type=click.IntRange(min=64),
    default=512,
    show_default=True,
    help="Largest chip side in pixels.",
)
@click.option("--no-pdf", is_flag=True, help="Skip evidence.pdf (no Chromium needed).")
@click.pass_context
def evidence(
    ctx: click.Context,
    report_id: int | None,
    output: Path | None,
    attribution: str | None,
    margin: float,
    chip_px: int,
    no_pdf: bool,
) -> None:
    """Write the evidence package of a report: `evidence --report R -o DIR`.

    For each claim: the verdict summary and, per accepted annotation, before/after/score
    chips; DIR gets index.html, evidence.pdf, evidence.geojson, chips/ and manifest.json.
    """
    if ctx.invoked_subcommand is not None:
        return
    if report_id is None or output is None:
        raise click.UsageError("expected --report R and -o DIR (or the subcommand verify DIR)")
    from satdelta.plugins.evidence import make_package

    with open_store(ctx) as store:
        package = make_package(
            store,
            report_id,
            output,
            attribution=attribution,
            margin=margin,
            chip_px=chip_px,
            pdf=not no_pdf,
        )
    for problem in package.problems:
        info(f"warning: {problem}")
    info(f"wrote the evidence of {package.annotations} accepted annotations to {package.folder}")
    info(f"manifest sha256 {package.manifest_sha256} (give it to the reviewer separately)")
    click.echo(package.folder)


@evidence.command("verify")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def verify(folder: Path) -> None:
    """Check FOLDER against its manifest; exit 1 naming files changed, missing or added."""
    from satdelta.plugins.evidence import EvidenceError, verify_package

    result = verify_package(folder)
    kinds = ("changed", "missing", "added")
    for kind in kinds:
        for name in getattr(result, kind):
            click.echo(f"{kind}: {name}")
    if not result.ok:
        counts = ", ".join(f"{len(getattr(result, k))} {k}" for k in kinds)
        raise EvidenceError(f"{folder} does not match its manifest.json: {counts} (listed above)")
    info(f"{folder}: every file matches manifest.json")
