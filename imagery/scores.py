"""Per-pixel change scores between two co-registered dates.

Each score is split into :func:`fit_score` (global statistics from the valid
pixels or a sample of them) and :meth:`ScoreModel.apply` (per pixel, or per
window with a halo of :attr:`ScoreModel.halo_px` pixels for spatial scores).
Larger scores mean more change; every score is >= 0.

Methods
-------
``"cva"``
    Change-vector magnitude on standardised band differences (Malila 1980,
    "Change vector analysis: an approach for detecting forest changes with
    Landsat"): ``sqrt(sum_b ((d_b - median d_b) / s_b)^2)`` with ``d_b`` the
    after-minus-before difference of band b and ``s_b`` its robust standard
    deviation (1.4826 x median absolute deviation), which measures the
    no-change noise of each band without being inflated by the changed pixels.
``"irmad"``
    Chi-square statistic of the IR-MAD variates (Nielsen 2007).
``"absdiff"``
    Mean absolute difference over bands, in the input's units.
``"logratio"``
    Mean over bands of ``|log((after + c) / (before + c))|`` with ``c`` 1 % of
    the median level (keeps dark pixels from dominating), suited to
    multiplicative (illumination, speckle) differences.
``"ndvi"``, ``"ndwi"``
    Absolute difference of NDVI ``(nir - red)/(nir + red)`` or NDWI
    ``(green - nir)/(green + nir)`` (McFeeters 1996); needs band names that say
    which band is red/green/nir.
``"builtup"``
    Change that involves a built (man-made) surface, for visible-only (RGB)
    imagery where no NIR band separates vegetation physically. Each date gets
    a built-surface likelihood ``M = achromatic * not_green`` from two visible
    colour cues: low HSV saturation ``(max - min) / max`` (Smith 1978; roofs,
    concrete, asphalt, vehicles are near-grey) and no excess green
    ``ExG = 2g - r - b`` on chromatic coordinates (Woebbecke et al. 1995),
    both as soft logistic steps. The score is
    ``|M_after - M_before| + min(M_after, M_before) * (1 - exp(-(c / median c)^2 / 4))``:
    a transition into or out of a built surface, or a spectral change
    (standardised CVA magnitude ``c``) on a surface that is built at both
    dates (an aircraft leaving a grey apron). Changes between natural covers
    (vegetation, soil, water) score low by design. This is satdelta's own
    combination of the published cues, measured on LEVIR-CD by
    ``benchmarks/quality.py``; it is a colour heuristic, not a classifier.

Every method except ``irmad`` can smooth its map with a Gaussian of
``smooth_px`` pixels (:func:`fit_score` sets it from a scale in metres), so
speckle from sub-object texture does not dominate at very high resolution.
:meth:`ScoreModel.apply_scales` returns the unsmoothed map as well (same units, edge discount
included): :mod:`satdelta.imagery.detect` decides which regions changed on the smoothed map
and draws their outline on the unsmoothed one.

Registration residue. At the resolutions where that smoothing is on (a 1 m
scale of at least half a pixel), sub-pixel misregistration, relief
displacement and point-spread differences leave a difference along every
sharp edge that exists at both dates (Dai & Khorram 1998, "The effects of
image misregistration on the accuracy of remotely sensed change detection",
IEEE TGRS 36(5); Bruzzone & Cossu 2003, "An adaptive approach to reducing
registration noise effects in unsupervised change detection", IEEE TGRS
41(11)). ``"cva"`` then divides its magnitude by ``sqrt(1 + (e / median e)^2)``
with ``e`` the smaller of the two dates' gradient magnitudes (an edge present
at both dates; a new or vanished object has its edges at one date only and
keeps its full score). This discount is satdelta's own simple form of the
idea, measured on the sample scenes in ``benchmarks/quality.py``.
Smoothing is a normalised convolution: invalid pixels neither spread NaN nor
pull values down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray
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
from scipy import ndimage

__all__ = [
    "SCORE_METHODS",
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

ScoreMethod = Literal["auto", "cva", "irmad", "absdiff", "logratio", "ndvi", "ndwi", "builtup"]
SCORE_METHODS: tuple[str, ...] = get_args(ScoreMethod)

#: Ground scale (metres) of the Gaussian that smooths a score map.
SMOOTHING_M = 1.0
#: Smoothing is skipped when the scale is below this many pixels.
MIN_SMOOTH_PX = 0.5
#: HSV saturation below which a colour counts as near-grey (soft step of width 0.03).
ACHROMATIC_SATURATION = 0.15
ACHROMATIC_WIDTH = 0.03
#: Excess green above which a colour counts as vegetation (soft step of width EXG_WIDTH).
#: Neutral grey has ExG = 0; the step sits above it so that sensor noise on a grey
#: surface does not flip it between "built" and "vegetation".
EXG_GREEN = 0.05
EXG_WIDTH = 0.02

_ROBUST = 1.4826  # MAD -> standard deviation for a Gaussian

_BAND_ALIASES: dict[str, tuple[str, ...]] = {
    "red": ("red", "r"),
    "green": ("green", "g"),
    "blue": ("blue", "b"),
    "nir": ("nir", "nir08", "near-infrared", "nearinfrared", "near_infrared"),
}


def find_band(band_names: Sequence[str] | None, role: str) -> int | None:
    """Index of the band whose name says it is ``role`` (red, green, blue, nir).

    Names are split on ``_ - space .`` and matched token by token, so
    ``"B4_nir"`` is nir and ``"B3_red"`` is red (but ``"rededge"`` is not red).

    Examples
    --------
    >>> find_band(("B1_blue", "B2_green", "B3_red", "B4_nir"), "nir")
    3
    >>> find_band(("red", "green", "blue"), "nir") is None
    True
    """
    if not band_names:
        return None
    aliases = _BAND_ALIASES[role]
    for i, name in enumerate(band_names):
        tokens = name.lower().replace("-", "_").replace(" ", "_").replace(".", "_").split("_")
        if any(t in aliases for t in tokens) or name.lower() in aliases:
            return i
    return None


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


def _logistic(x: NDArray, width: float) -> NDArray:
    """``0.5 (1 + tanh(x / 2w))`` = ``1 / (1 + exp(-x / w))``, computed in place in ``x``."""
    x *= x.dtype.type(0.5 / width)
    np.tanh(x, out=x)
    x += 1
    x *= 0.5
    return x


def builtup_likelihood(red: NDArray, green: NDArray, blue: NDArray) -> NDArray[np.float32]:
    """Soft built-surface likelihood in [0, 1] from visible colour alone.

    ``achromatic * (1 - green)`` with ``achromatic`` a logistic step of HSV
    saturation below :data:`ACHROMATIC_SATURATION` and ``green`` a logistic
    step of excess green ``2g - r - b`` above 0 (Woebbecke et al. 1995).
    Negative inputs are treated as 0.

    Examples
    --------
    >>> r = np.array([120.0, 60.0]); g = np.array([118.0, 140.0]); b = np.array([115.0, 50.0])
    >>> [round(float(v), 2) for v in builtup_likelihood(r, g, b)]  # grey roof, green lawn
    [0.89, 0.0]
    """
    r = np.maximum(np.asarray(red, dtype=np.float32), 0)
    g = np.maximum(np.asarray(green, dtype=np.float32), 0)
    b = np.maximum(np.asarray(blue, dtype=np.float32), 0)
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    zero = np.float32(0)
    # saturation (max - min) / max, 0 for black
    sat = np.subtract(mx, mn, out=mn)
    np.divide(sat, mx, out=sat, where=mx > 0)
    sat[mx <= 0] = zero
    # excess green on chromatic coordinates: 2g - r - b over the sum = (3g - sum) / sum
    total = r + g
    total += b
    exg = g * np.float32(3)
    exg -= total
    np.divide(exg, total, out=exg, where=total > 0)
    exg[total <= 0] = zero
    # achromatic = logistic(S0 - sat); not green = 1 - logistic(exg - E0) = logistic(E0 - exg)
    np.subtract(np.float32(ACHROMATIC_SATURATION), sat, out=sat)
    achromatic = _logistic(sat, ACHROMATIC_WIDTH)
    np.subtract(np.float32(EXG_GREEN), exg, out=exg)
    not_green = _logistic(exg, EXG_WIDTH)
    achromatic *= not_green
    return achromatic


@dataclass(frozen=True)
class ScoreModel:
    """A fitted change score.

    Attributes
    ----------
    method : str
        Concrete score method.
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
        if self.method not in SCORE_METHODS or self.method == "auto":
            raise InvalidParameterError(
                f"score method must be one of {SCORE_METHODS[1:]}, got {self.method!r}."
            )
        if not (self.smooth_px >= 0 and np.isfinite(self.smooth_px)):
            raise InvalidParameterError(f"smooth_px must be >= 0, got {self.smooth_px}.")
        if self.method == "irmad" and self.irmad is None:
            raise InvalidParameterError('score method "irmad" needs a fitted IR-MAD transform.')

    @property
    def halo_px(self) -> int:
        """Pixels of context a window needs on each side (the Gaussians' 4-sigma reach).

        The smoothing's reach plus, with the shared-edge discount, the gradient's (which
        applies with or without smoothing).
        """
        smooth = 4 * self.smooth_px if self.smooth_px > 0 else 0.0
        edge = self.parameters.get("edge_sigma_px", 0.0)
        return int(np.ceil(smooth + (4 * edge + 1 if edge else 0)))

    def _shared_edges(self, b: NDArray, a: NDArray) -> NDArray:
        """Gradient magnitude present at *both* dates (min of the two), in noise units."""
        p = self.parameters
        scale = np.asarray(p["difference_scale"], np.float32)
        sig = float(p["edge_sigma_px"])

        def grad(x: NDArray) -> NDArray:
            g2 = sum(
                ndimage.gaussian_gradient_magnitude(x[i] / scale[i], sig, mode="reflect") ** 2
                for i in range(x.shape[0])
            )
            return np.sqrt(g2)

        return np.minimum(grad(b), grad(a))

    def _cva(self, b: NDArray, a: NDArray) -> NDArray:
        p = self.parameters
        centre = np.asarray(p["difference_median"], np.float32)
        inv = np.float32(1) / np.asarray(p["difference_scale"], np.float32)
        acc = np.zeros(b.shape[1:], np.float32)
        for i in range(b.shape[0]):  # band by band: no (band, row, col) temporaries
            d = np.subtract(a[i], b[i], dtype=np.float32)
            d -= centre[i]
            d *= inv[i]
            d *= d
            acc += d
        return np.sqrt(acc, out=acc)

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
        p = self.parameters
        b = before.astype(np.float32, copy=False)
        a = after.astype(np.float32, copy=False)
        if self.method == "cva":
            out = self._cva(b, a)
            if self.parameters.get("edge_sigma_px"):
                e = self._shared_edges(b, a)
                e *= np.float32(1.0 / p["edge_median"])
                e *= e
                e += 1
                np.sqrt(e, out=e)
                out /= e
        elif self.method == "absdiff":
            out = np.mean(np.abs(a - b), axis=0)
        elif self.method == "logratio":
            c = np.float32(p["offset"])
            out = np.mean(np.abs(np.log(np.maximum(a + c, c) / np.maximum(b + c, c))), axis=0)
        elif self.method in ("ndvi", "ndwi"):
            i, j = p["band_index_1"], p["band_index_2"]
            out = np.abs(_nd(a[i], a[j]) - _nd(b[i], b[j]))
        elif self.method == "builtup":
            r, g, bl = p["band_index_red"], p["band_index_green"], p["band_index_blue"]
            m_b = builtup_likelihood(b[r], b[g], b[bl])
            m_a = builtup_likelihood(a[r], a[g], a[bl])
            c = self._cva(b, a)
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
        else:  # irmad
            assert self.irmad is not None
            out = self.irmad.chi2(b, a)
        out = np.asarray(out, dtype=np.float32)
        if self.smooth_px <= 0:
            return out, out
        smoothed = np.asarray(smooth_score(out, self.smooth_px, valid), dtype=np.float32)
        if valid is not None:
            out[~valid] = np.nan  # a fresh array: safe to mark in place
        return out, smoothed


def _nd(x: NDArray, y: NDArray) -> NDArray[np.float32]:
    """Normalised difference ``(x - y) / (x + y)``, 0 where the sum is 0."""
    s = x + y
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(s != 0, (x - y) / np.where(s != 0, s, 1), 0.0)
    return out.astype(np.float32)


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


def visible_band_indices(
    band_names: Sequence[str] | None, nbands: int
) -> tuple[int, int, int] | None:
    """Indices of red, green and blue, or None when the bands are not visible-only RGB.

    Three unnamed bands (``None`` or generic ``b1, b2, b3``) are read as red,
    green, blue - the order of PNG, JPEG and most 3-band GeoTIFFs. Any band
    named nir/swir means the imagery is multispectral.

    Examples
    --------
    >>> visible_band_indices(("blue", "green", "red"), 3)
    (2, 1, 0)
    >>> visible_band_indices(None, 3)
    (0, 1, 2)
    >>> visible_band_indices(("B1_blue", "B2_green", "B3_red", "B4_nir"), 4) is None
    True
    """
    idx = [find_band(band_names, role) for role in ("red", "green", "blue")]
    if None not in idx:
        if find_band(band_names, "nir") is not None:
            return None
        return (int(idx[0]), int(idx[1]), int(idx[2]))  # type: ignore[arg-type]
    if nbands == 3 and (
        band_names is None
        or all(n.lower() in ("b1", "b2", "b3", "1", "2", "3", "") for n in band_names)
    ):
        return (0, 1, 2)
    return None


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
    method : {"cva", "irmad", "absdiff", "logratio", "ndvi", "ndwi", "builtup"}
        See the module docstring. ``"auto"`` is resolved by
        :func:`satdelta.imagery.detect.detect_change`; here it means ``"cva"``.
    valid : (M, N) bool ndarray, optional
        True where both dates have data.
    band_names : sequence of str, optional
        Needed by ``"ndvi"``/``"ndwi"``; ``"builtup"`` reads red/green/blue
        from them (three unnamed bands are read as R, G, B).
    pixel_size_m : float, optional
        Ground size of a pixel; sets the smoothing in pixels.
    smoothing_m : float, optional
        Gaussian smoothing scale in metres (default :data:`SMOOTHING_M`;
        0 = none). Below half a pixel no smoothing is done; with an unknown
        pixel size it is one pixel. IR-MAD is never smoothed.
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
    if method == "auto":
        method = "cva"
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
    ok = finite_pixels(before, after)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    if method in ("ndvi", "ndwi"):
        roles = ("nir", "red") if method == "ndvi" else ("green", "nir")
        idx = [find_band(band_names, r) for r in roles]
        if None in idx:
            raise BandMismatchError(
                f"score method {method!r} needs bands named {roles[0]} and {roles[1]}, got "
                f"band names {tuple(band_names) if band_names else None}; name the bands "
                "(e.g. 'red', 'nir') or use method 'cva'."
            )
        return ScoreModel(
            method,
            {"band_index_1": idx[0], "band_index_2": idx[1], "bands": list(roles)},
            smooth_px=sigma,
        )
    if method == "absdiff":
        return ScoreModel("absdiff", {}, smooth_px=sigma)
    if method == "irmad":
        fit = irmad or fit_irmad(before, after, valid=ok)
        return ScoreModel("irmad", {"irmad": fit.to_dict()}, irmad=fit)
    x, y = sample_pixels(before, after, ok)
    if x.shape[1] == 0:
        raise InvalidParameterError(
            "no valid pixels to fit the change score on; check the no-data masks."
        )
    if method == "logratio":
        level = float(np.median(np.concatenate([x.ravel(), y.ravel()])))
        offset = max(0.01 * abs(level), 1e-6)
        low = float(min(x.min(), y.min()))
        if low < 0:
            offset += -low
        return ScoreModel("logratio", {"offset": offset}, smooth_px=sigma)
    if method == "cva":
        med, scale = _robust_difference_scale(x, y)
        params: dict[str, Any] = {"difference_median": med, "difference_scale": scale}
        if sigma > 0 and min(before.shape[1:]) >= 3:
            # registration-residue suppression at the smoothing scale (see module docstring)
            params["edge_sigma_px"] = sigma / 2
            probe = ScoreModel("cva", {**params, "edge_median": 1.0}, smooth_px=sigma)
            # median over a bounded patch set (the whole array when it is small)
            halo = int(np.ceil(4 * params["edge_sigma_px"])) + 1

            def edges(win: tuple[slice, slice]) -> NDArray:
                outer, inner = with_halo(win, halo, ok.shape)
                ok_w = ok[outer]
                e_w = probe._shared_edges(
                    np.where(ok_w, before[(slice(None), *outer)], 0).astype(np.float32),
                    np.where(ok_w, after[(slice(None), *outer)], 0).astype(np.float32),
                )
                return e_w[inner][ok_w[inner]]

            # the windows in threads, concatenated in window order (the same median)
            e = np.concatenate(run_jobs(edges, fit_windows(ok.shape, valid=ok)))
            med_e = float(np.median(e)) if e.size else 0.0
            if med_e > 0:
                params["edge_median"] = med_e
            else:
                del params["edge_sigma_px"]
        return ScoreModel("cva", params, smooth_px=sigma)
    # builtup
    rgb = visible_band_indices(band_names, before.shape[0])
    if rgb is None:
        raise BandMismatchError(
            "score method 'builtup' needs visible red, green and blue bands (and no NIR: "
            f"use 'ndvi' or 'cva' for multispectral data), got {before.shape[0]} bands named "
            f"{tuple(band_names) if band_names else None}; pick the visible bands "
            "(CLI: --bands red,green,blue) or use method 'cva'."
        )
    med, scale = _robust_difference_scale(x, y)
    params = {"difference_median": med, "difference_scale": scale}
    c = ScoreModel("cva", params)._cva(x.astype(np.float32), y.astype(np.float32))
    cmed = float(np.median(c))
    params.update(
        band_index_red=rgb[0],
        band_index_green=rgb[1],
        band_index_blue=rgb[2],
        cva_median=cmed if cmed > 0 else 1.0,
        achromatic_saturation=ACHROMATIC_SATURATION,
        achromatic_width=ACHROMATIC_WIDTH,
        exg_green=EXG_GREEN,
        exg_width=EXG_WIDTH,
    )
    return ScoreModel("builtup", params, smooth_px=sigma)


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
    ok = finite_pixels(before, after)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    out = model.apply(before, after, ok)
    return np.where(ok & np.isfinite(out), out, np.float32(np.nan)).astype(np.float32)
