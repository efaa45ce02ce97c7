"""Object-level change between two co-registered dates: disappeared, appeared or unchanged.

Pure computation: the objects each date holds (:func:`satdelta.imagery.objects.find_objects`,
both on the before grid) are looked for on the other date, at the same place; footprints are
traced into polygons (scene CRS and WGS84 when georeferenced), and the result is counted per
change kind and size class and turned into GeoJSON features and CSV rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.object_growth import grow_changed, ncc
from satdelta.imagery.objects import (
    DateObjects,
    FoundObject,
    ObjectOptions,
    SizeClass,
    bbox_slices,
    find_objects,
)
from satdelta.imagery.polygonize import polygonize
from satdelta.imagery.vectorize import _to_wgs84
from scipy import ndimage as ndi
from shapely.geometry import MultiPolygon, Polygon

__all__ = [
    "CHANGE_KINDS",
    "CSV_COLUMNS",
    "SIZE_CLASSES",
    "ChangedObject",
    "ObjectChanges",
    "detect_objects",
    "object_changes",
]

ChangeKind = Literal["disappeared", "appeared", "unchanged"]
CHANGE_KINDS: tuple[ChangeKind, ...] = ("disappeared", "appeared", "unchanged")
SIZE_CLASSES: tuple[SizeClass, ...] = ("vehicle", "aircraft-sized")
#: Columns of objects.csv, in order.
CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "change",
    "size_class",
    "confidence",
    "row_min",
    "col_min",
    "row_max",
    "col_max",
    "length_m",
    "width_m",
    "area_m2",
    "orientation_deg",
    "lon",
    "lat",
)


@dataclass(frozen=True)
class ChangedObject:
    """One object and its change, on the before grid.

    Attributes
    ----------
    id : int
        1-based, in the order of :attr:`ObjectChanges.objects`.
    change : {"disappeared", "appeared", "unchanged"}
    date : {"before", "after"}
        The date the footprint was found on.
    found : FoundObject
        Shape in metres, size class, polarity, box (row_min, col_min, row_max, col_max).
    confidence : float
        0-1: how clearly an object (contrast) and how clearly absent (or present) on the
        other date.
    presence, structure, iou : float
        The change test's evidence: foreground cover, gradient correlation and best footprint
        IoU on the other date.
    geometry : shapely Polygon or MultiPolygon or None
        Footprint in the grid's CRS (pixel coordinates when not georeferenced).
    geometry_wgs84 : shapely Polygon or MultiPolygon or None
        Footprint in lon/lat; None when not georeferenced.
    """

    id: int
    change: ChangeKind
    date: Literal["before", "after"]
    found: FoundObject
    confidence: float
    presence: float
    structure: float
    iou: float
    geometry: Polygon | MultiPolygon | None = None
    geometry_wgs84: Polygon | MultiPolygon | None = None

    @property
    def size_class(self) -> SizeClass:
        return self.found.size_class

    def centre_lonlat(self) -> tuple[float, float] | None:
        """(lon, lat) of the footprint's centroid, None when not georeferenced."""
        if self.geometry_wgs84 is None:
            return None
        c = self.geometry_wgs84.centroid
        return float(c.x), float(c.y)

    def attributes(self) -> dict[str, Any]:
        """The object's attributes (what a GeoJSON feature and the store carry)."""
        f = self.found
        return {
            "id": self.id,
            "change": self.change,
            "size_class": f.size_class,
            "confidence": round(self.confidence, 4),
            "length_m": round(f.length_m, 2),
            "width_m": round(f.width_m, 2),
            "orientation_deg": round(f.orientation_deg, 1),
            "area_m2": round(f.area_m2, 2),
            "polarity": f.polarity,
            "date": self.date,
        }

    def csv_row(self) -> dict[str, Any]:
        """One row of objects.csv (:data:`CSV_COLUMNS`); lon/lat empty when not known."""
        r0, c0, r1, c1 = self.found.bbox
        lonlat = self.centre_lonlat()
        a = self.attributes()
        return {
            **{k: a[k] for k in ("id", "change", "size_class", "confidence")},
            "row_min": r0,
            "col_min": c0,
            "row_max": r1,
            "col_max": c1,
            **{k: a[k] for k in ("length_m", "width_m", "area_m2", "orientation_deg")},
            "lon": "" if lonlat is None else round(lonlat[0], 7),
            "lat": "" if lonlat is None else round(lonlat[1], 7),
        }


def empty_counts() -> dict[str, dict[str, int]]:
    """``{change: {size_class: 0, ..., "total": 0}}`` for every change kind."""
    return {k: {**dict.fromkeys(SIZE_CLASSES, 0), "total": 0} for k in CHANGE_KINDS}


def count_objects(objects: Iterable[ChangedObject]) -> dict[str, dict[str, int]]:
    """Objects per change kind and size class (and their total per kind)."""
    out = empty_counts()
    for o in objects:
        out[o.change][o.size_class] += 1
        out[o.change]["total"] += 1
    return out


@dataclass(frozen=True)
class ObjectChanges:
    """Every object of a pair with its change, and the options that found them.

    Attributes
    ----------
    objects : tuple of ChangedObject
    pixel_size_m : float
    options : ObjectOptions
    """

    objects: tuple[ChangedObject, ...]
    pixel_size_m: float
    options: ObjectOptions = field(default_factory=ObjectOptions)

    def counts(self, within: Any = None) -> dict[str, dict[str, int]]:
        """Counts per change kind and size class, of the objects whose footprint centroid is
        inside ``within`` (a shapely lon/lat geometry, such as an area of interest's; None =
        the whole scene). Objects without lon/lat are outside any such area."""
        objs = self.objects
        if within is not None:
            objs = tuple(
                o
                for o in objs
                if o.geometry_wgs84 is not None and within.contains(o.geometry_wgs84.centroid)
            )
        return count_objects(objs)

    def summary(self, aoi: Any = None) -> dict[str, Any]:
        """The ``objects`` member of run.json: counts for the scene and, when ``aoi`` (a lon/lat
        geometry) is given, for the objects inside it."""
        out: dict[str, Any] = {
            "pixel_size_m": self.pixel_size_m,
            "options": self.options.to_dict(),
            "count": len(self.objects),
            "counts": {"scene": self.counts()},
        }
        if aoi is not None:
            out["counts"]["aoi"] = self.counts(aoi)
        return out

    def feature_collection(self, run: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """RFC 7946 FeatureCollection of the footprints (lon/lat) with their attributes.

        Raises
        ------
        InvalidParameterError
            When the objects are not georeferenced.
        """
        features = []
        for o in self.objects:
            if o.geometry_wgs84 is None:
                raise InvalidParameterError(
                    "objects.geojson needs georeferenced objects (RFC 7946 is lon/lat); write "
                    "objects.csv for images without a CRS."
                )
            g = shapely.set_precision(o.geometry_wgs84, 1e-7)
            features.append(
                {
                    "type": "Feature",
                    "id": o.id,
                    "geometry": shapely.geometry.mapping(g),
                    "properties": {**o.attributes(), "origin": "detected"},
                }
            )
        fc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
        if run is not None:
            fc["satdelta"] = {"kind": "object-candidates", "run": dict(run)}
        return fc


def _level_kept(
    obj: FoundObject,
    mine: DateObjects,
    other: DateObjects,
    sl: tuple[slice, slice],
    fp: NDArray[np.bool_],
    options: ObjectOptions,
) -> bool:
    """A dark or textured object whose footprint is, on the other date, still at least
    ``level_keep`` as dark (textured) as on its own date; a bright one whose footprint still
    stands out (either way) by ``bright_level_keep`` of its own contrast."""
    if obj.polarity == "bright":
        if options.bright_level_keep <= 0:
            return False
        mine_level = float(np.abs(mine.contrast[sl][fp]).mean())
        other_level = float(np.abs(other.contrast[sl][fp]).mean())
        return other_level >= options.bright_level_keep * mine_level
    sign, layer = (-1.0, "contrast") if obj.polarity == "dark" else (1.0, "texture")
    level = sign * float(getattr(mine, layer)[sl][fp].mean())
    return level > 0 and sign * float(getattr(other, layer)[sl][fp].mean()) >= (
        options.level_keep * level
    )


def _moved_shadow(
    obj: FoundObject,
    fp: NDArray[np.bool_],
    sl: tuple[slice, slice],
    other: DateObjects,
    px: float,
    options: ObjectOptions,
) -> bool:
    """A dark object with as much dark ground within ``shadow_move_m`` of it on the other date
    as its own footprint (see ``ObjectOptions.shadow_move_m``)."""
    if obj.polarity != "dark":
        return False
    reach = max(1, round(options.shadow_move_m / px))
    box = bbox_slices(obj.bbox, reach, other.contrast.shape)
    mask = np.zeros((box[0].stop - box[0].start, box[1].stop - box[1].start), bool)
    mask[
        sl[0].start - box[0].start : sl[0].stop - box[0].start,
        sl[1].start - box[1].start : sl[1].stop - box[1].start,
    ] = fp
    near = ndi.distance_transform_edt(~mask) <= reach
    return int((other.contrast[box][near] <= -options.grow_z).sum()) >= int(fp.sum())


def _classify(
    mine: DateObjects, other: DateObjects, px: float, options: ObjectOptions, gone: ChangeKind
) -> list[tuple[FoundObject, ChangeKind, float, float, float, float]]:
    """(object, change, confidence, presence, structure, iou) for each object of ``mine``."""
    tol = max(1, round(options.presence_tol_m / px))
    present = ndi.binary_dilation(other.foreground, iterations=tol)
    out = []
    for obj in mine.objects:
        sl, fp = mine.footprint(obj)
        if not fp.any() or other.nodata[sl][fp].mean() > options.nodata_max_frac:
            continue  # not observable on the other date: no change claimed
        presence = float(present[sl][fp].mean())
        region = ndi.distance_transform_cdt(~fp, metric="taxicab") <= tol  # fp grown by tol
        structure = ncc(mine.grad[sl][region], other.grad[sl][region])
        ol = other.labels[sl][fp]
        n = int(fp.sum())
        iou = 0.0
        for oid in np.unique(ol[ol > 0]):
            inter = int((ol == oid).sum())
            other_n = other.objects[oid - 1].area_m2 / px**2
            iou = max(iou, inter / (n + other_n - inter))
        unchanged = (
            iou >= options.match_iou
            or presence >= options.presence_min
            or structure >= options.structure_min
            or _level_kept(obj, mine, other, sl, fp, options)
        )
        if not unchanged and _moved_shadow(obj, fp, sl, other, px, options):
            continue  # a shadow that moved with the sun, not an object that left or arrived
        strength = min(1.0, obj.contrast_z / (2 * options.seed_z))
        clarity = presence if unchanged else 1 - presence / options.presence_min
        confidence = float(np.clip(0.5 * strength + 0.5 * clarity, 0, 1))
        change: ChangeKind = "unchanged" if unchanged else gone
        out.append((obj, change, confidence, presence, structure, iou))
    return out


def object_changes(
    before: DateObjects,
    after: DateObjects,
    pixel_size_m: float,
    options: ObjectOptions = ObjectOptions(),
) -> list[ChangedObject]:
    """Objects of both dates (already on one grid) with their change, without geometry.

    An object is ``unchanged`` when the other date has an object overlapping its footprint
    (IoU >= ``match_iou``), foreground of either polarity over most of it, or the same edge
    structure; else ``disappeared`` (before) or ``appeared`` (after). An after-date object
    that overlaps its unchanged before-date twin is reported once (as the before object).
    Objects mostly on the other date's no-data are left out.
    """
    if before.labels.shape != after.labels.shape:
        raise InvalidParameterError(
            f"before and after objects must be on one grid; got {before.labels.shape} and "
            f"{after.labels.shape}. Co-register the pair first."
        )
    gone = _classify(before, after, pixel_size_m, options, "disappeared")
    rows = [("before", r) for r in grow_changed(gone, before, after, pixel_size_m, options)]
    new = _classify(after, before, pixel_size_m, options, "appeared")
    for r in grow_changed(new, after, before, pixel_size_m, options):
        if not (r[1] == "unchanged" and r[5] > 0):
            rows.append(("after", r))
    return [
        ChangedObject(
            id=i,
            change=change,
            date=date,
            found=obj,
            confidence=conf,
            presence=presence,
            structure=structure,
            iou=iou,
        )
        for i, (date, (obj, change, conf, presence, structure, iou)) in enumerate(rows, start=1)
    ]


def _footprints(labels: NDArray[np.int32], transform: Affine) -> dict[int, Polygon | MultiPolygon]:
    """Footprint polygon of every label value > 0, in the grid's coordinates."""
    parts: dict[int, list[Any]] = {}
    values, polygons = polygonize(labels, labels > 0, connectivity=8, transform=transform)
    for value, polygon in zip(values.tolist(), polygons, strict=True):
        parts.setdefault(value, []).append(polygon)
    return {v: shapely.union_all(p) for v, p in parts.items()}


def _with_geometry(
    changes: list[ChangedObject],
    before: DateObjects,
    after: DateObjects,
    transform: Affine,
    crs: CRS | None,
) -> tuple[ChangedObject, ...]:
    polys = {
        "before": _footprints(before.labels, transform),
        "after": _footprints(after.labels, transform),
    }
    geoms = [polys[c.date].get(c.found.id + 1) for c in changes]
    if crs is None:
        wgs: list[Any] = [None] * len(geoms)
    else:
        wgs = _to_wgs84([shapely.orient_polygons(g) for g in geoms], crs)
    return tuple(
        ChangedObject(**{**c.__dict__, "geometry": shapely.orient_polygons(g), "geometry_wgs84": w})
        for c, g, w in zip(changes, geoms, wgs, strict=True)
    )


def detect_objects(
    before: NDArray,
    after: NDArray,
    pixel_size_m: float,
    options: ObjectOptions = ObjectOptions(),
    *,
    valid: NDArray[np.bool_] | None = None,
    transform: Affine = Affine.identity(),
    crs: CRS | None = None,
) -> ObjectChanges:
    """Find the objects of two co-registered dates and classify their change.

    Parameters
    ----------
    before, after : (B, M, N) ndarray
        Both dates on the before grid (as :func:`~satdelta.imagery.align.coregister` gives).
    pixel_size_m : float
        Pixel edge in metres.
    options : ObjectOptions, optional
    valid : (M, N) ndarray of bool, optional
        True where both dates have data; False pixels are no-data for both.
    transform, crs : optional
        Grid of the arrays, for the footprint polygons (pixel coordinates without them).

    Returns
    -------
    ObjectChanges

    Examples
    --------
    >>> b = np.full((3, 200, 200), 100.0, np.float32)
    >>> a = b.copy()
    >>> b[:, 90:110, 80:120] = 200.0  # a 10 m x 20 m bright object that leaves
    >>> found = detect_objects(b, a, 0.5)
    >>> [(o.change, o.size_class) for o in found.objects]
    [('disappeared', 'aircraft-sized')]
    >>> found.counts()["disappeared"]["aircraft-sized"]
    1
    """
    if before.shape != after.shape:
        raise InvalidParameterError(
            f"before {before.shape} and after {after.shape} must be on one grid (band, row, "
            "col). Co-register the pair first."
        )
    invalid = None if valid is None else ~np.asarray(valid, bool)
    b = find_objects(before, pixel_size_m, options, invalid=invalid)
    a = find_objects(after, pixel_size_m, options, invalid=invalid)
    changes = object_changes(b, a, pixel_size_m, options)
    return ObjectChanges(
        objects=_with_geometry(changes, b, a, transform, crs),
        pixel_size_m=float(pixel_size_m),
        options=options,
    )
