"""``satdelta store``: copy a whole store (GeoPackage <-> PostgreSQL) and grant team roles."""

from __future__ import annotations

from pathlib import Path

import click
from satdelta.annotations import Store
from satdelta.plugins.cli.annotation import open_store
from satdelta.plugins.cli.report import store_option

__all__ = ["store"]


@click.group("store")
def store() -> None:
    """Whole-store operations: copy between GeoPackage and PostgreSQL, team roles."""


@store.command("copy")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
def copy_cmd(source: Path, target: Path) -> None:
    """Copy SOURCE into the new store TARGET with its full history (ids, revisions, undo).

    Either may be a GeoPackage file or postgresql://USER@HOST:PORT/DB; TARGET must be new
    or empty. Exporting the copy gives the same GeoJSON as exporting SOURCE.
    """
    with Store.open(source, create=False) as src, Store.open(target) as dst:
        counts = src.copy_to(dst)
        shown = f"{src.path} -> {dst.path}"
    click.echo(
        f"copied {shown}: {counts['reports']} reports, {counts['claims']} claims, "
        f"{counts['annotations']} annotations, {counts['annotation_revisions']} revisions, "
        f"{counts['changes']} changes"
    )


@store.command("grant")
@click.argument("role")
@click.option("--read", "access", flag_value="read", help="Read and export only.")
@click.option("--review", "access", flag_value="review", help="Also change status and verdict.")
@click.option("--edit", "access", flag_value="edit", help="Change everything.")
@store_option
@click.pass_context
def grant_cmd(ctx: click.Context, role: str, access: str | None) -> None:
    """Give the database user ROLE read, review or edit access to a PostgreSQL store.

    Run it as the store's owner (or an admin). ROLE gets exactly one of the groups
    satdelta_reader, satdelta_reviewer, satdelta_editor (the others are revoked).
    """
    if access is None:
        raise click.UsageError("say which access: --read, --review or --edit")
    with open_store(ctx) as s:
        group = s.grant(role, access)  # type: ignore[arg-type]
        shown = s.path
    click.echo(f"{role}: {access} access to {shown} (member of {group})")
