"""Tables of the PostgreSQL/PostGIS store, its schema version and migrations, and its roles.

The tables and columns are those of the GeoPackage store (:mod:`~satdelta.annotations.schema`,
version 5), with the geometry in a PostGIS ``geometry(MultiPolygon, 4326)`` column under a GiST
index, so QGIS opens ``annotations`` as a layer.  Flags stay 0/1 integers and times stay
text, so a row reads the same from either store.  Three group roles (``satdelta_reader``,
``satdelta_reviewer``, ``satdelta_editor``) carry the grants; ``docs/team-store.md`` explains them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from satdelta.annotations.errors import (
    NotAStoreError,
    StoreError,
    StorePermissionError,
    StoreVersionError,
)
from satdelta.annotations.gpkg import gpkg_now
from satdelta.annotations.model import DEFAULT_LABELS
from satdelta.annotations.schema import APP_NAME, SCHEMA_VERSION

if TYPE_CHECKING:
    from satdelta.annotations.postgres import PgConnection, PgDatabase

__all__ = ["check_or_create", "stored_version", "grant", "TABLES", "MIGRATIONS"]

log = logging.getLogger(__name__)

_PROVENANCE_COLUMNS = """
  before_scene_id TEXT, before_acquired TEXT, before_source TEXT, before_sha256 TEXT,
  after_scene_id TEXT, after_acquired TEXT, after_source TEXT, after_sha256 TEXT,
  change_method TEXT, change_threshold_method TEXT, change_threshold DOUBLE PRECISION,
  change_parameters TEXT, provenance TEXT"""

#: Tables in the order a copy fills them (a row's references come before it).
TABLES = {
    "satdelta_meta": """CREATE TABLE satdelta_meta (
  id BIGSERIAL PRIMARY KEY, key TEXT NOT NULL UNIQUE, value TEXT)""",
    "labels": """CREATE TABLE labels (
  id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT,
  active INTEGER NOT NULL DEFAULT 1)""",
    "reports": """CREATE TABLE reports (
  id BIGSERIAL PRIMARY KEY, title TEXT NOT NULL, outlet TEXT, url TEXT,
  published TEXT, language TEXT, notes TEXT, created TEXT NOT NULL)""",
    "claims": """CREATE TABLE claims (
  id BIGSERIAL PRIMARY KEY, report_id BIGINT NOT NULL REFERENCES reports(id),
  text TEXT NOT NULL, place TEXT, lon DOUBLE PRECISION, lat DOUBLE PRECISION,
  west DOUBLE PRECISION, south DOUBLE PRECISION, east DOUBLE PRECISION, north DOUBLE PRECISION,
  time_start TEXT, time_end TEXT, created TEXT NOT NULL)""",
    "annotations": f"""CREATE TABLE annotations (
  fid BIGSERIAL PRIMARY KEY, geom geometry(MultiPolygon, 4326),
  uuid TEXT NOT NULL UNIQUE, report_id BIGINT NOT NULL,
  claim_id BIGINT NOT NULL REFERENCES claims(id),
  label TEXT NOT NULL, verdict TEXT NOT NULL, confidence DOUBLE PRECISION, status TEXT NOT NULL,
  origin TEXT NOT NULL, notes TEXT, analyst TEXT, created TEXT NOT NULL,
  updated TEXT NOT NULL, revision INTEGER NOT NULL, area_m2 DOUBLE PRECISION, source_crs TEXT,
  repaired INTEGER NOT NULL DEFAULT 0, repair_notes TEXT,{_PROVENANCE_COLUMNS},
  rank INTEGER, change TEXT)""",
    "changes": """CREATE TABLE changes (
  id BIGSERIAL PRIMARY KEY, action TEXT NOT NULL, description TEXT,
  created TEXT NOT NULL, analyst TEXT, undoes BIGINT)""",
    "annotation_revisions": """CREATE TABLE annotation_revisions (
  id BIGSERIAL PRIMARY KEY, annotation_uuid TEXT NOT NULL,
  revision INTEGER NOT NULL, action TEXT NOT NULL, deleted INTEGER NOT NULL,
  created TEXT NOT NULL, analyst TEXT, snapshot TEXT NOT NULL, change_id BIGINT,
  UNIQUE (annotation_uuid, revision))""",
    "record_revisions": """CREATE TABLE record_revisions (
  id BIGSERIAL PRIMARY KEY, change_id BIGINT NOT NULL, kind TEXT NOT NULL,
  record_id BIGINT NOT NULL, action TEXT NOT NULL, before TEXT, after TEXT,
  created TEXT NOT NULL, analyst TEXT)""",
}

_INDEXES = (
    "CREATE INDEX idx_annotations_geom ON annotations USING GIST (geom)",
    "CREATE INDEX idx_revisions_change ON annotation_revisions(change_id)",
    "CREATE INDEX idx_changes_undoes ON changes(undoes)",
    "CREATE INDEX idx_annotations_claim ON annotations(claim_id)",
    "CREATE INDEX idx_claims_report ON claims(report_id)",
    "CREATE INDEX idx_record_revisions_change ON record_revisions(change_id)",
)

#: Columns a reviewer may change (the rest of an edit's new revision is bookkeeping).
_REVIEW_COLUMNS = ("fid", "status", "verdict", "updated", "revision", "analyst")

_REVIEW_TRIGGER = (
    f"""CREATE OR REPLACE FUNCTION satdelta_review_only() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF NOT has_table_privilege('annotations', 'INSERT')
     AND (to_jsonb(NEW) - ARRAY[{", ".join(f"'{c}'" for c in _REVIEW_COLUMNS)}])
         IS DISTINCT FROM
         (to_jsonb(OLD) - ARRAY[{", ".join(f"'{c}'" for c in _REVIEW_COLUMNS)}]) THEN
    RAISE EXCEPTION 'a reviewer may change only the status and verdict of an annotation'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$body$""",
    """CREATE TRIGGER annotations_review_only BEFORE UPDATE ON annotations
  FOR EACH ROW EXECUTE FUNCTION satdelta_review_only()""",
)

#: Migrations of the PostgreSQL schema: ``MIGRATIONS[v]`` brings a store from v to v + 1.
#: The PostgreSQL store started at the GeoPackage store's version 5; the next version adds
#: its step here, as :func:`satdelta.annotations.schema.migrate` does for GeoPackage files.
MIGRATIONS: dict[int, Callable[[PgConnection], None]] = {}


def stored_version(conn: PgConnection) -> int | None:
    """The ``schema_version`` of ``satdelta_meta`` (None before the schema exists)."""
    if conn.execute("SELECT to_regclass('satdelta_meta')").fetchone()[0] is None:
        return None
    row = conn.execute("SELECT value FROM satdelta_meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def _require_postgis(db: PgDatabase, conn: PgConnection) -> None:
    """PostGIS in the database: there already, or added now (inside the caller's transaction)."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone():
        return
    if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone():
        raise StoreError(
            f"the server of {db.path} has no PostGIS; install it there (Debian: apt install "
            "postgresql-15-postgis-3) and retry"
        )
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis", returning=False)
    except StorePermissionError:
        raise StoreError(
            f"the database of {db.path} lacks the PostGIS extension and user {db.user} may not "
            "add it; ask its owner to run `CREATE EXTENSION postgis;` in it"
        ) from None


def check_or_create(db: PgDatabase, *, create: bool) -> None:
    """Refuse a database that is not a satdelta store; create or migrate the schema."""
    version = stored_version(db._conn)
    if version == SCHEMA_VERSION:
        return
    if version is not None and version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{db.path} has store schema version {version}, newer than this satdelta knows "
            f"({SCHEMA_VERSION}); upgrade satdelta to open it"
        )
    if version is None and not create:
        raise StoreError(
            f"no store in {db.path}; create one by writing to it (e.g. `satdelta report add`)"
        )
    with db.write() as tx:
        version = stored_version(tx.conn)  # another process may have done it meanwhile
        if version is None:
            _require_postgis(db, tx.conn)
            taken = [t for t in TABLES if tx.execute("SELECT to_regclass(?)", (t,)).fetchone()[0]]
            if taken:
                raise NotAStoreError(
                    f"{db.path} already has tables named {', '.join(taken)} but is not a "
                    "satdelta store; it was not modified: use another database"
                )
            create_schema(tx.conn)
            log.info("created store %s", db.path)
        elif version < SCHEMA_VERSION:
            migrate(tx.conn, version)


def create_schema(conn: PgConnection) -> None:
    """Create the tables, indexes and the reviewer trigger inside the caller's transaction."""
    for ddl in TABLES.values():
        conn.execute(ddl, returning=False)
    for ddl in _INDEXES:
        conn.execute(ddl, returning=False)
    for ddl in _REVIEW_TRIGGER:
        conn.execute(ddl, returning=False)
    conn.executemany(
        "INSERT INTO satdelta_meta (key, value) VALUES (?, ?)",
        [
            ("application", APP_NAME),
            ("schema_version", str(SCHEMA_VERSION)),
            ("created", gpkg_now()),
            ("backend", "postgresql"),
        ],
    )
    conn.executemany(
        "INSERT INTO labels (name, description, active) VALUES (?, '', 1)",
        [(name,) for name in DEFAULT_LABELS],
    )


def migrate(conn: PgConnection, from_version: int) -> None:
    """Bring the schema from ``from_version`` to :data:`SCHEMA_VERSION` (under the write lock)."""
    for version in range(from_version, SCHEMA_VERSION):
        step = MIGRATIONS.get(version)
        if step is None:
            raise StoreVersionError(
                f"no migration of the PostgreSQL store from schema {version} to "
                f"{SCHEMA_VERSION} in this satdelta; nothing was changed: install the satdelta "
                "that made the store, or report it"
            )
        step(conn)
    conn.execute(
        "UPDATE satdelta_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
    )
    conn.execute(
        "INSERT INTO satdelta_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
        "SET value = excluded.value",
        (f"migrated_from_{from_version}", gpkg_now()),
    )
    log.info("migrated store schema %d -> %d", from_version, SCHEMA_VERSION)


# ---------------------------------------------------------------------------------- roles
Access = Literal["read", "review", "edit"]

GROUPS: dict[Access, str] = {
    "read": "satdelta_reader",
    "review": "satdelta_reviewer",
    "edit": "satdelta_editor",
}

_GRANTS: dict[Access, tuple[str, ...]] = {
    "read": (
        "GRANT USAGE ON SCHEMA public TO {g}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {g}",
    ),
    "review": (
        "GRANT USAGE ON SCHEMA public TO {g}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {g}",
        "GRANT UPDATE ON annotations TO {g}",
        "GRANT INSERT ON changes, annotation_revisions TO {g}",
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {g}",
    ),
    "edit": (
        "GRANT USAGE ON SCHEMA public TO {g}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {g}",
        "GRANT INSERT, UPDATE, DELETE ON labels, reports, claims, annotations, changes, "
        "annotation_revisions, record_revisions TO {g}",
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {g}",
    ),
}


def grant(db: PgDatabase, role: str, access: Access) -> str:
    """Give database user ``role`` the ``access`` to the store (and no other satdelta group).

    Returns the group role granted.  Needs a user allowed to create roles and grant on the
    tables (the store's owner or an admin).
    """
    from psycopg import sql

    conn = db._conn
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = ?", (role,)).fetchone():
        raise StoreError(
            f"the server of {db.path} has no user {role!r}; create it first (`createuser {role}`)"
        )
    raw = conn.raw
    with db.write(lock=False):
        for name, group in GROUPS.items():
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = ?", (group,)).fetchone()
            if not exists:
                _as_admin(
                    db,
                    lambda g=group: raw.execute(
                        sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(g))
                    ),
                )
            for template in _GRANTS[name]:
                stmt = sql.SQL(template.replace("{g}", "{}")).format(sql.Identifier(group))
                _as_admin(db, lambda s=stmt: raw.execute(s))
            member = sql.SQL("{} {} {} {}").format(
                sql.SQL("GRANT" if name == access else "REVOKE"),
                sql.Identifier(group),
                sql.SQL("TO" if name == access else "FROM"),
                sql.Identifier(role),
            )
            _as_admin(db, lambda s=member: raw.execute(s))
    return GROUPS[access]


def _as_admin(db: PgDatabase, fn: Callable[[], object]) -> None:
    import psycopg

    try:
        fn()
    except psycopg.errors.InsufficientPrivilege as exc:
        first = (str(exc).splitlines() or ["permission denied"])[0]
        raise StorePermissionError(
            f"{db.path}: database user {db.user} may not grant roles ({first}); run "
            "`satdelta store grant` as the store's owner or an admin"
        ) from None
