"""Discrete objects of one date (vehicles, aircraft, formations) in imagery of about 1 m or finer.

Pure computation on a ``(band, row, col)`` array and a pixel size in metres: local contrast
against a ~120 m median background, bright and dark foreground by hysteresis, whole objects by
closing at object scale, shadows attached to bright objects kept as context, dark and textured
blocks (formations, vehicle columns) told from cast shadows by their texture, shape in metres
and filters. :func:`satdelta.imagery.object_change.object_changes` matches two dates. Every
constant is a field of :class:`ObjectOptions`; docs/objects.md says where each was chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.median import median_filter
from satdelta.imagery.morphology import closing, fill_holes, opening, within_distance
from scipy import ndimage as ndi
from skimage import filters

# skimage's measure, morphology and transform (with scipy.spatial, about 0.15 s) are imported
# where objects are looked for, not by every run that imports this module for its options
if TYPE_CHECKING:
    from skimage.measure._regionprops import RegionProperties

__all__ = [
    "DateObjects",
    "FoundObject",
    "ObjectOptions",
    "SizeClass",
    "describe_mask",
    "find_objects",
    "shape_ok",
    "objects_apply",
]

SizeClass = Literal["vehicle", "aircraft-sized"]
Polarity = Literal["bright", "dark", "textured"]

#: Objects are looked for by default when the pixel edge is at most this many metres.
OBJECT_MAX_PIXEL_M = 1.25


def objects_apply(pixel_size_m: float | None, requested: bool | None) -> bool:
    """Whether a run looks for objects: ``requested`` when given, else pixels <= ~1 m.

    Examples
    --------
    >>> objects_apply(0.5, None), objects_apply(10.0, None), objects_apply(10.0, True)
    (True, False, True)
    >>> objects_apply(None, None)
    False
    """
    if requested is not None:
        return requested
    return pixel_size_m is not None and pixel_size_m <= OBJECT_MAX_PIXEL_M


@dataclass(frozen=True)
class ObjectOptions:
    """Constants of object finding and matching, in metres (one set for every sensor).

    Attributes
    ----------
    background_m : float
        Median background window; a bit more than the largest aircraft span.
    background_cell_m : float
        Cell of the block-mean level the median runs on.
    seed_z, grow_z : float
        Hysteresis thresholds (robust z-score of the local contrast): seeds, and growth.
    close_m : float
        Closing radius that joins wings, fuselage and engines into one footprint.
    shadow_gap_m : float
        A dark component this close to a bright object is its shadow (context, not an object).
    min_length_m, max_length_m : float
        Object length range.
    min_area_m2 : float
        Smallest object area.
    min_solidity : float
        Smallest area / convex-hull area (lower: painted-line networks, kerbs, roofs).
    min_aspect_large : float
        Smallest width / length of objects longer than ``vehicle_max_m`` (jet bridges out).
    vehicle_max_m : float
        Upper length of the ``vehicle`` size class; longer objects are ``aircraft-sized``.
    nodata_fraction : float
        A pixel is near-black when every band is at most this fraction of the scene's 99.9th
        percentile (8 DN of 255 for 8-bit JPEG extracts).
    nodata_min_m2, nodata_margin_m : float
        Near-black areas at least this large are no-data (smaller ones are shadows), grown by
        the margin.
    clutter_inner_m, clutter_outer_m : float
        Ring around a footprint where clutter (foreground fraction) is measured.
    max_clutter_large : float
        Aircraft-sized objects with more clutter around them (roofs, car parks) are dropped.
    shadow_reach_m, max_near_bright : float or None, float
        Aircraft-sized dark objects are kept only when at most ``max_near_bright`` of their
        footprint lies within ``shadow_reach_m`` of bright foreground (components of at least
        ``min_area_m2``): else they are taken for a cast shadow (of an aircraft, a jet bridge,
        a building). ``shadow_reach_m`` None drops them all.
    dark_min_texture_z, column_min_texture_z : float
        Aircraft-sized dark objects need a median texture contrast (:func:`texture_contrast`)
        of at least the first over their footprint, thin ones (vehicle columns) the second: a
        cast shadow is the ground darkened, smoother than its surroundings; a formation or a
        column of vehicles is a pattern of people or vehicles and their own small shadows.
    dark_block_min_m2 : float
        Dark components only ``grow_z`` deep (no ``seed_z`` seed) are objects too when at least
        this large after an opening of ``close_m`` (a formation on a pale square); 0 = off.
    texture_window_m : float
        Window of the local standard deviation whose contrast against the background finds
        textured blocks (people in a formation, neither brighter nor darker than the square).
    texture_block_min_m2 : float
        Textured components (hysteresis on that contrast, not bright or dark foreground) are
        objects when at least this large after an opening of ``close_m``; 0 = off.
    dark_columns : bool
        Thin dark objects at least ``column_min_width_m`` wide (vehicle columns with their
        shadows) pass the aspect filter.
    column_min_width_m : float
        Narrowest such column.
    match_iou : float
        Footprint IoU with an object of the other date above which the object is unchanged.
    presence_tol_m : float
        Misregistration and parallax tolerance when looking at the other date.
    presence_min : float
        Fraction of the footprint covered by the other date's foreground (either polarity,
        grown by ``presence_tol_m``) above which the object is still there.
    structure_min : float
        Gradient-magnitude correlation with the other date above which it is still there.
    grad_sigma_m : float
        Smoothing before that gradient.
    bright_level_keep : float
        A bright object is still there when the other date's mean absolute contrast over its
        footprint is at least this fraction of its own: something else stands there (a blue
        or differently painted aircraft on the same stand); 0 = off.
    change_grow_z, change_grow_m : float
        A changed object's footprint grows over the pixels whose contrast differs between the
        dates by at least ``change_grow_z``, within ``change_grow_m`` of its centre
        (:mod:`~satdelta.imagery.object_growth`) where the other date is plain ground (its
        contrast within ``change_plain_z`` of the background); ``change_grow_z`` 0 = off.
    level_keep : float
        A dark or textured object is still there when the other date is, over its footprint,
        at least this fraction as dark (or textured) against its background: such weak objects
        sit near the threshold, where foreground alone flickers between dates.
    shadow_move_m : float
        A dark object missing on the other date is a moved shadow (not reported) when the
        other date is dark (``grow_z``) over at least as many pixels as its footprint within
        this distance of it: a shadow moves with the sun, a formation that arrives does not
        leave a dark twin nearby.
    nodata_max_frac : float
        Objects with more of their footprint on the other date's no-data get no change.

    Raises
    ------
    InvalidParameterError
        A value that is not a finite number, negative, or a range in the wrong order.

    Examples
    --------
    >>> ObjectOptions().shadow_reach_m
    10.0
    >>> ObjectOptions(shadow_reach_m=None, dark_columns=False).dark_columns
    False
    """

    background_m: float = 120.0
    background_cell_m: float = 4.0
    seed_z: float = 4.0
    grow_z: float = 2.0
    close_m: float = 1.5
    shadow_gap_m: float = 1.5
    min_length_m: float = 3.0
    max_length_m: float = 120.0
    min_area_m2: float = 6.0
    min_solidity: float = 0.25
    min_aspect_large: float = 0.3
    vehicle_max_m: float = 15.0
    nodata_fraction: float = 8.0 / 255.0
    nodata_min_m2: float = 2000.0
    nodata_margin_m: float = 5.0
    clutter_inner_m: float = 4.0
    clutter_outer_m: float = 12.0
    max_clutter_large: float = 0.2
    # chosen on the sample square (its pale granite is bright foreground beside column 2)
    shadow_reach_m: float | None = 10.0
    max_near_bright: float = 0.2
    dark_block_min_m2: float = 100.0  # sample square (formations ~450 m²)
    # sample square (formations 2.8-3.5, columns 11) and airbus P01 (building shadows < 0)
    dark_min_texture_z: float = 2.0
    column_min_texture_z: float = 8.0
    texture_window_m: float = 1.5  # people about 1.2 m apart (sample square)
    texture_block_min_m2: float = 100.0  # sample square
    dark_columns: bool = True
    column_min_width_m: float = 3.0
    match_iou: float = 0.2
    presence_tol_m: float = 2.0
    presence_min: float = 0.5
    structure_min: float = 0.3
    grad_sigma_m: float = 0.5
    nodata_max_frac: float = 0.1
    shadow_move_m: float = 15.0
    level_keep: float = 0.5
    bright_level_keep: float = 0.5  # airbus dev split P01, P02, P09, P13 (0.4, 0.6 tried)
    # airbus dev split P09 and P13 (change_grow_z 5; change_plain_z 1, 2 tried)
    change_grow_z: float = 3.0
    change_grow_m: float = 40.0
    change_plain_z: float = 1.5

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "dark_columns":
                if not isinstance(v, bool):
                    raise InvalidParameterError(f"dark_columns must be True or False; got {v!r}.")
                continue
            if v is None and f.name == "shadow_reach_m":
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise InvalidParameterError(
                    f"object option {f.name} must be a finite number; got {v!r}."
                )
            if v < 0:
                raise InvalidParameterError(f"object option {f.name} must be >= 0; got {v!r}.")
            object.__setattr__(self, f.name, float(v))
        if self.grow_z > self.seed_z or self.min_length_m > self.max_length_m:
            raise InvalidParameterError(
                "object options need grow_z <= seed_z and min_length_m <= max_length_m; got "
                f"{self.grow_z:g} / {self.seed_z:g} and {self.min_length_m:g} / "
                f"{self.max_length_m:g}."
            )

    def to_dict(self) -> dict[str, float | bool | None]:
        """Every field, JSON-ready."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class FoundObject:
    """One object of one date, on that date's pixel grid.

    ``bbox`` is (row_min, col_min, row_max, col_max), max exclusive; ``centroid`` (row, col);
    ``orientation_deg`` is the bearing of the long axis, clockwise from grid up, in [0, 180).
    """

    id: int
    polarity: Polarity
    bbox: tuple[int, int, int, int]
    centroid: tuple[float, float]
    length_m: float
    width_m: float
    area_m2: float
    solidity: float
    orientation_deg: float
    size_class: SizeClass
    contrast_z: float


@dataclass(frozen=True)
class DateObjects:
    """What one date contributes to the change test (every layer ``(M, N)`` on one grid).

    Attributes
    ----------
    labels : ndarray of int32
        ``id + 1`` of the object whose footprint covers the pixel, 0 elsewhere.
    foreground : ndarray of bool
        True = bright or dark foreground (closed), objects, shadows and clutter alike.
    contrast, texture : ndarray of float32
        Robust z-scores of the luminance and of its local standard deviation against their
        backgrounds (:func:`local_contrast`, :func:`texture_contrast`).
    nodata : ndarray of bool
        True = no data on this date (a black band, outside the scene).
    grad : ndarray of float32
        Gradient magnitude of the smoothed contrast (the structure test).
    objects : tuple of FoundObject
        ``objects[i].id == i``.
    """

    labels: NDArray[np.int32]
    foreground: NDArray[np.bool_]
    contrast: NDArray[np.float32]
    texture: NDArray[np.float32]
    nodata: NDArray[np.bool_]
    grad: NDArray[np.float32]
    objects: tuple[FoundObject, ...]

    def footprint(self, obj: FoundObject) -> tuple[tuple[slice, slice], NDArray[np.bool_]]:
        """Slices of the object's box and its footprint mask (True = object) inside it."""
        sl = bbox_slices(obj.bbox, 0, self.labels.shape)
        return sl, self.labels[sl] == obj.id + 1


def bbox_slices(
    bbox: tuple[int, int, int, int], margin: int, shape: tuple[int, ...]
) -> tuple[slice, slice]:
    """Row and column slices of a box grown by ``margin`` pixels, clipped to ``shape``."""
    r0, c0, r1, c1 = bbox
    return (
        slice(max(0, r0 - margin), min(shape[0], r1 + margin)),
        slice(max(0, c0 - margin), min(shape[1], c1 + margin)),
    )


def _px(metres: float, px: float) -> int:
    return max(1, round(metres / px))


def luminance(image: NDArray) -> NDArray[np.float32]:
    """Mean of the visible bands (the first three, or all when fewer), ``(M, N)`` float32."""
    return image[: min(3, image.shape[0])].astype(np.float32).mean(axis=0)


def nodata_mask(
    image: NDArray, px: float, options: ObjectOptions, invalid: NDArray[np.bool_] | None = None
) -> NDArray[np.bool_]:
    """True where the date has no data: ``invalid``, and large near-black areas (grown)."""
    out = np.zeros(image.shape[1:], bool) if invalid is None else invalid.copy()
    finite = image[:, ~out] if out.any() else image.reshape(image.shape[0], -1)
    top = float(np.percentile(finite, 99.9)) if finite.size else 0.0
    black = np.all(image <= options.nodata_fraction * top, axis=0) & ~out
    if black.any():
        lab, _ = ndi.label(black)
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        black = sizes[lab] >= options.nodata_min_m2 / px**2
        if black.any():
            out |= ndi.binary_dilation(black, iterations=_px(options.nodata_margin_m, px))
    return out


def local_contrast(
    gray: NDArray[np.float32], nodata: NDArray[np.bool_], px: float, options: ObjectOptions
) -> NDArray[np.float32]:
    """Robust z-score of ``gray`` minus its median background (0 on no-data)."""
    from skimage import transform

    k = max(1, round(options.background_cell_m / px))
    h, w = gray.shape
    fill = float(np.median(gray[~nodata])) if (~nodata).any() else 0.0
    filled = np.where(nodata, fill, gray)
    hp, wp = -(-h // k) * k, -(-w // k) * k
    padded = np.pad(filled, ((0, hp - h), (0, wp - w)), mode="edge")
    cells = padded.reshape(hp // k, k, wp // k, k).mean(axis=(1, 3))
    size = max(3, round(options.background_m / options.background_cell_m) | 1)
    bg_cells = median_filter(cells, size)  # scipy's median_filter (mode reflect)
    bg = transform.resize(bg_cells, (hp, wp), order=1, preserve_range=True)[:h, :w]
    diff = gray - bg.astype(np.float32)
    valid = diff[~nodata] if (~nodata).any() else diff.ravel()
    med = float(np.median(valid))
    mad = float(np.median(np.abs(valid - med))) * 1.4826 + 1e-6
    z = (diff - med) / mad
    z[nodata] = 0.0
    return z.astype(np.float32)


def _close(mask: NDArray[np.bool_], px: float, options: ObjectOptions) -> NDArray[np.bool_]:
    from skimage import morphology

    r = round(options.close_m / px)
    if r >= 1:  # padded so that the image edge does not erode what touches it
        padded = np.pad(mask, r)
        mask = closing(padded, morphology.disk(r))[r:-r, r:-r]  # scipy's binary_closing
    return fill_holes(mask)


def _describe(
    region: RegionProperties,
    px: float,
    polarity: Polarity,
    options: ObjectOptions,
) -> FoundObject:
    r0, c0, r1, c1 = region.bbox
    # extent-based length: the major axis of a cross-shaped aircraft underestimates it
    length = max(max(region.axis_major_length, 1.0) * px, min(r1 - r0, c1 - c0) * px)
    width = min(max(region.axis_minor_length, 1.0) * px, length)
    return FoundObject(
        id=-1,
        polarity=polarity,
        bbox=(int(r0), int(c0), int(r1), int(c1)),
        centroid=(float(region.centroid[0]), float(region.centroid[1])),
        length_m=float(length),
        width_m=float(width),
        area_m2=float(region.area * px**2),
        solidity=math.nan,  # set once the cheaper tests pass (the convex hull is costly)
        orientation_deg=float(-np.degrees(region.orientation) % 180.0),
        size_class="vehicle" if length <= options.vehicle_max_m else "aircraft-sized",
        contrast_z=0.0,
    )


def describe_mask(
    mask: NDArray[np.bool_],
    offset: tuple[int, int],
    px: float,
    polarity: Polarity,
    options: ObjectOptions,
) -> FoundObject | None:
    """Shape record (id -1) of the pixels of ``mask`` (its largest component's shape measures,
    every pixel's box), ``mask`` lying at ``offset`` (row, col) on the grid; None when empty."""
    from skimage import measure

    lab = measure.label(mask, connectivity=2)
    regions = measure.regionprops(lab)
    if not regions:
        return None
    region = max(regions, key=lambda r: r.area)
    obj = _describe(region, px, polarity, options)
    rows, cols = np.nonzero(mask)
    r0, c0 = offset
    return replace(
        obj,
        bbox=(
            r0 + int(rows.min()),
            c0 + int(cols.min()),
            r0 + int(rows.max()) + 1,
            c0 + int(cols.max()) + 1,
        ),
        centroid=(r0 + float(rows.mean()), c0 + float(cols.mean())),
        area_m2=float(mask.sum() * px**2),
        solidity=float(region.solidity),
    )


def shape_ok(obj: FoundObject, options: ObjectOptions) -> bool:
    """Length, area, width / length (long objects) and solidity within the options' bounds."""
    return _size_ok(obj, options) and obj.solidity >= options.min_solidity


def _size_ok(obj: FoundObject, options: ObjectOptions) -> bool:
    """Length, area and (for long objects) width / length within the options' bounds."""
    o = options
    if not (o.min_length_m <= obj.length_m <= o.max_length_m) or obj.area_m2 < o.min_area_m2:
        return False
    if obj.length_m <= o.vehicle_max_m or obj.width_m >= o.min_aspect_large * obj.length_m:
        return True
    return o.dark_columns and obj.polarity == "dark" and obj.width_m >= o.column_min_width_m


def _add_objects(
    mask: NDArray[np.bool_],
    polarity: Polarity,
    z: NDArray[np.float32],
    px: float,
    options: ObjectOptions,
    labels: NDArray[np.int32],
    found: list[FoundObject],
) -> None:
    """Label ``mask``, describe and filter its components, paint kept ones into ``labels``."""
    from skimage import measure

    lab = measure.label(mask, connectivity=2)
    for region in measure.regionprops(lab):
        if region.area * px**2 < options.min_area_m2:
            continue
        obj = _describe(region, px, polarity, options)
        if not _size_ok(obj, options) or region.solidity < options.min_solidity:
            continue
        idx = tuple(region.coords.T)
        obj = replace(
            obj,
            id=len(found),
            solidity=float(region.solidity),
            contrast_z=float(np.abs(z[idx]).mean()),
        )
        found.append(obj)
        labels[idx] = obj.id + 1


def _ring_fraction(
    labels: NDArray[np.int32],
    layer: NDArray[np.bool_],
    obj: FoundObject,
    inner: int,
    outer: int,
) -> float:
    """Fraction of the ring ``inner < distance <= outer`` px around the footprint on ``layer``."""
    sl = bbox_slices(obj.bbox, outer, labels.shape)
    fp = labels[sl] == obj.id + 1
    dist = ndi.distance_transform_edt(~fp)
    ring = (dist > inner) & (dist <= outer)
    return float(layer[sl][ring].mean()) if ring.any() else 0.0


def _keep_large(
    obj: FoundObject,
    labels: NDArray[np.int32],
    fg: NDArray[np.bool_],
    near_bright: NDArray[np.bool_] | None,
    texture: NDArray[np.float32],
    px: float,
    options: ObjectOptions,
) -> bool:
    """Aircraft-sized objects: open surroundings; dark ones only far from bright foreground
    (``near_bright``: True within ``shadow_reach_m`` of it; None = drop every dark one)."""
    inner, outer = round(options.clutter_inner_m / px), round(options.clutter_outer_m / px)
    if _ring_fraction(labels, fg, obj, inner, outer) > options.max_clutter_large:
        return False
    if obj.polarity == "bright":
        return True
    if near_bright is None:
        return False
    sl = bbox_slices(obj.bbox, 0, labels.shape)
    fp = labels[sl] == obj.id + 1
    thin = obj.width_m < options.min_aspect_large * obj.length_m
    smooth = float(np.median(texture[sl][fp])) < (
        options.column_min_texture_z if thin else options.dark_min_texture_z
    )
    return not smooth and near_bright[sl][fp].mean() <= options.max_near_bright


def _near_bright(
    bright: NDArray[np.bool_], px: float, options: ObjectOptions
) -> NDArray[np.bool_] | None:
    """True within ``shadow_reach_m`` of bright foreground components of ``min_area_m2`` or more
    (painted specks do not count); None when ``shadow_reach_m`` is None."""
    if options.shadow_reach_m is None:
        return None
    lab, _ = ndi.label(bright)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    big = sizes[lab] >= options.min_area_m2 / px**2
    if not big.any():
        return big
    return within_distance(big, options.shadow_reach_m / px)


def _blocks(mask: NDArray[np.bool_], min_m2: float, px: float, close_m: float) -> NDArray[np.bool_]:
    """Components of ``mask`` opened by ``close_m`` that are at least ``min_m2`` large."""
    from skimage import morphology

    r = round(close_m / px)
    opened = opening(mask, morphology.disk(r)) if r >= 1 else mask  # scipy's binary_opening
    lab, _ = ndi.label(opened)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return sizes[lab] >= min_m2 / px**2


def texture_contrast(
    gray: NDArray[np.float32], nodata: NDArray[np.bool_], px: float, options: ObjectOptions
) -> NDArray[np.float32]:
    """Robust z-score of the local standard deviation (``texture_window_m``) against its
    median background (:func:`local_contrast` of it)."""
    size = max(3, round(options.texture_window_m / px) | 1)
    mean = ndi.uniform_filter(gray, size)
    spread = np.sqrt(np.clip(ndi.uniform_filter(gray * gray, size) - mean * mean, 0, None))
    return local_contrast(spread.astype(np.float32), nodata, px, options)


def _weak_blocks(
    z: NDArray[np.float32],
    texture: NDArray[np.float32],
    taken: NDArray[np.bool_],
    px: float,
    options: ObjectOptions,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Dark blocks only ``grow_z`` deep and textured blocks, outside ``taken`` (see
    ``dark_block_min_m2`` and ``texture_block_min_m2``)."""
    dark = np.zeros(z.shape, bool)
    if options.dark_block_min_m2 > 0:
        weak = (z <= -options.grow_z) & ~taken
        dark = _blocks(weak, options.dark_block_min_m2, px, options.close_m)
    busy = np.zeros(z.shape, bool)
    if options.texture_block_min_m2 > 0:
        hyst = filters.apply_hysteresis_threshold(texture, options.grow_z, options.seed_z)
        busy = _blocks(hyst & ~taken & ~dark, options.texture_block_min_m2, px, options.close_m)
    return dark, busy


def find_objects(
    image: NDArray,
    pixel_size_m: float,
    options: ObjectOptions = ObjectOptions(),
    *,
    invalid: NDArray[np.bool_] | None = None,
) -> DateObjects:
    """Objects of one date: footprints, shape records, foreground, no-data and gradient.

    Parameters
    ----------
    image : (B, M, N) ndarray
        One date's pixels (the first three bands make the luminance).
    pixel_size_m : float
        Pixel edge in metres; every option in metres is turned into pixels with it.
    options : ObjectOptions, optional
    invalid : (M, N) ndarray of bool, optional
        True where the date has no data (outside the scene, masked).

    Returns
    -------
    DateObjects

    Examples
    --------
    >>> img = np.full((3, 200, 200), 100.0, np.float32)
    >>> img[:, 90:110, 80:120] = 200.0  # a bright 10 m x 20 m object at 0.5 m
    >>> found = find_objects(img, 0.5)
    >>> [(o.size_class, round(o.length_m), o.polarity) for o in found.objects]
    [('aircraft-sized', 23, 'bright')]
    """
    if image.ndim != 3 or not pixel_size_m > 0:
        raise InvalidParameterError(
            f"find_objects needs a (band, row, col) image and a pixel size > 0 m; got shape "
            f"{image.shape} and {pixel_size_m!r} m."
        )
    px = float(pixel_size_m)
    nodata = nodata_mask(image, px, options, invalid)
    gray = luminance(image)
    z = local_contrast(gray, nodata, px, options)
    bright = _close(
        filters.apply_hysteresis_threshold(z, options.grow_z, options.seed_z), px, options
    )
    dark = filters.apply_hysteresis_threshold(-z, options.grow_z, options.seed_z) & ~bright
    labels = np.zeros(z.shape, np.int32)
    found: list[FoundObject] = []
    _add_objects(bright & ~nodata, "bright", z, px, options, labels, found)
    # dark components touching a kept bright object are its shadow: context, not objects
    gap = _px(options.shadow_gap_m, px)
    near_bright = ndi.binary_dilation(labels > 0, iterations=gap)
    dark_lab, _ = ndi.label(dark)
    attached = np.unique(dark_lab[near_bright & dark])
    alone = dark & ~np.isin(dark_lab, attached[attached > 0])
    dark_c = _close(alone, px, options) & ~bright
    _add_objects(dark_c & ~nodata & (labels == 0), "dark", z, px, options, labels, found)
    fg = bright | dark_c | dark  # clutter around objects is measured on this
    texture = texture_contrast(gray, nodata, px, options)
    weak_dark, textured = _weak_blocks(z, texture, fg, px, options)
    _add_objects(weak_dark & ~nodata & (labels == 0), "dark", z, px, options, labels, found)
    _add_objects(textured & ~nodata & (labels == 0), "textured", z, px, options, labels, found)
    near_bright = (
        _near_bright(bright, px, options)
        if any(o.polarity != "bright" and o.size_class != "vehicle" for o in found)
        else None
    )
    kept = [
        o
        for o in found
        if o.size_class == "vehicle"
        or _keep_large(o, labels, fg, near_bright, texture, px, options)
    ]
    relabel = np.zeros(len(found) + 1, np.int32)
    for new_id, o in enumerate(kept):
        relabel[o.id + 1] = new_id + 1
    grad = filters.sobel(ndi.gaussian_filter(z, options.grad_sigma_m / px)).astype(np.float32)
    return DateObjects(
        labels=relabel[labels],
        foreground=fg,  # weak blocks are looked for on the other date by level (level_keep)
        contrast=z,
        texture=texture,
        nodata=nodata,
        grad=grad,
        objects=tuple(replace(o, id=i) for i, o in enumerate(kept)),
    )
