"""Put the after scene on the before scene's grid and remove the residual shift.

:func:`coregister` composes the steps: choose a sample where both scenes have data
(:mod:`~satdelta.imagery.shift_sample`), measure the shift on it
(:mod:`~satdelta.imagery.registration`), resample the after scene once with the correction
(:mod:`~satdelta.imagery.warp`) and measure again.  The design and its costs:
``docs/design-alignment.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window
from satdelta.imagery.checks import positive_number
from satdelta.imagery.errors import AlignmentError, NoOverlapError
from satdelta.imagery.pair import AlignedPair, match_bands
from satdelta.imagery.parallel import run_jobs, thread_count
from satdelta.imagery.registration import MIN_SIDE, MIN_VALID, estimate_shift, measurable
from satdelta.imagery.scene import Scene
from satdelta.imagery.shift_sample import extent_box, footprint, ranked_windows, sample_window
from satdelta.imagery.warp import (
    RESAMPLING_METHODS,
    ResamplingName,
    check_overlap,
    resample_to_grid,
    same_pixel_grid,
)

__all__ = [
    "AlignedPair",
    "check_max_shift",
    "coregister",
    "estimate_shift",
    "match_bands",
    "measure_shift",
    "measure_window_shift",
    "resample_to_grid",
    "RESAMPLING_METHODS",
    "ResamplingName",
    "WindowShift",
]

log = logging.getLogger(__name__)

_NO_SHIFT = (0.0, 0.0)
_UNKNOWN = (math.nan, math.nan)
_GIVEN = "shift given (shift_px), not measured here"
#: Samples the shift is measured on when the grid holds more than one: the shift most of them
#: agree on wins, so one sample dominated by moved objects or repeated patterns cannot decide
#: it (on the airbus-airport-dev pair P07 the central 512 px sample alone gives (-26, -4) px
#: where the whole image gives (2, 0)).
CONSENSUS_SAMPLES = 5
#: Two samples agree when their shifts differ by at most this many pixels on both axes.
AGREE_PX = 1.5


def check_max_shift(max_shift_px: float) -> float:
    """Return ``max_shift_px`` as a float after checking it is a finite number > 0.

    Raises
    ------
    InvalidParameterError
        Otherwise (e.g. ``inf``, NaN, 0 or a negative number).
    """
    return positive_number(
        max_shift_px,
        "max_shift_px must be a finite number of pixels > 0 (the largest residual shift "
        f"expected, e.g. 5); got {max_shift_px!r}.",
    )


def measure_shift(
    before: Scene,
    after: Scene,
    *,
    bands: Sequence[int | str] | None = None,
    sample_size: int = 512,
    max_shift_px: float = 5.0,
    resampling: ResamplingName = "cubic",
) -> tuple[float, float]:
    """Measure the residual shift from one ``sample_size`` square of the before grid only.

    The square is centred on the part of the before grid the after scene's extent covers
    (the whole grid when they cover the same ground), and inside it :func:`coregister` looks
    for the pixels both scenes have data in.  Only that window of each scene is read, so a
    block runner can measure once in bounded memory and pass the result to
    :func:`coregister` (``shift_px=``) for every block.  Nodata inside the after scene's
    extent is not seen when placing the square: an overlap made only by nodata elsewhere
    needs :func:`coregister` on the whole grid.

    Returns
    -------
    (dy, dx) : tuple of float
        As :attr:`AlignedPair.shift_before_px` ((0, 0) when too small to measure on one
        pixel grid, see :func:`coregister`).
    """
    size = int(sample_size)
    return measure_window_shift(
        before,
        after,
        _centred_square(before, after, size),
        bands=bands,
        max_shift_px=max_shift_px,
        resampling=resampling,
        sample_size=size,
    ).shift_px


@dataclass(frozen=True)
class WindowShift:
    """The shift measured on a window of the before grid (:func:`measure_window_shift`).

    Attributes
    ----------
    shift_px : (float, float)
        (dy, dx) as :attr:`AlignedPair.shift_before_px`.
    sample : (int, int, int, int) or None
        (row_off, col_off, height, width) in the window of the sample it was measured on, as
        :attr:`AlignedPair.shift_sample`; None when not measured.
    note : str
        Why it was not measured (empty when it was).
    """

    shift_px: tuple[float, float]
    sample: tuple[int, int, int, int] | None
    note: str = ""


def measure_window_shift(
    before: Scene,
    after: Scene,
    window: Window,
    *,
    bands: Sequence[int | str] | None = None,
    max_shift_px: float = 5.0,
    resampling: ResamplingName = "cubic",
    sample_size: int = 512,
) -> WindowShift:
    """The shift :func:`coregister` (``window=window``) measures, without resampling the window.

    Only ``window`` of the before scene and the samples of the after scene are read and
    resampled; a block runner measures once this way and passes the shift to every window.
    Parameters and errors as for :func:`coregister`.
    """
    check_max_shift(max_shift_px)
    check_overlap(before, after)
    bidx, aidx = match_bands(before, after, bands)
    job = _Job.read(before, after, window, bidx, aidx, resampling, max_shift_px)
    shift = _measure(job, sample_size)
    _check_limit(job, shift.value)
    return WindowShift(shift.value, shift.sample_box, shift.note)


def _centred_square(before: Scene, after: Scene, size: int) -> Window:
    """The ``size`` square of the before grid centred on the part the after extent covers."""
    w, h = min(before.width, size), min(before.height, size)
    r0, r1, c0, c1 = (
        extent_box(after, before.crs, before.transform, (before.height, before.width))
        if before.georeferenced
        else (0, before.height, 0, before.width)
    )
    row = min(max((r0 + r1 - h) // 2, 0), before.height - h)
    col = min(max((c0 + c1 - w) // 2, 0), before.width - w)
    return Window(col, row, w, h)


def coregister(
    before: Scene,
    after: Scene,
    *,
    bands: Sequence[int | str] | None = None,
    max_shift_px: float = 5.0,
    correct: bool = True,
    window: Window | None = None,
    shift_px: tuple[float, float] | None = None,
    resampling: ResamplingName = "cubic",
    sample_size: int = 512,
) -> AlignedPair:
    """Put ``after`` on ``before``'s grid, measure and remove the residual shift.

    The shift is measured by :func:`estimate_shift` with its robust refinement (about
    0.01 px).

    Parameters
    ----------
    before, after : Scene
    bands : sequence of int or str, optional
        1-based indexes or names picked from each scene (see :func:`match_bands`).
    max_shift_px : float, default 5.0
        Largest residual shift (in before pixels, either axis) accepted: a finite number > 0.
    correct : bool, default True
        Remove the measured shift (False: only measure and record it).
    window : rasterio.windows.Window, optional
        Align only this window of the before grid (for block-by-block processing).
    shift_px : (float, float), optional
        A shift measured beforehand (e.g. once for the whole scene); skips measuring.  Pass
        (0, 0) to put the after scene on the grid by its georeference alone.
    resampling : {"nearest", "bilinear", "cubic", "lanczos"}, default "cubic"
    sample_size : int, default 512
        Side of the square sample used to measure the shift (262,144 pixels are plenty for a
        translation and bound the cost: about 0.1-0.2 s per measurement), smaller when the
        grid is.  It is chosen where both scenes have data: the central square unless another
        (corners, edge middles, the centroid of the overlap) has 25 % more texture, so a
        featureless centre, or one the after scene does not cover, does not decide the shift.
        The square used is recorded as :attr:`AlignedPair.shift_sample`.

    Returns
    -------
    AlignedPair
        When the grid (or the overlap) is too small to measure a shift (fewer than 256 pixels
        with data in both scenes, or a sample narrower than 16 px) and the after scene lies on
        the before scene's pixel grid (same CRS and pixel size, offset by whole pixels), no
        shift is assumed: ``shift_before_px`` is (0, 0), ``shift_measured`` False and
        ``shift_note`` says why.  When the residual cannot be measured again after the
        correction (the corrected overlap is too small), ``shift_after_px`` is NaN.

    Raises
    ------
    NoOverlapError
        When the scenes do not cover the same ground, or share no pixel with data.
    AlignmentError
        When the residual shift exceeds ``max_shift_px``, or cannot be measured on grids that
        differ.
    BandMismatchError
        When the bands cannot be matched.
    InvalidParameterError
        When ``max_shift_px`` is not a finite number > 0.
    """
    check_max_shift(max_shift_px)
    check_overlap(before, after)
    bidx, aidx = match_bands(before, after, bands)
    job = _Job.read(before, after, window, bidx, aidx, resampling, max_shift_px)
    shift = (
        _measure(job, sample_size)
        if shift_px is None
        else _Shift((float(shift_px[0]), float(shift_px[1])), note=_GIVEN)
    )
    _check_limit(job, shift.value)
    after_data, valid, residual = _resample_corrected(job, shift, correct)
    return AlignedPair(
        before=job.data,
        after=after_data,
        valid=valid,
        transform=job.transform,
        crs=job.crs,
        shift_before_px=shift.value,
        shift_after_px=residual,
        band_names=tuple(before.band_names[i - 1] for i in bidx),
        pixel_size_m=before.pixel_size_m,
        shift_measured=shift.sample is not None,
        shift_sample=shift.sample_box,
        shift_note=shift.note,
    )


@dataclass(frozen=True)
class _Job:
    """One coregistration: the before pixels on the grid, and how the after scene comes onto it."""

    before: Scene
    after: Scene
    after_bands: tuple[int, ...]
    data: np.ndarray  # (B, M, N) before pixels, NaN where it has no data
    valid: np.ndarray  # (M, N) True where the before scene has data
    transform: Affine
    crs: CRS | None
    resampling: ResamplingName
    max_shift_px: float

    @classmethod
    def read(
        cls,
        before: Scene,
        after: Scene,
        window: Window | None,
        before_bands: tuple[int, ...],
        after_bands: tuple[int, ...],
        resampling: ResamplingName,
        max_shift_px: float,
    ) -> _Job:
        """Read the before scene on ``window`` (whole-pixel offsets and lengths)."""
        if window is None:
            window = Window(0, 0, before.width, before.height)
        window = window.round_offsets().round_lengths()
        data, valid = before.read(window, bands=before_bands)
        if not valid.all():
            data[:, ~valid] = np.nan
        return cls(
            before,
            after,
            after_bands,
            data,
            valid,
            before.window_transform(window),
            before.crs,
            resampling,
            max_shift_px,
        )

    @property
    def shape(self) -> tuple[int, int]:
        return self.valid.shape  # type: ignore[return-value]

    def resample(
        self, shift: tuple[float, float], sample: tuple[slice, slice] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The after scene on the grid (or on its ``sample``) with ``shift`` removed."""
        transform, shape = self.transform, self.shape
        if sample is not None:
            transform = transform @ Affine.translation(sample[1].start, sample[0].start)
            shape = (sample[0].stop - sample[0].start, sample[1].stop - sample[1].start)
        return resample_to_grid(
            self.after,
            transform=transform,
            crs=self.crs,
            shape=shape,
            bands=self.after_bands,
            shift_px=shift,
            resampling=self.resampling,
        )

    def measure(
        self, sample: tuple[slice, slice], after: np.ndarray, ok: np.ndarray
    ) -> tuple[float, float]:
        """The shift of ``after`` (on ``sample``) against the before pixels there."""
        return estimate_shift(
            self.data[(slice(None), *sample)],
            after,
            valid=ok,
            sample_size=None,
            max_shift_px=self.max_shift_px,
        )

    def no_overlap(self) -> NoOverlapError:
        return NoOverlapError(
            f"before ({self.before.scene_id}) and after ({self.after.scene_id}) have no pixel "
            "with data in common on the before grid. Check that both scenes show the same "
            "place and their nodata values."
        )


@dataclass(frozen=True)
class _Shift:
    """A shift, the sample it was measured on (None: not measured) and why it was not."""

    value: tuple[float, float]
    sample: tuple[slice, slice] | None = None
    note: str = ""
    # the after scene on the whole grid without correction, when measuring needed it
    resampled: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def sample_box(self) -> tuple[int, int, int, int] | None:
        """(row_off, col_off, height, width) of the sample, None when not measured."""
        if self.sample is None:
            return None
        rows, cols = self.sample
        return rows.start, cols.start, rows.stop - rows.start, cols.stop - cols.start


def _measure(job: _Job, sample_size: int) -> _Shift:
    """Measure the shift on a sample where both scenes have data (:func:`sample_window`).

    Only the samples of the after scene are resampled, unless the first has too little data
    (nodata inside the after scene's extent, or a small grid): then the after scene's real
    validity on the whole grid decides where to measure, or explains why it cannot be.
    """
    ranked = ranked_windows(
        job.data, job.valid & footprint(job.after, job.crs, job.transform, job.shape), sample_size
    )
    # the samples at once in threads (each measurement as in one thread, results in sample
    # order), as many as fill every thread; any left over one by one, each spread over the
    # threads itself. The others only count when the first can be measured.
    samples = ranked[:CONSENSUS_SAMPLES]
    together = max(len(samples) - len(samples) % thread_count(), 1)
    results = run_jobs(partial(_measure_sample, job), samples[:together])
    results += [_measure_sample(job, sl) for sl in samples[together:]]
    found = [f for f, _ in results]
    first_after = results[0][1]
    del results  # the other samples' pixels
    if found[0] is not None:
        measured = [(sl, f) for sl, f in zip(ranked, found, strict=False) if f is not None]
        shift = _consensus(measured)
    else:
        whole = (
            first_after
            if first_after[1].shape == job.shape  # the sample was the whole grid
            else job.resample(_NO_SHIFT)
        )
        joint = job.valid & whole[1]
        if not joint.any():
            raise job.no_overlap()
        sl = sample_window(job.data, joint, sample_size)
        if not measurable(joint[sl]):
            return _Shift(_NO_SHIFT, note=_assume_no_shift(job, joint[sl]), resampled=whole)
        shift = _Shift(job.measure(sl, whole[0][(slice(None), *sl)], joint[sl]), sl, "", whole)
    log.info(
        "residual shift of %s vs %s: dy=%.3f dx=%.3f px",
        job.after.scene_id,
        job.before.scene_id,
        *shift.value,
    )
    return shift


def _measure_sample(
    job: _Job, sl: tuple[slice, slice]
) -> tuple[tuple[float, float] | None, tuple[np.ndarray, np.ndarray]]:
    """The shift on one sample (None when too few pixels there have data in both scenes),
    and the after scene resampled on it (pixels, validity)."""
    resampled = job.resample(_NO_SHIFT, sl)
    ok = resampled[1] & job.valid[sl]
    return (job.measure(sl, resampled[0], ok) if measurable(ok) else None), resampled


def _consensus(measured: list[tuple[tuple[slice, slice], tuple[float, float]]]) -> _Shift:
    """The shift most samples agree on (within :data:`AGREE_PX`), of up to
    :data:`CONSENSUS_SAMPLES` measured, the first being the best-ranked; ties go to the
    better-ranked sample, and the value is the median of the agreeing shifts (of all of them
    when no two agree)."""
    shifts = np.array([s for _, s in measured], float)
    agree = (np.abs(shifts[:, None, :] - shifts[None, :, :]) <= AGREE_PX).all(axis=2)
    best = int(np.argmax(agree.sum(axis=1)))  # first of the largest groups
    agreeing = int(agree[best].sum())
    group = shifts[agree[best]] if agreeing > 1 else shifts  # none agree: the median of all
    if len(measured) > 1:
        log.info(
            "shift measured on %d samples: %s; %s",
            len(measured),
            ", ".join(f"({dy:.2f}, {dx:.2f})" for dy, dx in shifts),
            f"{agreeing} agree" if agreeing > 1 else "none agree (median taken)",
        )
    value = (float(np.median(group[:, 0])), float(np.median(group[:, 1])))
    return _Shift(value, measured[best][0])


def _assume_no_shift(job: _Job, ok: np.ndarray) -> str:
    """Why no shift is measured on a sample with too little data (ok), if the grids allow it."""
    n, sample_shape = int(ok.sum()), ok.shape
    why = (
        f"{n} pixels with data in both scenes in a {sample_shape[0]} x "
        f"{sample_shape[1]} px sample are too small to measure a shift (at least "
        f"{MIN_VALID} in a sample at least {MIN_SIDE} x {MIN_SIDE} px are needed)"
    )
    before, after = job.before, job.after
    if not same_pixel_grid(after, job.crs, job.transform):
        raise AlignmentError(
            f"too few pixels to measure the shift between {before.scene_id} and "
            f"{after.scene_id}: {why}, and their grids differ, so a zero shift "
            "cannot be assumed. Use scenes that overlap more, or pass "
            "shift_px=(0, 0) to put the after scene on the before grid by its "
            "georeference alone."
        )
    note = (
        f"shift not measured: {why}; the scenes share the same pixel grid, so no "
        "shift (0, 0) was assumed"
    )
    log.info("%s vs %s: %s", after.scene_id, before.scene_id, note)
    return note


def _check_limit(job: _Job, shift: tuple[float, float]) -> None:
    if max(abs(shift[0]), abs(shift[1])) > job.max_shift_px:
        raise AlignmentError(
            f"residual shift between {job.before.scene_id} and {job.after.scene_id} is "
            f"(dy={shift[0]:.2f}, dx={shift[1]:.2f}) px, beyond the limit of "
            f"{job.max_shift_px} px. Check that both scenes show the same place, or raise "
            "max_shift_px / --max-shift if a larger misregistration is expected."
        )


def _resample_corrected(
    job: _Job, shift: _Shift, correct: bool
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """The after scene on the grid with ``shift`` removed if ``correct``, the joint validity
    and the residual measured again on the same sample (NaN when not measured)."""
    dy, dx = shift.value
    if correct and (abs(dy) > 1e-3 or abs(dx) > 1e-3):
        after_data, after_valid = job.resample(shift.value)
        valid = job.valid & after_valid
        if not valid.any():
            raise job.no_overlap()
        residual = (
            _UNKNOWN if shift.sample is None else _remeasure(job, shift.sample, after_data, valid)
        )
    else:
        after_data, after_valid = (
            shift.resampled if shift.resampled is not None else job.resample(_NO_SHIFT)
        )
        valid = job.valid & after_valid
        if not valid.any():
            raise job.no_overlap()
        # nothing was corrected: the residual is what was measured
        residual = _UNKNOWN if shift.sample is None else shift.value
    if not math.isnan(residual[0]):
        log.info("shift after correction: dy=%.3f dx=%.3f px", *residual)
    return after_data, valid, residual


def _remeasure(
    job: _Job, sl: tuple[slice, slice], after_data: np.ndarray, valid: np.ndarray
) -> tuple[float, float]:
    """The residual after correction on the sample ``sl`` (NaN when it cannot be measured)."""
    try:
        return job.measure(sl, after_data[(slice(None), *sl)], valid[sl])
    except AlignmentError:
        # the correction moved data out of a small sample: the run stands, the residual is unknown
        log.info(
            "shift after correction not measured: %d pixels with data in both scenes "
            "left in the %d x %d sample",
            int(valid[sl].sum()),
            *valid[sl].shape,
        )
        return _UNKNOWN
