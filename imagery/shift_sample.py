"""Choose where the shift between two scenes is measured.

A square sample of the before grid where both scenes have data and there is texture to
measure on; how the candidates are scored: ``docs/design-alignment.md``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from satdelta.imagery.registration import MIN_VALID
from satdelta.imagery.scene import Scene
from satdelta.imagery.warp import coverage_mask

__all__ = ["extent_box", "footprint", "ranked_windows", "sample_window"]

log = logging.getLogger(__name__)


def footprint(
    after: Scene, crs: CRS | None, transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    """True where a pixel of the target grid lies inside the after scene's extent.

    Exact for a grid in the after scene's CRS with the same axes (pixel centres inside its
    edges); otherwise the box of its bounds on the grid (a little larger than the scene when
    it is rotated or in another CRS).  Nodata inside the extent is not seen here.
    """
    if after.crs == crs or (after.crs is None and crs is None):
        cov = coverage_mask(~after.transform @ transform, shape, (after.height, after.width))
        if cov is not None:
            return cov
    out = np.zeros(shape, bool)
    r0, r1, c0, c1 = extent_box(after, crs, transform, shape)
    out[r0:r1, c0:c1] = True
    return out


def extent_box(
    after: Scene, crs: CRS | None, transform: Affine, shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the after scene's bounds on a grid, clipped to it.

    Empty (row1 <= row0 or col1 <= col0) when they do not meet.
    """
    b = after.bounds
    same_crs = after.crs == crs or after.crs is None or crs is None
    w, s_, e, n = (
        (b.left, b.bottom, b.right, b.top)
        if same_crs
        else transform_bounds(after.crs, crs, *b, densify_pts=21)
    )
    inv = ~transform
    pix = [inv @ xy for xy in ((w, s_), (e, s_), (w, n), (e, n))]
    cs, rs = [p[0] for p in pix], [p[1] for p in pix]
    r0, r1 = max(math.floor(min(rs)), 0), min(math.ceil(max(rs)), shape[0])
    c0, c1 = max(math.floor(min(cs)), 0), min(math.ceil(max(cs)), shape[1])
    return r0, max(r1, r0), c0, max(c1, c0)


def sample_window(data: np.ndarray, valid: np.ndarray, size: int) -> tuple[slice, slice]:
    """Where to measure the shift: the first of :func:`ranked_windows`."""
    return ranked_windows(data, valid, size)[0]


def ranked_windows(data: np.ndarray, valid: np.ndarray, size: int) -> list[tuple[slice, slice]]:
    """Where to measure the shift: ``size`` squares with data and texture, best first.

    Candidate squares: 3 x 3 positions (centre, edge middles, corners) plus the square
    centred on the valid pixels' centroid (which finds an overlap that lies between the
    others).  Each is scored by the mean absolute gradient of the band mean on every 4th
    pixel, counting pixels that are not valid as flat.  Squares with an (estimated) 256 valid
    pixels or more are preferred; among them the central square is kept unless another scores
    25 % higher, so a featureless or empty centre (water, cloud, a nodata hole, the part of the
    before scene the after scene does not cover) does not decide the shift.  The other squares
    of that pool follow by score (:func:`~satdelta.imagery.align.coregister` measures on several
    and keeps the shift most of them agree on).

    Parameters
    ----------
    data : (B, M, N) ndarray
        The before scene's pixels.
    valid : (M, N) ndarray of bool
        True where the pixel can be used: where both scenes have data, as far as known.
    size : int
    """
    rows, cols = valid.shape
    h, w = min(rows, size), min(cols, size)
    centre = ((rows - h) // 2, (cols - w) // 2)
    if (h, w) == (rows, cols):
        return [(slice(0, rows), slice(0, cols))]
    step = 4
    img = data[:, ::step, ::step].mean(axis=0, dtype="float32")
    ok = valid[::step, ::step] & np.isfinite(img)
    grad = np.zeros(img.shape, "float32")
    gy = np.abs(np.diff(img, axis=0))
    gy[~(ok[1:] & ok[:-1])] = 0
    gx = np.abs(np.diff(img, axis=1))
    gx[~(ok[:, 1:] & ok[:, :-1])] = 0
    grad[1:] += gy
    grad[:, 1:] += gx

    def cut(a: np.ndarray, r0: int, c0: int) -> np.ndarray:
        return a[r0 // step : (r0 + h) // step, c0 // step : (c0 + w) // step]

    spots = {(r, c) for r in (0, centre[0], rows - h) for c in (0, centre[1], cols - w)}
    if ok.any():
        rr, cc = np.nonzero(ok)
        spots.add(
            (
                min(max(int(rr.mean() * step) - h // 2, 0), rows - h),
                min(max(int(cc.mean() * step) - w // 2, 0), cols - w),
            )
        )
    scores = {}
    counts = {}
    for spot in spots:
        sub = cut(grad, *spot)
        scores[spot] = float(sub.mean()) if sub.size else 0.0
        counts[spot] = int(cut(ok, *spot).sum()) * step * step
    pool = [spot for spot in sorted(spots) if counts[spot] >= MIN_VALID] or sorted(spots)
    best = max(pool, key=lambda spot: (scores[spot], counts[spot]))
    keep = centre in pool and scores[best] <= 1.25 * scores[centre]
    r0, c0 = centre if keep else best
    if (r0, c0) != centre:
        log.info(
            "shift sample moved from the centre to rows %d, cols %d (more texture or data)", r0, c0
        )
    kept = [(r0, c0)]
    for spot in sorted(pool, key=lambda spot: (-scores[spot], -counts[spot], spot)):
        # the others overlap every kept square by less than half its side on some axis
        if all(abs(spot[0] - r) >= h / 2 or abs(spot[1] - c) >= w / 2 for r, c in kept):
            kept.append(spot)
    return [(slice(r, r + h), slice(c, c + w)) for r, c in kept]
