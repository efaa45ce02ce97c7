"""Read-only inspection of an existing file before the store opens it for writing.

A file that is not a satdelta store, is damaged, or comes from a newer schema is refused
through a read-only SQLite connection, so it is never modified (and never opened through
another file descriptor, which would drop this process's SQLite locks; see
``docs/design-store.md``).
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path

from satdelta.annotations.errors import (
    NotAStoreError,
    StoreCorruptError,
    StoreError,
    StoreVersionError,
)
from satdelta.annotations.gpkg import APPLICATION_ID
from satdelta.annotations.schema import APP_NAME, SCHEMA_VERSION

__all__ = ["inspect_existing"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


def inspect_existing(path: Path, *, immutable: bool = False) -> None:
    """Refuse, without writing anything, a file that is not a healthy satdelta store.

    ``immutable`` opens it as a file nothing can change (one on a read-only filesystem or a
    full disk, where SQLite cannot make the WAL index it otherwise needs to read).
    """
    if not os.access(path, os.R_OK):
        raise StoreError(f"cannot read the store {path}: permission denied; check permissions")
    if path.stat().st_size < 100:  # shorter than an SQLite header: never a healthy store
        _refuse_header(path)
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    if immutable:
        uri += "&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5.0)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {path}: {exc}; check permissions") from None
    try:
        try:
            check = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
                conn.close()  # SQLite holds no lock on a file it refused
                _refuse_header(path)
            raise StoreCorruptError(
                f"{path} is corrupt ({exc}); it was not modified: restore it from a backup"
            ) from None
        if check != [("ok",)]:
            lines = [ln.strip() for row in check for ln in str(row[0]).splitlines()]
            first = "; ".join(ln for ln in lines[:3] if ln) or "no result"
            raise StoreCorruptError(
                f"{path} is corrupt (integrity check: {first}); it was not modified: restore it "
                "from a backup"
            )
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            return  # an empty database (e.g. another process is creating the store right now)
        try:
            meta = dict(conn.execute("SELECT key, value FROM satdelta_meta").fetchall())
        except sqlite3.DatabaseError:
            meta = {}
        if app_id != APPLICATION_ID or meta.get("application") != APP_NAME:
            kind = "a GeoPackage" if app_id == APPLICATION_ID else "an SQLite database"
            raise NotAStoreError(
                f"{path} is {kind} but not a satdelta store (no satdelta_meta table); it was not "
                "modified: choose another --store file"
            )
        version = int(meta.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"{path} has store schema version {version}, newer than this satdelta knows "
                f"({SCHEMA_VERSION}); upgrade satdelta to open it"
            )
    finally:
        conn.close()


def _refuse_header(path: Path) -> None:
    """Raise the error a file SQLite refused deserves, from its first 100 bytes.

    Reads the file with Python: only for files that are not a healthy SQLite database
    (see the module docstring for why).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise StoreError(
            f"cannot read the store {path}: {exc.strerror}; check permissions"
        ) from None
    if not head.startswith(_SQLITE_MAGIC):
        raise NotAStoreError(
            f"{path} is not a satdelta store: expected a GeoPackage (SQLite) file, got a file "
            f"starting with {head[:16]!r}; choose another --store file"
        )
    if len(head) < 100:
        raise StoreCorruptError(
            f"{path} is corrupt: its SQLite header is truncated ({len(head)} bytes); restore it "
            "from a backup"
        )
    raise StoreCorruptError(
        f"{path} is corrupt: SQLite does not accept its header; it was not modified: restore "
        "it from a backup"
    )
