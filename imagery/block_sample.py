"""The block runner's samples: the shift measured on a region, the fit on patches.

:func:`measure_region_shift` measures the shift on the central square of the grid (as
:func:`~satdelta.imagery.align.coregister` would, without resampling the square) and the
residual after correction in the background, beside the fit. :func:`tile_patch_windows`
moves each patch of :func:`~satdelta.imagery.radiometry.fit_windows` into the file tile
under its cell's centre, so that reading it (with its halo and the shift's reach) decodes
one tile per date instead of up to four; :func:`fit_on_patches` reads the patches in threads
and fits the detector on a mosaic of them with invalid gutters. Why and what it saves:
``docs/design-blocks.md``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from rasterio.windows import Window as RasterWindow
from satdelta.imagery.align import measure_window_shift
from satdelta.imagery.candidates import band_scales
from satdelta.imagery.detect import fit_detector
from satdelta.imagery.detector import ChangeDetector
from satdelta.imagery.errors import AlignmentError
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.parallel import run_jobs, threads
from satdelta.imagery.radiometry import Window, fit_windows
from satdelta.imagery.registration import estimate_shift
from satdelta.imagery.scene import Scene

__all__ = [
    "GUTTER_PX",
    "Beside",
    "ReadWindow",
    "RegionShift",
    "fit_on_patches",
    "measure_region_shift",
    "tile_patch_windows",
]

T = TypeVar("T")

#: Invalid gutter between the sample's patches in the fitting mosaic.
GUTTER_PX = 32

#: ``read(rows, cols)``: aligned before, after (B, M, N) float32 and joint validity (M, N).
ReadWindow = Callable[[slice, slice], tuple[np.ndarray, np.ndarray, np.ndarray]]


class Beside(Generic[T]):
    """A job run once in a thread of its own, from when :meth:`start` is called (or its
    result first asked for)."""

    def __init__(self, job: Callable[[], T]):
        self._job = job
        self._lock = threading.Lock()
        self._future: Future[T] | None = None

    def start(self) -> None:
        with self._lock:
            if self._future is None:
                pool = ThreadPoolExecutor(1)
                self._future = pool.submit(self._job)
                pool.shutdown(wait=False)  # the thread ends with the job

    def result(self) -> T:
        self.start()
        assert self._future is not None
        return self._future.result()


@dataclass(frozen=True)
class RegionShift:
    """The shift measured once for every window, as :class:`~satdelta.imagery.align.AlignedPair`
    reports it (without pixels).

    ``shift_after_px`` (the residual on the sample after correction, NaN when not measured)
    waits for :meth:`measure_residual`'s measurement, which runs in a thread of its own from
    :meth:`start_residual` on (the block runner starts it beside the fit).
    """

    shift_before_px: tuple[float, float]
    band_names: tuple[str, ...]
    pixel_size_m: float | None
    shift_measured: bool
    shift_sample: tuple[int, int, int, int] | None  # (row_off, col_off, height, width) in the grid
    shift_note: str
    residual: Beside[tuple[float, float]] | None = None

    @property
    def shift_after_px(self) -> tuple[float, float]:
        return (math.nan, math.nan) if self.residual is None else self.residual.result()

    def start_residual(self) -> None:
        """Start measuring the residual in its own thread (if not started yet)."""
        if self.residual is not None:
            self.residual.start()

    def measure_residual(self, read: ReadWindow, max_shift_px: float) -> RegionShift:
        """This shift with the residual on its sample corrected by ``read`` (the windows'
        own alignment): read here, measured from :meth:`start_residual` on."""
        if self.shift_sample is None:
            return self
        r0, c0, h, w = self.shift_sample
        b, a, valid = read(slice(r0, r0 + h), slice(c0, c0 + w))

        def residual() -> tuple[float, float]:
            with threads(1):  # in its own thread alone
                try:
                    return estimate_shift(
                        b, a, valid=valid, sample_size=None, max_shift_px=max_shift_px
                    )
                except AlignmentError:  # the correction moved data out of the sample
                    return (math.nan, math.nan)

        return dataclasses.replace(self, residual=Beside(residual))


def measure_region_shift(
    before: Scene,
    after: Scene,
    options: DetectionOptions,
    *,
    region_px: int,
    before_bands: Sequence[int],
) -> RegionShift:
    """The shift measured on the central ``region_px`` square of the before grid
    (``before_bands``: the before scene's bands compared, 1-based)."""
    side = min(region_px, before.height, before.width)
    row, col = (before.height - side) // 2, (before.width - side) // 2
    m = measure_window_shift(
        before,
        after,
        RasterWindow(col, row, side, side),
        bands=options.bands,
        max_shift_px=options.max_shift_px,
        resampling=options.resampling,
    )
    return RegionShift(
        m.shift_px,
        tuple(before.band_names[i - 1] for i in before_bands),
        before.pixel_size_m,
        m.sample is not None,
        None if m.sample is None else (row + m.sample[0], col + m.sample[1], *m.sample[2:]),
        m.note,
    )


def tile_patch_windows(
    shape: tuple[int, int],
    tile: tuple[int, int],
    reach_px: int,
    *,
    max_pixels: int,
    patch_px: int,
) -> list[Window]:
    """:func:`~satdelta.imagery.radiometry.fit_windows`, each patch moved inside one tile.

    A patch moves into the tile (of a file tiled ``tile`` = (rows, cols)) holding its
    centre, as near its place as leaves ``reach_px`` (halo, resampling taps and shift) to
    the tile's edges, so that the patch and all it reads lie in that tile. A patch whose
    tile is too small for that (thin strips, a partial tile at the scene's edge) stays where
    it was; if moving made two patches overlap, none moves.

    Examples
    --------
    Four patches of 384 px on a 4096 grid of 512-pixel tiles, read with 20 px around them:

    >>> w = tile_patch_windows((4096, 4096), (512, 512), 20, max_pixels=4 * 384**2, patch_px=384)
    >>> [(r.start, c.start) for r, c in w]
    [(1044, 1044), (1044, 3092), (3092, 1044), (3092, 3092)]
    >>> [(r.start, c.start) for r, c in fit_windows((4096, 4096), max_pixels=4 * 384**2,
    ...                                             patch_px=384)]
    [(832, 832), (832, 2880), (2880, 832), (2880, 2880)]
    """
    wins = fit_windows(shape, max_pixels=max_pixels, patch_px=patch_px)
    if len(wins) == 1:  # the whole scene
        return wins

    def inside(s: slice, side: int, length: int) -> slice:
        n = s.stop - s.start
        t0 = (s.start + n // 2) // side * side  # the tile holding the patch's centre
        lo, hi = t0 + reach_px, min(t0 + side, length) - reach_px - n
        if lo > hi:
            return s
        start = min(max(s.start, lo), hi)
        return slice(start, start + n)

    moved = [(inside(r, tile[0], shape[0]), inside(c, tile[1], shape[1])) for r, c in wins]
    for k, (r, c) in enumerate(moved):
        for r2, c2 in moved[k + 1 :]:
            if r.start < r2.stop and r2.start < r.stop and c.start < c2.stop and c2.start < c.stop:
                return wins
    return moved


def fit_on_patches(
    read: ReadWindow,
    windows: Sequence[Window],
    halo: int,
    shape: tuple[int, int],
    n_bands: int,
    options: DetectionOptions,
    *,
    pixel_size_m: float | None,
    band_names: Sequence[str],
    beside: Callable[[], None] = lambda: None,
) -> tuple[ChangeDetector, tuple[np.ndarray, np.ndarray]]:
    """The detector fitted on a mosaic of ``windows`` (each read with ``halo``, in threads)
    with invalid gutters; the band scales (before, after) of that mosaic. ``beside`` is
    called once the windows are read (to start work for the threads the fit leaves idle)."""
    side = int(math.ceil(math.sqrt(len(windows))))
    longest = max(max(r.stop - r.start, c.stop - c.start) for r, c in windows)
    cell = longest + 2 * halo + GUTTER_PX
    # each cell is filled (invalid, then its patch) by the thread that reads its patch: the
    # first touch of a fresh page is costly, and is shared by the threads this way
    mb = np.empty((n_bands, side * cell, side * cell), np.float32)
    ma = np.empty_like(mb)
    mv = np.empty(mb.shape[1:], bool)

    def one(k: int) -> None:
        r0, c0 = (k // side) * cell, (k % side) * cell  # its own cell of the mosaic
        for m, gutter in ((mb, np.nan), (ma, np.nan), (mv, False)):
            m[..., r0 : r0 + cell, c0 : c0 + cell] = gutter
        if k >= len(windows):
            return
        r, c = windows[k]
        rows = slice(max(r.start - halo, 0), min(r.stop + halo, shape[0]))
        cols = slice(max(c.start - halo, 0), min(c.stop + halo, shape[1]))
        b, a, v = read(rows, cols)
        h, w = v.shape
        mb[:, r0 : r0 + h, c0 : c0 + w] = b
        ma[:, r0 : r0 + h, c0 : c0 + w] = a
        mv[r0 : r0 + h, c0 : c0 + w] = v

    run_jobs(one, range(side * side))
    beside()
    # the band scales (of the mosaic, which the fit does not change) beside the fit
    scales = Beside(lambda: (band_scales(mb, mv), band_scales(ma, mv)))
    scales.start()
    det = fit_detector(
        mb, ma, options, valid=mv, pixel_size_m=pixel_size_m, band_names=tuple(band_names)
    )
    return det, scales.result()
