"""Write exported FeatureCollections to GeoJSON, a GeoPackage layer or CSV with WKT.

Each writer writes to a temporary file beside the target and moves it into
place (``os.replace``), so a failed export never leaves half a file.  CSV is
UTF-8 with a byte-order mark so that spreadsheet programs read any script
correctly; nested values (provenance, repairs) are JSON text; the geometry is
the ``wkt`` column (WGS84 lon/lat, 7 decimals).
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from satdelta.annotations.errors import ExportError
from satdelta.annotations.geojson import PROPERTY_NAMES
from satdelta.annotations.gpkg import (
    create_core_tables,
    create_rtree,
    encode_geometry,
    encode_multipolygons,
    register_features,
    register_functions,
    touch_contents,
)
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

__all__ = ["export_collection", "write_geojson", "write_gpkg", "write_csv"]

_SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".csv": "csv"}

_GPKG_TYPES = {
    "report_id": "INTEGER",
    "claim_id": "INTEGER",
    "confidence": "DOUBLE",
    "revision": "INTEGER",
    "area_m2": "DOUBLE",
    "repaired": "BOOLEAN",
    "created": "DATETIME",
    "updated": "DATETIME",
}


def export_collection(
    fc: dict[str, Any], path: Path, *, format: Literal["auto", "geojson", "gpkg", "csv"] = "auto"
) -> int:
    """Write ``fc`` to ``path`` in ``format`` (``auto``: from the suffix); return the count."""
    fmt = _SUFFIXES.get(path.suffix.lower()) if format == "auto" else format
    if fmt not in ("geojson", "gpkg", "csv"):
        raise ExportError(
            f"cannot tell the export format of {path.name}: expected a .geojson, .gpkg or .csv "
            "file name (or format=...)"
        )
    writer: Callable[[dict[str, Any], Path], None] = {
        "geojson": write_geojson,
        "gpkg": write_gpkg,
        "csv": write_csv,
    }[fmt]
    _atomic(path, lambda tmp: writer(fc, tmp))
    return len(fc["features"])


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    if not path.parent.exists():
        raise ExportError(
            f"cannot write {path}: folder {path.parent} does not exist; create it first"
        )
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        if path.suffix.lower() == ".gpkg":
            tmp.unlink()  # sqlite must create it
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}; check the folder") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_geojson(fc: dict[str, Any], path: Path) -> None:
    """RFC 7946 text, UTF-8 (non-ASCII kept as is)."""
    with open(path, "w", encoding="utf-8") as fh:
        # json.dumps runs the C encoder; json.dump would stream through the pure-Python one
        fh.write(json.dumps(fc, ensure_ascii=False, allow_nan=False))
        fh.write("\n")


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return int(value)
    return value


def write_csv(fc: dict[str, Any], path: Path) -> None:
    """One row per feature: ``wkt`` then every property."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["wkt", *PROPERTY_NAMES])
        feats = fc["features"]
        geoms = _shapes([f["geometry"] for f in feats])
        wkts = shapely.to_wkt(np.array(geoms, dtype=object), rounding_precision=-1).tolist()
        out.writerows(
            [wkt, *[_cell(f["properties"].get(k)) for k in PROPERTY_NAMES]]
            for wkt, f in zip(wkts, feats, strict=True)
        )


def _shapes(geometries: list[dict[str, Any]]) -> list[BaseGeometry]:
    """``shape(g)`` of each GeoJSON (Multi)Polygon mapping, built in array calls.

    The rings' coordinates are gathered into one array with ring, polygon and
    geometry offsets (``shapely.from_ragged_array``), so the values are the
    mapping's floats exactly, as ``shape()`` gives them, and a Polygon stays a
    Polygon; anything other than 2-D (Multi)Polygons goes through ``shape()``.
    """
    if not geometries:
        return []
    coords: list[Any] = []
    ring_offsets, polygon_offsets, geometry_offsets = [0], [0], [0]
    single: list[bool] = []
    try:
        for g in geometries:
            gtype = g["type"]
            if gtype not in ("Polygon", "MultiPolygon"):
                raise ValueError(gtype)
            single.append(gtype == "Polygon")
            polys = [g["coordinates"]] if gtype == "Polygon" else g["coordinates"]
            for rings in polys:
                for ring in rings:
                    coords.extend(ring)
                    ring_offsets.append(len(coords))
                polygon_offsets.append(len(ring_offsets) - 1)
            geometry_offsets.append(len(polygon_offsets) - 1)
        xy = np.array(coords, dtype=float)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError("not 2-D positions")
    except (ValueError, TypeError, KeyError):  # not 2-D (Multi)Polygons: the general path
        return [shape(g) for g in geometries]
    geoms = shapely.from_ragged_array(
        shapely.GeometryType.MULTIPOLYGON,
        xy,
        (np.array(ring_offsets), np.array(polygon_offsets), np.array(geometry_offsets)),
    )
    mask = np.array(single, dtype=bool)
    geoms[mask] = shapely.get_geometry(geoms[mask], 0)
    return geoms.tolist()


def _multipolygon_blobs(geometries: list[dict[str, Any]]) -> list[bytes]:
    """GeoPackage MULTIPOLYGON blobs of GeoJSON (Multi)Polygon mappings (one-part for Polygons)."""
    geoms = _shapes(geometries)
    if all(isinstance(g, Polygon | MultiPolygon) and not g.is_empty for g in geoms):
        return encode_multipolygons(geoms)
    return [encode_geometry(g if isinstance(g, MultiPolygon) else MultiPolygon([g])) for g in geoms]


def write_gpkg(fc: dict[str, Any], path: Path) -> None:
    """A new GeoPackage with one MULTIPOLYGON layer ``annotations`` (EPSG:4326)."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    register_functions(conn)
    try:
        conn.execute("BEGIN")
        create_core_tables(conn)
        cols = ", ".join(f'"{k}" {_GPKG_TYPES.get(k, "TEXT")}' for k in PROPERTY_NAMES)
        conn.execute(
            "CREATE TABLE annotations (fid INTEGER PRIMARY KEY AUTOINCREMENT, "
            f"geom MULTIPOLYGON, {cols})"
        )
        register_features(conn, "annotations", description="satdelta annotations export")
        placeholders = ", ".join("?" * (len(PROPERTY_NAMES) + 1))
        names = ", ".join(f'"{k}"' for k in PROPERTY_NAMES)
        feats = fc["features"]
        blobs = _multipolygon_blobs([f["geometry"] for f in feats])
        conn.executemany(
            f"INSERT INTO annotations (geom, {names}) VALUES ({placeholders})",
            (
                (blob, *[_cell(props.get(k)) for k in PROPERTY_NAMES])
                for blob, props in zip(blobs, (f["properties"] for f in feats), strict=True)
            ),
        )
        create_rtree(conn, "annotations")
        bbox = fc.get("bbox")
        touch_contents(conn, "annotations", (bbox[0], bbox[1], bbox[2], bbox[3]) if bbox else None)
        conn.execute("COMMIT")
    finally:
        conn.close()
