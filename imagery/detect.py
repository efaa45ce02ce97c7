"""Change detection on two co-registered arrays: normalise, score, threshold, clean up, delineate.

:func:`detect_change` is the whole-array convenience. It is built from a *fit* step
(:func:`fit_detector`: global statistics only - normalisation, score scales, threshold and
its no-change floor) and an *apply* step (:meth:`~satdelta.imagery.detector.ChangeDetector.apply`,
per window), so a block runner can fit on a sample and apply per window. What each step
does and why: ``docs/design-detection.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from satdelta.imagery.cues import MIN_SEGMENT_PX, SEGMENT_M
from satdelta.imagery.detector import (
    ChangeDetector,
    ChangeMaps,
    cleanup_radius_px,
    score_block,
    score_both,
)
from satdelta.imagery.errors import BandMismatchError, InvalidParameterError
from satdelta.imagery.morphology import min_region_pixels
from satdelta.imagery.no_change import no_change_quantile
from satdelta.imagery.normalisation_guard import Normalisation, guard_normalisation
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.parallel import run_jobs
from satdelta.imagery.radiometry import (
    NORMALISE_METHODS,
    Window,
    finite_pixels,
    fit_irmad,
    fit_normalisation,
    fit_windows,
    with_halo,
)
from satdelta.imagery.scores import (
    SCORE_METHODS,
    SCORES,
    ScoreModel,
    fit_score,
    visible_band_indices,
)
from satdelta.imagery.threshold import THRESHOLD_METHODS, ThresholdFit, fit_threshold

__all__ = [
    "NORMALISE_METHODS",
    "SCORE_METHODS",
    "THRESHOLD_METHODS",
    "ChangeDetector",
    "ChangeMaps",
    "cleanup_radius_px",
    "detect_change",
    "fit_detector",
    "no_change_quantile",
    "resolve_auto",
]

log = logging.getLogger(__name__)

#: Most score values the automatic threshold methods are fitted on (an evenly strided
#: subsample of the valid pixels in raster order beyond that).
MAX_THRESHOLD_SAMPLES = 1 << 20


def _as_pair(before: ArrayLike, after: ArrayLike) -> tuple[NDArray, NDArray]:
    b = np.asarray(before)
    a = np.asarray(after)
    if b.ndim == 2:
        b = b[None]
    if a.ndim == 2:
        a = a[None]
    if b.ndim != 3 or a.ndim != 3:
        raise BandMismatchError(
            f"before and after must be (band, row, col) arrays, got shapes {b.shape} and {a.shape}."
        )
    if b.shape != a.shape:
        raise BandMismatchError(
            f"before and after must share one (band, row, col) shape, got {b.shape} and "
            f"{a.shape}; coregister the scenes (satdelta.imagery.align.coregister) first."
        )
    if not (np.issubdtype(b.dtype, np.number) and np.issubdtype(a.dtype, np.number)):
        raise InvalidParameterError(
            f"before and after must be numeric arrays, got {b.dtype} and {a.dtype}."
        )
    return b.astype(np.float32, copy=False), a.astype(np.float32, copy=False)


def _resolve_valid(b: NDArray, a: NDArray, valid: ArrayLike | None) -> NDArray[np.bool_]:
    finite = finite_pixels(b, a)
    if valid is None:
        return finite
    v = np.asarray(valid)
    if v.shape != b.shape[1:]:
        raise InvalidParameterError(
            f"valid must be a (row, col) bool mask of shape {b.shape[1:]}, got {v.shape}."
        )
    if v.dtype != np.bool_:
        raise InvalidParameterError(
            f"valid must be a bool mask (True = pixel has data), got dtype {v.dtype}."
        )
    return v & finite


def resolve_auto(
    nbands: int,
    band_names: Sequence[str] | None,
    method: str,
    normalise: str,
) -> tuple[str, str]:
    """Concrete score and normalisation methods for ``"auto"``, from the kind of bands only.

    * Visible-only imagery (red, green, blue and no NIR; three unnamed bands count as RGB):
      score ``"cues"``, normalisation ``"histogram"``.
    * Anything else: score ``"cva"``; normalisation ``"irmad"`` with 4 or more bands,
      ``"histogram"`` with fewer.

    Why these defaults: ``docs/design-detection.md``.

    Examples
    --------
    >>> resolve_auto(6, ("B1_blue", "B2_green", "B3_red", "B4_nir", "B5_swir1", "B7_swir2"),
    ...              "auto", "auto")
    ('cva', 'irmad')
    >>> resolve_auto(3, ("red", "green", "blue"), "auto", "auto")
    ('cues', 'histogram')
    >>> resolve_auto(1, None, "auto", "auto")
    ('cva', 'histogram')
    """
    visible = visible_band_indices(band_names, nbands) is not None
    score_method = method
    if method == "auto":
        score_method = "cues" if visible else "cva"
    norm_method = normalise
    if normalise == "auto":
        norm_method = "irmad" if not visible and nbands >= 4 else "histogram"
    return score_method, norm_method


def _check_scene(
    b: NDArray, ok: NDArray[np.bool_], pixel_size_m: Any, band_names: Sequence[str] | None
) -> float | None:
    """Check the scene facts that come with the arrays; returns the pixel size (float or None)."""
    if pixel_size_m is not None:
        try:
            px = float(pixel_size_m)
        except (TypeError, ValueError):
            px = math.nan
        if not (math.isfinite(px) and px > 0):
            raise InvalidParameterError(
                f"pixel_size_m must be a positive number of metres or None, got {pixel_size_m!r}."
            )
        pixel_size_m = px
    if band_names is not None and len(band_names) != b.shape[0]:
        raise BandMismatchError(
            f"band_names has {len(band_names)} names for {b.shape[0]} bands: "
            f"{tuple(band_names)}; give one name per band or none."
        )
    n_valid = int(ok.sum())
    if n_valid < 2:
        raise InvalidParameterError(
            f"change detection needs at least 2 valid pixels, got {n_valid}; check the "
            "no-data masks and that the scenes overlap."
        )
    return pixel_size_m


@dataclass(frozen=True)
class _Fit:
    """What :func:`fit_detector` and :func:`detect_change` share before the threshold.

    The pair as float32 (``after_n`` normalised onto ``before``), the valid mask, the fitted
    normalisation and score model, what the threshold step needs besides a sample, and the
    record of a fit the normalisation guard rejected.
    """

    before: NDArray
    after_n: NDArray
    valid: NDArray[np.bool_]
    norm_method: str
    norm: Normalisation | None
    score: ScoreModel
    pixel_size_m: float | None
    band_names: Sequence[str] | None
    options: DetectionOptions
    normalisation_rejected: dict[str, Any] | None = None

    def detector(self, sample: NDArray) -> ChangeDetector:
        """Threshold (with its no-change floor) fitted on ``sample``, and the run record."""
        opts = self.options
        null_q = None
        if self.score.method == "cues" and opts.threshold == "auto":
            # the score is already a ratio to per-cue thresholds with their own floors
            tau = self.score.parameters["tau"]
            thr = ThresholdFit(
                math.exp(tau), "value", {"rule": "mean log(cue / threshold)", "tau": tau}
            )
        else:
            thr = fit_threshold(sample, method=opts.threshold, value=opts.threshold_value)
        if thr.method in ("mixture", "otsu", "kmeans") and opts.null_quantile is not None:
            null_q = no_change_quantile(
                self.score, self.before, self.after_n, self.valid, quantile=opts.null_quantile
            )
            if null_q is not None and null_q > thr.threshold:
                thr = ThresholdFit(
                    null_q, thr.method, {**thr.parameters, "fitted_threshold": thr.threshold}
                )
        px = self.pixel_size_m
        min_pixels = min_region_pixels(opts.min_area_m2, px, opts.min_pixels)
        radius = cleanup_radius_px(px)
        smooth_px = self.score.smooth_px
        params: dict[str, Any] = {
            "method": self.score.method,
            "score": self.score.parameters,
            "normalise": self.norm_method,
            "normalisation": None if self.norm is None else self.norm.to_dict(),
            "normalisation_rejected": self.normalisation_rejected,
            "threshold_method": thr.method,
            "threshold": thr.threshold,
            "threshold_fit": thr.parameters,
            "threshold_value": opts.threshold_value,
            "no_change_quantile": null_q,
            "pixel_size_m": px,
            "band_names": list(self.band_names) if self.band_names is not None else None,
            "min_area_m2": opts.min_area_m2,
            "min_pixels": min_pixels,
            "cleanup_radius_px": radius,
            "smooth_px": smooth_px,
            "delineation": _delineation(self.score),
        }
        return ChangeDetector(self.norm, self.score, thr, radius, min_pixels, params)


def _delineation(score: ScoreModel) -> str | None:
    """How the changed regions' outlines are drawn, for the run record."""
    if score.method == "cues":
        side = SEGMENT_M / (score.parameters["pixel_size_m"] or 1.0)
        return f"SLIC {SEGMENT_M:g} m majority vote" if side >= MIN_SEGMENT_PX else None
    if score.smooth_px > 0:
        return "smoothed regions & 3x3 majority of (unsmoothed score > threshold)"
    return None


def _prepare(
    before: ArrayLike,
    after: ArrayLike,
    options: DetectionOptions,
    valid: ArrayLike | None,
    pixel_size_m: float | None,
    band_names: Sequence[str] | None,
) -> _Fit:
    """Check the pair, resolve the valid mask, fit the normalisation and the score model."""
    b, a = _as_pair(before, after)
    ok = _resolve_valid(b, a, valid)
    if pixel_size_m is None:
        pixel_size_m = options.pixel_size_m
    px = _check_scene(b, ok, pixel_size_m, band_names)
    score_method, norm_method = resolve_auto(
        b.shape[0], band_names, options.method, options.normalise
    )
    if (
        options.normalise == "auto"
        and norm_method == "irmad"
        and int(ok.sum()) < 20 * (4 * b.shape[0] + 2)
    ):
        # too few pixels for stable canonical correlations: fall back to histogram matching
        norm_method = "histogram"
    SCORES[score_method].check_bands(band_names, b.shape[0])  # before any fitting
    irmad = None
    if norm_method == "irmad" or score_method == "irmad":
        irmad = fit_irmad(b, a, valid=ok)
    norm = fit_normalisation(
        b,
        a,
        method=norm_method,  # type: ignore[arg-type]
        valid=ok,
        irmad=irmad,
        pixel_size_m=px,
    )
    norm, norm_method, rejected = guard_normalisation(b, a, ok, norm, norm_method)
    a_n = a if norm is None else norm.apply(a)
    score_model = fit_score(
        b,
        a_n,
        method=score_method,  # type: ignore[arg-type]
        valid=ok,
        band_names=band_names,
        pixel_size_m=px,
        irmad=irmad if norm_method == "none" else None,
    )
    return _Fit(b, a_n, ok, norm_method, norm, score_model, px, band_names, options, rejected)


def _strided(values: NDArray) -> NDArray:
    step = -(-values.size // MAX_THRESHOLD_SAMPLES)
    return values if step <= 1 else values[::step]


def _patch_scores(fit: _Fit) -> NDArray[np.float32]:
    """Finite smoothed scores of the valid pixels of the fitting patches (:func:`fit_windows`)."""
    band = slice(None)
    ok = fit.valid

    def patch(w: Window) -> NDArray[np.float32]:
        outer, inner = with_halo(w, fit.score.halo_px, ok.shape)
        s = score_block(
            fit.score, fit.before[(band, *outer)], fit.after_n[(band, *outer)], ok[outer]
        )
        s = s[1][inner]
        return s[np.isfinite(s)]

    # the patches are scored in threads; their values are concatenated in window order
    return np.concatenate(run_jobs(patch, fit_windows(ok.shape, valid=ok)))


def fit_detector(
    before: ArrayLike,
    after: ArrayLike,
    options: DetectionOptions = DetectionOptions(),
    *,
    valid: ArrayLike | None = None,
    pixel_size_m: float | None = None,
    band_names: Sequence[str] | None = None,
) -> ChangeDetector:
    """Fit the global statistics of a change detector (arguments as in :func:`detect_change`).

    Cost and memory are bounded by the scene size only through per-pixel passes: pixel
    statistics use a fixed-size random sample
    (:func:`~satdelta.imagery.radiometry.sample_pixels`), and everything spatial - the
    score on which the threshold is fitted, the edge strengths of the registration-residue
    discount, the simulated no-change pair - is computed on a fixed patch set
    (:func:`~satdelta.imagery.radiometry.fit_windows`: the whole array up to about a
    megapixel, else sixteen 256 x 256 patches spread over the scene, each with the score's
    halo of context). :func:`detect_change`, which scores the whole array anyway, fits the
    threshold on the whole array's score instead.
    """
    fit = _prepare(before, after, options, valid, pixel_size_m, band_names)
    return fit.detector(_strided(_patch_scores(fit)))


def detect_change(
    before: ArrayLike,
    after: ArrayLike,
    options: DetectionOptions = DetectionOptions(),
    *,
    valid: ArrayLike | None = None,
    pixel_size_m: float | None = None,
    band_names: Sequence[str] | None = None,
) -> ChangeMaps:
    """Find changed pixels between two co-registered images.

    Parameters
    ----------
    before, after : (B, M, N) array_like
        The two dates on one grid (a 2-D array is read as one band).
    options : DetectionOptions, optional
        Score, threshold, normalisation, minimum area and no-change floor (the defaults:
        ``"auto"`` everywhere). Its ``bands``, ``max_shift_px`` and ``resampling`` are for
        opening and aligning scenes (:mod:`satdelta.imagery.pipeline`) and are not used here.
        At 2 m or finer, where the score is smoothed (1 m Gaussian), the smoothed score
        decides which regions changed and each region's outline follows the unsmoothed
        score (see :meth:`~satdelta.imagery.detector.ChangeDetector.apply`).
    valid : (M, N) bool array_like, optional
        True = pixel has data in both dates. Non-finite pixels are always
        invalid. Invalid pixels never count as changed.
    pixel_size_m : float, optional
        Ground size of a pixel in metres; default ``options.pixel_size_m``; ``None`` there
        too = unknown (areas are then read as pixel counts).
    band_names : sequence of str, optional
        One name per band (needed by ``"ndvi"``/``"ndwi"``).

    Returns
    -------
    ChangeMaps

    Raises
    ------
    InvalidParameterError
        A bad pixel size, or fewer than two valid pixels.
    BandMismatchError
        Arrays of different shapes, or index scores without the needed bands.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> before = rng.normal(100, 5, size=(4, 40, 40)).astype("float32")
    >>> after = before + rng.normal(0, 1, size=before.shape).astype("float32")
    >>> after[:, 10:20, 10:20] += 40
    >>> maps = detect_change(before, after, pixel_size_m=10.0)
    >>> bool(maps.changed[10:20, 10:20].all()), int(maps.changed.sum())
    (True, 100)
    >>> maps.method, maps.threshold_method, maps.parameters["normalise"]
    ('cva', 'mixture', 'irmad')
    >>> otsu = detect_change(before, after, DetectionOptions(threshold="otsu"), pixel_size_m=10.0)
    >>> otsu.threshold_method
    'otsu'
    """
    fit = _prepare(before, after, options, valid, pixel_size_m, band_names)
    ok = fit.valid
    # the whole-array score, computed once: the threshold is fitted on it and then applied
    fine, score = score_both(fit.score, fit.before, fit.after_n, ok)
    sample = score[ok]
    sample = _strided(sample[np.isfinite(sample)])
    det = fit.detector(sample)
    segments = det.segments(fit.before, fit.after_n)
    del sample, fit  # frees the normalised after image
    changed = det.decide(fine, score, ok, segments)
    del fine
    log.info(
        "change detection: %s + %s threshold %.4g, %.2f %% of valid pixels changed",
        det.score.method,
        det.threshold.method,
        det.threshold.threshold,
        100.0 * changed.sum() / max(int(ok.sum()), 1),
    )
    return ChangeMaps(
        score=score,
        changed=changed,
        valid=ok,
        threshold=det.threshold.threshold,
        method=det.score.method,
        threshold_method=det.threshold.method,
        parameters=det.parameters,
    )
