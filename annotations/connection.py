"""The store's SQLite connection: opening a file, write and read transactions, busy retries.

:class:`Database` owns the connection; every write runs in one :class:`Transaction`
(``BEGIN IMMEDIATE``), retried on a busy file for up to ``timeout`` seconds.  The
durability settings (WAL, ``synchronous=FULL``) are explained in ``docs/design-store.md``.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from satdelta.annotations.errors import NotAStoreError, StoreBusyError, StoreError
from satdelta.annotations.gpkg import gpkg_now, register_functions
from satdelta.annotations.opening import inspect_existing
from satdelta.annotations.schema import SCHEMA_VERSION, create_schema, migrate

__all__ = ["Database", "Transaction"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


def _store_reason(exc: sqlite3.Error) -> str:
    """SQLite's complaint, with a full disk named as such."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
        return "the disk is full; free some space and retry (nothing was changed)"
    return str(exc)


def _holders(path: Path) -> str:
    """`` (pid N)`` of the processes holding locks on the store's files, from /proc/locks."""
    inodes = set()
    for name in (path, Path(f"{path}-shm"), Path(f"{path}-wal")):
        try:
            st = name.stat()
        except OSError:
            continue
        inodes.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    pids = set()
    try:
        with open("/proc/locks", encoding="ascii") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) < 6 or fields[1] == "->":
                    continue
                major, minor, ino = fields[5].split(":")
                if (int(major, 16), int(minor, 16), int(ino)) in inodes and fields[4] != str(
                    os.getpid()
                ):
                    pids.add(fields[4])
    except (OSError, ValueError):
        return ""
    return f" (pid {', '.join(sorted(pids, key=int))})" if pids else ""


def _unwritable(path: Path) -> str | None:
    """Why the store file at ``path`` cannot be written at all, or None when it can."""
    try:
        fs = os.statvfs(path.parent)
    except OSError:
        return None
    if fs.f_flag & os.ST_RDONLY:
        return "it is on a read-only filesystem"
    if fs.f_bavail == 0:
        return "the disk is full"
    return None


@dataclass(eq=False)
class Transaction:
    """One write transaction of a store: its connection, and the extents of what it wrote.

    Attributes
    ----------
    conn : sqlite3.Connection
        The store's connection, inside ``BEGIN IMMEDIATE``.
    path : Path
        The store file (for error messages).
    analyst : str or None
        Written in the ``analyst`` field of the revisions and changes.
    bounds : list of (minx, maxx, miny, maxy)
        Envelope of every geometry written, to grow the layer's extent at the end.
    """

    conn: sqlite3.Connection
    path: Path
    analyst: str | None
    dialect = "geopackage"
    bounds: list[tuple[float, float, float, float]] = field(default_factory=list)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def new_change(self, action: str, description: str, *, undoes: int | None = None) -> int:
        """Open a new entry of the ``changes`` log; returns its id."""
        return self.execute(
            "INSERT INTO changes (action, description, created, analyst, undoes) "
            "VALUES (?, ?, ?, ?, ?)",
            (action, description, gpkg_now(), self.analyst, undoes),
        ).lastrowid

    def change_time(self, change: int) -> str:
        """When the change ``change`` was opened."""
        return self.execute("SELECT created FROM changes WHERE id = ?", (change,)).fetchone()[0]


class Database:
    """The connection to one store file, shared by the threads of one :class:`Store`."""

    dialect = "geopackage"

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, analyst: str | None, timeout: float
    ):
        self._conn = conn
        self.path = path
        self.analyst = analyst
        self.timeout = timeout
        self._lock = threading.RLock()
        self._closed = False
        #: Why the store cannot be written (None when it can).
        self.unwritable: str | None = None

    @classmethod
    def open(cls, path: Path, *, create: bool, analyst: str | None, timeout: float) -> Database:
        """Open (and create, migrate) the store at ``path``; see :meth:`Store.open`."""
        if path.is_dir():
            raise NotAStoreError(
                f"expected a GeoPackage file for the store, got a directory {path}; "
                "give a file name"
            )
        unwritable = _unwritable(path) if path.exists() else None
        if path.exists() and path.stat().st_size > 0:
            inspect_existing(path, immutable=unwritable is not None)
        elif not create:
            raise StoreError(f"no store at {path}; create one by writing to it (e.g. `report add`)")
        elif not path.parent.exists():
            raise StoreError(
                f"cannot create the store {path}: folder {path.parent} does not exist; "
                "create it first"
            )
        if unwritable is not None:
            return cls._open_unwritable(path, unwritable, analyst=analyst, timeout=timeout)
        try:
            # No SQLite busy handler (timeout=0): retry() polls instead (docs/design-store.md).
            conn = sqlite3.connect(
                str(path), timeout=0.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open the store {path}: {exc}; check the path and permissions"
            ) from None
        db = cls(conn, path, analyst=analyst, timeout=timeout)
        try:
            db._setup()
        except BaseException:
            conn.close()
            raise
        return db

    @classmethod
    def _open_unwritable(
        cls, path: Path, reason: str, *, analyst: str | None, timeout: float
    ) -> Database:
        """Open a store no one can write (read-only filesystem, full disk) for reading only.

        SQLite cannot make the WAL index beside such a file, so it is opened ``immutable``
        (nothing can change it while it cannot be written); :meth:`write` says why it refuses.
        """
        uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro&immutable=1"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        db = cls(conn, path, analyst=analyst, timeout=timeout)
        db.unwritable = reason
        register_functions(conn)
        if db.schema_version() != SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"store {path} needs an upgrade to schema {SCHEMA_VERSION} but {reason}; "
                "copy it to a writable folder and open it there"
            )
        return db

    def _setup(self) -> None:
        conn = self._conn
        register_functions(conn)  # ST_* used by the GeoPackage R-tree triggers
        conn.execute("PRAGMA foreign_keys = ON")
        self.retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
        conn.execute("PRAGMA synchronous = FULL")
        if self.schema_version() == SCHEMA_VERSION:
            return
        with self.write() as tx:
            version = self.schema_version()  # another process may have done it meanwhile
            if version is None:
                if tx.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise NotAStoreError(
                        f"{self.path} is an SQLite database but not a satdelta store; choose "
                        "another file name"
                    )
                create_schema(tx.conn)
                log.info("created store %s", self.path)
            elif version < SCHEMA_VERSION:
                migrate(tx.conn, version)
        # copy the WAL into the main file so that tools reading the raw header see a GeoPackage
        self.retry(lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())

    @property
    def location(self) -> Path:
        """What :meth:`Store.open` takes to open this store again."""
        return self.path

    def schema_version(self) -> int | None:
        """The ``schema_version`` of ``satdelta_meta`` (None before the schema exists)."""
        try:
            row = self._conn.execute(
                "SELECT value FROM satdelta_meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.OperationalError:
            return None
        return int(row[0]) if row else None

    def close(self) -> None:
        # under the lock: another thread's read in progress ends first (closing the
        # connection under a running query is undefined in sqlite3)
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def retry(self, fn: Callable[[], T]) -> T:
        """``fn()``, retried every 1-10 ms (with jitter) while the file is busy, up to timeout."""
        start = time.monotonic()
        deadline = start + self.timeout
        delay = 0.001
        told = False
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise StoreError(f"store {self.path}: {_store_reason(exc)}") from None
                if not told and time.monotonic() - start > 1.0:
                    told = True
                    log.warning(
                        "waiting for the store %s: another process%s is writing it (up to %g s)",
                        self.path,
                        _holders(self.path),
                        self.timeout,
                    )
                if time.monotonic() > deadline:
                    raise StoreBusyError(
                        f"store {self.path} stayed locked by another process for more than "
                        f"{self.timeout:g} s; close the other program or retry later"
                    ) from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 1.5, 0.01)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"store {self.path} is closed; open it again with Store.open")

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """One write transaction: committed at the end of the block, rolled back on an error."""
        self._check_open()
        if self.unwritable is not None:
            raise StoreError(
                f"cannot change the store {self.path}: {self.unwritable}; reading it (list, "
                "export) works. Free some space, or copy it to a writable folder, to change it"
            )
        with self._lock:
            self.retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            try:
                yield Transaction(self._conn, self.path, self.analyst)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            try:
                self.retry(lambda: self._conn.execute("COMMIT"))
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction for the block (nested: a no-op); see :meth:`Store.snapshot`."""
        self._check_open()
        with self._lock:
            if self._conn.in_transaction:
                yield
                return
            self._conn.execute("BEGIN")  # deferred: the snapshot is taken by the first read
            try:
                yield
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    def read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query."""
        return self.query(lambda conn: conn.execute(sql, tuple(params)).fetchall())

    def query(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` under the store's lock, retried while the file is busy."""
        self._check_open()
        with self._lock:
            return self.retry(lambda: fn(self._conn))
