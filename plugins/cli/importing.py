"""``satdelta import``: any RFC 7946 GeoJSON, or a detect run's changes.geojson, into the store."""

from __future__ import annotations

from pathlib import Path

import click
from satdelta.plugins.cli.annotation import info, open_store


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--report", "report_id", type=int, required=True, help="Report id.")
@click.option("--claim", "claim_id", type=int, required=True, help="Claim id (of that report).")
@click.option(
    "--label", help="Label for every imported polygon (default: from the file, else 'other')."
)
@click.pass_context
def import_cmd(
    ctx: click.Context, file: Path, report_id: int, claim_id: int, label: str | None
) -> None:
    """Import FILE whole or not at all; prints each new annotation id on stdout."""
    with open_store(ctx) as store:
        anns = store.import_geojson(file, report_id=report_id, claim_id=claim_id, label=label)
    repaired = sum(a.repaired for a in anns)
    info(
        f"imported {len(anns)} polygons from {file.name} into claim {claim_id}"
        + (f" ({repaired} repaired: `satdelta annotation list` marks them)" if repaired else "")
    )
    for a in anns:
        click.echo(a.id)
