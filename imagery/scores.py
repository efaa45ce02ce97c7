"""Per-pixel change scores between two co-registered dates.

Each method in :data:`SCORES` is one object: its ``fit`` turns the valid pixels (or a
sample of them) into a :class:`ScoreModel` of global statistics, its ``apply`` scores
pixels with them, per window with a halo of :attr:`ScoreModel.halo_px` pixels for the
spatial scores. Larger scores mean more change; every score is >= 0. The methods, their
sources and the registration-residue discount are described in
``docs/design-detection-methods.md``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.cues import cue_parameters, cues_ratio
from satdelta.imagery.errors import BandMismatchError, InvalidParameterError
from satdelta.imagery.parallel import run_jobs
from satdelta.imagery.radiometry import (
    IRMADFit,
    finite_pixels,
    fit_irmad,
    fit_windows,
    sample_pixels,
    with_halo,
)
from satdelta.imagery.spectral import (
    ACHROMATIC_SATURATION,
    ACHROMATIC_WIDTH,
    EXG_GREEN,
    EXG_WIDTH,
    builtup_likelihood,
    find_band,
    normalised_difference,
    visible_band_indices,
)
from scipy import ndimage

__all__ = [
    "SCORES",
    "SCORE_METHODS",
    "ChangeScore",
    "ScoreInput",
    "ScoreMethod",
    "ScoreModel",
    "builtup_likelihood",
    "change_score",
    "find_band",
    "fit_score",
    "smooth_score",
    "smoothing_px",
    "visible_band_indices",
]

log = logging.getLogger(__name__)

#: The score methods' names; :data:`SCORE_METHODS` (from :data:`SCORES`) lists the same.
ScoreMethod = Literal[
    "auto", "cva", "irmad", "absdiff", "logratio", "ndvi", "ndwi", "builtup", "cues"
]

#: Ground scale (metres) of the Gaussian that smooths a score map.
SMOOTHING_M = 1.0
#: Smoothing is skipped when the scale is below this many pixels.
MIN_SMOOTH_PX = 0.5
_ROBUST = 1.4826  # MAD -> standard deviation for a Gaussian
_F32 = NDArray[np.float32]


def smooth_score(
    score: NDArray, sigma_px: float, valid: NDArray[np.bool_] | None = None
) -> NDArray:
    """Gaussian smoothing by normalised convolution (invalid/NaN pixels are ignored).

    Examples
    --------
    >>> s = np.array([[0.0, 0.0, np.nan, 4.0, 4.0]])
    >>> out = smooth_score(s, 1.0)
    >>> bool(np.isnan(out[0, 2])), bool(out[0, 0] < out[0, 4])
    (True, True)
    """
    ok = np.isfinite(score)
    if valid is not None:
        ok &= valid
    if sigma_px <= 0:
        return np.where(ok, score, np.nan)
    # float32 in and out (scipy filters each line in double precision internally)
    x = np.where(ok, score, np.float32(0)).astype(np.float32, copy=False)
    out = np.empty(x.shape, np.float32)
    ndimage.gaussian_filter(x, sigma_px, output=out)
    if ok.all():
        # the normalising weights are 1 everywhere (the kernel sums to 1, borders reflect)
        return out
    den = np.empty(x.shape, np.float32)
    ndimage.gaussian_filter(ok.astype(np.float32), sigma_px, output=den)
    keep = ok & (den > 1e-6)
    np.divide(out, den, out=out, where=keep)
    out[~keep] = np.nan
    return out


def smoothing_px(pixel_size_m: float | None, *, scale_m: float = SMOOTHING_M) -> float:
    """Gaussian sigma in pixels for a ground scale in metres (0 when below half a pixel).

    Without a known pixel size the sigma is one pixel (the floor).

    Examples
    --------
    >>> smoothing_px(0.5), smoothing_px(30.0), smoothing_px(None)
    (2.0, 0.0, 1.0)
    """
    if pixel_size_m is None:
        return 1.0
    px = scale_m / pixel_size_m
    return float(px) if px >= MIN_SMOOTH_PX else 0.0


def _robust_difference_scale(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[list[float], list[float]]:
    """Per-band median and robust standard deviation (1.4826 MAD) of ``y - x``."""
    d = y - x
    med = np.median(d, axis=1)
    scale = _ROBUST * np.median(np.abs(d - med[:, None]), axis=1)
    sd = d.std(axis=1)
    scale = np.where(scale > 0, scale, np.where(sd > 0, sd, 1.0))
    return [float(v) for v in med], [float(v) for v in scale]


#: Rows of the change vector's magnitude computed at a time: one strip's difference and sum
#: stay in the CPU's cache across the bands (1.6x faster than whole-array passes on a block,
#: the same float32 operations in the same order, so the same values).
CVA_STRIP_ROWS = 64


def _cva_magnitude(b: _F32, a: _F32, median: Sequence[float], scale: Sequence[float]) -> _F32:
    """``sqrt(sum_b ((a_b - b_b - median_b) / scale_b)^2)`` over the first axis (bands)."""
    centre = np.asarray(median, np.float32)
    inv = np.float32(1) / np.asarray(scale, np.float32)
    acc = np.zeros(b.shape[1:], np.float32)
    if acc.ndim != 2:  # not a (band, row, col) stack: whole-array passes
        for i in range(b.shape[0]):
            d = np.subtract(a[i], b[i], dtype=np.float32)
            d -= centre[i]
            d *= inv[i]
            d *= d
            acc += d
        return np.sqrt(acc, out=acc)
    rows = acc.shape[0]
    spare = np.empty((min(CVA_STRIP_ROWS, rows), acc.shape[1]), np.float32)
    for r0 in range(0, rows, CVA_STRIP_ROWS):  # a strip of rows, band by band
        part = slice(r0, min(r0 + CVA_STRIP_ROWS, rows))
        d, total = spare[: part.stop - r0], acc[part]
        for i in range(b.shape[0]):
            np.subtract(a[i, part], b[i, part], out=d, dtype=np.float32)
            d -= centre[i]
            d *= inv[i]
            d *= d
            total += d
    return np.sqrt(acc, out=acc)


def _shared_edges(b: _F32, a: _F32, scale: Sequence[float], sigma_px: float) -> _F32:
    """Gradient magnitude present at *both* dates (min of the two), in noise units."""
    s = np.asarray(scale, np.float32)

    def grad(x: NDArray) -> NDArray:
        g2 = sum(
            ndimage.gaussian_gradient_magnitude(x[i] / s[i], sigma_px, mode="reflect") ** 2
            for i in range(x.shape[0])
        )
        return np.sqrt(g2)

    return np.minimum(grad(b), grad(a))


@dataclass(frozen=True)
class ScoreModel:
    """A fitted change score.

    Attributes
    ----------
    method : str
        Concrete score method (a key of :data:`SCORES`).
    parameters : dict
        JSON-serialisable statistics used by :meth:`apply`.
    smooth_px : float
        Gaussian sigma (pixels) applied to the map; 0 = none.
    irmad : IRMADFit or None
        The IR-MAD transform for ``method="irmad"``.
    """

    method: str
    parameters: dict[str, Any] = field(default_factory=dict)
    smooth_px: float = 0.0
    irmad: IRMADFit | None = None

    def __post_init__(self) -> None:
        if self.method not in SCORES:
            raise InvalidParameterError(
                f"score method must be one of {tuple(SCORES)}, got {self.method!r}."
            )
        if not (self.smooth_px >= 0 and np.isfinite(self.smooth_px)):
            raise InvalidParameterError(f"smooth_px must be >= 0, got {self.smooth_px}.")
        if SCORES[self.method].needs_irmad and self.irmad is None:
            raise InvalidParameterError(
                f'score method "{self.method}" needs a fitted IR-MAD transform.'
            )

    @property
    def halo_px(self) -> int:
        """Pixels of context a window needs on each side (the Gaussians' 4-sigma reach).

        The smoothing's reach plus, with the shared-edge discount, the gradient's (which
        applies with or without smoothing).
        """
        smooth = 4 * self.smooth_px if self.smooth_px > 0 else 0.0
        edge = self.parameters.get("edge_sigma_px", 0.0)
        own = self.parameters.get("halo_px", 0)  # a method's own spatial reach ("cues")
        return int(np.ceil(smooth + (4 * edge + 1 if edge else 0))) + int(own)

    def apply(
        self, before: NDArray, after: NDArray, valid: NDArray[np.bool_] | None = None
    ) -> NDArray[np.float32]:
        """Score ``(band, row, col)`` arrays; returns ``(row, col)`` float32 >= 0.

        ``valid`` (True = has data) keeps invalid pixels out of the smoothing;
        they come back NaN when smoothing is on.
        """
        return self.apply_scales(before, after, valid)[1]

    def apply_scales(
        self, before: NDArray, after: NDArray, valid: NDArray[np.bool_] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """The score at the pixel scale and after the Gaussian smoothing, computed once.

        Returns
        -------
        unsmoothed, smoothed : (M, N) float32 ndarray
            The per-pixel score (with the edge discount, before smoothing; NaN where
            ``valid`` is False) and the score :meth:`apply` returns. Without smoothing
            both are the same values.
        """
        b = before.astype(np.float32, copy=False)
        a = after.astype(np.float32, copy=False)
        out = np.asarray(SCORES[self.method].apply(self, b, a), dtype=np.float32)
        if self.smooth_px <= 0:
            return out, out
        smoothed = np.asarray(smooth_score(out, self.smooth_px, valid), dtype=np.float32)
        if valid is not None:
            out[~valid] = np.nan  # a fresh array: safe to mark in place
        return out, smoothed


@dataclass(frozen=True)
class ScoreInput:
    """What a score method is fitted on.

    Attributes
    ----------
    before, after : (B, M, N) ndarray
        The two dates on one grid.
    valid : (M, N) bool ndarray
        True where every band of both dates is finite (and the caller's mask is True).
    band_names : sequence of str or None
        Band names, for the methods that need a band's role (red, green, nir).
    smooth_px : float
        Gaussian sigma (pixels) of the map's smoothing; 0 = none.
    irmad : IRMADFit or None
        An IR-MAD fit to reuse.
    pixel_size_m : float or None
        Ground size of a pixel (the ``"cues"`` scales are in metres); None = unknown.
    """

    before: NDArray
    after: NDArray
    valid: NDArray[np.bool_]
    band_names: Sequence[str] | None = None
    smooth_px: float = 0.0
    irmad: IRMADFit | None = None
    pixel_size_m: float | None = None

    def sample(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(band, n)`` float64 samples of the valid pixels of both dates.

        Raises
        ------
        InvalidParameterError
            No valid pixel.
        """
        x, y = sample_pixels(self.before, self.after, self.valid)
        if x.shape[1] == 0:
            raise InvalidParameterError(
                "no valid pixels to fit the change score on; check the no-data masks."
            )
        return x, y

    def band_names_shown(self) -> tuple[str, ...] | None:
        """The band names as an error message shows them."""
        return tuple(self.band_names) if self.band_names else None


class ChangeScore(ABC):
    """One change-score method: :meth:`fit` its statistics once, :meth:`apply` them per window.

    Attributes
    ----------
    name : str
        The method's key in :data:`SCORES`.
    needs_irmad : bool
        True when :meth:`apply` reads :attr:`ScoreModel.irmad`.
    """

    name: str
    needs_irmad: bool = False

    def check_bands(self, band_names: Sequence[str] | None, nbands: int) -> None:
        """Raise :class:`BandMismatchError` when the bands do not suit this method.

        Called before anything is fitted, so a wrong choice fails first; :meth:`fit` checks
        too. Most methods take any bands.
        """
        return None

    @abstractmethod
    def fit(self, data: ScoreInput) -> ScoreModel:
        """The fitted model of this method on ``data``."""

    @abstractmethod
    def apply(self, model: ScoreModel, before: _F32, after: _F32) -> _F32:
        """The unsmoothed ``(M, N)`` score of ``(B, M, N)`` arrays, as a new array."""


class CVAScore(ChangeScore):
    """Change-vector magnitude on robustly standardised band differences (Malila 1980).

    With smoothing on, edges present at both dates are discounted (registration residue).
    """

    name = "cva"

    def fit(self, data: ScoreInput) -> ScoreModel:
        med, scale = _robust_difference_scale(*data.sample())
        params: dict[str, Any] = {"difference_median": med, "difference_scale": scale}
        if data.smooth_px > 0 and min(data.before.shape[1:]) >= 3:
            sigma = data.smooth_px / 2  # registration-residue suppression at the smoothing scale
            med_e = _shared_edge_median(data, scale, sigma)
            if med_e > 0:
                params.update(edge_sigma_px=sigma, edge_median=med_e)
        return ScoreModel(self.name, params, smooth_px=data.smooth_px)

    def apply(self, model: ScoreModel, before: _F32, after: _F32) -> _F32:
        p = model.parameters
        out = _cva_magnitude(before, after, p["difference_median"], p["difference_scale"])
        if p.get("edge_sigma_px"):
            e = _shared_edges(before, after, p["difference_scale"], p["edge_sigma_px"])
            e *= np.float32(1.0 / p["edge_median"])
            e *= e
            e += 1
            np.sqrt(e, out=e)
            out /= e
        return out


def _shared_edge_median(data: ScoreInput, scale: Sequence[float], sigma_px: float) -> float:
    """Median of :func:`_shared_edges` over the valid pixels of a bounded patch set."""
    ok = data.valid
    halo = int(np.ceil(4 * sigma_px)) + 1

    def edges(win: tuple[slice, slice]) -> NDArray:
        outer, inner = with_halo(win, halo, ok.shape)
        ok_w = ok[outer]
        e_w = _shared_edges(
            np.where(ok_w, data.before[(slice(None), *outer)], 0).astype(np.float32),
            np.where(ok_w, data.after[(slice(None), *outer)], 0).astype(np.float32),
            scale,
            sigma_px,
        )
        return e_w[inner][ok_w[inner]]

    # the windows in threads, concatenated in window order (the same median)
    e = np.concatenate(run_jobs(edges, fit_windows(ok.shape, valid=ok)))
    return float(np.median(e)) if e.size else 0.0


class IRMADScore(ChangeScore):
    """Chi-square statistic of the IR-MAD variates (Nielsen 2007); never smoothed."""

    name = "irmad"
    needs_irmad = True

    def fit(self, data: ScoreInput) -> ScoreModel:
        fit = data.irmad or fit_irmad(data.before, data.after, valid=data.valid)
        return ScoreModel(self.name, {"irmad": fit.to_dict()}, irmad=fit)

    def apply(self, model: ScoreModel, before: _F32, after: _F32) -> _F32:
        assert model.irmad is not None  # checked by ScoreModel
        return model.irmad.chi2(before, after).astype(np.float32)


class AbsDiffScore(ChangeScore):
    """Mean absolute difference over bands, in the input's units."""

    name = "absdiff"

    def fit(self, data: ScoreInput) -> ScoreModel:
        return ScoreModel(self.name, {}, smooth_px=data.smooth_px)

    def apply(self, model: ScoreModel, before: _F32, after: _F32) -> _F32:
        return np.mean(np.abs(after - before), axis=0)


class LogRatioScore(ChangeScore):
    """Mean over bands of ``|log((after + c) / (before + c))|``, ``c`` 1 % of the median level."""

    name = "logratio"

    def fit(self, data: ScoreInput) -> ScoreModel:
        x, y = data.sample()
        level = float(np.median(np.concatenate([x.ravel(), y.ravel()])))
        offset = max(0.01 * abs(level), 1e-6)
        low = float(min(x.min(), y.min()))
        if low < 0:
            offset += -low
        return ScoreModel(self.name, {"offset": offset}, smooth_px=data.smooth_px)

    def apply(self, model: ScoreModel, before: _F32, after: _F32) -> _F32:
        c = np.float32(model.parameters["offset"])
        return np.mean(np.abs(np.log(np.maximum(after + c, c) / np.maximum(before + c, c))), axis=0)


@dataclass(frozen=True)
class NormalisedDifferenceScore(ChangeScore):
    """Absolute difference of the index ``(x - y) / (x + y)`` of two bands named by role.

    Attributes
    ----------
    name : str
        The index's name (``"ndvi"``, ``"ndwi"``).
    roles : (str, str)
        The roles of bands ``x`` and ``y`` (see :func:`find_band`).
    """

    name: str
    roles: tuple[str, str]

    def check_bands(self, band_names: Sequence[str] | None, nbands: int) -> None:
        if None in (find_band(band_names, r) for r in self.roles):
            shown = tuple(band_names) if band_names else None
            raise BandMismatchError(
                f"score method {self.name!r} needs bands named {self.roles[0]} and "
                f"{self.roles[1]}, got band names {shown}; name the bands "
                "(e.g. 'red', 'nir') or use method 'cva'."
            )

    def fit(self, data: ScoreInput) -> ScoreModel:
        self.check_bands(data.band_names, data.before.shape[0])
        idx = [find_band(data.band_names, r) for r in self.roles]
        params = {"band_index_1": idx[0], "band_index_2": idx[1], "bands": list(self.roles)}
        return ScoreModel(self.name, params, smooth_px=data.smooth_px)

    def apply(self, model: ScoreModel, before: _F32, after: _F32) -> _F32:
        i, j = model.parameters["band_index_1"], model.parameters["band_index_2"]
        return np.abs(
            normalised_difference(after[i], after[j]) - normalised_difference(before[i], before[j])
        )


class BuiltUpScore(ChangeScore):
    """Change into, out of or on a built surface, from visible colour cues (RGB imagery).

    ``|M_after - M_before| + min(M_after, M_before) * (1 - exp(-(c / median c)^2 / 4))``
    with ``M`` the :func:`builtup_likelihood` and ``c`` the CVA magnitude.
    """

    name = "builtup"

    def check_bands(self, band_names: Sequence[str] | None, nbands: int) -> None:
        if visible_band_indices(band_names, nbands) is None:
            shown = tuple(band_names) if band_names else None
            raise BandMismatchError(
                "score method 'builtup' needs visible red, green and blue bands (and no NIR: "
                f"use 'ndvi' or 'cva' for multispectral data), got {nbands} "
                f"bands named {shown}; pick the visible bands "
                "(CLI: --bands red,green,blue) or use method 'cva'."
            )

    def fit(self, data: ScoreInput) -> ScoreModel:
        self.check_bands(data.band_names, data.before.shape[0])
        x, y = data.sample()
        rgb = visible_band_indices(data.band_names, data.before.shape[0])
        assert rgb is not None  # checked above
        med, scale = _robust_difference_scale(x, y)
        c = _cva_magnitude(x.astype(np.float32), y.astype(np.float32), med, scale)
        cmed = float(np.median(c))
        params = {
            "difference_median": med,
            "difference_scale": scale,
            "band_index_red": rgb[0],
            "band_index_green": rgb[1],
            "band_index_blue": rgb[2],
            "cva_median": cmed if cmed > 0 else 1.0,
            "achromatic_saturation": ACHROMATIC_SATURATION,
            "achromatic_width": ACHROMATIC_WIDTH,
            "exg_green": EXG_GREEN,
            "exg_width": EXG_WIDTH,
        }
        return ScoreModel(self.name, params, smooth_px=data.smooth_px)

    def apply(self, model: ScoreModel, before: _F32, after: _F32) -> _F32:
        p = model.parameters
        r, g, bl = p["band_index_red"], p["band_index_green"], p["band_index_blue"]
        m_b = builtup_likelihood(before[r], before[g], before[bl])
        m_a = builtup_likelihood(after[r], after[g], after[bl])
        c = _cva_magnitude(before, after, p["difference_median"], p["difference_scale"])
        # 1 - exp(-(c / median)^2 / 4), in place
        c *= np.float32(0.5 / p["cva_median"])
        c *= c
        np.negative(c, out=c)
        np.expm1(c, out=c)
        np.negative(c, out=c)
        lo = np.minimum(m_a, m_b)
        c *= lo
        out = np.subtract(m_a, m_b, out=m_a)
        np.abs(out, out=out)
        out += c
        return out


class CuesScore(ChangeScore):
    """Geometric mean of three cues' ratios to their own thresholds (:mod:`satdelta.imagery.cues`).

    CVA, 1 - SSIM at 6 m and gradient-orientation disagreement, each smoothed at 1 m inside
    :meth:`apply` (the model's own ``smooth_px`` is 0; its halo is the cues' reach). A pixel
    is changed where the score exceeds ``exp(-0.1)``; the detector then votes per SLIC segment.
    """

    name = "cues"

    def fit(self, data: ScoreInput) -> ScoreModel:
        params = cue_parameters(
            data.before, data.after, data.valid, data.sample(), data.pixel_size_m
        )
        return ScoreModel(self.name, params)

    def apply(self, model: ScoreModel, before: _F32, after: _F32) -> _F32:
        return cues_ratio(model.parameters, before, after)


#: The score methods by name; a new method is one :class:`ChangeScore` added here (and its
#: name in :data:`ScoreMethod`).
SCORES: MappingProxyType[str, ChangeScore] = MappingProxyType(
    {
        s.name: s
        for s in (
            CVAScore(),
            IRMADScore(),
            AbsDiffScore(),
            LogRatioScore(),
            NormalisedDifferenceScore("ndvi", ("nir", "red")),
            NormalisedDifferenceScore("ndwi", ("green", "nir")),
            BuiltUpScore(),
            CuesScore(),
        )
    }
)
#: ``"auto"`` (resolved by :func:`satdelta.imagery.detect.detect_change`) and the methods.
SCORE_METHODS: tuple[str, ...] = ("auto", *SCORES)


def _valid_pixels(before: NDArray, after: NDArray, valid: NDArray | None) -> NDArray[np.bool_]:
    """True where every band of both dates is finite and ``valid`` (if given) is True."""
    ok = finite_pixels(before, after)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    return ok


def fit_score(
    before: NDArray,
    after: NDArray,
    *,
    method: ScoreMethod = "cva",
    valid: NDArray[np.bool_] | None = None,
    band_names: Sequence[str] | None = None,
    pixel_size_m: float | None = None,
    smoothing_m: float | None = None,
    irmad: IRMADFit | None = None,
) -> ScoreModel:
    """Fit the global statistics of a change score.

    Parameters
    ----------
    before, after : (B, M, N) ndarray
        The two dates on one grid (after already normalised if wanted).
    method : {"cva", "irmad", "absdiff", "logratio", "ndvi", "ndwi", "builtup", "cues"}
        A key of :data:`SCORES`. ``"auto"`` is resolved by
        :func:`satdelta.imagery.detect.detect_change`; here it means ``"cva"``.
    valid : (M, N) bool ndarray, optional
        True where both dates have data.
    band_names : sequence of str, optional
        Needed by ``"ndvi"``/``"ndwi"``; ``"builtup"`` reads red/green/blue
        from them (three unnamed bands are read as R, G, B).
    pixel_size_m : float, optional
        Ground size of a pixel; sets the smoothing in pixels (and the ``"cues"`` scales).
    smoothing_m : float, optional
        Gaussian smoothing scale in metres (default :data:`SMOOTHING_M`;
        0 = none). Below half a pixel no smoothing is done; with an unknown
        pixel size it is one pixel. IR-MAD is never smoothed; ``"cues"`` smooths each
        cue itself at 1 m and ignores this.
    irmad : IRMADFit, optional
        Reuse an IR-MAD fit for ``"irmad"``.

    Returns
    -------
    ScoreModel

    Raises
    ------
    InvalidParameterError
        Unknown method or bad smoothing scale.
    BandMismatchError
        ``"ndvi"``/``"ndwi"``/``"builtup"`` without the needed bands.
    """
    if method not in SCORE_METHODS:
        raise InvalidParameterError(f"method must be one of {SCORE_METHODS}, got {method!r}.")
    if before.shape != after.shape or before.ndim != 3:
        raise BandMismatchError(
            f"before and after must be (band, row, col) arrays of one shape, got {before.shape} "
            f"and {after.shape}."
        )
    if smoothing_m is None:
        smoothing_m = SMOOTHING_M
    if not (np.isfinite(smoothing_m) and smoothing_m >= 0):
        raise InvalidParameterError(
            f"smoothing_m must be a scale in metres >= 0, got {smoothing_m!r}."
        )
    sigma = smoothing_px(pixel_size_m, scale_m=smoothing_m) if smoothing_m > 0 else 0.0
    ok = _valid_pixels(before, after, valid)
    data = ScoreInput(before, after, ok, band_names, sigma, irmad, pixel_size_m)
    return SCORES["cva" if method == "auto" else method].fit(data)


def change_score(
    before: NDArray,
    after: NDArray,
    *,
    method: ScoreMethod = "cva",
    valid: NDArray[np.bool_] | None = None,
    band_names: Sequence[str] | None = None,
    pixel_size_m: float | None = None,
    smoothing_m: float | None = 0.0,
) -> NDArray[np.float32]:
    """Fit and apply a change score on whole arrays; NaN where not valid.

    Unlike :func:`fit_score`, no smoothing by default (``smoothing_m=0``).

    Examples
    --------
    >>> b = np.zeros((1, 2, 3), dtype=np.float32)
    >>> a = np.array([[[0, 1, 4], [0, 0, 2]]], dtype=np.float32)
    >>> change_score(b, a, method="absdiff").tolist()
    [[0.0, 1.0, 4.0], [0.0, 0.0, 2.0]]
    """
    model = fit_score(
        before,
        after,
        method=method,
        valid=valid,
        band_names=band_names,
        pixel_size_m=pixel_size_m,
        smoothing_m=smoothing_m,
    )
    ok = _valid_pixels(before, after, valid)
    out = model.apply(before, after, ok)
    return np.where(ok & np.isfinite(out), out, np.float32(np.nan)).astype(np.float32)
