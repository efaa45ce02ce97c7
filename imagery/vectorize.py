"""Turn a change mask into polygons (holes kept) with area in m² and mean score.

Pure: arrays plus an affine transform and a CRS in, plain objects out.  Connected changed
pixels (4-connectivity, so every polygon is valid without repair; fragments up to
``merge_gap_px`` apart joined into one MultiPolygon) become one candidate each, traced by
``rasterio.features.shapes`` along pixel edges; holes (unchanged islands inside a changed
region) are kept as interior rings.  Geometries are given in the scene CRS and in WGS84 with
counter-clockwise exterior rings (RFC 7946 §3.1.6).  ``area_m2`` is ellipsoidal (WGS84), the
area the annotation store measures; ``planar_area_m2`` is the map projection's.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TextIO, get_args

import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.geodesic_areas import ellipsoidal_areas_m2
from satdelta.imagery.geojson_text import polygon_texts
from satdelta.imagery.morphology import group_labels
from satdelta.imagery.polygonize import polygonize
from shapely.geometry import MultiPolygon, Polygon, shape

__all__ = [
    "CHANGE_KINDS",
    "ChangeKind",
    "ChangePolygon",
    "FeatureValues",
    "change_polygons",
    "from_feature_collection",
    "vectorize",
    "geometry_area_m2",
    "spelled_features",
    "to_feature_collection",
    "write_feature_collection",
    "write_spelled_collection",
]

#: What a candidate shows: something is there after that was not before (``appeared``),
#: something that was there is gone (``disappeared``), or it is there on both dates but
#: different (``altered``); see :func:`satdelta.imagery.candidates.change_kind`.
ChangeKind = Literal["appeared", "disappeared", "altered"]
CHANGE_KINDS: tuple[str, ...] = get_args(ChangeKind)

log = logging.getLogger(__name__)

_per_thread = threading.local()


def _wgs84() -> CRS:
    """EPSG:4326, made once in each thread: candidates are stitched in the block runner's
    threads, and GDAL's spatial references are not to be used by two threads at once."""
    crs = getattr(_per_thread, "wgs84", None)
    if crs is None:
        crs = _per_thread.wgs84 = CRS.from_epsg(4326)
    return crs


@dataclass(frozen=True)
class ChangePolygon:
    """One connected region of change.

    Attributes
    ----------
    geometry : shapely.Polygon or shapely.MultiPolygon
        In the scene CRS (pixel coordinates when not georeferenced), exterior CCW.
    geometry_wgs84 : shapely.Polygon or shapely.MultiPolygon or None
        Longitude/latitude (WGS84), exterior CCW; None when not georeferenced.
    area_m2 : float
        Area in square metres on the WGS84 ellipsoid (georeferenced grids; the store's
        measure), else pixels times the pixel size squared (NaN when that is unknown).
    score : float
        Mean change score of the region's pixels.
    pixel_count : int
        Number of changed pixels in the region.
    planar_area_m2 : float
        Area in the map projection, in square metres (NaN for a geographic CRS or an
        unknown pixel size).
    compactness : float
        Polsby-Popper ``4 pi A / P²`` of the outline (1 for a disk, about 0.785 for a
        square; smaller for ragged or fragmented candidates).
    rank : int or None
        1 = the strongest evidence of the run (:mod:`satdelta.imagery.candidates`).
    change : {"appeared", "disappeared", "altered"} or None
        What the candidate shows (:func:`satdelta.imagery.candidates.change_kind`).
    """

    geometry: Polygon | MultiPolygon
    geometry_wgs84: Polygon | MultiPolygon | None
    area_m2: float
    score: float
    pixel_count: int
    planar_area_m2: float = math.nan
    compactness: float = math.nan
    rank: int | None = None
    change: ChangeKind | None = None

    def __post_init__(self) -> None:
        for g in (self.geometry, self.geometry_wgs84):
            if g is not None and not isinstance(g, Polygon | MultiPolygon):
                raise InvalidParameterError(
                    f"a change polygon must be a Polygon or MultiPolygon; got {g.geom_type}."
                )
        if self.pixel_count < 1:
            raise InvalidParameterError(f"pixel_count must be >= 1; got {self.pixel_count}.")
        if self.rank is not None and self.rank < 1:
            raise InvalidParameterError(f"rank must be >= 1 or None; got {self.rank}.")
        if self.change is not None and self.change not in CHANGE_KINDS:
            raise InvalidParameterError(
                f"change must be one of {', '.join(CHANGE_KINDS)} or None; got {self.change!r}."
            )


def geometry_area_m2(
    geom: Polygon | MultiPolygon, crs: CRS | None, *, pixel_size_m: float | None = None
) -> float:
    """Area of ``geom`` in square metres.

    Projected CRS: planar area times the square of the CRS unit's metre factor.  Geographic
    CRS: geodesic area on the CRS's ellipsoid (``pyproj.Geod.geometry_area_perimeter``).
    No CRS: planar area in pixels times ``pixel_size_m``² (NaN when that is None).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> geometry_area_m2(box(0, 0, 30, 20), CRS.from_epsg(32651))
    600.0
    >>> geometry_area_m2(box(0, 0, 3, 2), None, pixel_size_m=0.5)
    1.5
    """
    if crs is None:
        return float(geom.area) * pixel_size_m**2 if pixel_size_m else math.nan
    if crs.is_projected:
        factor = crs.linear_units_factor[1]
        return float(geom.area) * factor * factor
    from pyproj import CRS as PCRS

    geod = PCRS.from_user_input(crs.to_wkt()).get_geod()
    if geod is None:  # pragma: no cover - every geographic CRS has an ellipsoid
        raise InvalidParameterError(f"cannot find the ellipsoid of {crs}.")
    area, _ = geod.geometry_area_perimeter(geom)
    return abs(float(area))


@functools.lru_cache(maxsize=16)
def _transformer(source: str, target: str) -> Transformer:
    """pyproj's Transformer (x, y order) from ``source`` to ``target``, made once per pair:
    making one takes about 10 ms, and the block runner converts each batch of finished
    candidates (pyproj's Transformer is thread-safe from 3.1 on)."""
    return Transformer.from_crs(source, target, always_xy=True)


def _reprojected(geoms: list[Any], source: str, target: str) -> np.ndarray:
    """``geoms`` moved from CRS ``source`` to ``target``: one pyproj call for the vertices
    of all geometries."""
    tr = _transformer(source, target)

    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms, dtype=object), fn)


def _to_wgs84(geoms: list[Any], crs: CRS) -> list[Any]:
    if crs == _wgs84():
        return list(geoms)
    return list(_reprojected(geoms, crs.to_wkt(), "EPSG:4326"))


def vectorize(
    changed: np.ndarray,
    score: np.ndarray,
    transform: Affine,
    crs: CRS | None,
    *,
    valid: np.ndarray | None = None,
    min_area_m2: float = 0,
    pixel_size_m: float | None = None,
    connectivity: Literal[4, 8] = 4,
    merge_gap_px: int = 0,
) -> list[ChangePolygon]:
    """Polygons of the connected changed regions.

    Parameters
    ----------
    changed : (M, N) ndarray of bool
        True = changed.
    score : (M, N) ndarray of float
        Change score; the polygon's ``score`` is its pixels' mean (NaNs ignored).
    transform : affine.Affine
        Grid transform (identity for a plain pixel grid).
    crs : rasterio.crs.CRS or None
        Grid CRS; None when not georeferenced (then ``geometry_wgs84`` is None).
    valid : (M, N) ndarray of bool, optional
        True where there is data; changed pixels outside it are ignored.
    min_area_m2 : float, default 0
        Drop regions whose ``area_m2`` is smaller than this (square metres).
    pixel_size_m : float, optional
        Pixel edge in metres for a grid without CRS (areas are NaN without it).
    connectivity : {4, 8}, default 4
        Pixel neighbourhood joining a region; with 8, regions touching at a corner are joined
        and the geometry is repaired with ``shapely.make_valid`` (it may be a MultiPolygon).
    merge_gap_px : int, default 0
        Regions this many pixels apart or closer are one candidate, a MultiPolygon of their
        pixel outlines (:func:`~satdelta.imagery.morphology.group_labels`); the pipeline uses
        :data:`~satdelta.imagery.morphology.MERGE_GAP_PX`, as the mask's clean-up does.

    Returns
    -------
    list of ChangePolygon
        In raster order of each region's first pixel (``rank`` and ``change`` unset).

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True; m[2, 2] = False
    >>> t = Affine(10, 0, 500000, 0, -10, 4000000)  # on UTM 51N's central meridian
    >>> p, = vectorize(m, m.astype("float32"), t, CRS.from_epsg(32651))
    >>> p.planar_area_m2, round(p.area_m2, 1), len(p.geometry.interiors), p.pixel_count
    (800.0, 800.6, 1, 8)
    """
    changed = _checked_mask(changed, score, valid, connectivity)
    if min_area_m2 < 0:
        raise InvalidParameterError(f"min_area_m2 must be >= 0; got {min_area_m2}.")
    if min_area_m2 > 0 and crs is None and pixel_size_m is None:
        raise InvalidParameterError(
            f"min_area_m2={min_area_m2} needs a pixel size: the grid has no CRS. Pass "
            "pixel_size_m (CLI: --pixel-size)."
        )
    labels, n = group_labels(changed, gap_px=merge_gap_px, connectivity=connectivity)
    if n == 0:
        return []
    counts, means = _region_stats(labels, changed, np.asarray(score), n)
    label_ids, geoms = _outlines(labels, changed, transform, connectivity)
    out = [
        p
        for p in change_polygons(
            geoms,
            [float(means[k - 1]) for k in label_ids],
            [int(counts[k - 1]) for k in label_ids],
            crs,
            pixel_size_m,
        )
        if not (min_area_m2 > 0 and p.area_m2 < min_area_m2)
    ]
    log.info(
        "vectorised %d changed regions (%d dropped below %.1f m²)",
        len(out),
        len(label_ids) - len(out),
        min_area_m2,
    )
    return out


def change_polygons(
    geoms: Sequence[Any],
    scores: Sequence[float],
    pixel_counts: Sequence[int],
    crs: CRS | None,
    pixel_size_m: float | None,
    *,
    changes: Sequence[ChangeKind | None] | None = None,
) -> list[ChangePolygon]:
    """:class:`ChangePolygon` of each outline (scene CRS, CCW) with its mean score and pixels.

    Adds the WGS84 outline, the areas and the compactness (and ``change``, when given); used
    by :func:`vectorize` and by the block runner's stitcher (:mod:`satdelta.imagery.blocks`).
    """
    planar = _planar_areas_m2(geoms, crs, pixel_size_m)
    if crs is None:
        wgs: list[Any] = [None] * len(geoms)
        areas = planar
    else:
        unoriented = _to_wgs84(list(geoms), crs)
        areas = ellipsoidal_areas_m2(unoriented)
        wgs = list(shapely.orient_polygons(np.asarray(unoriented, dtype=object)))
    compact = _compactness(geoms)
    kinds = [None] * len(geoms) if changes is None else changes
    return [
        ChangePolygon(
            geometry=geoms[i],
            geometry_wgs84=wgs[i],
            area_m2=areas[i],
            score=float(scores[i]),
            pixel_count=int(pixel_counts[i]),
            planar_area_m2=planar[i],
            compactness=compact[i],
            change=kinds[i],
        )
        for i in range(len(geoms))
    ]


def _checked_mask(
    changed: np.ndarray, score: np.ndarray, valid: np.ndarray | None, connectivity: int
) -> np.ndarray:
    """``changed & valid`` after checking the shapes and the connectivity."""
    changed = np.asarray(changed, dtype=bool)
    score = np.asarray(score)
    if changed.ndim != 2 or score.shape != changed.shape:
        raise InvalidParameterError(
            f"changed and score must be (row, col) arrays of one shape; got {changed.shape} and "
            f"{score.shape}."
        )
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != changed.shape:
            raise InvalidParameterError(
                f"valid must have shape {changed.shape}; got {valid.shape}."
            )
        changed = changed & valid
    if connectivity not in (4, 8):
        raise InvalidParameterError(f"connectivity must be 4 or 8; got {connectivity!r}.")
    return changed


def _region_stats(
    labels: np.ndarray, changed: np.ndarray, score: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel counts and mean finite scores of regions 1..n (one bincount each, changed only)."""
    lab = labels[changed]
    counts = np.bincount(lab, minlength=n + 1)[1:]
    vals = score[changed].astype("float64")
    finite = np.isfinite(vals)
    sums = np.bincount(lab[finite], weights=vals[finite], minlength=n + 1)[1:]
    nfin = np.bincount(lab[finite], minlength=n + 1)[1:]
    return counts, np.where(nfin > 0, sums / np.maximum(nfin, 1), np.nan)


def _outlines(
    labels: np.ndarray, changed: np.ndarray, transform: Affine, connectivity: Literal[4, 8]
) -> tuple[list[int], list[Any]]:
    """(label ids, valid CCW (Multi)Polygons) of the labelled regions, traced on pixel edges."""
    parts: dict[int, list[Polygon]] = {}
    values, polygons = polygonize(labels, changed, connectivity=connectivity, transform=transform)
    for value, polygon in zip(values.tolist(), polygons, strict=True):
        parts.setdefault(value, []).append(polygon)
    label_ids = sorted(parts)
    geoms: list[Any] = []
    for lab in label_ids:
        polys = parts[lab]
        g = polys[0] if len(polys) == 1 else MultiPolygon(polys)
        if not g.is_valid:
            g = shapely.make_valid(g)
            g = shapely.union_all(
                [p for p in shapely.get_parts(g) if isinstance(p, Polygon | MultiPolygon)]
            )
        geoms.append(shapely.orient_polygons(g))
    return label_ids, geoms


def _planar_areas_m2(geoms: list[Any], crs: CRS | None, pixel_size_m: float | None) -> list[float]:
    """Map-projection areas in m² (pixels x pixel size² without CRS; NaN when geographic)."""
    if crs is not None and not crs.is_projected:
        return [math.nan] * len(geoms)
    planar = shapely.area(np.asarray(geoms, dtype=object))
    if crs is not None:
        factor = crs.linear_units_factor[1] ** 2
        return [float(a) * factor for a in planar]
    if pixel_size_m:
        return [float(a) * pixel_size_m**2 for a in planar]
    return [math.nan] * len(geoms)


def _compactness(geoms: list[Any]) -> list[float]:
    arr = np.asarray(geoms, dtype=object)
    area, length = shapely.area(arr), shapely.length(arr)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(length > 0, 4 * math.pi * area / length**2, math.nan)
    return [float(v) for v in pp]


def _from_wgs84(geoms: list[Any], crs: CRS) -> list[Any]:
    if crs == _wgs84():
        return list(geoms)
    return list(shapely.orient_polygons(_reprojected(geoms, "EPSG:4326", crs.to_wkt())))


def from_feature_collection(fc: Mapping[str, Any], crs: CRS) -> list[ChangePolygon]:
    """The change polygons of a :func:`to_feature_collection` mapping, back in ``crs``.

    The inverse of :func:`to_feature_collection` up to its rounding (7 decimals of a degree,
    about 1 cm): ``geometry`` is the WGS84 outline projected to ``crs``; the other fields
    are the features' properties (``null`` numbers are NaN again).

    Raises
    ------
    InvalidParameterError
        A feature is not a change polygon of that form (no Polygon/MultiPolygon geometry or
        no ``pixel_count``).

    Examples
    --------
    >>> sq = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    >>> p = ChangePolygon(sq, sq, 1.0, 0.5, 4, rank=1, change="altered")
    >>> back = from_feature_collection(to_feature_collection([p]), CRS.from_epsg(4326))
    >>> back[0].geometry.equals(sq), back[0].pixel_count, back[0].change
    (True, 4, 'altered')
    """

    def num(value: Any) -> float:
        return math.nan if value is None else float(value)

    feats = list(fc.get("features") or [])
    try:
        wgs = [shape(f["geometry"]) for f in feats]
        props = [f["properties"] for f in feats]
        counts = [int(p["pixel_count"]) for p in props]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidParameterError(
            f"expected a change-candidates FeatureCollection (changes.geojson); a feature has "
            f"no polygon or pixel_count ({exc!r}). Give the file `satdelta detect` wrote."
        ) from exc
    geoms = _from_wgs84(wgs, crs) if wgs else []
    return [
        ChangePolygon(
            geometry=g,
            geometry_wgs84=w,
            area_m2=num(p.get("area_m2")),
            score=num(p.get("score")),
            pixel_count=n,
            planar_area_m2=num(p.get("planar_area_m2")),
            compactness=num(p.get("compactness")),
            rank=p.get("rank"),
            change=p.get("change"),
        )
        for g, w, p, n in zip(geoms, wgs, props, counts, strict=True)
    ]


def _round_coords(geom: Any, ndigits: int) -> Any:
    return shapely.orient_polygons(shapely.transform(geom, lambda c: np.round(c, ndigits)))


def _wgs84_geometries(polygons: Sequence[ChangePolygon]) -> np.ndarray:
    if any(p.geometry_wgs84 is None for p in polygons):
        raise InvalidParameterError(
            "GeoJSON needs georeferenced polygons (RFC 7946 is lon/lat); this polygon has "
            "no WGS84 geometry. Skip the GeoJSON for images without a CRS."
        )
    return np.asarray([p.geometry_wgs84 for p in polygons], dtype=object)


class FeatureValues(NamedTuple):
    """A candidate's properties in the GeoJSON, but its ``id`` (its place in the file)."""

    area_m2: float
    planar_area_m2: float
    pixel_count: int
    score: float
    compactness: float
    rank: int | None
    change: str | None

    @classmethod
    def of(cls, p: ChangePolygon) -> FeatureValues:
        return cls(
            p.area_m2, p.planar_area_m2, p.pixel_count, p.score, p.compactness, p.rank, p.change
        )


def _properties(i: int, p: ChangePolygon | FeatureValues) -> dict[str, Any]:
    return {
        "id": i,
        "area_m2": _num(p.area_m2),
        "planar_area_m2": _num(p.planar_area_m2),
        "pixel_count": p.pixel_count,
        "score": _num(p.score),
        "compactness": _num(p.compactness),
        "rank": p.rank,
        "change": p.change,
        "origin": "detected",
    }


def _feature(i: int, p: ChangePolygon, ndigits: int) -> dict[str, Any]:
    """Feature ``i`` (1-based) of :func:`to_feature_collection`."""
    (g,) = _wgs84_geometries([p])
    return {
        "type": "Feature",
        "id": i,
        "geometry": _geojson_geometry(_round_coords(g, ndigits)),
        "properties": _properties(i, p),
    }


#: Features whose text :func:`write_feature_collection` builds at once.
_FEATURES_AT_ONCE = 1000
#: ``json.dumps(..., allow_nan=False)`` without a new encoder for each feature.
_STRICT_JSON = json.JSONEncoder(allow_nan=False)


def write_feature_collection(
    fh: TextIO,
    polygons: Iterable[ChangePolygon],
    *,
    run: Mapping[str, Any] | None = None,
    ndigits: int = 7,
) -> None:
    """Write ``json.dumps(to_feature_collection(polygons, run=run))`` to ``fh``, a thousand
    features at a time (the same text, without the whole collection in memory at once).

    Raises
    ------
    InvalidParameterError
        As :func:`to_feature_collection`; ValueError for a value JSON cannot hold (NaN).
    """
    polygons = iter(polygons)
    chunks = iter(lambda: list(itertools.islice(polygons, _FEATURES_AT_ONCE)), [])
    spelled = (f for chunk in chunks for f in spelled_features(chunk, ndigits))
    write_spelled_collection(fh, spelled, run=run)


def spelled_features(
    polygons: Sequence[ChangePolygon], ndigits: int = 7
) -> list[tuple[str, FeatureValues]]:
    """Each polygon's WGS84 geometry as GeoJSON text (coordinates rounded to ``ndigits``;
    all at once) and its properties, for :func:`write_spelled_collection`.

    Raises
    ------
    InvalidParameterError
        A polygon has no WGS84 geometry.
    """
    rounded = _round_coords(_wgs84_geometries(polygons), ndigits)
    texts = polygon_texts(rounded, ndigits)
    return [(g, FeatureValues.of(p)) for g, p in zip(texts, polygons, strict=True)]


def write_spelled_collection(
    fh: TextIO,
    features: Iterable[tuple[str, FeatureValues]],
    *,
    run: Mapping[str, Any] | None = None,
) -> None:
    """Write the FeatureCollection of ``features`` (:func:`spelled_features`, in the file's
    order: feature ``i`` gets ``id`` i, from 1) as :func:`write_feature_collection` does.

    Raises
    ------
    ValueError
        A value JSON cannot hold (NaN).
    """
    fh.write('{"type": "FeatureCollection", "features": [')
    for i, (geometry, values) in enumerate(features, start=1):
        properties = _STRICT_JSON.encode(_properties(i, values))
        fh.write(
            (", " if i > 1 else "")
            + f'{{"type": "Feature", "id": {i}, "geometry": {geometry}, '
            + f'"properties": {properties}}}'
        )
    fh.write("]")
    if run is not None:
        member = {"kind": "change-candidates", "run": dict(run)}
        fh.write(', "satdelta": ' + json.dumps(member, allow_nan=False))
    fh.write("}")


def _geojson_geometry(g: Any) -> dict[str, Any]:
    """``shapely.geometry.mapping(g)`` of a polygon or multipolygon, coordinates read as numpy
    arrays (lists instead of tuples: the same JSON, without a Python loop per coordinate)."""

    def rings(p: Any) -> list[list[list[float]]]:
        return [shapely.get_coordinates(r).tolist() for r in (p.exterior, *p.interiors)]

    if g.geom_type == "Polygon" and not g.is_empty:
        return {"type": "Polygon", "coordinates": rings(g)}
    if g.geom_type == "MultiPolygon" and not g.is_empty:
        return {"type": "MultiPolygon", "coordinates": [rings(p) for p in g.geoms]}
    return dict(shapely.geometry.mapping(g))


def _num(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 6)


def to_feature_collection(
    polygons: Iterable[ChangePolygon],
    *,
    run: Mapping[str, Any] | None = None,
    ndigits: int = 7,
) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection of change polygons (WGS84 lon/lat, CCW exteriors).

    Parameters
    ----------
    polygons : iterable of ChangePolygon
        Georeferenced polygons (``geometry_wgs84`` not None).
    run : mapping, optional
        Provenance stored as the top-level foreign member
        ``"satdelta": {"kind": "change-candidates", "run": run}``.
    ndigits : int, default 7
        Decimals kept in coordinates (7 ≈ 1 cm).

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...], "satdelta": {...}}``; each feature has
        properties ``id`` (1-based, in the order given), ``area_m2`` (ellipsoidal),
        ``planar_area_m2``, ``pixel_count``, ``score``, ``compactness``, ``rank``,
        ``change`` and ``origin="detected"``.  No ``crs``.
    """
    features = [_feature(i, p, ndigits) for i, p in enumerate(polygons, start=1)]
    fc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if run is not None:
        fc["satdelta"] = {"kind": "change-candidates", "run": dict(run)}
    return fc
