"""``satdelta annotation``: list, show, add, set, delete, history and restore evidence polygons.

Also holds the helpers the other store commands share (opening the store
named by the global ``--store`` option, printing tables and JSON).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from satdelta.annotations import (
    CHANGES,
    SORTS,
    STATUSES,
    VERDICTS,
    Annotation,
    AnnotationValueError,
    GeometryError,
    Revision,
    Store,
)


def open_store(ctx: click.Context, *, create: bool = False) -> Store:
    """Open the store of the global ``--store`` option (created only for write commands)."""
    obj = ctx.find_root().obj or {}
    path: Path = obj.get("store", Path("satdelta.gpkg"))
    return Store.open(path, create=create, analyst=obj.get("analyst"))


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def echo_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Plain aligned columns (tab-free so it survives copy/paste); None prints as '-'."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def echo_columns(items: Sequence[Any], columns: Sequence[tuple[str, Callable[[Any], Any]]]) -> None:
    """:func:`echo_table` of ``items`` with the ``(header, value of an item)`` ``columns``."""
    echo_table([name for name, _ in columns], [[get(item) for _, get in columns] for item in items])


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


#: Columns of ``annotation list``.
_LIST_COLUMNS: tuple[tuple[str, Callable[[Annotation], Any]], ...] = (
    ("id", lambda a: a.id),
    ("claim", lambda a: a.claim_id),
    ("label", lambda a: a.label),
    ("status", lambda a: a.status),
    ("verdict", lambda a: a.verdict),
    ("conf", lambda a: a.confidence),
    ("origin", lambda a: a.origin),
    ("area_m2", lambda a: f"{a.area_m2:.1f}"),
    ("rank", lambda a: a.rank),
    ("change", lambda a: a.change),
    ("rev", lambda a: a.revision),
    ("repaired", lambda a: _yes(a.repaired)),
)
#: Columns of ``annotation history``.
_HISTORY_COLUMNS: tuple[tuple[str, Callable[[Revision], Any]], ...] = (
    ("rev", lambda r: r.revision),
    ("action", lambda r: r.action),
    ("time", lambda r: r.created),
    ("analyst", lambda r: r.analyst),
    ("label", lambda r: r.snapshot.get("label")),
    ("status", lambda r: r.snapshot.get("status")),
    ("verdict", lambda r: r.snapshot.get("verdict")),
    ("conf", lambda r: r.snapshot.get("confidence")),
    ("deleted", lambda r: _yes(r.deleted)),
)


def info(message: str) -> None:
    """A human message on stderr (stdout stays parseable)."""
    click.echo(message, err=True)


filter_options = [
    click.option("--report", "report_id", type=int, help="Only annotations of this report id."),
    click.option("--claim", "claim_id", type=int, help="Only annotations of this claim id."),
    click.option("--status", type=click.Choice(STATUSES), help="Only this status."),
    click.option("--label", help="Only this label."),
    click.option(
        "--change",
        type=click.Choice(CHANGES),
        help="Only detected candidates showing this kind of change.",
    ),
    click.option(
        "--sort",
        type=click.Choice(SORTS),
        default="added",
        show_default=True,
        help="Order: as added, or by detection rank (1 = strongest evidence first).",
    ),
]


def with_filters(fn: Any) -> Any:
    for opt in reversed(filter_options):
        fn = opt(fn)
    return fn


def check_filter_ids(store: Any, report_id: int | None, claim_id: int | None) -> None:
    """A --report/--claim filter must name an existing report/claim (else one-line NotFound).

    An unknown or deleted id would otherwise list nothing, or export an empty file, and
    exit 0 as if the report simply had no evidence.
    """
    if report_id is not None:
        store.get_report(report_id)
    if claim_id is not None:
        store.get_claim(claim_id)


@click.group("annotation")
def annotation() -> None:
    """Evidence polygons: list, show, add, set, delete, history, restore, labels."""


@annotation.command("list")
@with_filters
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (full precision).")
@click.pass_context
def list_cmd(
    ctx: click.Context,
    report_id: int | None,
    claim_id: int | None,
    status: str | None,
    label: str | None,
    change: str | None,
    sort: str,
    as_json: bool,
) -> None:
    """List current (not deleted) annotations."""
    with open_store(ctx) as store, store.snapshot():
        check_filter_ids(store, report_id, claim_id)
        anns = store.list_annotations(
            report_id=report_id,
            claim_id=claim_id,
            status=status,  # type: ignore[arg-type]
            label=label,
            change=change,  # type: ignore[arg-type]
            sort=sort,  # type: ignore[arg-type]
        )
    if as_json:
        echo_json([a.to_dict() for a in anns])
        return
    echo_columns(anns, _LIST_COLUMNS)


@annotation.command("labels")
@click.option("--add", "add_name", help="Add a label to the schema (or re-activate it).")
@click.option(
    "--retire", "retire_name", help="Stop offering a label (existing annotations keep it)."
)
@click.pass_context
def labels_cmd(ctx: click.Context, add_name: str | None, retire_name: str | None) -> None:
    """Print the label schema, one label per line (after --add/--retire if given)."""
    with open_store(ctx, create=add_name is not None) as store:
        if add_name is not None:
            store.add_label(add_name)
        if retire_name is not None:
            store.retire_label(retire_name)
        names = store.labels()
    for name in names:
        click.echo(name)


@annotation.command("show")
@click.argument("annotation_id")
@click.pass_context
def show_cmd(ctx: click.Context, annotation_id: str) -> None:
    """Print one annotation as JSON (a deleted one shows its last state with "deleted": true)."""
    with open_store(ctx) as store:
        history = store.history(annotation_id)
        last = history[-1]
        data = last.snapshot if last.deleted else store.get_annotation(annotation_id).to_dict()
    echo_json({**data, "deleted": last.deleted})


@annotation.command("add")
@click.option(
    "--claim", "claim_id", type=int, required=True, help="Claim id the polygon is evidence for."
)
@click.option("--label", required=True, help="Label from the store's schema.")
@click.option(
    "--geometry",
    "geometry",
    required=True,
    help="Polygon as WKT or GeoJSON geometry text, or @FILE to read it from a file.",
)
@click.option("--crs", help="CRS of the geometry (e.g. EPSG:32651); default WGS84 lon/lat.")
@click.option("--verdict", type=click.Choice(VERDICTS), default="inconclusive", show_default=True)
@click.option("--confidence", type=click.FloatRange(0, 1))
@click.option("--status", type=click.Choice(STATUSES), default="candidate", show_default=True)
@click.option("--notes")
@click.pass_context
def add_cmd(ctx: click.Context, geometry: str, **fields: Any) -> None:
    """Add a drawn polygon; prints the new annotation id alone on stdout."""
    text = geometry
    if geometry.startswith("@"):
        try:
            text = Path(geometry[1:]).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise GeometryError(
                f"--geometry {geometry}: cannot read the file ({exc}); give @FILE of a UTF-8 "
                "WKT or GeoJSON polygon"
            ) from None
    geom: Any = text
    if text.lstrip().startswith("{"):
        try:
            geom = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GeometryError(
                f"--geometry: expected GeoJSON or WKT, got text that does not parse as JSON "
                f"({exc}); check the quoting"
            ) from None
    with open_store(ctx, create=True) as store:
        ann = store.add_annotation(geom, **fields)
    if ann.repaired:
        info("repaired: " + "; ".join(ann.repairs))
    click.echo(ann.id)


_REVISION_HELP = (
    "The revision you looked at (`annotation show`): refused if someone changed it since."
)


@annotation.command("set")
@click.argument("annotation_id")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--label")
@click.option("--verdict", type=click.Choice(VERDICTS))
@click.option("--confidence", type=click.FloatRange(0, 1))
@click.option("--notes")
@click.option("--claim", "claim_id", type=int, help="Move the annotation to another claim.")
@click.option("--revision", type=click.IntRange(min=1), help=_REVISION_HELP)
@click.pass_context
def set_cmd(ctx: click.Context, annotation_id: str, revision: int | None, **fields: Any) -> None:
    """Change fields of an annotation (a new revision); prints the new revision number."""
    changes = {k: v for k, v in fields.items() if v is not None}
    if not changes:
        raise AnnotationValueError(
            "nothing to set: give at least one of --status --label --verdict "
            "--confidence --notes --claim"
        )
    with open_store(ctx) as store:
        ann = store.update_annotation(annotation_id, expected_revision=revision, **changes)
    click.echo(ann.revision)


@annotation.command("delete")
@click.argument("annotation_id")
@click.option("--revision", type=click.IntRange(min=1), help=_REVISION_HELP)
@click.pass_context
def delete_cmd(ctx: click.Context, annotation_id: str, revision: int | None) -> None:
    """Delete an annotation (a tombstone revision: `history` and `restore` still reach it)."""
    with open_store(ctx) as store:
        rev = store.delete_annotation(annotation_id, expected_revision=revision)
    info(f"deleted {rev.annotation_id} (revision {rev.revision}); `satdelta undo` brings it back")


@annotation.command("history")
@click.argument("annotation_id")
@click.option("--json", "as_json", is_flag=True, help="Print every revision's full snapshot.")
@click.pass_context
def history_cmd(ctx: click.Context, annotation_id: str, as_json: bool) -> None:
    """List every revision of an annotation, oldest first."""
    with open_store(ctx) as store:
        revs = store.history(annotation_id)
    if as_json:
        echo_json([r.to_dict() for r in revs])
        return
    echo_columns(revs, _HISTORY_COLUMNS)


@annotation.command("restore")
@click.argument("annotation_id")
@click.argument("revision", type=int)
@click.pass_context
def restore_cmd(ctx: click.Context, annotation_id: str, revision: int) -> None:
    """Bring back revision REVISION of an annotation (written as a new revision)."""
    with open_store(ctx) as store:
        store.restore(annotation_id, revision)
        new = store.history(annotation_id)[-1]
    info(
        f"restored {new.annotation_id} to revision {revision}"
        + (" (a deleted state)" if new.deleted else "")
    )
    click.echo(new.revision)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(annotation())
