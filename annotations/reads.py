"""Reading the store: reports, claims, labels, annotations, their revisions and the change log.

Functions taking a :class:`~satdelta.annotations.connection.Database` read in
their own short transaction (or the caller's :meth:`Store.snapshot`); those taking
a :class:`~satdelta.annotations.connection.Transaction` read inside a write.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from typing import Any

from satdelta.annotations.connection import Database, Transaction
from satdelta.annotations.errors import AnnotationValueError, NotFoundError
from satdelta.annotations.model import SORTS, Annotation, Change, Claim, Report, Revision
from satdelta.annotations.records import (
    Kind,
    claim_from_row,
    report_from_row,
    require_row,
    select,
)
from satdelta.annotations.rows import ANN_COLUMNS, row_to_annotation, rows_to_annotations

__all__ = [
    "labels",
    "get_report",
    "list_reports",
    "get_claim",
    "list_claims",
    "resolve",
    "resolve_many",
    "get_annotation",
    "list_annotations",
    "history",
    "changes",
    "current",
    "live_annotations",
]

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def labels(db: Database, *, include_inactive: bool = False) -> tuple[str, ...]:
    """Label names of the store's schema, in the order they were added."""
    sql = "SELECT name FROM labels" + ("" if include_inactive else " WHERE active = 1")
    return tuple(r[0] for r in db.read(sql + " ORDER BY id"))


def get_report(db: Database, report_id: int) -> Report:
    return report_from_row(db.query(lambda c: require_row(c, db.path, "report", report_id)))


def list_reports(db: Database) -> list[Report]:
    return [report_from_row(r) for r in _rows(db, "report", "ORDER BY id")]


def get_claim(db: Database, claim_id: int) -> Claim:
    return claim_from_row(db.query(lambda c: require_row(c, db.path, "claim", claim_id)))


def list_claims(db: Database, report_id: int | None = None) -> list[Claim]:
    if report_id is None:
        rows = _rows(db, "claim", "ORDER BY id")
    else:
        rows = _rows(db, "claim", "WHERE report_id = ? ORDER BY id", (int(report_id),))
    return [claim_from_row(r) for r in rows]


def _rows(
    db: Database, kind: Kind, tail: str, params: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    """Rows of reports or claims as column -> value mappings (``tail``: WHERE / ORDER BY)."""

    def fetch(c: sqlite3.Connection) -> list[dict[str, Any]]:
        cur = c.execute(f"{select(kind)} {tail}", params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    return db.query(fetch)


def resolve(db: Database, annotation_id: str) -> str:
    """The full id of an annotation given its UUID or a unique prefix of at least 4 characters."""
    text = str(annotation_id).strip().lower()
    if not re.fullmatch(r"[0-9a-f-]{4,36}", text):
        raise NotFoundError(
            f"expected an annotation id (UUID or a unique prefix of at least 4 characters), "
            f"got {annotation_id!r}"
        )
    rows = db.read(
        "SELECT DISTINCT annotation_uuid FROM annotation_revisions WHERE annotation_uuid "
        "LIKE ? LIMIT 2",
        (text + "%",),
    )
    if not rows:
        raise NotFoundError(
            f"no annotation {annotation_id} in {db.path}; `satdelta annotation list` shows the ids"
        )
    if len(rows) > 1:
        raise NotFoundError(
            f"annotation id prefix {annotation_id!r} is ambiguous "
            f"({rows[0][0]}, {rows[1][0]}, ...); give more characters"
        )
    return rows[0][0]


def resolve_many(db: Database, annotation_ids: Iterable[str]) -> list[str]:
    """Full ids of many annotations (full UUIDs without a look-up each; prefixes resolved)."""
    out = []
    for ann_id in annotation_ids:
        text = str(ann_id).strip().lower()
        out.append(text if _UUID.fullmatch(text) else resolve(db, text))
    return out


def _deleted(uid: str) -> NotFoundError:
    return NotFoundError(
        f"annotation {uid} is deleted; `satdelta annotation history {uid}` lists its "
        "revisions and `restore` brings one back"
    )


def get_annotation(db: Database, annotation_id: str, *, include_deleted: bool) -> Annotation:
    full = resolve(db, annotation_id)
    rows = db.read(f"SELECT {ANN_COLUMNS} FROM annotations WHERE uuid = ?", (full,))
    if rows:
        return row_to_annotation(rows[0])
    if include_deleted:
        return history(db, full)[-1].annotation
    raise _deleted(full)


def list_annotations(
    db: Database,
    *,
    bbox: tuple[float, float, float, float] | None,
    sort: str = "added",
    objects: bool = False,
    **equal: Any,
) -> list[Annotation]:
    """Current annotations whose columns have the ``equal`` values (None: any) within ``bbox``.

    ``sort``: ``"added"`` (the order they were added) or ``"rank"`` (detection rank, 1
    first; unranked ones last, in the order they were added).  ``objects``: only object
    candidates (their provenance has an ``object`` entry), filtered in SQL.
    """
    if sort not in SORTS:
        raise AnnotationValueError(f"sort: expected one of {', '.join(SORTS)}, got {sort!r}")
    where, params = [], []
    for col, val in equal.items():
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    if bbox is not None:
        west, south, east, north = (float(v) for v in bbox)
        if not (west <= east and south <= north):
            raise AnnotationValueError(
                f"bbox: expected (west, south, east, north) with west <= east and "
                f"south <= north, got {tuple(bbox)}"
            )
        if db.dialect == "postgresql":  # the GiST index of the PostGIS column
            where.append("geom && ST_MakeEnvelope(?, ?, ?, ?, 4326)")
            params += [west, south, east, north]
        else:
            where.append(
                "fid IN (SELECT id FROM rtree_annotations_geom WHERE minx <= ? AND maxx >= ? "
                "AND miny <= ? AND maxy >= ?)"
            )
            params += [east, west, north, south]
    if objects:  # provenance is JSON text in both stores
        if db.dialect == "postgresql":
            where.append("(provenance::jsonb -> 'object') IS NOT NULL")
        else:
            where.append("json_extract(provenance, '$.object') IS NOT NULL")
    sql = f"SELECT {ANN_COLUMNS} FROM annotations"
    if where:
        sql += " WHERE " + " AND ".join(where)
    order = " ORDER BY rank IS NULL, rank, fid" if sort == "rank" else " ORDER BY fid"
    return rows_to_annotations(db.read(sql + order, params))


def history(db: Database, annotation_id: str) -> list[Revision]:
    rows = db.read(
        "SELECT annotation_uuid, revision, action, deleted, created, analyst, change_id, "
        "snapshot FROM annotation_revisions WHERE annotation_uuid = ? ORDER BY revision",
        (resolve(db, annotation_id),),
    )
    return [
        Revision(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], json.loads(r[7])) for r in rows
    ]


def changes(db: Database) -> list[Change]:
    rows = db.read(
        "SELECT id, action, description, created, analyst, undoes FROM changes ORDER BY id"
    )
    return [Change(*r) for r in rows]


def current(tx: Transaction, uid: str, *, missing_ok: bool = False) -> Annotation | None:
    """Inside a write: the current state of annotation ``uid`` (deleted: error or None)."""
    row = tx.execute(f"SELECT {ANN_COLUMNS} FROM annotations WHERE uuid = ?", (uid,)).fetchone()
    if row is None:
        if missing_ok:
            return None
        raise _deleted(uid)
    return row_to_annotation(row)


def live_annotations(tx: Transaction, where: str, params: tuple[Any, ...]) -> list[Annotation]:
    """Inside a write: the current annotations matching the SQL condition ``where``."""
    rows = tx.execute(
        f"SELECT {ANN_COLUMNS} FROM annotations WHERE {where} ORDER BY fid", params
    ).fetchall()
    return rows_to_annotations(rows) if rows else []
