"""Tables of the satdelta GeoPackage store, and migrations from older schema versions.

The schema history (versions 1-5) is described in ``docs/design-store.md``; every table is
registered in ``gpkg_contents`` so GDAL and QGIS list them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable

from satdelta.annotations.gpkg import (
    create_core_tables,
    create_rtree,
    decode_geometry,
    gpkg_now,
    register_attributes,
    register_features,
)
from satdelta.annotations.model import DEFAULT_LABELS

__all__ = ["SCHEMA_VERSION", "APP_NAME", "create_schema", "migrate"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 5
APP_NAME = "satdelta"

_PROVENANCE_COLUMNS = """
  before_scene_id TEXT, before_acquired DATE, before_source TEXT, before_sha256 TEXT,
  after_scene_id TEXT, after_acquired DATE, after_source TEXT, after_sha256 TEXT,
  change_method TEXT, change_threshold_method TEXT, change_threshold DOUBLE,
  change_parameters TEXT, provenance TEXT"""

#: Added in version 5: the rank and kind of change of a detected candidate (NULL otherwise).
_CANDIDATE_COLUMNS = "rank INTEGER, change TEXT"

_TABLES_V2 = {
    "satdelta_meta": """CREATE TABLE satdelta_meta (
  id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, value TEXT)""",
    "labels": """CREATE TABLE labels (
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, description TEXT,
  active BOOLEAN NOT NULL DEFAULT 1)""",
    "reports": """CREATE TABLE reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, outlet TEXT, url TEXT,
  published DATE, language TEXT, notes TEXT, created DATETIME NOT NULL)""",
    "claims": """CREATE TABLE claims (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  report_id INTEGER NOT NULL REFERENCES reports(id),
  text TEXT NOT NULL, place TEXT, lon DOUBLE, lat DOUBLE,
  west DOUBLE, south DOUBLE, east DOUBLE, north DOUBLE,
  time_start DATE, time_end DATE, created DATETIME NOT NULL)""",
    "annotations": f"""CREATE TABLE annotations (
  fid INTEGER PRIMARY KEY AUTOINCREMENT, geom MULTIPOLYGON,
  uuid TEXT NOT NULL UNIQUE, report_id INTEGER NOT NULL,
  claim_id INTEGER NOT NULL REFERENCES claims(id),
  label TEXT NOT NULL, verdict TEXT NOT NULL, confidence DOUBLE, status TEXT NOT NULL,
  origin TEXT NOT NULL, notes TEXT, analyst TEXT, created DATETIME NOT NULL,
  updated DATETIME NOT NULL, revision INTEGER NOT NULL, area_m2 DOUBLE, source_crs TEXT,
  repaired BOOLEAN NOT NULL DEFAULT 0, repair_notes TEXT,{_PROVENANCE_COLUMNS},
  {_CANDIDATE_COLUMNS})""",
    "changes": """CREATE TABLE changes (
  id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL, description TEXT,
  created DATETIME NOT NULL, analyst TEXT, undoes INTEGER)""",
    "annotation_revisions": """CREATE TABLE annotation_revisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, annotation_uuid TEXT NOT NULL,
  revision INTEGER NOT NULL, action TEXT NOT NULL, deleted BOOLEAN NOT NULL,
  created DATETIME NOT NULL, analyst TEXT, snapshot TEXT NOT NULL, change_id INTEGER,
  UNIQUE (annotation_uuid, revision))""",
    "record_revisions": """CREATE TABLE record_revisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, change_id INTEGER NOT NULL, kind TEXT NOT NULL,
  record_id INTEGER NOT NULL, action TEXT NOT NULL, before TEXT, after TEXT,
  created DATETIME NOT NULL, analyst TEXT)""",
}

_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_revisions_change ON annotation_revisions(change_id)",
    "CREATE INDEX IF NOT EXISTS idx_changes_undoes ON changes(undoes)",
    "CREATE INDEX IF NOT EXISTS idx_annotations_claim ON annotations(claim_id)",
    "CREATE INDEX IF NOT EXISTS idx_claims_report ON claims(report_id)",
)
_INDEXES_V4 = (
    "CREATE INDEX IF NOT EXISTS idx_record_revisions_change ON record_revisions(change_id)",
)

_DESCRIPTIONS = {
    "satdelta_meta": "satdelta store metadata (schema version)",
    "labels": "editable label schema for annotations",
    "reports": "news reports whose claims are checked",
    "claims": "claims of the reports, in the analyst's words",
    "annotations": "evidence polygons (current state; deleted ones only in annotation_revisions)",
    "changes": "log of user actions (undo reverses the latest one not yet undone)",
    "annotation_revisions": "every state of every annotation, as a JSON snapshot",
    "record_revisions": "every edit and deletion of a report or claim (row before/after as JSON)",
}


def create_schema(conn: sqlite3.Connection) -> None:
    """Create a fresh store (GeoPackage core + satdelta tables) inside the caller's transaction."""
    create_core_tables(conn)
    for ddl in _TABLES_V2.values():
        conn.execute(ddl)
    for ddl in _INDEXES + _INDEXES_V4:
        conn.execute(ddl)
    _register(conn, _DESCRIPTIONS)
    create_rtree(conn, "annotations")
    now = gpkg_now()
    conn.executemany(
        "INSERT INTO satdelta_meta (key, value) VALUES (?, ?)",
        [("application", APP_NAME), ("schema_version", str(SCHEMA_VERSION)), ("created", now)],
    )
    conn.executemany(
        "INSERT INTO labels (name, description, active) VALUES (?, '', 1)",
        [(name,) for name in DEFAULT_LABELS],
    )


def _register(conn: sqlite3.Connection, tables: Iterable[str]) -> None:
    for table in tables:
        description = _DESCRIPTIONS[table]
        if table == "annotations":
            register_features(conn, table, description=description)
        else:
            register_attributes(conn, table, description=description)


def migrate(conn: sqlite3.Connection, from_version: int) -> None:
    """Bring a store from ``from_version`` to :data:`SCHEMA_VERSION` (caller holds the write lock).

    The connection needs :func:`~satdelta.annotations.gpkg.register_functions`.

    Migrations only add: columns, tables and values derived from existing data.
    """
    if from_version < 2:
        _migrate_1_to_2(conn)
    if from_version < 3:
        create_rtree(conn, "annotations")  # filled from the existing rows
    if from_version < 4:
        conn.execute(_TABLES_V2["record_revisions"])
        for ddl in _INDEXES_V4:
            conn.execute(ddl)
        _register(conn, ["record_revisions"])
    if from_version < 5:
        for column in _CANDIDATE_COLUMNS.split(", "):
            conn.execute(f"ALTER TABLE annotations ADD COLUMN {column}")
    conn.execute(
        "UPDATE satdelta_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
    )
    conn.execute(
        "INSERT OR REPLACE INTO satdelta_meta (key, value) VALUES (?, ?)",
        (f"migrated_from_{from_version}", gpkg_now()),
    )
    log.info("migrated store schema %d -> %d", from_version, SCHEMA_VERSION)


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2 (the v2 tables only: later versions add theirs in :func:`migrate`)."""
    from satdelta.annotations.geometry import geodesic_area_m2

    conn.execute(_TABLES_V2["labels"])
    conn.execute(_TABLES_V2["changes"])
    used = [r[0] for r in conn.execute("SELECT DISTINCT label FROM annotations")]
    names = list(DEFAULT_LABELS) + [u for u in used if u not in DEFAULT_LABELS]
    conn.executemany(
        "INSERT INTO labels (name, description, active) VALUES (?, '', 1)", [(n,) for n in names]
    )
    for column in (
        "area_m2 DOUBLE",
        "source_crs TEXT",
        "repaired BOOLEAN NOT NULL DEFAULT 0",
        "repair_notes TEXT",
    ):
        conn.execute(f"ALTER TABLE annotations ADD COLUMN {column}")
    for fid, blob in conn.execute("SELECT fid, geom FROM annotations").fetchall():
        area = geodesic_area_m2(decode_geometry(blob)) if blob else None
        conn.execute(
            "UPDATE annotations SET area_m2 = ?, source_crs = 'EPSG:4326' WHERE fid = ?",
            (area, fid),
        )
    conn.execute("ALTER TABLE annotation_revisions ADD COLUMN change_id INTEGER")
    for column in ("lon", "lat", "west", "south", "east", "north"):
        conn.execute(f"ALTER TABLE claims ADD COLUMN {column} DOUBLE")
    for cid, location in conn.execute("SELECT id, location FROM claims").fetchall():
        loc = json.loads(location) if location else {}
        point = loc.get("point") or [None, None]
        bbox = loc.get("bbox") or [None] * 4
        conn.execute(
            "UPDATE claims SET lon = ?, lat = ?, west = ?, south = ?, east = ?, north = ? "
            "WHERE id = ?",
            (*point, *bbox, cid),
        )
    for ddl in _INDEXES:
        conn.execute(ddl)
    _register(conn, [t for t in _DESCRIPTIONS if t != "record_revisions"])
