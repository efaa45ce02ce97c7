"""Writing reports and claims: add, load from a file, edit, delete (all but adding undoable).

Edits and deletions are entries of the ``changes`` log like annotation changes:
the row before and after goes to ``record_revisions`` (:mod:`~satdelta.annotations.records`),
so :func:`~satdelta.annotations.history.undo` restores it exactly, under the same id.
Deleting a report or claim that current annotations point at needs ``force``, and
then tombstones those annotations in the same change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from satdelta.annotations.connection import Database, Transaction
from satdelta.annotations.errors import AnnotationValueError, InUseError
from satdelta.annotations.gpkg import gpkg_now, touch_contents
from satdelta.annotations.history import (
    next_revision,
    tombstone,
    touch_annotations,
    write_revision,
)
from satdelta.annotations.model import Annotation, Change, Claim, Report, count
from satdelta.annotations.reads import live_annotations
from satdelta.annotations.records import (
    CLAIM_FIELDS,
    REPORT_FIELDS,
    claim_from_row,
    claim_row,
    insert_row,
    read_row,
    report_from_row,
    report_row,
    require_row,
    write_record,
)

__all__ = [
    "add_report",
    "add_claim",
    "load_report",
    "update_report",
    "update_claim",
    "delete_report",
    "delete_claim",
]

log = logging.getLogger(__name__)

#: claims columns that store one field of :class:`Claim` (point, bbox) -> that field
_CLAIM_FIELD = dict.fromkeys(("lon", "lat"), "point") | dict.fromkeys(
    ("west", "south", "east", "north"), "bbox"
)


def add_report(db: Database, report: Report) -> Report:
    """Insert a (validated) report; returns it with its new id."""
    with db.write() as tx:
        rid = insert_row(tx.conn, "report", report_row(report))
        touch_contents(tx.conn, "reports")
    return replace(report, id=rid)


def add_claim(db: Database, claim: Claim) -> Claim:
    """Insert a (validated) claim of an existing report; returns it with its new id."""
    with db.write() as tx:
        # again under the write lock: another process may have deleted the report since
        require_row(tx.conn, db.path, "report", claim.report_id)
        cid = insert_row(tx.conn, "claim", claim_row(claim))
        touch_contents(tx.conn, "claims")
    return replace(claim, id=cid)


def load_report(db: Database, data: Mapping[str, Any]) -> tuple[Report, list[Claim]]:
    """See :meth:`Store.load_report`."""
    if not isinstance(data, Mapping) or not isinstance(data.get("report"), Mapping):
        raise AnnotationValueError(
            'expected a report file {"report": {...}, "claims": [...]}, got '
            f"{type(data).__name__}"
            + (f" with keys {sorted(data)[:5]}" if isinstance(data, Mapping) else "")
        )
    now = gpkg_now()
    fields = {k: data["report"].get(k) for k in REPORT_FIELDS}
    report = Report(0, **{**fields, "title": data["report"].get("title", "")}, created=now)
    parsed = [_claim_entry(i, entry, now) for i, entry in enumerate(data.get("claims") or [])]
    with db.write() as tx:
        report = replace(report, id=insert_row(tx.conn, "report", report_row(report)))
        claims = []
        for claim in parsed:
            claim = replace(claim, report_id=report.id)
            claims.append(replace(claim, id=insert_row(tx.conn, "claim", claim_row(claim))))
        touch_contents(tx.conn, "reports")
        touch_contents(tx.conn, "claims")
    return report, claims


def _claim_entry(i: int, entry: Any, now: str) -> Claim:
    """Claim ``i`` of a report file (its report id still 0)."""
    if not isinstance(entry, Mapping):
        raise AnnotationValueError(f"claim {i}: expected an object, got {entry!r}")
    loc = entry.get("location") or {}
    point = entry.get("point") or (
        (loc["lon"], loc["lat"]) if "lon" in loc and "lat" in loc else None
    )
    window = entry.get("time_window") or [None, None]
    try:
        return Claim(
            0,
            0,
            entry.get("text", ""),
            entry.get("place"),
            point,
            entry.get("bbox") or loc.get("bbox"),
            entry.get("time_start", window[0]),
            entry.get("time_end", window[1]),
            now,
        )
    except AnnotationValueError as exc:
        raise AnnotationValueError(f"claim {i}: {exc}") from None


def update_report(db: Database, report_id: int, changes: dict[str, Any]) -> Report:
    """See :meth:`Store.update_report`."""
    _check_fields("report", changes, REPORT_FIELDS)
    with db.write() as tx:
        before = require_row(tx.conn, db.path, "report", report_id)
        new = replace(report_from_row(before), **changes)  # validates
        after = report_row(new)
        changed = [k for k in after if after[k] != before[k]]
        if changed:
            change = tx.new_change("edit", f"edit {', '.join(changed)} of report {new.id}")
            write_record(tx, change, "report", new.id, "update", before, after)
    return new


def update_claim(db: Database, claim_id: int, changes: dict[str, Any]) -> Claim:
    """See :meth:`Store.update_claim`."""
    _check_fields("claim", changes, CLAIM_FIELDS)
    if changes.get("report_id") is not None:
        changes["report_id"] = int(changes["report_id"])
    elif "report_id" in changes:
        raise AnnotationValueError(
            "claim report_id: expected the id of a report, got None; every claim belongs to "
            "a report"
        )
    moved: list[str] = []
    with db.write() as tx:
        before = require_row(tx.conn, db.path, "claim", claim_id)
        new = replace(claim_from_row(before), **changes)  # validates
        after = claim_row(new)
        changed = list(
            dict.fromkeys(_CLAIM_FIELD.get(k, k) for k in after if after[k] != before[k])
        )
        if changed:
            desc = f"edit {', '.join(changed)} of claim {new.id}"
            if after["report_id"] != before["report_id"]:
                require_row(tx.conn, db.path, "report", new.report_id)
                others = [k for k in changed if k != "report_id"]
                desc = (
                    f"move claim {new.id} from report {before['report_id']} to report "
                    f"{new.report_id}" + (f" and edit {', '.join(others)}" if others else "")
                )
            change = tx.new_change("edit", desc)
            write_record(tx, change, "claim", new.id, "update", before, after)
            if after["report_id"] != before["report_id"]:
                moved = _move_annotations(tx, new.id, new.report_id, change)
    if moved:
        log.info("claim %d: moved %d annotations to report %d", new.id, len(moved), new.report_id)
    return new


def delete_claim(db: Database, claim_id: int, *, force: bool) -> Change:
    """See :meth:`Store.delete_claim`."""
    with db.write() as tx:
        before = require_row(tx.conn, db.path, "claim", claim_id)
        live = live_annotations(tx, "claim_id = ?", (before["id"],))
        desc = f"delete claim {before['id']}" + (
            f" and its {count(len(live), 'annotation')}" if live else ""
        )
        change = _delete_change(tx, f"claim {before['id']}", live, force, desc)
        write_record(tx, change, "claim", before["id"], "delete", before, None)
        return _deletion(tx, change, desc, live, [f"claim {before['id']}"])


def delete_report(db: Database, report_id: int, *, force: bool) -> Change:
    """See :meth:`Store.delete_report`."""
    with db.write() as tx:
        before = require_row(tx.conn, db.path, "report", report_id)
        rid = before["id"]
        claim_ids = [
            r[0]
            for r in tx.execute("SELECT id FROM claims WHERE report_id = ? ORDER BY id", (rid,))
        ]
        live = live_annotations(
            tx, "claim_id IN (SELECT id FROM claims WHERE report_id = ?)", (rid,)
        )
        desc = f"delete report {rid} with {count(len(claim_ids), 'claim')}" + (
            f" and {count(len(live), 'annotation')}" if live else ""
        )
        change = _delete_change(tx, f"report {rid}", live, force, desc)
        for cid in claim_ids:
            write_record(tx, change, "claim", cid, "delete", read_row(tx.conn, "claim", cid), None)
        write_record(tx, change, "report", rid, "delete", before, None)
        records = [f"report {rid}", *(f"claim {cid}" for cid in claim_ids)]
        return _deletion(tx, change, desc, live, records)


def _deletion(
    tx: Transaction, change: int, desc: str, live: list[Annotation], records: list[str]
) -> Change:
    """The :class:`Change` a deletion returns."""
    ids = tuple(a.id for a in live)
    return Change(
        change, "delete", desc, tx.change_time(change), tx.analyst, None, ids, tuple(records)
    )


def _delete_change(
    tx: Transaction, what: str, live: list[Annotation], force: bool, desc: str
) -> int:
    """Open the change deleting ``what``; its current annotations ``live`` are refused
    (:class:`InUseError`) unless ``force``, then tombstoned in the same change."""
    if live and not force:
        raise InUseError(_in_use(what, live))
    change = tx.new_change("delete", desc)
    for ann in live:
        tombstone(tx, ann, change, "delete")
    if live:
        touch_annotations(tx)
    return change


def _in_use(what: str, live: list[Annotation]) -> str:
    counts: dict[str, int] = {}
    for ann in live:
        counts[ann.status] = counts.get(ann.status, 0) + 1
    by_status = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (
        f"{what} still has {count(len(live), 'annotation')} pointing at it ({by_status}); "
        "delete again with --force (force=True) to delete them with it as one change that "
        "one undo reverses, or move them to another claim first"
    )


def _check_fields(kind: str, changes: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = set(changes) - set(allowed)
    if unknown:
        raise AnnotationValueError(
            f"cannot edit {', '.join(sorted(unknown))} of a {kind}; editable fields are "
            f"{', '.join(allowed)}"
        )
    if not changes:
        raise AnnotationValueError(f"nothing to edit: give at least one of {', '.join(allowed)}")


def _move_annotations(tx: Transaction, claim_id: int, report_id: int, change: int) -> list[str]:
    """Give the current annotations of a claim a new revision with ``report_id``."""
    now = gpkg_now()
    moved = []
    for ann in live_annotations(tx, "claim_id = ?", (claim_id,)):
        new = ann.replace(report_id=report_id, revision=next_revision(tx, ann.id), updated=now)
        tx.execute(
            "UPDATE annotations SET report_id = ?, revision = ?, updated = ? WHERE uuid = ?",
            (report_id, new.revision, now, ann.id),
        )
        write_revision(tx, new, change, "update", deleted=False)
        moved.append(ann.id)
    if moved:
        touch_annotations(tx)
    return moved
