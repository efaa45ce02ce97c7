"""Areas of interest: the part of a scene a run analyses, given in longitude/latitude.

An :class:`AreaOfInterest` is a lon/lat (WGS84) polygon, built from a ``W,S,E,N`` box or a
GeoJSON geometry and checked on construction. :func:`aoi_window` gives the window of a grid
it covers (plus a margin of context for the statistics) and :func:`aoi_mask` the pixels
inside it; the pipeline reads only that window and marks the pixels outside as not analysed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.features import geometry_mask
from rasterio.windows import Window
from satdelta.imagery.errors import AreaOfInterestError
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape

__all__ = ["AOI_MARGIN_PX", "AreaOfInterest", "aoi_mask", "aoi_window", "claim_area"]

#: Context (pixels per side) read around an area of interest: the normalisation, score
#: scales and threshold are fitted on the area plus this margin, so a small area still has
#: enough unchanged surroundings for its statistics.
AOI_MARGIN_PX = 64


@dataclass(frozen=True)
class AreaOfInterest:
    """A lon/lat polygon (WGS84) a run is limited to.

    Attributes
    ----------
    geometry : shapely.Polygon or shapely.MultiPolygon
        Longitude/latitude; valid, not empty, inside [-180, 180] x [-90, 90].

    Raises
    ------
    AreaOfInterestError
        Not a polygon, empty or of zero area, invalid, or with coordinates that are not
        longitude/latitude.

    Examples
    --------
    >>> aoi = AreaOfInterest.from_bbox((10.0, 45.0, 10.01, 45.01))
    >>> aoi.bbox
    (10.0, 45.0, 10.01, 45.01)
    >>> AreaOfInterest.from_dict(aoi.to_dict()) == aoi
    True
    >>> AreaOfInterest.parse("500000,4000000,500100,4000100")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    satdelta.imagery.errors.AreaOfInterestError: area of interest must be in longitude/...
    """

    geometry: Polygon | MultiPolygon

    def __post_init__(self) -> None:
        g = self.geometry
        if not isinstance(g, Polygon | MultiPolygon):
            raise AreaOfInterestError(
                f"area of interest must be a Polygon or MultiPolygon; got {g.geom_type}."
            )
        if g.is_empty or g.area <= 0:
            raise AreaOfInterestError(
                "area of interest is empty (no area); give W,S,E,N with W < E and S < N or a "
                "GeoJSON polygon."
            )
        w, s, e, n = g.bounds
        if not (-180 <= w and e <= 180 and -90 <= s and n <= 90):
            raise AreaOfInterestError(
                "area of interest must be in longitude/latitude (WGS84 degrees); got bounds "
                f"{_fmt(g.bounds)}. Give W,S,E,N in degrees, not projected metres."
            )
        if not g.is_valid:
            raise AreaOfInterestError(
                f"area of interest is not a valid polygon ({shapely.is_valid_reason(g)}); "
                "fix the GeoJSON."
            )

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        return tuple(float(v) for v in self.geometry.bounds)  # type: ignore[return-value]

    @classmethod
    def from_bbox(cls, bbox: Sequence[float]) -> AreaOfInterest:
        """The box ``(west, south, east, north)`` in degrees."""
        values = [_float(v) for v in bbox] if isinstance(bbox, Sequence) else []
        if len(values) != 4 or not all(math.isfinite(v) for v in values):
            raise AreaOfInterestError(
                f"area of interest box must be 4 numbers W,S,E,N (degrees); got {bbox!r}."
            )
        w, s, e, n = values
        if not (w < e and s < n):
            raise AreaOfInterestError(
                f"area of interest box {_fmt(values)} is empty: expected W < E and S < N."
            )
        return cls(box(w, s, e, n))

    @classmethod
    def from_geojson(cls, data: Mapping[str, Any]) -> AreaOfInterest:
        """The union of the (Multi)Polygons of a GeoJSON geometry, Feature or FeatureCollection."""
        kind = data.get("type") if isinstance(data, Mapping) else None
        if kind == "FeatureCollection":
            geoms = [f.get("geometry") for f in data.get("features") or []]
        elif kind == "Feature":
            geoms = [data.get("geometry")]
        else:
            geoms = [data]
        try:
            polys = [shape(g) for g in geoms if g]
        except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException):
            polys = []
        polys = [p for p in polys if isinstance(p, Polygon | MultiPolygon)]
        if not polys:
            raise AreaOfInterestError(
                "area of interest GeoJSON has no Polygon or MultiPolygon; expected a polygon "
                f"geometry, Feature or FeatureCollection, got type {kind!r}."
            )
        return cls(polys[0] if len(polys) == 1 else shapely.union_all(polys))

    @classmethod
    def parse(cls, text: str) -> AreaOfInterest:
        """``"W,S,E,N"`` (degrees) or a GeoJSON text."""
        t = text.strip()
        if t.startswith("{"):
            try:
                return cls.from_geojson(json.loads(t))
            except json.JSONDecodeError as exc:
                raise AreaOfInterestError(
                    f"area of interest is not valid GeoJSON ({exc.msg}, column {exc.colno})."
                ) from None
        return cls.from_bbox(t.split(","))

    @classmethod
    def around(cls, lon: float, lat: float, radius_m: float) -> AreaOfInterest:
        """A geodesic circle (64 vertices on the WGS84 ellipsoid) of ``radius_m`` around a point.

        Examples
        --------
        >>> aoi = AreaOfInterest.around(10.0, 45.0, 500.0)
        >>> [round(v, 4) for v in aoi.bbox]
        [9.9937, 44.9955, 10.0063, 45.0045]
        """
        from pyproj import Geod

        r = _float(radius_m)
        if not (math.isfinite(r) and r > 0):
            raise AreaOfInterestError(
                f"radius of the area of interest must be a positive number of metres; got "
                f"{radius_m!r}."
            )
        if not (-180 <= lon <= 180 and -90 < lat < 90):
            raise AreaOfInterestError(
                f"centre of the area of interest must be lon, lat in degrees; got {lon}, {lat}."
            )
        az = np.linspace(0.0, 360.0, 64, endpoint=False)
        x, y, _ = Geod(ellps="WGS84").fwd(
            np.full(az.size, lon), np.full(az.size, lat), az, np.full(az.size, r)
        )
        return cls(Polygon(np.column_stack([x, y])))

    def to_dict(self) -> dict[str, Any]:
        """A GeoJSON geometry with its ``bbox`` (what ``run.json`` records)."""
        return {**mapping(self.geometry), "bbox": list(self.bbox)}

    @classmethod
    def from_dict(cls, data: Any) -> AreaOfInterest:
        """From :meth:`to_dict`, a GeoJSON mapping, a 4-number box or a ``"W,S,E,N"`` text."""
        if isinstance(data, AreaOfInterest):
            return data
        if isinstance(data, str):
            return cls.parse(data)
        if isinstance(data, Mapping):
            return cls.from_geojson(data)
        return cls.from_bbox(data)

    def in_crs(self, crs: CRS) -> Polygon | MultiPolygon:
        """The polygon in ``crs`` (edges densified so they stay close to the lon/lat lines)."""
        from pyproj import Transformer

        tr = Transformer.from_crs("EPSG:4326", crs.to_wkt(), always_xy=True)
        w, s, e, n = self.bbox
        dense = shapely.segmentize(self.geometry, max(e - w, n - s) / 64)
        return shapely.transform(dense, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))


def claim_area(claim: Any, radius_m: float | None = None) -> AreaOfInterest:
    """The area of a claim of the annotation store: its box, or its point plus ``radius_m``.

    ``claim`` is anything with ``id``, ``bbox`` (W, S, E, N or None) and ``point`` (lon, lat
    or None), such as :class:`satdelta.annotations.Claim`; a radius picks the point.

    Raises
    ------
    AreaOfInterestError
        A claim without a box or point, or a point without a radius.
    """
    if radius_m is not None:
        if claim.point is None:
            raise AreaOfInterestError(
                f"claim {claim.id} has no point for a radius; give it one (satdelta claim edit "
                "--point) or drop --radius."
            )
        return AreaOfInterest.around(*claim.point, radius_m)
    if claim.bbox is not None:
        return AreaOfInterest.from_bbox(claim.bbox)
    if claim.point is not None:
        raise AreaOfInterestError(
            f"claim {claim.id} has a point but no box; give a radius (--radius M, metres)."
        )
    raise AreaOfInterestError(
        f"claim {claim.id} has neither a box nor a point; give it one or use --aoi."
    )


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _fmt(values: Sequence[float]) -> str:
    return ",".join(f"{v:.6g}" for v in values)


def aoi_window(
    aoi: AreaOfInterest,
    transform: Affine,
    crs: CRS | None,
    shape: tuple[int, int],
    *,
    margin_px: int = AOI_MARGIN_PX,
) -> Window:
    """The window of a ``shape`` grid covering ``aoi`` plus ``margin_px``, clipped to the grid.

    Raises
    ------
    AreaOfInterestError
        The grid has no CRS, or the area of interest does not overlap it.
    """
    if crs is None:
        raise AreaOfInterestError(
            "an area of interest needs georeferenced scenes; these have no CRS. Drop --aoi."
        )
    inv = ~transform
    x0, y0, x1, y1 = aoi.in_crs(crs).bounds
    cols, rows = zip(*(inv * (x, y) for x in (x0, x1) for y in (y0, y1)), strict=True)
    c0, c1 = math.floor(min(cols)), math.ceil(max(cols))
    r0, r1 = math.floor(min(rows)), math.ceil(max(rows))
    h, w = shape
    if c1 <= 0 or r1 <= 0 or c0 >= w or r0 >= h:
        raise AreaOfInterestError(
            f"area of interest {_fmt(aoi.bbox)} (W,S,E,N) is outside the scene; the scene "
            f"covers {_fmt(_scene_bbox(transform, crs, shape))}. Check the coordinates."
        )
    c0, r0 = max(c0 - margin_px, 0), max(r0 - margin_px, 0)
    c1, r1 = min(c1 + margin_px, w), min(r1 + margin_px, h)
    return Window(c0, r0, c1 - c0, r1 - r0)


def _scene_bbox(transform: Affine, crs: CRS, shape: tuple[int, int]) -> tuple[float, ...]:
    from rasterio.warp import transform_bounds

    h, w = shape
    x0, y0 = transform * (0, 0)
    x1, y1 = transform * (w, h)
    return transform_bounds(crs, "EPSG:4326", min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def aoi_mask(
    aoi: AreaOfInterest, transform: Affine, crs: CRS, shape: tuple[int, int]
) -> NDArray[np.bool_]:
    """(M, N) bool: True where the whole pixel is inside ``aoi``.

    Whole pixels, so that candidates outlined along pixel edges stay inside the area.

    Raises
    ------
    AreaOfInterestError
        No pixel of the grid is wholly inside the area of interest.
    """
    h, w = shape
    x0, y0 = transform * (-1, -1)
    x1, y1 = transform * (w + 1, h + 1)
    around = box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    outside = around.difference(aoi.in_crs(crs))
    inside = (
        np.ones(shape, bool)
        if outside.is_empty
        else geometry_mask([outside], out_shape=shape, transform=transform, all_touched=True)
    )
    if not inside.any():
        raise AreaOfInterestError(
            f"area of interest {_fmt(aoi.bbox)} (W,S,E,N) covers no whole pixel of the scene; "
            "give a larger area or check the coordinates."
        )
    return inside
