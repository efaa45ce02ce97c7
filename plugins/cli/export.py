"""``satdelta export``: annotations to RFC 7946 GeoJSON, a GeoPackage layer or CSV with WKT."""

from __future__ import annotations

from pathlib import Path

import click
from satdelta.plugins.cli.annotation import check_filter_ids, info, open_store, with_filters


@click.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Output file: .geojson, .gpkg or .csv.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "geojson", "gpkg", "csv"]),
    default="auto",
    show_default=True,
    help="Output format (auto: from the suffix).",
)
@with_filters
@click.pass_context
def export(
    ctx: click.Context,
    output: Path,
    fmt: str,
    report_id: int | None,
    claim_id: int | None,
    status: str | None,
    label: str | None,
    change: str | None,
    sort: str,
) -> None:
    """Export the current annotations (filtered) with every property."""
    with open_store(ctx) as store:
        check_filter_ids(store, report_id, claim_id)
        n = store.export(
            output,
            format=fmt,
            report_id=report_id,
            claim_id=claim_id,  # type: ignore[arg-type]
            status=status,
            label=label,
            change=change,
            sort=sort,  # type: ignore[arg-type]
        )
    info(f"wrote {n} annotations to {output}")
