"""Revisions of annotations, and restore and undo, which write new ones.

Every state of an annotation is a row of ``annotation_revisions`` (a JSON
snapshot; a tombstone when deleted), tied to an entry of the ``changes`` log.
Nothing here overwrites history: restoring and undoing append revisions.
Everything runs inside the caller's :class:`~satdelta.annotations.connection.Transaction`.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from typing import Any

from satdelta.annotations.connection import Database, Transaction
from satdelta.annotations.errors import NotFoundError, StoreError
from satdelta.annotations.gpkg import gpkg_now, touch_contents
from satdelta.annotations.model import Annotation, Change, Revision, _geojson_many
from satdelta.annotations.reads import current, resolve
from satdelta.annotations.records import read_row, revisions_of_change, write_record
from satdelta.annotations.rows import annotation_values

__all__ = [
    "INSERT_REVISION",
    "snapshot_json",
    "next_revision",
    "put",
    "write_revision",
    "tombstone",
    "tombstone_many",
    "touch_annotations",
    "apply_state",
    "restore",
    "undo",
]

#: Parameters: annotation_uuid, revision, action, deleted, created, analyst, snapshot, change_id.
INSERT_REVISION = (
    "INSERT INTO annotation_revisions (annotation_uuid, revision, action, deleted, created, "
    "analyst, snapshot, change_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def snapshot_json(snapshot: dict[str, Any]) -> str:
    """The text of a revision's snapshot."""
    return json.dumps(snapshot, ensure_ascii=False, allow_nan=False)


def next_revision(tx: Transaction, uid: str) -> int:
    return tx.execute(
        "SELECT coalesce(max(revision), 0) + 1 FROM annotation_revisions WHERE annotation_uuid = ?",
        (uid,),
    ).fetchone()[0]


def put(tx: Transaction, ann: Annotation, *, insert: bool) -> None:
    """Write ``ann`` as the current row of the layer (replacing its old row unless ``insert``)."""
    values = annotation_values(ann)
    tx.bounds.append(struct.unpack_from("<4d", values["geom"], 8))
    if not insert and tx.dialect == "postgresql":
        # one UPDATE (so a reviewer's grants and trigger see the old row), moved to the end of
        # the layer's order like the GeoPackage store's DELETE + INSERT
        sets = ", ".join(f"{col} = ?" for col in values)
        tx.execute(
            "UPDATE annotations SET fid = nextval(pg_get_serial_sequence('annotations', "
            f"'fid')), {sets} WHERE uuid = ?",
            (*values.values(), ann.id),
        )
        return
    if not insert:
        tx.execute("DELETE FROM annotations WHERE uuid = ?", (ann.id,))
    cols = list(values)
    tx.execute(
        f"INSERT INTO annotations ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        values.values(),
    )


def write_revision(
    tx: Transaction, ann: Annotation, change: int, action: str, *, deleted: bool
) -> Revision:
    """Append the state ``ann`` (its ``revision`` and ``updated`` set) to its history."""
    snap = ann.to_dict()
    tx.execute(
        INSERT_REVISION,
        (
            ann.id,
            ann.revision,
            action,
            int(deleted),
            ann.updated,
            tx.analyst,
            snapshot_json(snap),
            change,
        ),
    )
    return Revision(ann.id, ann.revision, action, deleted, ann.updated, tx.analyst, change, snap)


def tombstone(tx: Transaction, ann: Annotation, change: int, action: str) -> Revision:
    """Delete the current annotation ``ann`` from the layer and write its tombstone revision."""
    last = ann.replace(revision=next_revision(tx, ann.id), updated=gpkg_now())
    tx.execute("DELETE FROM annotations WHERE uuid = ?", (ann.id,))
    return write_revision(tx, last, change, action, deleted=True)


def tombstone_many(tx: Transaction, anns: list[Annotation], change: int, action: str) -> None:
    """:func:`tombstone` of many annotations with a few statements per 500."""
    now = gpkg_now()
    geojson = _geojson_many([a.geometry for a in anns])
    for start in range(0, len(anns), 500):
        part = anns[start : start + 500]
        marks = ", ".join("?" * len(part))
        uids = [a.id for a in part]
        last = dict(
            tx.execute(
                "SELECT annotation_uuid, max(revision) FROM annotation_revisions WHERE "
                f"annotation_uuid IN ({marks}) GROUP BY annotation_uuid",
                uids,
            ).fetchall()
        )
        revisions = []
        for a, g in zip(part, geojson[start : start + 500], strict=True):
            snap = a._to_dict(g)
            snap.update(revision=last[a.id] + 1, updated=now)
            revisions.append(
                (a.id, snap["revision"], action, 1, now, tx.analyst, snapshot_json(snap), change)
            )
        tx.execute(f"DELETE FROM annotations WHERE uuid IN ({marks})", uids)
        tx.executemany(INSERT_REVISION, revisions)


def touch_annotations(tx: Transaction) -> None:
    """Update last_change and grow the layer's extent in gpkg_contents by ``tx.bounds``.

    The extent only grows (a deletion does not shrink it): recomputing it would
    read every geometry on every write; GDAL and QGIS recompute it on demand.
    """
    if tx.dialect != "geopackage":  # PostGIS keeps its own extent
        tx.bounds.clear()
        return
    row = tx.execute(
        "SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = 'annotations'"
    ).fetchone()
    bounds = list(row) if row and row[0] is not None else None
    for x0, x1, y0, y1 in tx.bounds:
        if bounds is None:
            bounds = [x0, y0, x1, y1]
        else:
            bounds = [
                min(bounds[0], x0),
                min(bounds[1], y0),
                max(bounds[2], x1),
                max(bounds[3], y1),
            ]
    tx.bounds.clear()
    touch_contents(tx.conn, "annotations", bounds)
    touch_contents(tx.conn, "annotation_revisions")


def apply_state(
    tx: Transaction, uid: str, deleted: bool, snapshot: dict[str, Any], change: int, action: str
) -> Annotation | None:
    """Make a past state (a snapshot, or deleted) the current one, as a new revision."""
    now = current(tx, uid, missing_ok=True)
    if deleted:
        if now is not None:
            tombstone(tx, now, change, action)
        return None
    state = Annotation.from_dict(snapshot)
    claim = tx.execute("SELECT report_id FROM claims WHERE id = ?", (state.claim_id,)).fetchone()
    if claim is None:
        raise NotFoundError(
            f"annotation {uid} is evidence for claim {state.claim_id}, which is deleted; "
            "bring the claim back first (`satdelta undo` of its deletion)"
        )
    # the claim says which report the annotation belongs to (it may have moved since)
    state = state.replace(report_id=claim[0], revision=next_revision(tx, uid), updated=gpkg_now())
    put(tx, state, insert=now is None)
    write_revision(tx, state, change, action, deleted=False)
    return state


def restore(db: Database, annotation_id: str, revision: int) -> Annotation | None:
    full = resolve(db, annotation_id)
    with db.write() as tx:
        row = tx.execute(
            "SELECT deleted, snapshot FROM annotation_revisions WHERE annotation_uuid = ? "
            "AND revision = ?",
            (full, int(revision)),
        ).fetchone()
        if row is None:
            last = tx.execute(
                "SELECT max(revision) FROM annotation_revisions WHERE annotation_uuid = ?",
                (full,),
            ).fetchone()[0]
            raise NotFoundError(
                f"annotation {full} has no revision {revision}; it has revisions 1..{last}"
            )
        change = tx.new_change("restore", f"restore {full} to revision {revision}")
        result = apply_state(tx, full, bool(row[0]), json.loads(row[1]), change, "restore")
        touch_annotations(tx)
    return result


def undo(db: Database) -> Change:
    with db.write() as tx:
        row = tx.execute(
            "SELECT id, action, description FROM changes AS ch WHERE action != 'undo' AND NOT "
            "EXISTS (SELECT 1 FROM changes AS u WHERE u.undoes = ch.id) "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise NotFoundError(f"nothing to undo in {db.path}: no change is left")
        target, _action, description = row
        desc = f"undo #{target}: {description}"
        change = tx.new_change("undo", desc, undoes=target)
        try:
            ids, records = _revert(tx, target, change)
        except sqlite3.IntegrityError as exc:
            raise StoreError(
                f"cannot undo #{target} ({description}): {exc} in {db.path}; a later change "
                "removed what it refers to, so restore that first"
            ) from None
        created = tx.change_time(change)
    return Change(change, "undo", desc, created, db.analyst, target, tuple(ids), tuple(records))


def _revert(tx: Transaction, target: int, change: int) -> tuple[list[str], list[str]]:
    """Write change ``change`` that puts back the state from before change ``target``.

    Report/claim rows that existed before are put back first (a restored
    annotation needs its claim), then the annotations, then rows the
    target created are removed.
    """
    records = revisions_of_change(tx.conn, target)  # newest first: a report before its claims
    for rec in records:
        if rec.before is not None:
            now = read_row(tx.conn, rec.kind, rec.record_id)
            write_record(tx, change, rec.kind, rec.record_id, "undo", now, rec.before)
    touched = tx.execute(
        "SELECT annotation_uuid, revision FROM annotation_revisions WHERE change_id = ? "
        "ORDER BY id DESC",
        (target,),
    ).fetchall()
    ids = []
    for uid, rev in touched:
        prev = tx.execute(
            "SELECT deleted, snapshot FROM annotation_revisions WHERE annotation_uuid = ? "
            "AND revision < ? ORDER BY revision DESC LIMIT 1",
            (uid, rev),
        ).fetchone()
        if prev is None:  # the change created it: undo = delete
            now = current(tx, uid, missing_ok=True)
            if now is not None:
                tombstone(tx, now, change, "undo")
        else:
            apply_state(tx, uid, bool(prev[0]), json.loads(prev[1]), change, "undo")
        ids.append(uid)
    touch_annotations(tx)
    for rec in records:
        if rec.before is None:
            now = read_row(tx.conn, rec.kind, rec.record_id)
            write_record(tx, change, rec.kind, rec.record_id, "undo", now, None)
    return ids, [f"{r.kind} {r.record_id}" for r in records]
