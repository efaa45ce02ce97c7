"""The team store's PostgreSQL/PostGIS connection, behind the same interface as the GeoPackage one.

:class:`PgDatabase` offers what :class:`~satdelta.annotations.connection.Database` offers
(``write``, ``snapshot``, ``read``, ``query``, ``path``, ``analyst``), so the store modules
(reads, writes, reports, history) run unchanged on either.  Their SQL is written in SQLite's
DB-API dialect; :class:`PgConnection` speaks it over psycopg 3 (``?`` placeholders,
``lastrowid``, ``sqlite3.IntegrityError``) and moves geometries between GeoPackage blobs and
PostGIS.  Write transactions take one advisory lock, so writers from many processes and
machines run one after another and none is lost.  ``docs/team-store.md`` has the rationale.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from satdelta.annotations.connection import Transaction
from satdelta.annotations.errors import (
    AnnotationValueError,
    StoreBusyError,
    StoreError,
    StorePermissionError,
)

__all__ = ["PgDatabase", "PgConnection", "is_postgres_url", "redact_url"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_URL = re.compile(r"^postgres(?:ql)?:/+", re.IGNORECASE)
#: Key of the advisory lock every write transaction holds (ASCII "satdelta" as an int8).
WRITE_LOCK_KEY = int.from_bytes(b"satdelta", "big") & 0x7FFFFFFFFFFFFFFF
_EWKB_SRID = 0x20000000
_GPKG_NO_ENVELOPE = b"GP\x00\x01" + struct.pack("<i", 4326)  # little-endian, no envelope


def is_postgres_url(location: object) -> bool:
    """True for ``postgresql://...`` (also after ``pathlib.Path`` collapsed its ``//``)."""
    return bool(_URL.match(str(location)))


def normalise_url(location: object) -> str:
    """The URL with its ``//`` back (``pathlib.Path`` collapses it to one slash)."""
    return _URL.sub("postgresql://", str(location), count=1)


def redact_url(url: str) -> str:
    """``postgresql://user@host:port/db`` of ``url``, never its password.

    Examples
    --------
    >>> redact_url("postgresql://ann:secret@db.example.org:5433/news?sslmode=require")
    'postgresql://ann@db.example.org:5433/news'
    """
    parts = re.match(r"^postgresql://(?:([^:@/]*)(?::[^@/]*)?@)?([^/?]*)(/[^?]*)?", url)
    if parts is None:
        return "postgresql://?"
    user, host, db = parts.group(1), parts.group(2), parts.group(3) or ""
    return f"postgresql://{user + '@' if user else ''}{host}{db}"


def gpkg_to_ewkb(blob: bytes) -> bytes:
    """A GeoPackage geometry blob as EWKB with its SRID (what a PostGIS column accepts)."""
    n = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}[(blob[3] >> 1) & 0b111]
    srid = struct.unpack_from("<i" if blob[3] & 1 else ">i", blob, 4)[0]
    wkb = blob[8 + 8 * n :]
    order = "<" if wkb[0] == 1 else ">"
    kind = struct.unpack_from(order + "I", wkb, 1)[0]
    return wkb[:1] + struct.pack(order + "Ii", kind | _EWKB_SRID, srid) + wkb[5:]


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)  # the schema keeps SQLite's 0/1 flags as integers
    if isinstance(value, bytes) and value[:2] == b"GP":
        return gpkg_to_ewkb(value)
    if isinstance(value, str) and "\x00" in value:
        raise AnnotationValueError(
            f"text for a PostgreSQL store cannot hold NUL characters (\\x00), got "
            f"{value[:40]!r}; remove them (nothing was written)"
        )
    return value


_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)


@functools.lru_cache(maxsize=256)
def _translate(sql: str, returning: bool) -> tuple[str, bool]:
    """SQLite-dialect ``sql`` as psycopg's, and whether it returns the new row's id."""
    text = sql.replace("%", "%%").replace("?", "%s")
    insert = _INSERT.match(text)
    if returning and insert and "RETURNING" not in text.upper():
        key = "fid" if insert.group(1) == "annotations" else "id"
        return f"{text} RETURNING {key}", True
    return text, False


class _Cursor:
    """The part of ``sqlite3.Cursor`` the store modules use."""

    def __init__(self, cursor: Any, lastrowid: int | None):
        self._cursor = cursor
        self.lastrowid = lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self) -> Any:
        return self._cursor.description

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


class PgConnection:
    """A psycopg connection that speaks the SQLite DB-API dialect of the store modules.

    ``?`` placeholders become ``%s``; an ``INSERT`` returns its new id as ``lastrowid``;
    GeoPackage geometry parameters go to PostGIS as EWKB, and geometry columns come back as
    GeoPackage blobs (see :func:`register_geometry_loader`), so rows read the same as from
    the GeoPackage store; a broken constraint raises ``sqlite3.IntegrityError`` and a
    refused privilege :class:`StorePermissionError`.
    """

    dialect = "postgresql"

    def __init__(self, conn: Any, where: str, user: str, timeout: float):
        self.raw = conn
        self.where = where
        self.user = user
        self.timeout = timeout

    def _run(self, fn: Callable[[], T]) -> T:
        import psycopg

        try:
            return fn()
        except psycopg.errors.IntegrityError as exc:
            raise sqlite3.IntegrityError(_first_line(exc)) from None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StorePermissionError(
                f"{self.where}: database user {self.user} may not do this ({_first_line(exc)}); "
                f"ask the store's owner for a role: `satdelta store grant {self.user} --edit` "
                "(or --review)"
            ) from None
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
            holder = self._lock_holder()
            raise StoreBusyError(
                f"store {self.where} stayed locked by another writer{holder} for more than "
                f"{self.timeout:g} s; nothing was written: retry later or ask them to finish"
            ) from None
        except psycopg.OperationalError as exc:
            raise StoreError(
                f"{self.where}: lost the connection to the server ({_first_line(exc)}); "
                "nothing of this change was saved: check the server and retry"
            ) from None

    def _lock_holder(self) -> str:
        """`` (user U from ADDRESS, pid N)`` of the session holding the write lock, if known."""
        try:
            self.raw.execute("ROLLBACK")
            row = self.raw.execute(
                "SELECT a.usename, a.client_addr, a.pid FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND "
                "l.pid != pg_backend_pid() LIMIT 1"
            ).fetchone()
        except Exception:  # only for the message: the refusal stands without it
            return ""
        if row is None:
            return ""
        user, address, pid = row
        return f" (user {user} from {address or 'a local socket'}, server pid {pid})"

    def execute(self, sql: str, params: Iterable[Any] = (), *, returning: bool = True) -> _Cursor:
        text, returns = _translate(sql, returning)
        values = [_param(p) for p in params]

        def run() -> _Cursor:
            cur = self.raw.cursor()
            cur.execute(text, values, prepare=False)
            return _Cursor(cur, cur.fetchone()[0] if returns else None)

        return self._run(run)

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        text, _ = _translate(sql, False)
        batch = [[_param(p) for p in row] for row in rows]
        if batch:
            self._run(lambda: self.raw.cursor().executemany(text, batch))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def register_geometry_loader(conn: Any) -> None:
    """Read PostGIS ``geometry`` values as GeoPackage blobs (header without envelope + EWKB)."""
    from psycopg.adapt import Loader

    row = conn.execute("SELECT oid FROM pg_type WHERE typname = 'geometry'").fetchone()
    if row is None:
        return

    class GeometryLoader(Loader):
        def load(self, data: Any) -> bytes:
            return _GPKG_NO_ENVELOPE + bytes.fromhex(bytes(data).decode("ascii"))

    conn.adapters.register_loader(row[0], GeometryLoader)


class PgTransaction(Transaction):
    """One write transaction of a PostgreSQL store (``conn`` is a :class:`PgConnection`)."""

    dialect = "postgresql"


class PgDatabase:
    """The connection to one PostgreSQL store, shared by the threads of one :class:`Store`."""

    dialect = "postgresql"

    def __init__(self, conn: Any, url: str, *, analyst: str | None, timeout: float):
        self.url = url
        self.path = redact_url(url)  # what messages show: never the password
        self._raw = conn
        self.user = conn.info.user
        self.analyst = analyst or self.user
        self.timeout = timeout
        self._conn = PgConnection(conn, self.path, self.user, timeout)
        self._lock = threading.RLock()
        self._closed = False
        self._in_snapshot = False
        self.unwritable: str | None = None

    @classmethod
    def open(
        cls, location: object, *, create: bool, analyst: str | None, timeout: float
    ) -> PgDatabase:
        """Connect (and create, migrate) the store at ``location``; see :meth:`Store.open`."""
        from satdelta.annotations.pg_schema import check_or_create

        url = normalise_url(location)
        conn = connect(url)
        db = cls(conn, url, analyst=analyst, timeout=timeout)
        try:
            conn.execute(f"SET lock_timeout = {int(timeout * 1000)}")
            check_or_create(db, create=create)
            register_geometry_loader(conn)
        except BaseException:
            conn.close()
            raise
        return db

    @property
    def location(self) -> str:
        """The URL to open this store again (may hold a password: never print it)."""
        return self.url

    def schema_version(self) -> int | None:
        from satdelta.annotations.pg_schema import stored_version

        with self._lock:
            return stored_version(self._conn)

    def close(self) -> None:
        with self._lock:  # another thread's read in progress ends first
            if not self._closed:
                self._closed = True
                self._raw.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"store {self.path} is closed; open it again with Store.open")

    @contextmanager
    def write(self, *, lock: bool = True) -> Iterator[PgTransaction]:
        """One write transaction holding the store's write lock; rolled back on an error."""
        self._check_open()
        with self._lock:
            if self._in_snapshot:
                raise StoreError("cannot write inside Store.snapshot(); write after the block")
            self._conn.execute("BEGIN", returning=False)
            try:
                if lock:
                    self._conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK_KEY,))
                yield PgTransaction(self._conn, self.path, self.analyst)
            except BaseException:
                self._rollback()
                raise
            try:
                self._conn.execute("COMMIT", returning=False)
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        try:
            self._raw.execute("ROLLBACK")
        except Exception:  # the connection is gone: the server rolled back already
            log.debug("rollback failed", exc_info=True)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One REPEATABLE READ transaction for the block (nested: a no-op)."""
        self._check_open()
        with self._lock:
            if self._in_snapshot:
                yield
                return
            self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", returning=False)
            self._in_snapshot = True
            try:
                yield
            finally:
                self._in_snapshot = False
                self._rollback()

    def read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self.query(lambda conn: conn.execute(sql, tuple(params)).fetchall())

    def query(self, fn: Callable[[PgConnection], T]) -> T:
        self._check_open()
        with self._lock:
            return fn(self._conn)

    def retry(self, fn: Callable[[], T]) -> T:
        """``fn()`` (the server queues writers itself: nothing to poll)."""
        return fn()


def connect(url: str) -> Any:
    """A psycopg connection (autocommit: transactions are explicit), or a one-line error."""
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "a PostgreSQL store needs psycopg 3: pip install 'satdelta[postgresql]'"
        ) from None
    shown = redact_url(url)
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.ProgrammingError as exc:
        raise StoreError(
            f"cannot read the store address {shown}: {_first_line(exc)}; expected "
            "postgresql://USER@HOST:PORT/DATABASE"
        ) from None
    except psycopg.OperationalError as exc:
        raise StoreError(_connect_advice(shown, str(exc))) from None


def _connect_advice(shown: str, message: str) -> str:
    """One line saying why the server refused ``shown`` and what to do."""
    text = message.lower()
    if "password authentication failed" in text or "no password supplied" in text:
        return (
            f"cannot open the store {shown}: the server refused the password; set the right "
            "one in PGPASSWORD or ~/.pgpass (never in a shared command line)"
        )
    if "does not exist" in text and "database" in text:
        return (
            f"cannot open the store {shown}: the database does not exist; create it with "
            "`createdb` (as a user allowed to) and retry"
        )
    if "role" in text and "does not exist" in text:
        return (
            f"cannot open the store {shown}: the server has no such user; ask its admin to "
            "create it (`createuser`)"
        )
    if "connection refused" in text or "could not connect" in text or "timeout" in text:
        return (
            f"cannot open the store {shown}: no PostgreSQL server answers there (is it "
            "running? right host and port?); start it or fix --store"
        )
    reason = next((ln for ln in message.splitlines() if ln.strip()), "refused")
    return f"cannot open the store {shown}: {reason.strip()}; check the address and the server"
