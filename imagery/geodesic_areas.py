"""Geodesic areas of many lon/lat polygons at once, on the WGS84 ellipsoid.

:func:`ellipsoidal_areas_m2` gives what ``abs(Geod.geometry_area_perimeter(g)[0])`` gives
for each polygon, with the coordinates of all rings read at once (:class:`PolygonRings`) and
the rings measured over the threads (:func:`ring_areas`: pyproj's compiled ring method
releases the GIL while GeographicLib (Karney 2013, "Algorithms for geodesics") measures a
ring). Used for every change polygon's area (:mod:`satdelta.imagery.vectorize`) and by the
block runner's join (:mod:`satdelta.imagery.block_join`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from satdelta.imagery.parallel import run_jobs, thread_count

__all__ = ["MIN_RINGS_PER_JOB", "PolygonRings", "ellipsoidal_areas_m2", "ring_areas"]

_GEOD = Geod(ellps="WGS84")
#: One ring's geodesic area and perimeter: pyproj's compiled method behind
#: ``Geod.polygon_area_perimeter``, which first copies its arguments into new buffers (a
#: third of the time on real imagery's 131,508 rings at 4096²); it reads writable,
#: C-contiguous float64 slices as they are and gives the same values (tests compare both).
#: It checks nothing: other arrays are misread (int64 gives 0) or raise, so only the
#: arrays :func:`ring_areas` makes are given to it. The public method where a
#: pyproj lacks it.
_RING_AREA_PERIMETER = getattr(_GEOD, "_polygon_area_perimeter", None)
_POLYGONAL_TYPE_IDS = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


def ellipsoidal_areas_m2(geoms_wgs84: Sequence[Any]) -> list[float]:
    """Area of each lon/lat geometry on the WGS84 ellipsoid (what the annotation store measures).

    ``abs(Geod.geometry_area_perimeter(g)[0])`` of each: the geodesic area of every ring
    (exterior and holes, each part of a MultiPolygon) summed in the same order, with the
    coordinates of all rings read in one call rather than pyproj's Python loop over each.
    The rings are measured in chunks over the threads (:func:`ring_areas`); the sums are
    taken afterwards in ring order, so the values do not depend on the thread count.
    """
    geoms = np.asarray(geoms_wgs84, dtype=object)
    polygonal = np.isin(shapely.get_type_id(geoms), _POLYGONAL_TYPE_IDS)
    if not polygonal.all():  # not a change polygon: pyproj's own reading
        return [abs(float(_GEOD.geometry_area_perimeter(g)[0])) for g in geoms]
    r = PolygonRings.of(geoms)
    ring_area = ring_areas(r.xy[:, 0], r.xy[:, 1], r.ring_ends)
    # np.bincount adds the weights in index order, from 0.0: the same float64 sums, in the
    # same order, as adding ring by ring
    part_area = np.bincount(r.ring_part, weights=ring_area, minlength=len(r.part_geom))
    area = np.bincount(r.part_geom, weights=part_area, minlength=len(geoms))
    return [abs(float(a)) for a in area.tolist()]


@dataclass(frozen=True)
class PolygonRings:
    """The rings of an array of Polygons and MultiPolygons, as arrays (each geometry's
    polygons, each polygon's exterior then holes, in order).

    Attributes
    ----------
    xy : (V, 2) float64 ndarray
        Every ring's vertices, the closing one included, ring after ring.
    vertex_ring : (V,) int64 ndarray
        The ring of each vertex.
    ring_ends : (R,) int64 ndarray
        Where each ring's vertices end in ``xy`` (from the previous ring's end, or 0).
    ring_part : (R,) int64 ndarray
        The polygon (part) of each ring, numbered over all geometries.
    part_geom : (P,) int64 ndarray
        The geometry of each part.
    """

    xy: np.ndarray
    vertex_ring: np.ndarray
    ring_ends: np.ndarray
    ring_part: np.ndarray
    part_geom: np.ndarray

    @classmethod
    def of(cls, geoms: np.ndarray) -> PolygonRings:
        """``geoms``: an object array of Polygons and MultiPolygons."""
        parts, part_geom = shapely.get_parts(geoms, return_index=True)
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        xy, vertex_ring = shapely.get_coordinates(rings, return_index=True)
        ends = np.cumsum(shapely.get_num_coordinates(rings), dtype=np.int64)
        return cls(xy, vertex_ring, ends, ring_part, part_geom)


#: Fewest rings in one job of :func:`ring_areas`: fewer are measured in the calling thread
#: (a job's hand-over costs about what a few hundred rings do).
MIN_RINGS_PER_JOB = 1024


def ring_areas(lon: np.ndarray, lat: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Signed geodesic area (m², WGS84, counter-clockwise positive) of each ring, the ring
    ``k`` being ``lon[ends[k-1]:ends[k]]`` (from 0 for the first), in degrees.

    pyproj's compiled ring method releases the GIL while GeographicLib measures a ring, so
    the rings are cut into one run of at least :data:`MIN_RINGS_PER_JOB` for each of
    :func:`~satdelta.imagery.parallel.run_jobs`' threads: on 526,032 NAIP rings, 4.2-5.1 s
    in one thread, 2.9-3.3 s in two. Each ring's area is the same whatever the thread count.
    """
    # writable C-contiguous float64 copies: what the compiled ring method needs (it checks
    # nothing: int64 coordinates would be misread)
    lon = np.array(lon, dtype=np.float64, order="C")
    lat = np.array(lat, dtype=np.float64, order="C")
    stops = np.asarray(ends, dtype=np.int64).tolist()
    starts = [0, *stops[:-1]]
    out = np.zeros(len(stops), np.float64)
    measure = _RING_AREA_PERIMETER

    def one(chunk: range) -> None:
        for k in chunk:
            s, e = starts[k], stops[k]
            out[k] = (
                measure(lon[s:e], lat[s:e], radians=False)[0]
                if measure is not None
                else _GEOD.polygon_area_perimeter(lon[s:e], lat[s:e])[0]
            )

    n = len(stops)
    jobs = max(1, min(thread_count(), n // MIN_RINGS_PER_JOB))
    cuts = [n * k // jobs for k in range(jobs + 1)]
    run_jobs(one, [range(lo, hi) for lo, hi in itertools.pairwise(cuts)])
    return out
