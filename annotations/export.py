"""Write exported FeatureCollections to GeoJSON, a GeoPackage layer (through pyogrio) or CSV.

Each writer writes a temporary file beside the target and moves it into place, so a failed
export never leaves half a file.  CSV is UTF-8 with a byte-order mark, nested values as JSON
text and the geometry as a ``wkt`` column.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from satdelta.annotations.errors import ExportError
from satdelta.annotations.geojson import PROPERTY_NAMES
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

__all__ = ["export_collection", "write_geojson", "write_gpkg", "write_csv"]

_SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".csv": "csv"}

#: Properties written as numbers (numpy dtype -> GeoPackage INTEGER, REAL, BOOLEAN); None
#: becomes NaN (NULL).  Every other property is TEXT, except the DATETIME ones.
_NUMERIC = {
    "report_id": np.int64,
    "claim_id": np.int64,
    "confidence": np.float64,
    "revision": np.int64,
    "area_m2": np.float64,
    "rank": np.float64,  # NULL for annotations that were not detected
    "repaired": np.bool_,
}
_DATETIME = ("created", "updated")
_JSON = ("repairs", "provenance")  # TEXT holding JSON
_UTC = 100  # GDAL's time zone flag of UTC (OGR_TZFLAG_UTC)


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
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        if path.suffix.lower() == ".gpkg":
            tmp.unlink()  # sqlite must create it
        write(tmp)
        _chmod_as_created(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {_reason(exc)}; check the folder") from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def _chmod_as_created(path: Path) -> None:
    """Give *path* the mode a plain ``open`` gives a new file (0666 less the umask).

    ``mkstemp`` makes private (0600) files; an export should look like any file the user writes.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _reason(exc: OSError) -> str:
    """The cause of a failed write in a few words (a full disk named as such)."""
    text = str(exc.strerror or exc)
    if exc.errno == errno.ENOSPC or "disk is full" in text or "No space left" in text:
        return "the disk is full (free some space or export elsewhere)"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{text} (the folder is not writable; export elsewhere)"
    return " ".join(text.split())[:300]


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


def _column(name: str, values: list[Any]) -> np.ndarray:
    """One property of every feature as the array whose dtype gives its GeoPackage type."""
    if name in _DATETIME:  # "YYYY-MM-DDTHH:MM:SS.fffZ" (UTC); anything else is written as NULL
        return np.array([_datetime(v) for v in values], dtype="datetime64[ms]")
    if name in _NUMERIC:
        return np.array(values, dtype=_NUMERIC[name])
    column = np.empty(len(values), dtype=object)
    column[:] = [_cell(v) for v in values] if name in _JSON else values
    return column


def _datetime(value: Any) -> np.datetime64:
    try:
        return np.datetime64(str(value).removesuffix("Z"), "ms")
    except ValueError:
        return np.datetime64("NaT", "ms")


def write_gpkg(fc: dict[str, Any], path: Path) -> None:
    """A new GeoPackage with one MULTIPOLYGON layer ``annotations`` (EPSG:4326), through GDAL."""
    import pyogrio.errors
    import pyogrio.raw

    feats = fc["features"]
    geoms = np.array(_shapes([f["geometry"] for f in feats]), dtype=object)
    names = list(PROPERTY_NAMES)
    columns = [_column(k, [f["properties"].get(k) for f in feats]) for k in names]
    try:
        pyogrio.raw.write(
            path,
            shapely.to_wkb(geoms) if len(geoms) else np.empty(0, dtype=object),
            columns,
            names,
            layer="annotations",
            driver="GPKG",
            geometry_type="MultiPolygon",
            promote_to_multi=True,
            crs="EPSG:4326",
            dataset_options={"VERSION": "1.2"},
            layer_options={"DESCRIPTION": "satdelta annotations export"},
            gdal_tz_offsets={k: np.full(len(feats), _UTC, dtype=np.int32) for k in _DATETIME},
        )
    except pyogrio.errors.DataSourceError as exc:  # GDAL's errors, e.g. a full disk
        raise OSError(f"GDAL: {exc}") from None
