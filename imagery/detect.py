"""Change detection on two co-registered arrays: normalise, score, threshold, clean up, delineate.

Delineation (only where the score is smoothed, i.e. pixels of 2 m or finer): the smoothed
score and its threshold pick the changed regions, the unsmoothed score draws their outline
(:meth:`ChangeDetector.apply`).

:func:`detect_change` is the whole-array convenience. It is built from a
*fit* step (:func:`fit_detector`: global statistics only - normalisation,
score scales, threshold and its no-change floor) and an *apply* step
(:meth:`ChangeDetector.apply`, per window with a halo of
:attr:`ChangeDetector.halo_px` pixels), so a block runner can fit on a sample
and apply per window. :func:`resolve_auto` documents what ``"auto"`` picks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from satdelta.imagery.errors import BandMismatchError, InvalidParameterError
from satdelta.imagery.morphology import (
    area_to_pixels,
    clean_mask,
    cleanup_halo_px,
    majority3,
    remove_small,
)
from satdelta.imagery.parallel import map_row_blocks, run_jobs
from satdelta.imagery.radiometry import (
    NORMALISE_METHODS,
    HistogramMatching,
    LinearNormalisation,
    NormaliseMethod,
    Window,
    finite_pixels,
    fit_irmad,
    fit_normalisation,
    fit_windows,
    with_halo,
)
from satdelta.imagery.scores import (
    SCORE_METHODS,
    ScoreMethod,
    ScoreModel,
    fit_score,
    visible_band_indices,
)
from satdelta.imagery.threshold import (
    THRESHOLD_METHODS,
    ThresholdFit,
    ThresholdMethod,
    fit_threshold,
)
from scipy import special

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


@dataclass(frozen=True)
class ChangeMaps:
    """Result of change detection on one grid.

    Attributes
    ----------
    score : (M, N) float32 ndarray
        Change score, larger = more change; NaN where not valid.
    changed : (M, N) bool ndarray
        True = changed; always False where not valid.
    valid : (M, N) bool ndarray
        True = both dates have data.
    threshold : float
        Score value above which a pixel was called changed (before clean-up). Where the
        score is smoothed, a changed pixel has both its smoothed score (``score``) and its
        own unsmoothed score above it (see :meth:`ChangeDetector.apply`).
    method, threshold_method : str
        Concrete methods used (never ``"auto"``).
    parameters : dict
        Every parameter actually used, JSON-serialisable.
    """

    score: NDArray[np.float32]
    changed: NDArray[np.bool_]
    valid: NDArray[np.bool_]
    threshold: float
    method: str
    threshold_method: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shp = self.valid.shape
        if self.valid.ndim != 2 or self.score.shape != shp or self.changed.shape != shp:
            raise InvalidParameterError(
                f"score, changed and valid must be (row, col) arrays of one shape, got "
                f"{self.score.shape}, {self.changed.shape}, {self.valid.shape}."
            )
        if self.valid.dtype != np.bool_ or self.changed.dtype != np.bool_:
            raise InvalidParameterError("changed and valid must be bool arrays.")
        if self.score.dtype != np.float32:
            raise InvalidParameterError(f"score must be float32, got {self.score.dtype}.")
        if np.any(self.changed & ~self.valid):
            raise InvalidParameterError("changed must be False wherever valid is False.")
        if not math.isfinite(self.threshold):
            raise InvalidParameterError(f"threshold must be finite, got {self.threshold!r}.")

    @property
    def changed_fraction(self) -> float:
        """Fraction of valid pixels called changed."""
        n = int(self.valid.sum())
        return float(self.changed.sum()) / n if n else 0.0


@dataclass(frozen=True)
class ChangeDetector:
    """Fitted global state of a change detector; :meth:`apply` works per window.

    Attributes
    ----------
    normalisation : LinearNormalisation or HistogramMatching or None
    score : ScoreModel
    threshold : ThresholdFit
    cleanup_radius_px, min_pixels : int
        Morphological clean-up radius and minimum region size in pixels.
    parameters : dict
        JSON-serialisable record of everything used.
    """

    normalisation: LinearNormalisation | HistogramMatching | None
    score: ScoreModel
    threshold: ThresholdFit
    cleanup_radius_px: int
    min_pixels: int
    parameters: dict[str, Any]

    @property
    def halo_px(self) -> int:
        """Context a window needs on each side for :meth:`apply` to match the whole-array result.

        Score smoothing + clean-up opening. The delineation needs less (the unsmoothed
        score's edge term plus one pixel), so it adds nothing. The minimum-area filter is
        exact only for regions that fit in the window plus halo
        (:mod:`satdelta.imagery.morphology`).
        """
        return self.score.halo_px + cleanup_halo_px(self.cleanup_radius_px)

    def score_window(
        self, before: NDArray, after: NDArray, valid: NDArray[np.bool_]
    ) -> NDArray[np.float32]:
        """Normalise and score one window; NaN where not valid."""
        return self._score_scales(before, after, valid)[1]

    def _score_scales(
        self,
        before: NDArray,
        after: NDArray,
        valid: NDArray[np.bool_],
        *,
        normalised: bool = False,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Unsmoothed and smoothed score, NaN where not valid (``normalised``: after already is)."""
        a = after if (normalised or self.normalisation is None) else self.normalisation.apply(after)
        return _score_both(self.score, before, a, valid)

    def apply(
        self, before: NDArray, after: NDArray, valid: NDArray[np.bool_]
    ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Score, threshold, clean and delineate one window (include :attr:`halo_px` of context).

        1. *Which* places changed: the (smoothed) score above the threshold, opened with the
           1 m disk and filtered by the minimum area
           (:func:`~satdelta.imagery.morphology.clean_mask`).
        2. *Where exactly* (only when the score is smoothed, i.e. pixels of 2 m or finer):
           inside those regions, a pixel stays changed when its own unsmoothed score also
           exceeds the threshold. The Gaussian spreads an object's score over about two
           sigmas (1 m each side at the default scale) around it, so the smoothed map
           crosses the threshold well outside a high-contrast object; the unsmoothed score
           falls off within the sensor's point spread. Requiring both keeps what the
           smoothing decided (no speckle outside the regions, regions never grow) and puts
           the outline back where the change itself is. The per-pixel test is noisy, so it
           is passed through a 3 x 3 majority vote (binary median,
           :func:`~satdelta.imagery.morphology.majority3`) before the intersection: single
           dropouts inside an object and single stray pixels go, straight edges stay. Regions
           that fall below the minimum area are dropped again.

        Without smoothing (coarse pixels) step 2 changes nothing and is skipped.

        Returns
        -------
        score : (M, N) float32 ndarray
            NaN where not valid.
        changed : (M, N) bool ndarray
            True = changed, False where not valid.
        """
        fine, s = self._score_scales(before, after, valid)
        return s, self._decide(fine, s, valid)

    def _decide(
        self, fine: NDArray[np.float32], s: NDArray[np.float32], valid: NDArray[np.bool_]
    ) -> NDArray[np.bool_]:
        """Steps 1 and 2 of :meth:`apply` on scores already computed (NaN where not valid)."""
        ok = valid & np.isfinite(s)
        t = self.threshold.threshold
        with np.errstate(invalid="ignore"):
            raw = s > t
        changed = clean_mask(
            raw,
            valid=ok,
            radius_px=self.cleanup_radius_px,
            min_pixels=self.min_pixels,
            mode=CLEANUP_MODE,  # type: ignore[arg-type]
        )
        if self.score.smooth_px > 0:
            with np.errstate(invalid="ignore"):
                changed &= majority3(fine > t)
            if self.min_pixels > 1:
                changed = remove_small(changed, self.min_pixels)
        changed &= ok
        return changed


def _score_both(
    score: ScoreModel, before: NDArray, after_n: NDArray, valid: NDArray[np.bool_]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``score.apply_scales`` with NaN wherever not valid or not finite (fresh arrays).

    Computed by row blocks in threads (:func:`~satdelta.imagery.parallel.map_row_blocks`,
    each block with the score's halo), which gives the same values as the whole array at
    once. Without smoothing both scores are one array, as :meth:`ScoreModel.apply_scales`
    returns them.
    """
    band = slice(None)

    def block(rows: slice) -> tuple[NDArray[np.float32], ...]:
        fine, s = _score_block(score, before[band, rows], after_n[band, rows], valid[rows])
        return (fine,) if s is fine else (fine, s)

    parts = map_row_blocks(block, valid.shape[0], score.halo_px)
    return (parts[0], parts[-1])


def _score_block(
    score: ScoreModel, before: NDArray, after_n: NDArray, valid: NDArray[np.bool_]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """:func:`_score_both` on one block, in the calling thread."""
    fine, s = score.apply_scales(before, after_n, valid)
    nan = np.float32(np.nan)
    fine = np.asarray(fine, dtype=np.float32)
    fine[~(valid & np.isfinite(fine))] = nan
    if s is not fine:
        s = np.asarray(s, dtype=np.float32)
        s[~(valid & np.isfinite(s))] = nan
    return fine, s


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


#: Ground scale (metres) of the morphological clean-up: changed regions narrower than about
#: twice this are removed by an opening (sub-metre slivers at very high resolution are
#: registration residue on edges, not objects).
CLEANUP_M = 1.0
#: "Opening" removes thin structures; "open-close" also fills small gaps afterwards.
CLEANUP_MODE = "open"


def cleanup_radius_px(pixel_size_m: float | None, *, scale_m: float = CLEANUP_M) -> int:
    """Disk radius (pixels) of the clean-up opening: ``round(scale_m / pixel)``, 0 below 1 px.

    With an unknown pixel size no morphology is applied.

    Examples
    --------
    >>> cleanup_radius_px(0.5), cleanup_radius_px(30.0), cleanup_radius_px(None)
    (2, 0, 0)
    """
    if pixel_size_m is None:
        return 0
    return int(round(scale_m / pixel_size_m))


#: Most pixels on which :func:`no_change_quantile` measures the per-band noise spread.
MAX_NOISE_SAMPLES = 1 << 18


def no_change_quantile(
    score: ScoreModel,
    before: NDArray,
    after: NDArray,
    valid: NDArray[np.bool_],
    *,
    quantile: float = 0.99,
    seed: int = 0,
    windows: Sequence[Window] | None = None,
) -> float | None:
    """Score quantile of a simulated *no-change* pair: a floor for automatic thresholds.

    Otsu, k-means and two-class mixtures always split the scores into two classes, so on a
    pair where nothing changed they still call a large share of pixels changed. The floor
    is a parametric bootstrap of the no-change case: the after image is replaced by
    ``before + noise`` with Gaussian noise of each band's robust spread of
    ``after - before`` (1.4826 x MAD, which the changed minority does not inflate), the
    fitted score is applied to that pair, and its ``quantile`` is returned (for the IR-MAD
    score, whose transform is fitted to the real pair, the chi-square quantile with one
    degree of freedom per band is used instead). With smoothing
    on, white noise is attenuated more than real (spatially correlated) differences, so the
    floor is a lower bound.

    The noise spread is measured on at most :data:`MAX_NOISE_SAMPLES` pixels (evenly
    strided). The simulation runs on ``windows`` (default
    :func:`~satdelta.imagery.radiometry.fit_windows`: the whole array up to about a
    megapixel, else a fixed set of 256 x 256 patches spread over the scene), each scored
    with the score's halo of context, so its cost is bounded. The spread is measured on the
    same windows. The windows are scored in threads (:mod:`satdelta.imagery.parallel`) while
    this thread draws the next window's noise from the one seeded generator, in window order,
    so the result does not depend on the thread count; the noise of windows waiting for a
    thread is held meanwhile (at most one float32 copy of the windows).

    Returns
    -------
    float or None
        None when there are no valid pixels.
    """
    if not valid.any():
        return None
    nb = before.shape[0]
    if score.method == "irmad":
        # its own null distribution: chi-square with one degree of freedom per band
        return float(special.chdtri(nb, 1.0 - quantile))
    shape = valid.shape
    wins = list(fit_windows(shape, valid=valid) if windows is None else windows)
    band = slice(None)
    d = np.concatenate(
        run_jobs(lambda w: (after[(band, *w)] - before[(band, *w)])[:, valid[w]], wins), axis=1
    )
    if d.shape[1] == 0:
        return None
    step = -(-d.shape[1] // MAX_NOISE_SAMPLES)
    if step > 1:  # an evenly strided subsample measures the spread well enough
        d = d[:, ::step]
    med = np.median(d, axis=1)
    scale = 1.4826 * np.median(np.abs(d - med[:, None]), axis=1)
    if not (scale > 0).all():
        scale = np.where(scale > 0, scale, d.std(axis=1))
    del d
    h = score.halo_px
    scale32 = scale.reshape(nb, 1, 1).astype(np.float32)
    med32 = med.reshape(nb, 1, 1).astype(np.float32)

    def draws() -> Iterator[tuple[Window, NDArray[np.float32]]]:
        # one generator, drawn from window by window in this thread: the same numbers in
        # the same order whatever the thread count
        rng = np.random.default_rng(seed)
        for w in wins:
            outer, _ = with_halo(w, h, shape)
            rows, cols = outer[0].stop - outer[0].start, outer[1].stop - outer[1].start
            yield w, rng.standard_normal((nb, rows, cols)).astype(np.float32)

    def simulate(job: tuple[Window, NDArray[np.float32]]) -> NDArray[np.float32]:
        w, noise = job
        outer, inner = with_halo(w, h, shape)
        b_w = before[(band, *outer)].astype(np.float32, copy=False)
        noise *= scale32
        noise += med32
        noise += b_w  # the null after image
        s = score.apply(b_w, noise, valid[outer])[inner]
        return s[valid[w] & np.isfinite(s)]

    # the windows are scored in threads while the next window's noise is drawn here
    s = np.concatenate(run_jobs(simulate, draws()))
    return float(np.quantile(s, quantile)) if s.size else None


def resolve_auto(
    nbands: int,
    band_names: Sequence[str] | None,
    method: str,
    normalise: str,
) -> tuple[str, str]:
    """Concrete score and normalisation methods for ``"auto"``, from the kind of bands only.

    * Visible-only imagery (red, green, blue and no NIR; three unnamed bands
      count as RGB): score ``"builtup"``, normalisation ``"none"``. Without
      NIR, vegetation and soil changes have no physical signature that
      separates them from seasonal and illumination differences, so the
      default looks for change that involves built surfaces (see
      :mod:`satdelta.imagery.scores`). That score is made of colour ratios
      (saturation, excess green) plus a difference standardised by its own
      median and robust spread, so it needs no per-band normalisation; per-band
      histogram matching would distort the colour ratios.
    * Anything else: score ``"cva"`` on standardised bands; normalisation
      ``"irmad"`` (Canty & Nielsen 2008) with 4 or more bands, where the MAD
      variates are well conditioned, ``"histogram"`` with fewer.

    Examples
    --------
    >>> resolve_auto(6, ("B1_blue", "B2_green", "B3_red", "B4_nir", "B5_swir1", "B7_swir2"),
    ...              "auto", "auto")
    ('cva', 'irmad')
    >>> resolve_auto(3, ("red", "green", "blue"), "auto", "auto")
    ('builtup', 'none')
    >>> resolve_auto(1, None, "auto", "auto")
    ('cva', 'histogram')
    """
    visible = visible_band_indices(band_names, nbands) is not None
    score_method = method
    if method == "auto":
        score_method = "builtup" if visible else "cva"
    norm_method = normalise
    if normalise == "auto":
        norm_method = "none" if visible else ("irmad" if nbands >= 4 else "histogram")
    return score_method, norm_method


def _check_options(
    b: NDArray,
    ok: NDArray[np.bool_],
    *,
    pixel_size_m: float | None,
    band_names: Sequence[str] | None,
    method: str,
    threshold: str,
    normalise: str,
    min_area_m2: float | None,
    null_quantile: float | None,
) -> tuple[float | None, int]:
    """Validate the options; returns the pixel size (float or None) and the minimum pixels."""
    for name, val, choices in (
        ("method", method, SCORE_METHODS),
        ("threshold", threshold, THRESHOLD_METHODS),
        ("normalise", normalise, NORMALISE_METHODS),
    ):
        if val not in choices:
            raise InvalidParameterError(f"{name} must be one of {choices}, got {val!r}.")
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
    if null_quantile is not None and not (0.5 <= float(null_quantile) < 1.0):
        raise InvalidParameterError(
            f"null_quantile must be in [0.5, 1) or None, got {null_quantile!r}."
        )
    if band_names is not None and len(band_names) != b.shape[0]:
        raise BandMismatchError(
            f"band_names has {len(band_names)} names for {b.shape[0]} bands: "
            f"{tuple(band_names)}; give one name per band or none."
        )
    if min_area_m2 is not None:
        min_pixels = area_to_pixels(float(min_area_m2), pixel_size_m)
    else:
        min_pixels = 0
    n_valid = int(ok.sum())
    if n_valid < 2:
        raise InvalidParameterError(
            f"change detection needs at least 2 valid pixels, got {n_valid}; check the "
            "no-data masks and that the scenes overlap."
        )
    return pixel_size_m, min_pixels


def _fit_score(
    b: NDArray,
    a: NDArray,
    ok: NDArray[np.bool_],
    *,
    pixel_size_m: float | None,
    band_names: Sequence[str] | None,
    method: str,
    normalise: str,
) -> tuple[str, LinearNormalisation | HistogramMatching | None, ScoreModel, NDArray]:
    """Normalisation and score statistics; returns them with the normalised after image."""
    score_method, norm_method = resolve_auto(b.shape[0], band_names, method, normalise)
    n_valid = int(ok.sum())
    if normalise == "auto" and norm_method == "irmad" and n_valid < 20 * (4 * b.shape[0] + 2):
        # too few pixels for stable canonical correlations: fall back to histogram matching
        norm_method = "histogram"
    irmad = None
    if norm_method == "irmad" or score_method == "irmad":
        irmad = fit_irmad(b, a, valid=ok)
    norm = fit_normalisation(b, a, method=norm_method, valid=ok, irmad=irmad)  # type: ignore[arg-type]
    a_n = a if norm is None else norm.apply(a)
    score_model: ScoreModel = fit_score(
        b,
        a_n,
        method=score_method,  # type: ignore[arg-type]
        valid=ok,
        band_names=band_names,
        pixel_size_m=pixel_size_m,
        irmad=irmad if norm_method == "none" else None,
    )
    return norm_method, norm, score_model, a_n


#: Most score values the automatic threshold methods are fitted on (an evenly strided
#: subsample of the valid pixels in raster order beyond that).
MAX_THRESHOLD_SAMPLES = 1 << 20


def _strided(values: NDArray) -> NDArray:
    step = -(-values.size // MAX_THRESHOLD_SAMPLES)
    return values if step <= 1 else values[::step]


def _patch_scores(
    score: ScoreModel, b: NDArray, a_n: NDArray, ok: NDArray[np.bool_]
) -> NDArray[np.float32]:
    """Finite smoothed scores of the valid pixels of the fitting patches (:func:`fit_windows`)."""
    band = slice(None)

    def patch(w: Window) -> NDArray[np.float32]:
        outer, inner = with_halo(w, score.halo_px, ok.shape)
        s = _score_block(score, b[(band, *outer)], a_n[(band, *outer)], ok[outer])[1][inner]
        return s[np.isfinite(s)]

    # the patches are scored in threads; their values are concatenated in window order
    return np.concatenate(run_jobs(patch, fit_windows(ok.shape, valid=ok)))


def _assemble(
    b: NDArray,
    a_n: NDArray,
    ok: NDArray[np.bool_],
    sample: NDArray,
    *,
    norm_method: str,
    norm: LinearNormalisation | HistogramMatching | None,
    score_model: ScoreModel,
    pixel_size_m: float | None,
    band_names: Sequence[str] | None,
    threshold: str,
    threshold_value: float | None,
    min_area_m2: float | None,
    min_pixels: int,
    null_quantile: float | None,
) -> ChangeDetector:
    """Threshold (with its no-change floor) fitted on ``sample``, and the run record."""
    thr = fit_threshold(sample, method=threshold, value=threshold_value)  # type: ignore[arg-type]
    null_q = None
    if thr.method in ("mixture", "otsu", "kmeans") and null_quantile is not None:
        null_q = no_change_quantile(score_model, b, a_n, ok, quantile=null_quantile)
        if null_q is not None and null_q > thr.threshold:
            thr = ThresholdFit(
                null_q, thr.method, {**thr.parameters, "fitted_threshold": thr.threshold}
            )
    radius = cleanup_radius_px(pixel_size_m)
    params: dict[str, Any] = {
        "method": score_model.method,
        "score": score_model.parameters,
        "normalise": norm_method,
        "normalisation": None if norm is None else norm.to_dict(),
        "threshold_method": thr.method,
        "threshold": thr.threshold,
        "threshold_fit": thr.parameters,
        "threshold_value": threshold_value,
        "no_change_quantile": null_q,
        "pixel_size_m": pixel_size_m,
        "band_names": list(band_names) if band_names is not None else None,
        "min_area_m2": None if min_area_m2 is None else float(min_area_m2),
        "min_pixels": min_pixels,
        "cleanup_radius_px": radius,
        "smooth_px": score_model.smooth_px,
        "delineation": (
            "smoothed regions & 3x3 majority of (unsmoothed score > threshold)"
            if score_model.smooth_px > 0
            else None
        ),
    }
    return ChangeDetector(norm, score_model, thr, radius, min_pixels, params)


def _prepare(
    before: ArrayLike,
    after: ArrayLike,
    *,
    valid: ArrayLike | None,
    pixel_size_m: float | None,
    band_names: Sequence[str] | None,
    method: str,
    threshold: str,
    threshold_value: float | None,
    normalise: str,
    min_area_m2: float | None,
    null_quantile: float | None,
) -> tuple[
    NDArray,
    NDArray,
    NDArray[np.bool_],
    ScoreModel,
    Callable[[NDArray, NDArray, NDArray[np.bool_], NDArray], ChangeDetector],
]:
    """The steps :func:`fit_detector` and :func:`detect_change` share before the threshold.

    Checks the pair and the options, resolves the valid mask and fits the normalisation
    and the score model. Returns ``(before, normalised after, valid, score model,
    assemble)``, where ``assemble(before, normalised_after, valid, sample)`` is
    :func:`_assemble` with every option bound (the arrays are left out so the caller
    decides when to free them).
    """
    b, a = _as_pair(before, after)
    ok = _resolve_valid(b, a, valid)
    px, min_pixels = _check_options(
        b,
        ok,
        pixel_size_m=pixel_size_m,
        band_names=band_names,
        method=method,
        threshold=threshold,
        normalise=normalise,
        min_area_m2=min_area_m2,
        null_quantile=null_quantile,
    )
    norm_method, norm, score_model, a_n = _fit_score(
        b, a, ok, pixel_size_m=px, band_names=band_names, method=method, normalise=normalise
    )
    assemble = partial(
        _assemble,
        norm_method=norm_method,
        norm=norm,
        score_model=score_model,
        pixel_size_m=px,
        band_names=band_names,
        threshold=threshold,
        threshold_value=threshold_value,
        min_area_m2=min_area_m2,
        min_pixels=min_pixels,
        null_quantile=null_quantile,
    )
    return b, a_n, ok, score_model, assemble


def fit_detector(
    before: ArrayLike,
    after: ArrayLike,
    *,
    valid: ArrayLike | None = None,
    pixel_size_m: float | None = None,
    band_names: Sequence[str] | None = None,
    method: ScoreMethod = "auto",
    threshold: ThresholdMethod = "auto",
    threshold_value: float | None = None,
    normalise: NormaliseMethod = "auto",
    min_area_m2: float | None = None,
    null_quantile: float | None = 0.99,
) -> ChangeDetector:
    """Fit the global statistics of a change detector (see :func:`detect_change`).

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
    b, a_n, ok, score_model, assemble = _prepare(
        before,
        after,
        valid=valid,
        pixel_size_m=pixel_size_m,
        band_names=band_names,
        method=method,
        threshold=threshold,
        threshold_value=threshold_value,
        normalise=normalise,
        min_area_m2=min_area_m2,
        null_quantile=null_quantile,
    )
    return assemble(b, a_n, ok, _strided(_patch_scores(score_model, b, a_n, ok)))


def detect_change(
    before: ArrayLike,
    after: ArrayLike,
    *,
    valid: ArrayLike | None = None,
    pixel_size_m: float | None = None,
    band_names: Sequence[str] | None = None,
    method: ScoreMethod = "auto",
    threshold: ThresholdMethod = "auto",
    threshold_value: float | None = None,
    normalise: NormaliseMethod = "auto",
    min_area_m2: float | None = None,
    null_quantile: float | None = 0.99,
) -> ChangeMaps:
    """Find changed pixels between two co-registered images.

    Parameters
    ----------
    before, after : (B, M, N) array_like
        The two dates on one grid (a 2-D array is read as one band).
    valid : (M, N) bool array_like, optional
        True = pixel has data in both dates. Non-finite pixels are always
        invalid. Invalid pixels never count as changed.
    pixel_size_m : float, optional
        Ground size of a pixel in metres; ``None`` = unknown (areas are then
        read as pixel counts).
    band_names : sequence of str, optional
        One name per band (needed by ``"ndvi"``/``"ndwi"``).
    method : {"auto", "cva", "irmad", "absdiff", "logratio", "ndvi", "ndwi"}
        Change score (:mod:`satdelta.imagery.scores`).
    threshold : {"auto", "mixture", "otsu", "kmeans", "value", "percentile"}
        Threshold method (:mod:`satdelta.imagery.threshold`).
    threshold_value : float, optional
        The value for ``"value"``; the percentile for ``"percentile"``.
    normalise : {"auto", "none", "histogram", "irmad"}
        Radiometric normalisation of after onto before
        (:mod:`satdelta.imagery.radiometry`).
    min_area_m2 : float, optional
        Changed regions smaller than this (square metres) are dropped.

        At 2 m or finer, where the score is smoothed (1 m Gaussian), the smoothed score
        decides which regions changed and each region's outline follows the unsmoothed
        score (see :meth:`ChangeDetector.apply`).
    null_quantile : float or None, default 0.99
        Floor for the automatic thresholds (``mixture``, ``otsu``, ``kmeans``): the
        threshold is raised to this quantile of the score of a simulated no-change pair
        (:func:`no_change_quantile`), so a pair where nothing changed is not split in two.
        ``None`` turns the floor off (the plain published method).

    Returns
    -------
    ChangeMaps

    Raises
    ------
    InvalidParameterError
        An unknown method or an out-of-range option.
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
    """
    b, a_n, ok, score_model, assemble = _prepare(
        before,
        after,
        valid=valid,
        pixel_size_m=pixel_size_m,
        band_names=band_names,
        method=method,
        threshold=threshold,
        threshold_value=threshold_value,
        normalise=normalise,
        min_area_m2=min_area_m2,
        null_quantile=null_quantile,
    )
    # the whole-array score, computed once: the threshold is fitted on it and then applied
    fine, score = _score_both(score_model, b, a_n, ok)
    sample = score[ok]
    sample = _strided(sample[np.isfinite(sample)])
    det = assemble(b, a_n, ok, sample)
    del sample, a_n
    changed = det._decide(fine, score, ok)
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
