"""Minimal OGC GeoPackage 1.2 writing and reading on the standard library's sqlite3.

The core tables, feature/attribute table registration, the GeoPackage geometry blob and the
R-tree index with the ``ST_*`` SQL functions its triggers need (see ``docs/design-store.md``).
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Sequence

import numpy as np
import shapely
from pyproj import CRS
from pyproj.enums import WktVersion
from shapely.geometry.base import BaseGeometry

__all__ = [
    "APPLICATION_ID",
    "USER_VERSION",
    "create_core_tables",
    "encode_geometry",
    "encode_multipolygons",
    "decode_geometry",
    "decode_geometries",
    "register_attributes",
    "register_features",
    "gpkg_now",
    "create_rtree",
    "register_functions",
    "touch_contents",
]

APPLICATION_ID = 0x47504B47  # 'GPKG'
USER_VERSION = 10200  # GeoPackage 1.2.0

_CORE_DDL = """
CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL PRIMARY KEY,
  organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL,
  definition  TEXT NOT NULL,
  description TEXT
);
CREATE TABLE IF NOT EXISTS gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY,
  data_type TEXT NOT NULL,
  identifier TEXT UNIQUE,
  description TEXT DEFAULT '',
  last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE,
  min_y DOUBLE,
  max_x DOUBLE,
  max_y DOUBLE,
  srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id)
);
CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
  table_name TEXT NOT NULL,
  column_name TEXT NOT NULL,
  geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL,
  z TINYINT NOT NULL,
  m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id)
);
"""


def gpkg_now() -> str:
    """Current UTC time in the GeoPackage DATETIME form ``YYYY-MM-DDTHH:MM:SS.fffZ``."""
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def create_core_tables(conn: sqlite3.Connection) -> None:
    """Create the GeoPackage core tables and header fields (inside the caller's transaction)."""
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {USER_VERSION}")
    for stmt in _CORE_DDL.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    wkt = CRS.from_epsg(4326).to_wkt(WktVersion.WKT1_GDAL)
    conn.executemany(
        "INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                "Undefined cartesian SRS",
                -1,
                "NONE",
                -1,
                "undefined",
                "undefined cartesian coordinate reference system",
            ),
            (
                "Undefined geographic SRS",
                0,
                "NONE",
                0,
                "undefined",
                "undefined geographic coordinate reference system",
            ),
            (
                "WGS 84 geodetic",
                4326,
                "EPSG",
                4326,
                wkt,
                "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid",
            ),
        ],
    )


def register_features(
    conn: sqlite3.Connection,
    table: str,
    *,
    geometry_column: str = "geom",
    geometry_type: str = "MULTIPOLYGON",
    identifier: str | None = None,
    description: str = "",
    srs_id: int = 4326,
) -> None:
    """Register an existing feature table in gpkg_contents and gpkg_geometry_columns."""
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
        "last_change, srs_id) VALUES (?, 'features', ?, ?, ?, ?)",
        (table, identifier or table, description, gpkg_now(), srs_id),
    )
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_geometry_columns VALUES (?, ?, ?, ?, 0, 0)",
        (table, geometry_column, geometry_type, srs_id),
    )


def register_attributes(
    conn: sqlite3.Connection, table: str, *, identifier: str | None = None, description: str = ""
) -> None:
    """Register an existing attribute (non-spatial) table in gpkg_contents."""
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
        "last_change) VALUES (?, 'attributes', ?, ?, ?)",
        (table, identifier or table, description, gpkg_now()),
    )


def touch_contents(
    conn: sqlite3.Connection, table: str, bounds: Sequence[float | None] | None = None
) -> None:
    """Update a table's ``last_change`` (and its bounds when given) in gpkg_contents.

    A PostgreSQL store has no gpkg_contents: nothing to do there.
    """
    if getattr(conn, "dialect", "geopackage") != "geopackage":
        return
    if bounds is None:
        conn.execute(
            "UPDATE gpkg_contents SET last_change = ? WHERE table_name = ?", (gpkg_now(), table)
        )
    else:
        conn.execute(
            "UPDATE gpkg_contents SET last_change = ?, min_x = ?, min_y = ?, max_x = ?, max_y = ? "
            "WHERE table_name = ?",
            (gpkg_now(), *bounds, table),
        )


_HEADER = struct.Struct("<2sBBi4d")  # magic, version, flags, srs_id, minx maxx miny maxy


def encode_geometry(geometry: BaseGeometry, srs_id: int = 4326) -> bytes:
    """Encode a 2-D geometry as a GeoPackage binary blob (little-endian, XY envelope).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> blob = encode_geometry(box(0, 0, 1, 2))
    >>> blob[:2], blob[2], blob[3]
    (b'GP', 0, 3)
    >>> decode_geometry(blob).bounds
    (0.0, 0.0, 1.0, 2.0)
    """
    if geometry.is_empty:
        # flags: little-endian (bit 0), no envelope, empty bit (bit 4)
        return struct.pack("<2sBBi", b"GP", 0, 0b00010001, srs_id) + shapely.to_wkb(
            geometry, byte_order=1, flavor="iso"
        )
    minx, miny, maxx, maxy = geometry.bounds
    flags = 0b00000011  # envelope code 1 (minx, maxx, miny, maxy), little-endian
    header = _HEADER.pack(b"GP", 0, flags, srs_id, minx, maxx, miny, maxy)
    return header + shapely.to_wkb(geometry, byte_order=1, output_dimension=2, flavor="iso")


_MULTI_ONE = struct.pack("<BII", 1, 6, 1)  # little-endian ISO WKB MultiPolygon of one part


def encode_multipolygons(geometries: Sequence[BaseGeometry], srs_id: int = 4326) -> list[bytes]:
    """:func:`encode_geometry` of each (Multi)Polygon promoted to a MultiPolygon, in array calls.

    The bytes are those of ``encode_geometry(MultiPolygon([polygon]))`` (a
    Polygon's WKB after a one-part MultiPolygon header is exactly a one-part
    MultiPolygon's WKB); bounds and WKB come from two shapely array calls.

    Examples
    --------
    >>> from shapely.geometry import MultiPolygon, box
    >>> square = box(0, 0, 1, 2)
    >>> encode_multipolygons([square]) == [encode_geometry(MultiPolygon([square]))]
    True
    """
    geoms = np.asarray(geometries, dtype=object)
    if len(geoms) == 0:
        return []
    types = shapely.get_type_id(geoms).tolist()
    if any(t not in (3, 6) for t in types) or shapely.is_empty(geoms).any():
        raise ValueError("encode_multipolygons expects non-empty Polygons or MultiPolygons")
    wkbs = shapely.to_wkb(geoms, byte_order=1, output_dimension=2, flavor="iso").tolist()
    bounds = shapely.bounds(geoms).tolist()
    pack = _HEADER.pack
    return [
        pack(b"GP", 0, 0b00000011, srs_id, x0, x1, y0, y1) + (_MULTI_ONE + w if t == 3 else w)
        for (x0, y0, x1, y1), w, t in zip(bounds, wkbs, types, strict=True)
    ]


def decode_geometry(blob: bytes) -> BaseGeometry:
    """Decode a GeoPackage binary blob into a shapely geometry."""
    if len(blob) < 8 or blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry blob (no 'GP' magic)")
    flags = blob[3]
    envelope = (flags >> 1) & 0b111
    n = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}.get(envelope)
    if n is None:
        raise ValueError(f"invalid GeoPackage envelope code {envelope}")
    return shapely.from_wkb(blob[8 + 8 * n :])


def decode_geometries(blobs: list[bytes]) -> list[BaseGeometry]:
    """Decode many GeoPackage blobs at once (one vectorised WKB parse)."""
    wkbs = []
    for blob in blobs:
        if len(blob) < 8 or blob[:2] != b"GP":
            raise ValueError("not a GeoPackage geometry blob (no 'GP' magic)")
        n = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}.get((blob[3] >> 1) & 0b111)
        if n is None:
            raise ValueError("invalid GeoPackage envelope code")
        wkbs.append(blob[8 + 8 * n :])
    return list(shapely.from_wkb(wkbs)) if wkbs else []


# --------------------------------------------------------------------------- R-tree index
def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) of a GeoPackage blob, None for NULL or empty."""
    if blob is None or len(blob) < 8:
        return None
    flags = blob[3]
    if flags & 0b00010000:  # empty geometry
        return None
    if (flags >> 1) & 0b111:
        order = "<" if flags & 1 else ">"
        minx, maxx, miny, maxy = struct.unpack_from(order + "4d", blob, 8)
        return minx, maxx, miny, maxy
    geom = decode_geometry(blob)
    if geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    return minx, maxx, miny, maxy


def _st(index: int | None):  # noqa: ANN202 - factory of SQL functions
    def fn(blob: bytes | None) -> float | int | None:
        env = _envelope(blob)
        if index is None:  # ST_IsEmpty
            return None if blob is None else int(env is None)
        return None if env is None else env[index]

    return fn


def register_functions(conn: sqlite3.Connection) -> None:
    """Register ST_IsEmpty, ST_MinX, ST_MaxX, ST_MinY, ST_MaxY (used by the R-tree triggers)."""
    for name, index in (
        ("ST_IsEmpty", None),
        ("ST_MinX", 0),
        ("ST_MaxX", 1),
        ("ST_MinY", 2),
        ("ST_MaxY", 3),
    ):
        conn.create_function(name, 1, _st(index), deterministic=True)


_EXTENSIONS_DDL = """CREATE TABLE IF NOT EXISTS gpkg_extensions (
  table_name TEXT,
  column_name TEXT,
  extension_name TEXT NOT NULL,
  definition TEXT NOT NULL,
  scope TEXT NOT NULL,
  CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name)
)"""

_RTREE_TRIGGERS = """
CREATE TRIGGER "rtree_{t}_{c}_insert" AFTER INSERT ON "{t}"
  WHEN (new."{c}" NOT NULL AND NOT ST_IsEmpty(NEW."{c}"))
BEGIN
  INSERT OR REPLACE INTO "rtree_{t}_{c}" VALUES (
    NEW."{i}", ST_MinX(NEW."{c}"), ST_MaxX(NEW."{c}"), ST_MinY(NEW."{c}"), ST_MaxY(NEW."{c}"));
END;
CREATE TRIGGER "rtree_{t}_{c}_update1" AFTER UPDATE OF "{c}" ON "{t}"
  WHEN OLD."{i}" = NEW."{i}" AND (NEW."{c}" NOTNULL AND NOT ST_IsEmpty(NEW."{c}"))
BEGIN
  INSERT OR REPLACE INTO "rtree_{t}_{c}" VALUES (
    NEW."{i}", ST_MinX(NEW."{c}"), ST_MaxX(NEW."{c}"), ST_MinY(NEW."{c}"), ST_MaxY(NEW."{c}"));
END;
CREATE TRIGGER "rtree_{t}_{c}_update2" AFTER UPDATE OF "{c}" ON "{t}"
  WHEN OLD."{i}" = NEW."{i}" AND (NEW."{c}" ISNULL OR ST_IsEmpty(NEW."{c}"))
BEGIN
  DELETE FROM "rtree_{t}_{c}" WHERE id = OLD."{i}";
END;
CREATE TRIGGER "rtree_{t}_{c}_update3" AFTER UPDATE ON "{t}"
  WHEN OLD."{i}" != NEW."{i}" AND (NEW."{c}" NOTNULL AND NOT ST_IsEmpty(NEW."{c}"))
BEGIN
  DELETE FROM "rtree_{t}_{c}" WHERE id = OLD."{i}";
  INSERT OR REPLACE INTO "rtree_{t}_{c}" VALUES (
    NEW."{i}", ST_MinX(NEW."{c}"), ST_MaxX(NEW."{c}"), ST_MinY(NEW."{c}"), ST_MaxY(NEW."{c}"));
END;
CREATE TRIGGER "rtree_{t}_{c}_update4" AFTER UPDATE ON "{t}"
  WHEN OLD."{i}" != NEW."{i}" AND (NEW."{c}" ISNULL OR ST_IsEmpty(NEW."{c}"))
BEGIN
  DELETE FROM "rtree_{t}_{c}" WHERE id IN (OLD."{i}", NEW."{i}");
END;
CREATE TRIGGER "rtree_{t}_{c}_delete" AFTER DELETE ON "{t}"
  WHEN old."{c}" NOT NULL
BEGIN
  DELETE FROM "rtree_{t}_{c}" WHERE id = OLD."{i}";
END
"""


def create_rtree(
    conn: sqlite3.Connection, table: str, *, geometry_column: str = "geom", id_column: str = "fid"
) -> None:
    """Create the R-tree index of a feature table with the spec's triggers, and fill it.

    The caller's connection must have :func:`register_functions` (the fill and
    the triggers use ``ST_*``).  Table and column names come from code, never
    from user input.
    """
    t, c, i = table, geometry_column, id_column
    conn.execute(_EXTENSIONS_DDL)
    conn.execute(f'CREATE VIRTUAL TABLE "rtree_{t}_{c}" USING rtree(id, minx, maxx, miny, maxy)')
    for stmt in _RTREE_TRIGGERS.format(t=t, c=c, i=i).split("END;"):
        if stmt.strip():
            conn.execute(stmt if stmt.rstrip().endswith("END") else stmt + "END;")
    conn.execute(
        f'INSERT OR REPLACE INTO "rtree_{t}_{c}" SELECT "{i}", ST_MinX("{c}"), ST_MaxX("{c}"), '
        f'ST_MinY("{c}"), ST_MaxY("{c}") FROM "{t}" WHERE "{c}" NOT NULL AND NOT ST_IsEmpty("{c}")'
    )
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_extensions VALUES (?, ?, 'gpkg_rtree_index', "
        "'http://www.geopackage.org/spec120/#extension_rtree', 'write-only')",
        (t, c),
    )
