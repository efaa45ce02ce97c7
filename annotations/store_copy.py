"""Copying a whole store, with its full history, between a GeoPackage and PostgreSQL.

Every row of every table keeps its id (annotation ``fid`` too, so listings and exports keep
their order), and the id counters are carried over, so an id a deleted report or claim had
is never handed out again and ``undo`` in the copy brings it back as it would in the source.
The copy is one transaction in the target: all or nothing.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from satdelta.annotations.errors import StoreError
from satdelta.annotations.gpkg import (
    decode_geometries,
    encode_multipolygons,
    gpkg_now,
    touch_contents,
)
from satdelta.annotations.history import touch_annotations

if TYPE_CHECKING:
    from satdelta.annotations.store import Store

__all__ = ["copy_store", "COPIED_TABLES"]

#: Tables copied, in an order where every reference points at a row already copied.
COPIED_TABLES = (
    "labels",
    "reports",
    "claims",
    "changes",
    "annotations",
    "annotation_revisions",
    "record_revisions",
)


def _key(table: str) -> str:
    return "fid" if table == "annotations" else "id"


def _columns(store: Store, table: str) -> list[str]:
    cursor = store._db.query(lambda c: c.execute(f"SELECT * FROM {table} LIMIT 0"))
    return [d[0] for d in cursor.description]


def _counter(store: Store, table: str) -> int:
    """The last id handed out in ``table`` (deleted rows included)."""
    db = store._db
    if db.dialect == "postgresql":
        seq = db.read("SELECT pg_get_serial_sequence(?, ?)", (table, _key(table)))[0][0]
        last, called = db.read(f"SELECT last_value, is_called FROM {seq}")[0]
        return int(last) if called else 0
    rows = db.read("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))
    return int(rows[0][0]) if rows else 0


def _set_counter(tx: Any, table: str, value: int) -> None:
    if tx.dialect == "postgresql":
        tx.execute(
            "SELECT setval(pg_get_serial_sequence(?, ?), ?::bigint, ?::int = 1)",
            (table, _key(table), max(value, 1), value > 0),
        )
    elif value > 0:
        tx.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
        tx.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, value))


def copy_store(source: Store, target: Store) -> dict[str, int]:
    """Copy everything of ``source`` into the new, empty store ``target``.

    Returns the number of rows copied per table.

    Raises
    ------
    StoreError
        ``target`` already holds reports, annotations or changes (nothing is written), or
        is the same store as ``source``.
    """
    if str(source.location) == str(target.location):
        raise StoreError(f"cannot copy the store {source.path} onto itself; name another target")
    held = [
        f"{n} {t}"
        for t in ("reports", "changes", "annotation_revisions")
        if (n := target._db.read(f"SELECT count(*) FROM {t}")[0][0])
    ]
    if held:
        raise StoreError(
            f"the target {target.path} is not empty ({', '.join(held)}); nothing was copied: "
            "copy into a new store (a new .gpkg file or an empty database)"
        )
    columns = {
        t: [c for c in _columns(target, t) if c in _columns(source, t)] for t in COPIED_TABLES
    }
    with source.snapshot():
        rows = {
            t: source._db.read(f"SELECT {', '.join(columns[t])} FROM {t} ORDER BY {_key(t)}")
            for t in COPIED_TABLES
        }
        counters = {t: _counter(source, t) for t in COPIED_TABLES}
    rows["annotations"] = _reencoded(rows["annotations"], columns["annotations"])
    with target._db.write() as tx:
        tx.execute("DELETE FROM labels")  # the new store's default labels: the source's instead
        for table in COPIED_TABLES:
            marks = ", ".join("?" * len(columns[table]))
            tx.executemany(
                f"INSERT INTO {table} ({', '.join(columns[table])}) VALUES ({marks})",
                rows[table],
            )
            _set_counter(
                tx, table, max(counters[table], max((r[0] for r in rows[table]), default=0))
            )
            touch_contents(tx.conn, table)
        at = columns["annotations"].index("geom")
        tx.bounds.extend(
            struct.unpack_from("<4d", r[at], 8) for r in rows["annotations"] if r[at] is not None
        )
        touch_annotations(tx)
        tx.execute(
            "INSERT INTO satdelta_meta (key, value) VALUES (?, ?)",
            (f"copied_from {gpkg_now()}", str(source.path)),
        )
    return {t: len(rows[t]) for t in COPIED_TABLES}


def _reencoded(rows: list[tuple[Any, ...]], columns: list[str]) -> list[tuple[Any, ...]]:
    """Annotation rows with their geometry as a GeoPackage blob with envelope (both accept it)."""
    at = columns.index("geom")
    blobs = [r[at] for r in rows]
    present = [b for b in blobs if b is not None]
    encoded = iter(encode_multipolygons(decode_geometries(present)) if present else [])
    out = []
    for row, blob in zip(rows, blobs, strict=True):
        new = list(row)
        new[at] = None if blob is None else next(encoded)
        out.append(tuple(new))
    return out
