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
@click.option(
    "--allow-duplicates",
    is_flag=True,
    help="Import features already in the store again (same id, or same geometry and "
    "provenance in the claim); by default they are skipped.",
)
@click.pass_context
def import_cmd(
    ctx: click.Context,
    file: Path,
    report_id: int,
    claim_id: int,
    label: str | None,
    allow_duplicates: bool,
) -> None:
    """Import FILE whole or not at all; prints each new annotation id on stdout."""
    with open_store(ctx) as store:
        anns = store.import_geojson(
            file,
            report_id=report_id,
            claim_id=claim_id,
            label=label,
            allow_duplicates=allow_duplicates,
        )
    repaired = sum(a.repaired for a in anns)
    info(
        f"imported {len(anns)} polygons from {file.name} into claim {claim_id}"
        + (f" ({repaired} repaired: `satdelta annotation list` marks them)" if repaired else "")
        + (
            f"; skipped {anns.skipped} already in the store (--allow-duplicates imports them)"
            if anns.skipped
            else ""
        )
    )
    if anns.far_from_claim:
        click.echo(
            f"satdelta: warning: {anns.far_from_claim} imported polygon(s) lie far outside "
            f"claim {claim_id}'s box; check the claim and the file's CRS "
            "(`satdelta claim show` / `satdelta annotation list`)",
            err=True,
        )
    for a in anns:
        click.echo(a.id)
