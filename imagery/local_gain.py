"""Local radiometric normalisation that keeps a brightness step on its seam (``normalise="local"``).

A mosaic seam, haze or a sun-angle gradient changes the gain between the dates from one
part of a scene to another. :func:`fit_local_gain` estimates a per-pixel gain field: the
median log-ratio of the dates over 200 m (on 10 m cells), clamped to 1/1.5..1.5x the image's
median gain, with each pixel snapped to the neighbouring cells' gain closest to its own
1 m log-ratio, so a straight step lands on the seam's pixel instead of being blurred across
it. Design and figures: ``docs/detection.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.errors import BandMismatchError
from scipy import ndimage

__all__ = ["LOCAL_CELL_M", "LOCAL_WINDOW_M", "LocalGain", "fit_local_gain"]

#: Median window of the local gain, m: "a few hundred metres" (issue 9); a real change must
#: cover under half of it to be left alone. The window is this many metres at any pixel size.
LOCAL_WINDOW_M = 200.0
#: Cell of the coarse gain grid, m (the median runs on cell means, for speed); >= 1 pixel.
LOCAL_CELL_M = 10.0
#: The local gain stays within 1/1.5..1.5x the image's median gain: seams, haze and sun-angle
#: steps are modest; a larger local ratio is land-cover change (NAIP: without the clamp the
#: 200 m median reached 0.16..1.9x on fields and wetlands).
LOCAL_MAX_STEP = math.log(1.5)
#: Median window (m, >= 3 px) of the per-pixel log-ratio that snaps the seam to its pixel (a
#: median, not a Gaussian: a Gaussian blurs the step and the pixel next to it snaps wrongly).
LOCAL_FINE_M = 1.0
_SNAP = 2  # candidates: the 5 x 5 neighbouring cells' gains (pure values from both sides)


@dataclass(frozen=True)
class LocalGain:
    """Per-pixel gain of after over before: ``after_normalised = (after + c) / gain - c``.

    Attributes
    ----------
    log_gain : (band, row, col) float32 ndarray
        Natural log of the gain field, on the scene's grid.
    levels : (band,) ndarray
        The dark-level offset ``c`` per band (1 % of before's median, >= 1).
    parameters : dict
        JSON-serialisable record (window, cell, median gains).
    """

    log_gain: NDArray[np.float32]
    levels: NDArray[np.float64]
    parameters: dict[str, Any]

    def apply(self, after: NDArray) -> NDArray[np.float32]:
        """Normalise the whole after image (the field is on the scene's grid, not per window)."""
        if after.shape != self.log_gain.shape:
            raise BandMismatchError(
                f"local gain was fitted on {self.log_gain.shape}, got {after.shape}; fit it on "
                "the same scene."
            )
        out = np.empty(after.shape, np.float32)
        for i in range(after.shape[0]):
            c = np.float32(self.levels[i])
            out[i] = (np.maximum(after[i], 0) + c) * np.exp(-self.log_gain[i]) - c
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"method": "local", **self.parameters}


def _cells(x: NDArray, ok: NDArray, c: int) -> tuple[NDArray, NDArray]:
    """Means of ``x`` over the valid pixels of ``c`` x ``c`` cells, and the cells' counts."""
    rows, cols = x.shape
    nr, nc = -(-rows // c), -(-cols // c)
    pad = np.zeros((nr * c, nc * c), np.float32)
    cnt = np.zeros((nr * c, nc * c), np.float32)
    pad[:rows, :cols] = np.where(ok, x, 0)
    cnt[:rows, :cols] = ok
    n = cnt.reshape(nr, c, nc, c).sum(axis=(1, 3))
    return pad.reshape(nr, c, nc, c).sum(axis=(1, 3)) / np.maximum(n, 1), n


def _snapped(fine: NDArray, med: NDArray, c: int) -> NDArray[np.float32]:
    """Per pixel, of the 5 x 5 neighbouring cells' values, the one closest to ``fine``."""
    rows, cols = fine.shape
    nr, nc = med.shape
    padded = np.pad(med, _SNAP, mode="edge")
    best = np.full((rows, cols), np.inf, np.float32)
    out = np.zeros((rows, cols), np.float32)
    for dr in range(-_SNAP, _SNAP + 1):
        for dc in range(-_SNAP, _SNAP + 1):
            cand = padded[_SNAP + dr : _SNAP + dr + nr, _SNAP + dc : _SNAP + dc + nc]
            up = np.repeat(np.repeat(cand, c, 0), c, 1)[:rows, :cols]
            d = np.abs(fine - up)
            take = d < best
            best[take] = d[take]
            out[take] = up[take]
    return out


def fit_local_gain(
    before: NDArray,
    after: NDArray,
    valid: NDArray[np.bool_],
    pixel_size_m: float | None,
    *,
    window_m: float = LOCAL_WINDOW_M,
    cell_m: float = LOCAL_CELL_M,
) -> LocalGain:
    """Fit the seam-preserving gain field of after over before (an unknown pixel is 1 m).

    1. Log-ratio of the dates per band, averaged on cells of ``cell_m`` (at least a pixel).
    2. Median over ``window_m`` of the cells (the same metres at any pixel size), clamped to
       :data:`LOCAL_MAX_STEP` around the image's median: keeps straight steps sharp and
       ignores changes covering under half the window.
    3. Each pixel takes, of the 5 x 5 neighbouring cells' gains, the one closest to its own
       log-ratio (median over :data:`LOCAL_FINE_M`), so the step lands on the seam's pixel; a
       real change (far from every candidate) keeps its neighbourhood's gain.
    """
    px = 1.0 if pixel_size_m is None else float(pixel_size_m)
    c = max(int(round(cell_m / px)), 1)
    w = max(int(round(window_m / (c * px))) | 1, 3)  # cells: the window in metres, odd
    k = max(int(round(LOCAL_FINE_M / px)) | 1, 3)
    nb = before.shape[0]
    log_gain = np.empty(before.shape, np.float32)
    levels = np.empty(nb)
    medians = []
    for i in range(nb):
        levels[i] = 0.01 * max(float(np.median(before[i][valid])), 1.0)
        lr = np.log(np.maximum(after[i], 0) + levels[i]) - np.log(
            np.maximum(before[i], 0) + levels[i]
        )
        lr = np.where(valid & np.isfinite(lr), lr, 0).astype(np.float32)
        cell, n = _cells(lr, valid, c)
        g0 = float(np.median(cell[n > 0]))
        cell[n == 0] = g0
        med = ndimage.median_filter(cell, size=w, mode="nearest")
        med = np.clip(med, g0 - LOCAL_MAX_STEP, g0 + LOCAL_MAX_STEP)
        log_gain[i] = _snapped(ndimage.median_filter(lr, size=k), med, c)
        medians.append(math.exp(g0))
    params = {
        "window_m": window_m,
        "window_cells": w,
        "cell_px": c,
        "max_step": math.exp(LOCAL_MAX_STEP),
        "median_gains": medians,
    }
    return LocalGain(log_gain, levels, params)
