"""Validation and repair of annotation polygons, and their geodesic areas.

:func:`clean_polygon` takes a shapely geometry, a GeoJSON mapping or WKT (optionally in
another CRS) and returns a valid WGS84 polygon with a record of every repair, or raises
:class:`~satdelta.annotations.errors.GeometryError` saying why the input cannot be used.
The table of what is repaired and what is refused is in ``docs/design-store.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer
from satdelta.annotations.errors import GeometryError
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

__all__ = [
    "CleanGeometry",
    "clean_polygon",
    "clean_polygons",
    "crs_label",
    "geodesic_area_m2",
    "geodesic_area_perimeter_m",
    "geodesic_areas_perimeters_m",
]

_GEOD = Geod(ellps="WGS84")
_WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class CleanGeometry:
    """A valid WGS84 (Multi)Polygon and what was done to obtain it.

    Attributes
    ----------
    geometry : shapely.Polygon or shapely.MultiPolygon
        Valid, non-empty, lon/lat in EPSG:4326, exterior rings counter-clockwise.
    repaired : bool
        True when the input had to be changed to become valid.
    repairs : tuple of str
        One human-readable sentence per repair (empty when ``repaired`` is False).
    source_crs : str
        CRS the input was given in (``"EPSG:4326"`` when none was given).
    """

    geometry: Polygon | MultiPolygon
    repaired: bool
    repairs: tuple[str, ...]
    source_crs: str

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, Polygon | MultiPolygon):
            raise GeometryError(
                f"CleanGeometry needs a Polygon or MultiPolygon, got {self.geometry.geom_type}"
            )
        if self.repaired != bool(self.repairs):
            raise GeometryError(
                "CleanGeometry.repaired must be True exactly when repairs are listed"
            )


def crs_label(crs: Any) -> str:
    """Return ``"EPSG:n"`` for a CRS with an EPSG code, else its WKT.

    Parameters
    ----------
    crs : str, int, pyproj.CRS or rasterio.crs.CRS
        Anything :meth:`pyproj.CRS.from_user_input` accepts.

    Examples
    --------
    >>> crs_label(32651)
    'EPSG:32651'
    """
    parsed = _parse_crs(crs)
    epsg = parsed.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else parsed.to_wkt()


def geodesic_area_m2(geometry: BaseGeometry) -> float:
    """Area in m² of a lon/lat polygon on the WGS84 ellipsoid.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> round(geodesic_area_m2(box(0, 0, 0.001, 0.001)))
    12309
    """
    area, _ = _GEOD.geometry_area_perimeter(geometry)
    return abs(float(area))


def geodesic_area_perimeter_m(geometry: BaseGeometry) -> tuple[float, float]:
    """(area in m², perimeter in m) of a lon/lat polygon on the WGS84 ellipsoid."""
    area, perimeter = _GEOD.geometry_area_perimeter(geometry)
    return abs(float(area)), float(perimeter)


def geodesic_areas_perimeters_m(
    geometries: Sequence[BaseGeometry],
) -> tuple[np.ndarray, np.ndarray]:
    """(areas in m², perimeters in m) of many lon/lat (Multi)Polygons at once.

    The same numbers as :func:`geodesic_area_perimeter_m` on each geometry, bit
    for bit: every ring goes through the same ``Geod.polygon_area_perimeter``
    (Karney's geodesic polygon area) and the sums are taken in the same order
    (exterior, then holes, then parts).  Faster because the rings and their
    coordinates come out of shapely in three array calls instead of several
    Python attribute lookups per ring.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> areas, perimeters = geodesic_areas_perimeters_m([box(0, 0, 0.001, 0.001)])
    >>> round(float(areas[0])), float(areas[0]) == geodesic_area_m2(box(0, 0, 0.001, 0.001))
    (12309, True)
    """
    geoms = np.asarray(geometries, dtype=object)
    n = len(geoms)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    xy = shapely.get_coordinates(rings)
    x = np.ascontiguousarray(xy[:, 0])
    y = np.ascontiguousarray(xy[:, 1])
    ends = np.cumsum(shapely.get_num_coordinates(rings)).tolist()
    part_area = [0.0] * len(parts)
    part_perimeter = [0.0] * len(parts)
    start, previous = 0, -1
    for end, part in zip(ends, ring_of.tolist(), strict=True):
        area, perimeter = _GEOD.polygon_area_perimeter(x[start:end], y[start:end])
        if part != previous:  # exterior ring: its perimeter is the polygon's
            part_area[part], part_perimeter[part], previous = area, perimeter, part
        else:  # hole: signed area (clockwise, so negative) added, as pyproj does
            part_area[part] += area
        start = end
    areas = [0.0] * n
    perimeters = [0.0] * n
    for part, geom in enumerate(part_of.tolist()):
        areas[geom] += part_area[part]
        perimeters[geom] += part_perimeter[part]
    return np.abs(np.array(areas, dtype=float)), np.array(perimeters, dtype=float)


def clean_polygons(
    objs: Sequence[Any], *, crs: Sequence[Any] | None = None
) -> list[CleanGeometry | GeometryError]:
    """:func:`clean_polygon` for many inputs; a refused input gives its error as a value.

    Shapely (Multi)Polygons in WGS84 (``crs`` None) that are 2-D, finite,
    within lon/lat range, valid and of non-zero area -- what a front-end or a
    detector usually hands over -- are checked with shapely's array functions
    in one pass and only re-oriented.  Every other input goes through
    :func:`clean_polygon` itself, so repairs, flags and messages are the same
    as one at a time.

    Parameters
    ----------
    objs : sequence
        What :func:`clean_polygon` accepts.
    crs : sequence, optional
        One CRS (or None) per input; None means all WGS84.

    Returns
    -------
    list
        Per input, a :class:`CleanGeometry` or the :class:`GeometryError` that
        :func:`clean_polygon` raises for it (the caller decides when to raise).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> ok, bad = clean_polygons([box(0, 0, 1, 1), "POINT (0 0)"])
    >>> ok.repaired, type(bad).__name__
    (False, 'GeometryError')
    """
    n = len(objs)
    crss = list(crs) if crs is not None else [None] * n
    if len(crss) != n:
        raise GeometryError(f"clean_polygons: expected {n} CRS values, got {len(crss)}")
    fast = np.array(
        [
            isinstance(o, Polygon | MultiPolygon) and c is None
            for o, c in zip(objs, crss, strict=True)
        ],
        dtype=bool,
    )
    candidates = np.flatnonzero(fast)
    if len(candidates):
        geoms = np.empty(len(candidates), dtype=object)
        geoms[:] = [objs[i] for i in candidates]
        ok = ~shapely.is_empty(geoms) & ~shapely.has_z(geoms)
        xy, index = shapely.get_coordinates(geoms, return_index=True)
        bad = ~np.isfinite(xy).all(axis=1) | (np.abs(xy[:, 0]) > 180) | (np.abs(xy[:, 1]) > 90)
        ok &= np.bincount(index[bad], minlength=len(geoms)) == 0
        ok[ok] = shapely.is_valid(geoms[ok]) & (shapely.area(geoms[ok]) > 0)
        oriented = np.empty(len(candidates), dtype=object)
        oriented[ok] = shapely.orient_polygons(geoms[ok], exterior_cw=False)
        fast[candidates[~ok]] = False
    out: list[CleanGeometry | GeometryError | None] = [None] * n
    if len(candidates):
        for i, g in zip(candidates[ok].tolist(), oriented[ok], strict=True):
            out[i] = CleanGeometry(geometry=g, repaired=False, repairs=(), source_crs="EPSG:4326")
    for i in np.flatnonzero(~fast).tolist():
        try:
            out[i] = clean_polygon(objs[i], crs=crss[i])
        except GeometryError as exc:
            out[i] = exc
    return out  # type: ignore[return-value]


def clean_polygon(obj: Any, *, crs: Any = None) -> CleanGeometry:
    """Validate an annotation polygon, repairing what can be repaired.

    Parameters
    ----------
    obj : shapely geometry, GeoJSON mapping or WKT str
        A Polygon or MultiPolygon (a GeoJSON Feature is accepted for its geometry).
    crs : optional
        CRS of ``obj`` (anything pyproj accepts, e.g. ``"EPSG:32651"`` or a
        rasterio CRS).  None means WGS84 lon/lat.

    Returns
    -------
    CleanGeometry

    Raises
    ------
    GeometryError
        When the input cannot be made into a valid polygon; the message says why.

    Examples
    --------
    >>> bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    >>> c = clean_polygon(bowtie)
    >>> c.repaired, c.geometry.geom_type
    (True, 'MultiPolygon')
    """
    repairs: list[str] = []
    from_geojson = False
    if isinstance(obj, Mapping):
        from_geojson = True
        geom = _from_geojson(obj, repairs)
    elif isinstance(obj, str):
        try:
            geom = shapely.from_wkt(obj)
        except shapely.errors.ShapelyError as exc:
            raise GeometryError(
                f"expected a WKT Polygon or MultiPolygon, got text that does not parse "
                f"({exc}); check the WKT"
            ) from None
    elif isinstance(obj, BaseGeometry):
        geom = obj
    else:
        raise GeometryError(
            f"expected a shapely geometry, a GeoJSON geometry mapping or WKT, got "
            f"{type(obj).__name__}; convert the polygon to one of those"
        )
    if not isinstance(geom, Polygon | MultiPolygon):
        raise GeometryError(
            f"expected a Polygon or MultiPolygon, got {geom.geom_type}; annotations are areas, "
            "draw a polygon around the evidence"
        )
    if geom.is_empty:
        raise GeometryError("expected a polygon with coordinates, got an empty geometry")
    if not from_geojson and not (
        np.isfinite(shapely.get_coordinates(geom)).all() and shapely.is_valid(geom)
    ):
        _check_shapely_rings(geom)  # per-ring checks only when something is wrong (slow path)
    if shapely.has_z(geom):
        geom = shapely.force_2d(geom)
        repairs.append("3-D coordinates: Z values dropped")

    source = "EPSG:4326"
    if crs is not None:
        parsed = _parse_crs(crs)
        source = crs_label(parsed)
        if not parsed.equals(_WGS84, ignore_axis_order=True):
            transformer = Transformer.from_crs(parsed, _WGS84, always_xy=True)
            geom = shapely.transform(
                geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
            )
            if not np.isfinite(shapely.get_coordinates(geom)).all():
                raise GeometryError(
                    f"the polygon could not be reprojected from {source} to WGS84 (points fall "
                    "outside the CRS's area of use); check that crs matches the coordinates"
                )
    xy = shapely.get_coordinates(geom)
    if (np.abs(xy[:, 0]) > 180).any() or (np.abs(xy[:, 1]) > 90).any():
        raise GeometryError(
            f"expected WGS84 lon/lat coordinates, got x in [{xy[:, 0].min():.6g}, "
            f"{xy[:, 0].max():.6g}], y in [{xy[:, 1].min():.6g}, {xy[:, 1].max():.6g}]; "
            "pass the polygon's CRS (crs=...) so it can be reprojected"
        )

    if not shapely.is_valid(geom):
        reason = shapely.is_valid_reason(geom)
        fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
        fixed = _polygonal_part(fixed)
        if fixed is None or fixed.is_empty or fixed.area == 0:
            raise GeometryError(
                f"invalid polygon ({reason}) has no area left after repair; redraw it"
            )
        repairs.append(f"invalid polygon ({reason}) repaired with make_valid")
        geom = fixed
    if geom.area == 0:
        raise GeometryError("expected a polygon with an area, got one whose area is zero")

    if from_geojson and _has_wrong_winding(geom):
        repairs.append(
            "rings had the wrong winding (RFC 7946: exterior counter-clockwise); re-oriented"
        )
    geom = shapely.orient_polygons(geom, exterior_cw=False)
    return CleanGeometry(
        geometry=geom, repaired=bool(repairs), repairs=tuple(repairs), source_crs=source
    )


def _parse_crs(crs: Any) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises CRSError, rasterio CRS may raise others
        raise GeometryError(
            f"expected a CRS (e.g. 'EPSG:32651'), got {crs!r} ({exc}); give an EPSG code or WKT"
        ) from None


def _from_geojson(obj: Mapping[str, Any], repairs: list[str]) -> BaseGeometry:
    if obj.get("type") == "Feature":
        obj = obj.get("geometry") or {}
    gtype = obj.get("type")
    if gtype not in ("Polygon", "MultiPolygon"):
        raise GeometryError(
            f"expected a GeoJSON Polygon or MultiPolygon, got type {gtype!r}; annotations are areas"
        )
    coords = obj.get("coordinates")
    polys = [coords] if gtype == "Polygon" else coords
    if not isinstance(polys, list | tuple) or not polys:
        raise GeometryError(f"expected coordinates for the {gtype}, got {json.dumps(coords)[:80]}")
    fixed_polys = []
    for p, rings in enumerate(polys):
        if not isinstance(rings, list | tuple) or not rings:
            raise GeometryError(f"polygon {p} has no rings; expected a list of linear rings")
        fixed_rings = []
        for r, ring in enumerate(rings):
            where = f"ring {r} of polygon {p}"
            try:
                arr = np.asarray(ring, dtype=float)
            except (TypeError, ValueError):
                raise GeometryError(
                    f"{where} is not a list of [x, y] positions of numbers; fix the coordinates"
                ) from None
            if arr.ndim != 2 or arr.shape[1] < 2:
                raise GeometryError(
                    f"{where} is not a list of [x, y] positions (shape {arr.shape}); "
                    "fix the coordinates"
                )
            _check_ring_array(arr, where)
            if not np.array_equal(arr[0, :2], arr[-1, :2]):
                arr = np.vstack([arr, arr[:1]])
                repairs.append(f"{where} was not closed; closed it")
            fixed_rings.append(arr.tolist())
        fixed_polys.append(fixed_rings)
    geo = {
        "type": "MultiPolygon" if gtype == "MultiPolygon" else "Polygon",
        "coordinates": fixed_polys if gtype == "MultiPolygon" else fixed_polys[0],
    }
    return shape(geo)


def _check_ring_array(arr: np.ndarray, where: str) -> None:
    if not np.isfinite(arr).all():
        raise GeometryError(
            f"{where} has NaN or infinite coordinates; every position needs finite x and y"
        )
    distinct = len({(float(x), float(y)) for x, y in arr[:, :2]})
    if distinct < 3:
        raise GeometryError(
            f"{where} has too few points ({distinct} distinct); a polygon ring needs at "
            "least 3 distinct points"
        )


def _check_shapely_rings(geom: Polygon | MultiPolygon) -> None:
    polys = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
    for p, poly in enumerate(polys):
        for r, ring in enumerate([poly.exterior, *poly.interiors]):
            _check_ring_array(np.asarray(ring.coords), f"ring {r} of polygon {p}")


def _polygonal_part(geom: BaseGeometry) -> Polygon | MultiPolygon | None:
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    if not parts:
        return None
    polys: list[Polygon] = []
    for g in parts:
        polys.extend(g.geoms if isinstance(g, MultiPolygon) else [g])
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def _has_wrong_winding(geom: Polygon | MultiPolygon) -> bool:
    polys = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
    for poly in polys:
        if not shapely.is_ccw(poly.exterior):
            return True
        if any(shapely.is_ccw(ring) for ring in poly.interiors):
            return True
    return False
