"""RFC 7946 GeoJSON export and import of annotations.

:func:`to_feature_collection` writes WGS84 features with every property and a ``satdelta``
member, so that importing the file again restores every field; :func:`plan_import` reads a
``satdelta detect`` run, a satdelta export or any (Multi)Polygon GeoJSON.  The rules are in
``docs/design-store.md``.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from satdelta.annotations.errors import GeoJSONImportError, SatdeltaError
from satdelta.annotations.geometry import clean_polygon
from satdelta.annotations.gpkg import gpkg_now
from satdelta.annotations.model import (
    ATTRIBUTES,
    STATUSES,
    VERDICTS,
    Annotation,
    Claim,
    Report,
    _geojson_many,
)
from shapely.geometry import MultiPolygon, Polygon

__all__ = [
    "PRECISION",
    "PROPERTY_NAMES",
    "to_feature_collection",
    "geometry_to_geojson",
    "plan_import",
]

#: Decimal places of exported coordinates (1e-7 degree is about 1 cm).
PRECISION = 7

#: Properties of every exported feature, in order.
PROPERTY_NAMES: tuple[str, ...] = (
    "id",
    "report_id",
    "report_title",
    "report_url",
    "report_outlet",
    "claim_id",
    "claim_text",
    *(k for k in ATTRIBUTES if k not in ("claim_id", "report_id")),
    "repaired",
    "repairs",
    "provenance",
)


#: Properties of an export that an import restores as they were (ids and revision are new).
_RESTORED = (
    *(k for k in ATTRIBUTES if k not in ("claim_id", "report_id", "revision")),
    "provenance",
)


def geometry_to_geojson(
    geometry: Polygon | MultiPolygon, *, precision: int = PRECISION
) -> dict[str, Any]:
    """RFC 7946 geometry mapping: counter-clockwise exteriors, coordinates rounded.

    Examples
    --------
    >>> from shapely.geometry import Polygon
    >>> geometry_to_geojson(Polygon([(0, 0), (0, 1), (1, 1), (1, 0)]))["coordinates"][0][:3]
    [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
    """
    geom = shapely.orient_polygons(geometry, exterior_cw=False)

    def ring(r: Any) -> list[list[float]]:
        xy = np.round(np.asarray(r.coords)[:, :2], precision)
        return xy.tolist()

    def poly(p: Polygon) -> list[list[list[float]]]:
        return [ring(p.exterior), *(ring(i) for i in p.interiors)]

    if isinstance(geom, MultiPolygon):
        return {"type": "MultiPolygon", "coordinates": [poly(p) for p in geom.geoms]}
    return {"type": "Polygon", "coordinates": poly(geom)}


def feature(
    ann: Annotation,
    report: Report | None,
    claim: Claim | None,
    *,
    geometry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One annotation as an RFC 7946 Feature with every property.

    ``geometry`` is ``geometry_to_geojson(ann.geometry)`` when the caller has it already.
    """
    values = {
        "id": ann.id,
        **ann.attributes(),
        "report_title": report.title if report else None,
        "report_url": report.url if report else None,
        "report_outlet": report.outlet if report else None,
        "claim_text": claim.text if claim else None,
        "repaired": ann.repaired,
        "repairs": list(ann.repairs),
        "provenance": ann.provenance,
    }
    props = {k: values[k] for k in PROPERTY_NAMES}
    return {
        "type": "Feature",
        "id": ann.id,
        "geometry": geometry if geometry is not None else geometry_to_geojson(ann.geometry),
        "properties": props,
    }


def to_feature_collection(
    annotations: list[Annotation],
    reports: Mapping[int, Report],
    claims: Mapping[int, Claim],
    *,
    filters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Annotations as an RFC 7946 FeatureCollection with a ``bbox`` and a ``satdelta`` member."""
    oriented = shapely.orient_polygons([a.geometry for a in annotations], exterior_cw=False)
    geometries = _geojson_many(list(oriented), precision=PRECISION)  # as geometry_to_geojson
    features = [
        feature(a, reports.get(a.report_id), claims.get(a.claim_id), geometry=g)
        for a, g in zip(annotations, geometries, strict=True)
    ]
    fc: dict[str, Any] = {"type": "FeatureCollection"}
    if annotations:
        bounds = shapely.total_bounds([a.geometry for a in annotations])
        fc["bbox"] = [round(float(v), PRECISION) for v in bounds]
    from satdelta.annotations.schema import SCHEMA_VERSION

    fc["satdelta"] = {
        "kind": "annotations",
        "schema_version": SCHEMA_VERSION,
        "exported": gpkg_now(),
        "filters": {k: v for k, v in (filters or {}).items() if v is not None},
    }
    fc["features"] = features
    return fc


#: Largest GeoJSON file an import reads (a store's whole export is far smaller).
MAX_IMPORT_BYTES = 1 << 30

#: What ``satdelta import`` takes, for messages about what it does not.
_IMPORTABLE = (
    "import takes GeoJSON: a `satdelta detect` changes.geojson, a satdelta export or any "
    "Polygon/MultiPolygon GeoJSON"
)

# leading bytes of files people pass by mistake -> what they are and what to do
_MAGIC = (
    (b"SQLite format 3\x00", "a GeoPackage/SQLite file", "convert it with `ogr2ogr -f GeoJSON`"),
    (b"II*\x00", "a TIFF raster", "run `satdelta detect` on rasters and import its output"),
    (b"MM\x00*", "a TIFF raster", "run `satdelta detect` on rasters and import its output"),
    (b"PK\x03\x04", "a ZIP archive", "unzip it first"),
    (b"\x89PNG", "a PNG image", "run `satdelta detect` on rasters and import its output"),
)

_JSON_TYPES = {
    type(None): "null",
    bool: "a JSON boolean",
    int: "a JSON number",
    float: "a JSON number",
    str: "a JSON string",
    list: "a JSON list",
}


def _read_text(path: Path) -> str:
    """The text of a GeoJSON file, refusing what is not one before reading it whole."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise GeoJSONImportError(
                f"{path} is not a regular file (a device, pipe or socket); {_IMPORTABLE}"
            )
        if info.st_size > MAX_IMPORT_BYTES:
            raise GeoJSONImportError(
                f"{path} is {info.st_size / 2**30:.1f} GiB, over the "
                f"{MAX_IMPORT_BYTES / 2**30:.0f} GiB an import reads; split it into smaller files"
            )
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise GeoJSONImportError(f"no file {path} to import; check the path") from None
    except OSError as exc:
        raise GeoJSONImportError(f"cannot read {path} ({exc.strerror or exc})") from None
    for magic, what, todo in _MAGIC:
        if raw.startswith(magic):
            raise GeoJSONImportError(f"{path} is {what}, not GeoJSON; {_IMPORTABLE} ({todo})")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise GeoJSONImportError(f"{path} is not UTF-8 text; {_IMPORTABLE}") from None


def _load(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(source, Mapping):
        return dict(source), "<mapping>"
    path = Path(source)
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GeoJSONImportError(
            f"{path} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "expected GeoJSON"
        ) from None
    except RecursionError:
        raise GeoJSONImportError(
            f"{path} nests arrays or objects too deeply to be GeoJSON; {_IMPORTABLE}"
        ) from None
    if not isinstance(data, dict):
        got = _JSON_TYPES.get(type(data), type(data).__name__)
        raise GeoJSONImportError(f"{path}: expected a GeoJSON object, got {got}")
    return data, path.name


def plan_import(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    claim_id: int,
    label: str | None,
    labels: tuple[str, ...],
) -> tuple[list[dict[str, Any]], str]:
    """Turn a GeoJSON input into items for :meth:`Store.add_annotations`.

    Every geometry is validated here so that a bad feature stops the import
    before anything is written.  Returns ``(items, source name)``.
    """
    data, name = _load(source)
    gtype = data.get("type")
    if gtype == "FeatureCollection":
        feats = data.get("features")
        if not isinstance(feats, list):
            raise GeoJSONImportError(f"{name}: FeatureCollection without a features list")
    elif gtype == "Feature":
        feats = [data]
    elif gtype in ("Polygon", "MultiPolygon"):
        feats = [{"type": "Feature", "geometry": data, "properties": {}}]
    else:
        raise GeoJSONImportError(
            f"{name}: expected a GeoJSON FeatureCollection, Feature or (Multi)Polygon, "
            f"got type {gtype!r}"
        )
    if not feats:
        raise GeoJSONImportError(f"{name} has no features; nothing to import")
    meta = data.get("satdelta") if isinstance(data.get("satdelta"), Mapping) else {}
    kind = meta.get("kind")
    crs = _legacy_crs(data.get("crs"))
    if label is not None and label not in labels:
        raise GeoJSONImportError(f"label: expected one of {', '.join(labels)}, got {label!r}")
    items = []
    for i, feat in enumerate(feats):
        where = f"{name}: feature {i}" + (
            f" (id {feat.get('id')})"
            if isinstance(feat, Mapping) and feat.get("id") is not None
            else ""
        )
        if not isinstance(feat, Mapping) or feat.get("type") != "Feature":
            raise GeoJSONImportError(f"{where}: expected a GeoJSON Feature; nothing was imported")
        geom = feat.get("geometry")
        if not geom:
            raise GeoJSONImportError(f"{where} has no geometry; nothing was imported")
        try:
            cleaned = clean_polygon(geom, crs=crs)
        except SatdeltaError as exc:
            raise GeoJSONImportError(f"{where}: {exc}; nothing was imported") from None
        props = feat.get("properties") or {}
        if kind == "change-candidates":
            item = _from_detection(props, meta.get("run") or {})
        elif kind == "object-candidates":
            item = _from_object(props, meta.get("run") or {})
        elif kind == "annotations":
            item = _from_export(props, feat)
        else:
            item = _from_foreign(props, feat, name, labels)
        item["geometry"] = cleaned.geometry
        item["source_crs"] = item.get("source_crs") or cleaned.source_crs
        item["repairs"] = tuple(item.get("repairs") or ()) + cleaned.repairs
        item["claim_id"] = claim_id
        if label is not None:
            item["label"] = label
        if item["label"] not in labels:
            raise GeoJSONImportError(
                f"{where}: label {item['label']!r} is not in the store's schema "
                f"({', '.join(labels)}); "
                "add it or pass --label; nothing was imported"
            )
        items.append(item)
    return items, name


def _legacy_crs(crs: Any) -> str | None:
    if not isinstance(crs, Mapping):
        return None
    name = (crs.get("properties") or {}).get("name")
    if not name or "CRS84" in str(name) or str(name).endswith(":4326"):
        return None
    return str(name)


def _from_detection(props: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    detection = {
        k: props.get(k)
        for k in ("id", "area_m2", "planar_area_m2", "pixel_count", "score", "compactness")
        if k in props
    }
    item: dict[str, Any] = {
        "label": "other",
        "origin": "detected",
        "status": "candidate",
        "verdict": "inconclusive",
        "provenance": {**dict(run), "detection": detection},
    }
    # the detector's ellipsoidal area is kept when it is this polygon's (see rows.area_m2)
    for key in ("area_m2", "rank", "change"):
        if props.get(key) is not None:
            item[key] = props[key]
    return item


#: Store label of each object size class of a ``satdelta detect`` objects.geojson.
OBJECT_LABELS = {"aircraft-sized": "aircraft", "vehicle": "vehicles"}
#: Object attributes kept in the provenance's ``object`` member.
OBJECT_KEYS = ("id", "change", "size_class", "length_m", "width_m", "orientation_deg", "area_m2")


def _from_object(props: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    conf = props.get("confidence")
    return {
        "label": OBJECT_LABELS.get(str(props.get("size_class")), "other"),
        "origin": "detected",
        "status": "candidate",
        "verdict": "inconclusive",
        "confidence": conf if isinstance(conf, int | float) else None,
        "provenance": {**dict(run), "object": {k: props.get(k) for k in OBJECT_KEYS if k in props}},
    }


def _from_export(props: Mapping[str, Any], feat: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {k: props.get(k) for k in _RESTORED if props.get(k) is not None}
    item["repairs"] = tuple(props.get("repairs") or ())
    item["id"] = props.get("id") or feat.get("id")
    item.setdefault("label", "other")
    return item


def _from_foreign(
    props: Mapping[str, Any], feat: Mapping[str, Any], name: str, labels: tuple[str, ...]
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "label": props.get("label") if props.get("label") in labels else "other",
        "origin": "imported",
        "status": props.get("status") if props.get("status") in STATUSES else "candidate",
        "verdict": props.get("verdict") if props.get("verdict") in VERDICTS else "inconclusive",
        "provenance": {
            "import": {
                "file": name,
                "feature_id": feat.get("id"),
                "properties": json.loads(json.dumps(props, default=str)),
            }
        },
    }
    if isinstance(props.get("notes"), str):
        item["notes"] = props["notes"]
    return item
