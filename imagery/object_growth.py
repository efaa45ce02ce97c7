"""Keep a changed object whole: grow its footprint over the change around it.

An aircraft is often found as a fragment (its tail, one bright wing root) because its wings are
thin and its fuselage is painted darker than the concrete: only part of it stands out from the
background on its own date.  When it leaves or arrives, though, the whole aircraft differs
between the dates.  The footprint of a changed object is therefore grown by morphological
reconstruction (Vincent 1993) over the pixels whose contrast differs between the dates by at
least ``ObjectOptions.change_grow_z``, within ``change_grow_m`` of its centre; other changed
objects of the same date that the grown footprint covers are parts of it and are dropped.  A
grown footprint the other date still mostly covers with foreground (``presence_min``) is not
used, nor one whose edges correlate with the other date's (``structure_min``): the fragment is
part of something standing and is ``unchanged``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.morphology import fill_holes
from satdelta.imagery.objects import (
    DateObjects,
    FoundObject,
    ObjectOptions,
    describe_mask,
    shape_ok,
)
from scipy import ndimage as ndi

__all__ = ["grow_changed", "ncc"]


def ncc(a: NDArray, b: NDArray) -> float:
    """Normalised cross-correlation of two equally shaped samples (0 when flat)."""
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def _window(obj: FoundObject, reach: int, shape: tuple[int, ...]) -> tuple[slice, slice]:
    r, c = (round(v) for v in obj.centroid)
    return (
        slice(max(0, r - reach), min(shape[0], r + reach + 1)),
        slice(max(0, c - reach), min(shape[1], c + reach + 1)),
    )


def _grown(
    obj: FoundObject, mine: DateObjects, other: DateObjects, px: float, options: ObjectOptions
) -> tuple[tuple[slice, slice], NDArray[np.bool_]]:
    """Window and mask (inside it) of the object's footprint grown over the change."""
    reach = max(1, round(options.change_grow_m / px))
    win = _window(obj, reach, mine.labels.shape)
    seed = mine.labels[win] == obj.id + 1
    # differs between the dates, and the other date is plain ground there (not a standing
    # neighbour, nor its shadow)
    differs = (np.abs(mine.contrast[win] - other.contrast[win]) >= options.change_grow_z) & (
        np.abs(other.contrast[win]) < options.change_plain_z
    )
    rr, cc = np.ogrid[win[0], win[1]]
    disk = (rr - obj.centroid[0]) ** 2 + (cc - obj.centroid[1]) ** 2 <= reach**2
    free = (mine.labels[win] == 0) & (other.labels[win] == 0)  # not into another object
    allowed = (differs & disk & free & ~mine.nodata[win] & ~other.nodata[win]) | seed
    lab, _ = ndi.label(allowed, structure=np.ones((3, 3), bool))
    touched = np.unique(lab[seed])
    grown = np.isin(lab, touched[touched > 0])
    return win, fill_holes(grown)


def grow_changed(
    rows: list[tuple[FoundObject, str, float, float, float, float]],
    mine: DateObjects,
    other: DateObjects,
    px: float,
    options: ObjectOptions,
) -> list[tuple[FoundObject, str, float, float, float, float]]:
    """``rows`` (object, change, confidence, presence, structure, iou) of one date with every
    changed object grown over the change (its footprint painted into ``mine.labels``) and the
    changed objects it covers by half or more dropped; unchanged rows are kept as they are."""
    if options.change_grow_z <= 0:
        return rows
    changed = sorted(
        (i for i, r in enumerate(rows) if r[1] != "unchanged"), key=lambda i: -rows[i][0].area_m2
    )
    covered = np.zeros(mine.labels.shape, bool)
    tol = max(1, round(options.presence_tol_m / px))
    present = ndi.binary_dilation(other.foreground, iterations=tol) if changed else covered
    out = list(rows)
    dropped: set[int] = set()
    for i in changed:
        obj = rows[i][0]
        sl, fp = mine.footprint(obj)
        if covered[sl][fp].mean() >= 0.5:
            dropped.add(i)
            continue
        win, grown = _grown(obj, mine, other, px, options)
        around = ndi.distance_transform_cdt(~grown, metric="taxicab") <= tol
        if (
            present[win][grown].mean() >= options.presence_min
            or ncc(mine.grad[win][around], other.grad[win][around]) >= options.structure_min
        ):
            # grown over something the other date still has: a fragment of a standing object
            out[i] = (obj, "unchanged", *rows[i][2:])
            continue
        paint = grown & ((mine.labels[win] == 0) | (mine.labels[win] == obj.id + 1))
        whole = describe_mask(paint, (win[0].start, win[1].start), px, obj.polarity, options)
        if whole is None or not shape_ok(whole, options):
            continue  # the change around it is not one object's shape: keep the fragment
        covered[win] |= grown
        mine.labels[win][paint] = obj.id + 1
        out[i] = (replace(whole, id=obj.id, contrast_z=obj.contrast_z), *rows[i][1:])
    return [r for i, r in enumerate(out) if i not in dropped]
