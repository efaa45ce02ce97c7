"""Shapes-layer data <-> map geometry <-> RFC 7946 features (pure: no napari import).

napari Shapes hold vertices as ``(N, 2)`` world ``(row-axis, col-axis)`` float32
arrays in the viewer's local map frame.  These functions turn them into shapely
geometry in the frame's CRS (float64) and into GeoJSON features in WGS84
(RFC 7946: lon/lat, counter-clockwise exterior rings, no ``crs`` member,
coordinates rounded to 7 decimals), and back.  They also hold the colour scheme
that shows an annotation's status.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import shapely
from satdelta.imagery.errors import SatdeltaError
from satdelta.plugins.napari._frame import FrameError, MapFrame
from shapely.geometry import LineString, MultiPolygon, Polygon, mapping

__all__ = [
    "ANNOTATION_COLUMNS",
    "MASK_COLOUR",
    "STATUS_COLOURS",
    "ShapeType",
    "empty_properties",
    "feature_collection",
    "geometry_to_shapes",
    "shape_to_geometry",
    "status_colours",
    "status_z",
    "to_wgs84",
]

ShapeType = Literal["polygon", "rectangle", "ellipse", "path", "line"]

#: Edge colour (RGBA 0-1) of each annotation status; anything else uses "drawn".
STATUS_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "candidate": (1.0, 0.85, 0.0, 1.0),  # yellow: found by detection, not reviewed
    "accepted": (0.1, 0.9, 0.2, 1.0),  # green: analyst accepted as evidence
    "rejected": (0.95, 0.15, 0.15, 1.0),  # red: analyst rejected
    "drawn": (0.0, 0.8, 1.0, 1.0),  # cyan: drawn, no status yet
}

#: Colour (RGB 0-1) of the change mask: violet, unlike every status colour above.
MASK_COLOUR: tuple[float, float, float] = (0.7, 0.25, 1.0)

#: Per-shape properties every satdelta Shapes layer carries (name -> default).
ANNOTATION_COLUMNS: dict[str, Any] = {
    "annotation_id": "",
    "label": "other",
    "claim_id": "",
    "verdict": "inconclusive",
    "confidence": 0.5,
    "status": "drawn",
    "origin": "drawn",
    "notes": "",
    "area_m2": 0.0,
    "score": float("nan"),
}


class ExportError(SatdeltaError, ValueError):
    """A Shapes layer cannot be written as GeoJSON."""


def empty_properties(n: int = 0) -> dict[str, list[Any]]:
    """A column table of ``n`` rows with every default of :data:`ANNOTATION_COLUMNS`."""
    return {k: [v] * n for k, v in ANNOTATION_COLUMNS.items()}


def status_colours(statuses: Sequence[str]) -> np.ndarray:
    """``(N, 4)`` RGBA edge colours for annotation statuses.

    Examples
    --------
    >>> status_colours(["accepted", "nonsense"])[:, :3].astype(float).round(2).tolist()
    [[0.1, 0.9, 0.2], [0.0, 0.8, 1.0]]
    """
    default = STATUS_COLOURS["drawn"]
    rows = [STATUS_COLOURS.get(str(s), default) for s in statuses]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


def status_z(statuses: Sequence[str]) -> list[int]:
    """Draw order per status: reviewed outlines (accepted, rejected) above undecided ones.

    An object's footprint can lie on the change candidate of the same aircraft; the outline
    the analyst decided on must not sink under the one still waiting.

    Examples
    --------
    >>> status_z(["candidate", "accepted", "rejected", "drawn"])
    [0, 1, 1, 0]
    """
    return [1 if str(s) in ("accepted", "rejected") else 0 for s in statuses]


def _ellipse_ring(corners: np.ndarray, n: int = 64) -> np.ndarray:
    """Vertices of the ellipse inscribed in napari's 4-corner ellipse box."""
    centre = corners.mean(axis=0)
    half_a = (corners[1] - corners[0]) / 2.0
    half_b = (corners[3] - corners[0]) / 2.0
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return centre + np.outer(np.cos(t), half_a) + np.outer(np.sin(t), half_b)


def shape_to_geometry(
    vertices: np.ndarray, shape_type: str, frame: MapFrame
) -> Polygon | LineString:
    """One napari shape (world vertices) as shapely geometry in the frame's CRS.

    Parameters
    ----------
    vertices : (N, 2) ndarray
        World ``(row-axis, col-axis)`` vertices as napari holds them.
    shape_type : {"polygon", "rectangle", "ellipse", "path", "line"}
        napari's shape type.
    frame : MapFrame
        The viewer's frame.

    Returns
    -------
    shapely.Polygon or shapely.LineString
        Map coordinates (x, y) in float64.

    Raises
    ------
    ExportError
        For a shape with too few vertices or an unknown type.
    """
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 2)
    if shape_type == "ellipse":
        v = _ellipse_ring(v)
    xy = frame.world_to_map(v)
    if shape_type in ("polygon", "rectangle", "ellipse"):
        if len(xy) < 3:
            raise ExportError(
                f"a {shape_type} needs at least 3 vertices, got {len(xy)}; "
                "delete the shape or draw it again."
            )
        return Polygon(xy)
    if shape_type in ("path", "line"):
        if len(xy) < 2:
            raise ExportError(f"a {shape_type} needs at least 2 vertices, got {len(xy)}.")
        return LineString(xy)
    raise ExportError(
        f"shape type must be polygon, rectangle, ellipse, path or line, got {shape_type!r}."
    )


def geometry_to_shapes(geometry: Any, frame: MapFrame) -> list[np.ndarray]:
    """Exterior rings of a (Multi)Polygon in the frame CRS as napari world vertices.

    Holes cannot be drawn by napari Shapes; they stay in the float64 geometry the
    store keeps, only the outline is shown.

    Returns
    -------
    list of (N, 2) ndarray
        One float64 array per polygon part, closing vertex dropped.
    """
    if isinstance(geometry, Polygon):
        parts = [geometry]
    elif isinstance(geometry, MultiPolygon):
        parts = list(geometry.geoms)
    else:
        raise ExportError(
            f"only Polygon or MultiPolygon geometry can be shown, got {geometry.geom_type}."
        )
    out = []
    for part in parts:
        ring = np.asarray(part.exterior.coords, dtype=np.float64)[:-1, :2]
        out.append(frame.map_to_world(ring))
    return out


def to_wgs84(geometry: Any, frame: MapFrame) -> Any:
    """Reproject shapely geometry from the frame CRS to WGS84 lon/lat.

    Raises
    ------
    ExportError
        When the frame is not georeferenced (there is no lon/lat to give).
    """
    try:
        return shapely.transform(geometry, frame.map_to_lonlat)
    except FrameError as exc:
        raise ExportError(
            "cannot write GeoJSON for layers without georeferencing (RFC 7946 needs lon/lat); "
            "open rasters that carry a CRS."
        ) from exc


def _rfc7946(geometry: Any) -> dict[str, Any]:
    """GeoJSON geometry dict: CCW exteriors, CW holes, 7 decimals."""
    if isinstance(geometry, (Polygon, MultiPolygon)):
        geometry = shapely.orient_polygons(geometry, exterior_cw=False)
    geo = mapping(geometry)

    def rnd(c: Any) -> Any:
        if isinstance(c, (tuple, list)) and c and isinstance(c[0], (int, float)):
            return [round(float(v), 7) for v in c]
        return [rnd(x) for x in c]

    geo["coordinates"] = rnd(geo["coordinates"])
    return geo


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def feature_collection(
    geometries: Sequence[Any],
    properties: Mapping[str, Sequence[Any]],
    frame: MapFrame,
    *,
    foreign: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection from geometries in the frame CRS.

    Parameters
    ----------
    geometries : sequence of shapely geometry
        In the frame's CRS (map x/y).
    properties : mapping of column name to sequence
        One value per geometry in each column; NaN becomes ``null``.
    frame : MapFrame
        Used to reproject to WGS84.
    foreign : mapping, optional
        Top-level foreign members (e.g. ``{"satdelta": {...}}``).

    Returns
    -------
    dict
        A GeoJSON FeatureCollection in lon/lat.
    """
    n = len(geometries)
    for key, col in properties.items():
        if len(col) != n:
            raise ExportError(
                f"property {key!r} has {len(col)} values for {n} shapes; "
                "every shape needs one value per property."
            )
    features = []
    for i, geom in enumerate(geometries):
        props = {k: _jsonable(col[i]) for k, col in properties.items()}
        features.append(
            {"type": "Feature", "geometry": _rfc7946(to_wgs84(geom, frame)), "properties": props}
        )
    fc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if foreign:
        fc.update(foreign)
    return fc
