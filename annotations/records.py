"""Rows of the ``reports`` and ``claims`` tables, and their edit log ``record_revisions``.

Reports and claims are edited in place (the attribute tables keep only the
current state, so GIS users see what is true now).  Every edit or deletion
made through :class:`~satdelta.annotations.store.Store` also appends one row
to ``record_revisions`` with the whole row before and after (JSON; ``NULL``
after = deleted), tied to the entry of the ``changes`` log, so
:meth:`Store.undo` can put the previous row back exactly, under the same id.

Everything here runs inside the caller's write transaction.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from satdelta.annotations.connection import Transaction
from satdelta.annotations.errors import NotFoundError
from satdelta.annotations.gpkg import gpkg_now, touch_contents
from satdelta.annotations.model import Claim, Report
from satdelta.annotations.rows import iso

__all__ = [
    "REPORT_FIELDS",
    "CLAIM_FIELDS",
    "Kind",
    "RecordRevision",
    "select",
    "read_row",
    "require_row",
    "insert_row",
    "write_record",
    "revisions_of_change",
    "report_row",
    "claim_row",
    "report_from_row",
    "claim_from_row",
]

Kind = Literal["report", "claim"]

#: Fields of :class:`Report` that :meth:`Store.update_report` changes.
REPORT_FIELDS: tuple[str, ...] = ("title", "outlet", "url", "published", "language", "notes")
#: Fields of :class:`Claim` that :meth:`Store.update_claim` changes.
CLAIM_FIELDS: tuple[str, ...] = (
    "text",
    "report_id",
    "place",
    "point",
    "bbox",
    "time_start",
    "time_end",
)

_COLUMNS: dict[str, tuple[str, ...]] = {
    "report": ("id", "title", "outlet", "url", "published", "language", "notes", "created"),
    "claim": (
        "id",
        "report_id",
        "text",
        "place",
        "lon",
        "lat",
        "west",
        "south",
        "east",
        "north",
        "time_start",
        "time_end",
        "created",
    ),
}
_TABLE = {"report": "reports", "claim": "claims"}


@dataclass(frozen=True)
class RecordRevision:
    """One logged edit of a report or claim row (``before``/``after`` None = absent)."""

    id: int
    change_id: int
    kind: Kind
    record_id: int
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def select(kind: Kind) -> str:
    """``SELECT <every column> FROM <table>`` of reports or claims (add WHERE / ORDER BY)."""
    return f"SELECT {', '.join(_COLUMNS[kind])} FROM {_TABLE[kind]}"


def read_row(c: sqlite3.Connection, kind: Kind, record_id: int) -> dict[str, Any] | None:
    """The row of a report or claim as a column -> value mapping (None when absent)."""
    row = c.execute(select(kind) + " WHERE id = ?", (int(record_id),)).fetchone()
    return dict(zip(_COLUMNS[kind], row, strict=True)) if row else None


def require_row(c: sqlite3.Connection, path: Path, kind: Kind, record_id: int) -> dict[str, Any]:
    """:func:`read_row`, or :class:`NotFoundError` naming the store ``path``."""
    row = read_row(c, kind, record_id)
    if row is None:
        raise NotFoundError(
            f"no {kind} with id {record_id} in {path}; `satdelta {kind} list` shows the ids"
        )
    return row


def insert_row(c: sqlite3.Connection, kind: Kind, row: dict[str, Any]) -> int:
    """Insert a new report or claim (its ``id`` is ignored); returns the new id."""
    cols = _COLUMNS[kind][1:]
    return c.execute(
        f"INSERT INTO {_TABLE[kind]} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [row[col] for col in cols],
    ).lastrowid


def _write_row(
    c: sqlite3.Connection, kind: Kind, record_id: int, row: dict[str, Any] | None
) -> None:
    """Make the stored row equal ``row`` (insert it under its id, update it, or delete it)."""
    table = _TABLE[kind]
    if row is None:
        c.execute(f"DELETE FROM {table} WHERE id = ?", (int(record_id),))
        return
    cols = _COLUMNS[kind]
    values = [row.get(col) for col in cols]
    if c.execute(f"SELECT 1 FROM {table} WHERE id = ?", (int(record_id),)).fetchone():
        sets = ", ".join(f"{col} = ?" for col in cols[1:])
        c.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*values[1:], int(record_id)))
    else:
        c.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            values,
        )


def write_record(
    tx: Transaction,
    change: int,
    kind: Kind,
    record_id: int,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Store ``after`` as the row (None deletes it) and log the edit in ``record_revisions``."""
    c = tx.conn
    _write_row(c, kind, record_id, after)
    c.execute(
        "INSERT INTO record_revisions (change_id, kind, record_id, action, before, after, "
        "created, analyst) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            change,
            kind,
            int(record_id),
            action,
            None if before is None else json.dumps(before, ensure_ascii=False),
            None if after is None else json.dumps(after, ensure_ascii=False),
            gpkg_now(),
            tx.analyst,
        ),
    )
    touch_contents(c, _TABLE[kind])
    touch_contents(c, "record_revisions")


def revisions_of_change(c: sqlite3.Connection, change: int) -> list[RecordRevision]:
    """The report/claim revisions written by one change, newest first (the order to revert)."""
    rows = c.execute(
        "SELECT id, change_id, kind, record_id, action, before, after FROM record_revisions "
        "WHERE change_id = ? ORDER BY id DESC",
        (change,),
    ).fetchall()
    return [
        RecordRevision(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            None if r[5] is None else json.loads(r[5]),
            None if r[6] is None else json.loads(r[6]),
        )
        for r in rows
    ]


def report_row(report: Report) -> dict[str, Any]:
    """The ``reports`` row of a (validated) :class:`Report` (its columns are its fields)."""
    return report.to_dict()


def claim_row(claim: Claim) -> dict[str, Any]:
    """The ``claims`` row of a (validated) :class:`Claim`."""
    lon, lat = claim.point or (None, None)
    west, south, east, north = claim.bbox or (None, None, None, None)
    return {
        "id": claim.id,
        "report_id": claim.report_id,
        "text": claim.text,
        "place": claim.place,
        "lon": lon,
        "lat": lat,
        "west": west,
        "south": south,
        "east": east,
        "north": north,
        "time_start": iso(claim.time_start),
        "time_end": iso(claim.time_end),
        "created": claim.created,
    }


def report_from_row(row: dict[str, Any]) -> Report:
    """Inverse of :func:`report_row`."""
    return Report(*(row[col] for col in _COLUMNS["report"]))


def claim_from_row(row: dict[str, Any]) -> Claim:
    """Inverse of :func:`claim_row`."""
    point = (row["lon"], row["lat"]) if row["lon"] is not None and row["lat"] is not None else None
    bbox = (
        (row["west"], row["south"], row["east"], row["north"]) if row["west"] is not None else None
    )
    return Claim(
        row["id"],
        row["report_id"],
        row["text"],
        row["place"],
        point,
        bbox,
        row["time_start"],
        row["time_end"],
        row["created"],
    )
