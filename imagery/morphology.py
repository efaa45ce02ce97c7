"""Clean-up of a binary change mask: morphology and a minimum area in square metres.

All operations are local with a known halo (:func:`cleanup_halo_px`), so a
block runner can apply them per window. The minimum-area filter is exact
only for objects that fit inside a window plus halo; the block runner should
use a halo at least as large as the largest object it must judge.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.errors import InvalidParameterError
from scipy import ndimage

__all__ = [
    "area_to_pixels",
    "clean_mask",
    "cleanup_halo_px",
    "MERGE_GAP_PX",
    "MIN_REGION_PX",
    "closing",
    "disk",
    "fill_holes",
    "group_labels",
    "majority3",
    "min_region_pixels",
    "opening",
    "remove_small",
    "rows_pass",
    "square_dilation",
    "within_distance",
]

log = logging.getLogger(__name__)

#: Changed fragments this many pixels apart or closer are one candidate: a change seen through
#: noise often breaks into pieces a pixel or two apart (a roof split by a ridge line, a
#: clearing by one standing tree), and an analyst reviews it as one thing.
MERGE_GAP_PX = 2
#: Smallest candidate, in pixels, whatever the minimum area in m²: a smaller region cannot
#: be told from a misregistered edge or a single noisy pixel.
MIN_REGION_PX = 4
#: Minimum area in m² when none is given.
DEFAULT_MIN_AREA_M2 = 4.0


def area_to_pixels(min_area_m2: float, pixel_size_m: float | None) -> int:
    """Number of pixels an area in m² covers (rounded up; 0 for area 0).

    With ``pixel_size_m=None`` (not georeferenced) the area is read as pixels.

    Examples
    --------
    >>> area_to_pixels(1800.0, 30.0)
    2
    >>> area_to_pixels(5, None)
    5
    """
    if not math.isfinite(min_area_m2) or min_area_m2 < 0:
        raise InvalidParameterError(
            f"min_area_m2 must be a finite number >= 0 (square metres), got {min_area_m2!r}."
        )
    if pixel_size_m is None:
        return int(math.ceil(min_area_m2))
    if not (math.isfinite(pixel_size_m) and pixel_size_m > 0):
        raise InvalidParameterError(
            f"pixel_size_m must be a positive number of metres, got {pixel_size_m!r}."
        )
    return int(math.ceil(min_area_m2 / pixel_size_m**2 - 1e-9))


def group_labels(
    mask: NDArray[np.bool_], *, gap_px: int = 0, connectivity: Literal[4, 8] = 8
) -> tuple[NDArray[np.int32], int]:
    """Label the True pixels by region: ``connectivity``-connected, bridging gaps of ``gap_px``.

    Fragments at most ``gap_px`` pixels apart get one label: the components are found on the
    mask dilated by a square of half-width ``ceil(gap_px / 2)`` (used for grouping only;
    the labels are kept on the True pixels alone).

    Returns
    -------
    labels : (M, N) int32 ndarray
        0 where False, 1..n on the regions (in raster order of their first pixel).
    n : int

    Examples
    --------
    >>> m = np.zeros((3, 6), bool); m[1, 0] = m[1, 3] = True
    >>> group_labels(m, gap_px=2, connectivity=4)[1], group_labels(m, connectivity=4)[1]
    (1, 2)
    """
    if connectivity not in (4, 8):
        raise InvalidParameterError(f"connectivity must be 4 or 8; got {connectivity!r}.")
    if gap_px < 0:
        raise InvalidParameterError(f"gap_px must be >= 0; got {gap_px!r}.")
    mask = np.asarray(mask, dtype=bool)
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    half = -(-int(gap_px) // 2)
    grown = mask if half == 0 else square_dilation(mask, half)
    lab, n = ndimage.label(grown, structure=structure)
    if half == 0:
        return lab.astype(np.int32, copy=False), int(n)
    # renumber the labels that kept a pixel, in raster order of their first pixel (found
    # among the first pixels of each run of one label: far fewer to sort)
    on_mask = lab[mask]
    runs = np.flatnonzero(np.diff(on_mask, prepend=-1))
    used, first = np.unique(on_mask[runs], return_index=True)
    order = used[np.argsort(first)]
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[order] = np.arange(1, order.size + 1, dtype=np.int32)
    out = np.zeros(mask.shape, np.int32)
    out[mask] = lut[on_mask]
    return out, int(order.size)


def square_dilation(mask: NDArray[np.bool_], half: int) -> NDArray[np.bool_]:
    """``mask`` dilated by a (2 half + 1) square, False past the edges (shifted ORs: for the
    small squares used here several times faster than ``ndimage.maximum_filter``)."""
    rows = mask.copy()
    for k in range(1, half + 1):
        rows[k:] |= mask[:-k]
        rows[:-k] |= mask[k:]
    out = rows.copy()
    for k in range(1, half + 1):
        out[:, k:] |= rows[:, :-k]
        out[:, :-k] |= rows[:, k:]
    return out


def fill_holes(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``scipy.ndimage.binary_fill_holes(mask)``: False regions (4-connected) that do not
    reach the array's edge set True.

    scipy grows the background in from the edge one pixel a pass until nothing changes (on a
    2560² object mask, dozens of whole-image passes); one labelling of the background gives
    the same holes.

    Examples
    --------
    >>> m = np.zeros((5, 6), bool); m[1:4, 1:4] = True; m[2, 2] = False; m[0, 5] = True
    >>> fill_holes(m).astype(int).tolist()[2]
    [0, 1, 1, 1, 0, 0]
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or m.size == 0:
        return ndimage.binary_fill_holes(m)
    lab, n = ndimage.label(~m)  # 4-connected, as scipy's fill grows
    if n == 0:
        return m.copy()
    outside = np.zeros(n + 1, bool)
    for edge in (lab[0], lab[-1], lab[:, 0], lab[:, -1]):
        outside[edge] = True
    outside[0] = True  # label 0: the mask itself
    return m | ~outside[lab]


def within_distance(mask: NDArray[np.bool_], radius_px: float) -> NDArray[np.bool_]:
    """``scipy.ndimage.distance_transform_edt(~mask) <= radius_px``: True within
    ``radius_px`` (Euclidean, in pixels) of a True pixel.

    scipy's transform finds every pixel's nearest True pixel and takes the square root of
    the (integer) squared distance to it; the pixels within the radius are those of a
    dilation by the offsets whose distance, computed the same way, is within it:
    :func:`rows_pass` by that disk, 1.5-3.5x faster on 2560² masks.

    Examples
    --------
    >>> m = np.zeros((5, 9), bool); m[2, 4] = True
    >>> within_distance(m, 2.0).astype(int).tolist()[2]
    [0, 0, 1, 1, 1, 1, 1, 0, 0]
    """
    m = np.asarray(mask, dtype=bool)
    # other shapes, odd radii and a mask with no True pixel (no distance to measure): scipy's
    if m.ndim != 2 or not np.isfinite(radius_px) or radius_px < 0 or not m.any():
        return ndimage.distance_transform_edt(~m) <= radius_px
    r = min(int(math.floor(radius_px)), max(m.shape))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    offsets = np.sqrt((yy * yy + xx * xx).astype(np.float64)) <= radius_px
    return rows_pass(m, offsets, erode=False)


def min_region_pixels(
    min_area_m2: float | None, pixel_size_m: float | None, min_pixels: int = MIN_REGION_PX
) -> int:
    """Smallest candidate in pixels: ``max(min_area_m2 or 4 m², min_pixels)`` in pixels.

    Examples
    --------
    >>> min_region_pixels(None, 5.0), min_region_pixels(1000.0, 5.0), min_region_pixels(0, 0.5)
    (4, 40, 4)
    >>> min_region_pixels(None, 0.5)  # 4 m² is 16 pixels of 0.5 m
    16
    """
    area = DEFAULT_MIN_AREA_M2 if min_area_m2 is None else min_area_m2
    return max(area_to_pixels(area, pixel_size_m), int(min_pixels))


def remove_small(
    mask: NDArray[np.bool_],
    min_pixels: int,
    *,
    gap_px: int = 0,
    connectivity: Literal[4, 8] = 8,
) -> NDArray[np.bool_]:
    """Drop True regions (as :func:`group_labels` defines them) smaller than ``min_pixels``.

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[0, 0] = True; m[2:5, 2:5] = True
    >>> remove_small(m, 2).sum()
    np.int64(9)
    >>> remove_small(m, 2, gap_px=2, connectivity=4).sum()  # the speck joins the square
    np.int64(10)
    """
    if min_pixels <= 1:
        return mask.copy()
    lab, n = group_labels(mask, gap_px=gap_px, connectivity=connectivity)
    if n == 0:
        return mask.copy()
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[lab]


def disk(radius_px: int) -> NDArray[np.bool_]:
    """Disk structuring element of the clean-up: ``y² + x² <= r² + r`` (slightly rounder).

    Examples
    --------
    >>> int(disk(0).sum()), int(disk(1).sum()), int(disk(2).sum())
    (1, 9, 21)
    """
    r = max(int(radius_px), 0)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy**2 + xx**2) <= r * r + r


def majority3(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """3 x 3 majority vote (the binary median filter): True where at least 5 of the 9 are True.

    The median filter removes isolated ("impulse") decisions - single True pixels and
    single-pixel gaps - while leaving straight edges in place; convex corners are rounded
    (Tukey 1977, *Exploratory Data Analysis*; Huang, Yang & Tang 1979, "A fast
    two-dimensional median filtering algorithm", IEEE TASSP 27(1)). Borders are reflected
    (edge pixels repeated); a window needs a halo of 1 pixel.

    Examples
    --------
    >>> m = np.zeros((5, 8), bool); m[1:4, 1:5] = True; m[2, 2] = False; m[0, 7] = True
    >>> out = majority3(m)
    >>> bool(out[2, 2]), bool(out[0, 7]), bool(out[1, 2]), bool(out[0, 2])  # hole, speck, edge
    (True, False, True, False)
    """
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return m.copy()
    # the 3 x 3 box sum as shifted adds: rows first, then columns (edge pixels repeated,
    # which is scipy.ndimage's "reflect" and numpy's "symmetric")
    p = np.pad(m.view(np.uint8), 1, mode="symmetric")
    rows = p[:-2] + p[1:-1]
    rows += p[2:]
    counts = rows[:, :-2] + rows[:, 1:-1]
    counts += rows[:, 2:]
    return counts >= 5


def opening(m: NDArray[np.bool_], structure: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``scipy.ndimage.binary_opening(m, structure=structure)`` by :func:`rows_pass` (the
    erosion, then the dilation)."""
    return rows_pass(rows_pass(m, structure, erode=True), structure, erode=False)


def closing(m: NDArray[np.bool_], structure: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``scipy.ndimage.binary_closing(m, structure=structure)`` by :func:`rows_pass` (the
    dilation, then the erosion)."""
    return rows_pass(rows_pass(m, structure, erode=False), structure, erode=True)


def rows_pass(
    m: NDArray[np.bool_], structure: NDArray[np.bool_], *, erode: bool
) -> NDArray[np.bool_]:
    """Erosion or dilation by a symmetric structuring element each of whose rows is one
    centred run of pixels (a disk, a diamond, a square), pixels past the border False.

    The element is the union of horizontal segments stacked vertically; a binary erosion
    (dilation) by it is the AND (OR) of the 1-D running minimum (maximum) over each row's
    segment, shifted by that row's offset (the decomposition of a structuring element into
    line segments: Soille 2003, *Morphological Image Analysis*, 2nd ed., sec. 3.9): a pass
    per row of the element and one running filter per distinct width, where scipy visits
    every pixel of the element at every pixel. Matches :func:`scipy.ndimage.binary_erosion`
    / ``binary_dilation`` with ``structure`` and ``border_value=0``.

    Examples
    --------
    >>> m = np.zeros((7, 7), bool); m[3, 3] = True
    >>> rows_pass(m, disk(1), erode=False).sum(), rows_pass(m, disk(1), erode=True).sum()
    (np.int64(9), np.int64(0))
    """
    se = np.asarray(structure, bool)
    if se.ndim != 2 or se.shape[0] % 2 == 0 or se.shape[1] % 2 == 0:
        raise InvalidParameterError(f"rows_pass needs an odd 2-D element; got {se.shape}.")
    r = se.shape[0] // 2
    u = np.asarray(m, bool).view(np.uint8)
    out = np.full(u.shape, erode, dtype=bool)
    rows = u.shape[0]
    filt = ndimage.minimum_filter1d if erode else ndimage.maximum_filter1d
    widths = se.sum(axis=1)
    # one running filter per distinct width, used by every row of the element of that
    # width and dropped (one array of the mask's size at a time, whatever the element)
    for width in sorted({int(w) for w in widths if w > 0}):
        run = filt(u, width, axis=1, mode="constant", cval=0).view(bool)
        for dy in np.flatnonzero(widths == width).tolist():
            dy -= r
            # out[y] (&= or |=) run[y + dy], rows past the border being False
            lo, hi = max(0, -dy), min(rows, rows - dy)
            if erode:
                if lo >= hi:  # every row's neighbour at dy lies past the border
                    out[:] = False
                    continue
                out[lo:hi] &= run[lo + dy : hi + dy]
                out[:lo] = False
                out[hi:] = False
            elif lo < hi:
                out[lo:hi] |= run[lo + dy : hi + dy]
    return out


def cleanup_halo_px(radius_px: int) -> int:
    """Halo (pixels per side) a window needs for :func:`clean_mask` with this radius."""
    return 2 * max(int(radius_px), 0)


def clean_mask(
    changed: NDArray[np.bool_],
    *,
    valid: NDArray[np.bool_] | None = None,
    radius_px: int = 0,
    min_pixels: int = 0,
    mode: Literal["open", "open-close"] = "open",
) -> NDArray[np.bool_]:
    """Morphological opening (then optionally closing) with a disk, then a minimum region size.

    The opening removes changed regions narrower than the disk (slivers along edges that
    co-registration residue leaves); ``"open-close"`` then also fills gaps narrower than it.
    The mask is padded by reflection so regions touching the border are not eroded.

    Parameters
    ----------
    changed : (M, N) bool ndarray
        True = changed.
    valid : (M, N) bool ndarray, optional
        True = pixel has data; the result is always False where not valid.
    radius_px : int, optional
        Disk radius of the opening/closing (0 = none).
    mode : {"open", "open-close"}, optional
        Opening only (default) or opening then closing.
    min_pixels : int, optional
        Regions with fewer pixels are dropped.

    Returns
    -------
    (M, N) bool ndarray
        True = changed.

    Examples
    --------
    >>> m = np.zeros((7, 7), bool); m[1:6, 1:6] = True; m[0, 6] = True
    >>> int(clean_mask(m, radius_px=1).sum())  # the lone corner pixel is gone
    25
    """
    if mode not in ("open", "open-close"):
        raise InvalidParameterError(f"mode must be 'open' or 'open-close', got {mode!r}.")
    if radius_px < 0 or min_pixels < 0:
        raise InvalidParameterError(
            f"radius_px and min_pixels must be >= 0, got {radius_px} and {min_pixels}."
        )
    out = np.asarray(changed, dtype=bool)
    if valid is not None:
        out = out & valid
    if radius_px > 0:
        r = int(radius_px)  # structuring element: disk(r), slightly rounder than the exact disk
        pad = 2 * r
        padded = np.pad(out, pad, mode="symmetric" if min(out.shape) < 2 else "reflect")
        # the padding keeps the border out of the result
        padded = opening(padded, disk(r))
        if mode == "open-close":
            padded = closing(padded, disk(r))
        out = padded[pad:-pad, pad:-pad]
    if min_pixels > 1:
        out = remove_small(out, min_pixels)
    if valid is not None:
        out &= valid
    return out
