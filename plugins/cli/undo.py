"""``satdelta undo``: reverse the latest annotation change not yet undone."""

from __future__ import annotations

import click
from satdelta.plugins.cli.annotation import open_store


@click.command("undo")
@click.pass_context
def undo(ctx: click.Context) -> None:
    """Reverse the latest change (as new revisions: nothing is destroyed); print what was undone."""
    with open_store(ctx) as store:
        change = store.undo()
    click.echo(f"{change.description} ({len(change.annotation_ids)} annotations)")
