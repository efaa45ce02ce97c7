"""``satdelta undo``: reverse the latest change (annotations, reports, claims) not yet undone."""

from __future__ import annotations

import click
from satdelta.plugins.cli.annotation import open_store
from satdelta.plugins.cli.report import store_option


@click.command("undo")
@store_option
@click.pass_context
def undo(ctx: click.Context) -> None:
    """Reverse the latest change (as new revisions: nothing is destroyed); print what was undone.

    Covers annotation changes and report/claim edits and deletions.
    """
    with open_store(ctx) as store:
        change = store.undo()
    records = f"; {', '.join(change.records)}" if change.records else ""
    click.echo(f"{change.description} ({len(change.annotation_ids)} annotations{records})")
