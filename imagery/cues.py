"""The ``"cues"`` change score: colour, structure and edge cues, each against its own threshold.

Three generic cues on robustly standardised bands (after already matched onto before):
the change-vector magnitude (CVA), 1 - SSIM at 6 m and the disagreement of gradient
orientation (2 m gradients pooled over 6 m), each smoothed at 1 m. :meth:`CuesScore.fit`
fits the global statistics (band medians and spreads, one threshold per cue: the larger of
its Otsu split and its 99 % quantile on a simulated no-change pair); :meth:`CuesScore.apply`
returns, per window, the geometric mean of the cue-to-threshold ratios (changed above
``exp(-0.1)``). :func:`segment_vote` is the 8 m SLIC majority vote the detector applies to
the thresholded map. Why, and the figures: ``docs/detection.md``,
``docs/detection-research.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.gaussian import gaussian
from satdelta.imagery.parallel import run_jobs
from satdelta.imagery.radiometry import Window, fit_windows, with_halo
from scipy import ndimage
from skimage.filters import threshold_otsu

__all__ = [
    "CUE_TAU",
    "SEGMENT_M",
    "cue_parameters",
    "max_segment_pixels",
    "cues_ratio",
    "segment_labels",
    "segment_vote",
]

# Ground scales in metres. Chosen on the development sets (LEVIR 0.5 m, Taizhou 30 m, the
# synthetic sample sites 0.5 m); Szada (1.5 m) was held out. docs/detection-research.md.
SSIM_M = 6.0  #: SSIM Gaussian window sigma (the issue's prototype; 3 m lost on LEVIR)
GRAD_M = 2.0  #: derivative-of-Gaussian sigma of the gradients (1 m: LEVIR AUC 0.04 lower)
GRAD_MIN_PX = 0.7  #: the gradient sigma is never finer than this many pixels
ORIENT_WINDOW_M = 6.0  #: window over which gradient energy is pooled
CUE_SMOOTH_M = 1.0  #: Gaussian smoothing of every cue map (skipped under half a pixel)
MIN_CUE_PX = 1.0  #: a spatial cue whose window is under one pixel is left out (30 m: CVA only)
SEGMENT_M = 8.0  #: SLIC superpixel side (4 m and 16 m worse on LEVIR)
MIN_SEGMENT_PX = 2.0  #: no vote when a segment would be smaller (5 m, 30 m pixels)
VOTE_SHARE = 0.5  #: a segment is changed when this share of its valid pixels is
#: A segment over this many times the nominal 8 m x 8 m area does not vote (see segment_vote).
MAX_SEGMENT_AREAS = 16.0
#: SLIC's k-means iterations (scikit-image's default is 10; 5 halves the vote's cost, LEVIR
#: pooled / median F1 within the +-0.02 that SLIC seeding moves them: detection.md).
SLIC_ITERATIONS = 5
#: SLIC runs on every other pixel when a segment is at least twice this many pixels wide
SLIC_MIN_COARSE_PX = 4.0
#: Changed where the mean over cues of log(cue / its threshold) exceeds this (swept 0..-0.3 on
#: LEVIR, Taizhou and the sample sites: -0.1 kept by the tie rule, see the research notes).
CUE_TAU = -0.1
SSIM_SHIFT = 4.0  #: added to the standardised bands: SSIM's luminance term needs values >= 0
_SSIM_L = 8.0  # span of standardised values: C1 = (0.01 L)^2, C2 = (0.03 L)^2
NULL_QUANTILE = 0.99  #: per-cue floor: this quantile of the cue on a simulated no-change pair
#: Side (pixels) of the fit patches on which the cues' Otsu splits are measured (scenes over
#: a megapixel; smaller ones are used whole).
FIT_PATCH_PX = 512
#: Most pixels of the fit windows on which the no-change pair is simulated (4 patches).
NULL_PIXELS = 4 * 256**2
_ROBUST = 1.4826
_F32 = NDArray[np.float32]


def _gauss(x: NDArray, sigma_px: float) -> NDArray:
    return gaussian(x, sigma_px)  # scipy's gaussian_filter; wide kernels through the FFT


def cue_scales(pixel_size_m: float | None) -> dict[str, float]:
    """The cues' Gaussian sigmas in pixels at this pixel size (0 = cue or step left out).

    An unknown pixel size is read as 1 m.

    Examples
    --------
    >>> cue_scales(30.0)
    {'ssim_px': 0.0, 'grad_px': 0.0, 'window_px': 0.0, 'smooth_px': 0.0}
    >>> cue_scales(0.5)['ssim_px']
    12.0
    """
    px = 1.0 if pixel_size_m is None else float(pixel_size_m)
    ssim = SSIM_M / px
    window = ORIENT_WINDOW_M / px
    smooth = CUE_SMOOTH_M / px
    return {
        "ssim_px": ssim if ssim >= MIN_CUE_PX else 0.0,
        "grad_px": max(GRAD_M / px, GRAD_MIN_PX) if window >= MIN_CUE_PX else 0.0,
        "window_px": window if window >= MIN_CUE_PX else 0.0,
        "smooth_px": smooth if smooth >= 0.5 else 0.0,
    }


def cue_halo_px(scales: dict[str, float]) -> int:
    """Context (pixels) a window needs: the widest cue's 4-sigma reach plus the smoothing's."""
    reach = max(scales["ssim_px"], scales["grad_px"] + scales["window_px"])
    return int(math.ceil(4 * reach + 4 * scales["smooth_px"])) + 1


def _standardised(x: NDArray, median: list[float], scale: list[float]) -> _F32:
    """``(x - median_b) / scale_b`` per band of a ``(band, row, col)`` array, one median and
    scale a band, as a new float32 array (``x`` is left as it is); non-finite values set to
    0 (the median)."""
    m = np.asarray(median, np.float32).reshape(-1, 1, 1)
    s = np.asarray(scale, np.float32).reshape(-1, 1, 1)
    # a copy (astype copies), changed in place: the same operations without float32
    # temporaries
    out = x.astype(np.float32, copy=True)
    out -= m
    out /= s
    out[~np.isfinite(out)] = 0
    return out


def _cue_cva(b: _F32, a: _F32, p: dict[str, Any]) -> _F32:
    """RMS over bands of the robust z-score of the standardised band differences."""
    acc = np.zeros(b.shape[1:], np.float32)
    for i in range(b.shape[0]):
        d = (a[i] - b[i] - np.float32(p["difference_median"][i])) / np.float32(
            p["difference_scale"][i]
        )
        acc += d * d
    return np.sqrt(acc / b.shape[0])


def _cue_ssim(b: _F32, a: _F32, sigma_px: float) -> _F32:
    """Mean over bands of 1 - SSIM (Wang et al. 2004) with a Gaussian window; in [0, 2]."""
    c1, c2 = (0.01 * _SSIM_L) ** 2, (0.03 * _SSIM_L) ** 2
    out = np.zeros(b.shape[1:], np.float32)
    for i in range(b.shape[0]):
        x, y = b[i] + np.float32(SSIM_SHIFT), a[i] + np.float32(SSIM_SHIFT)
        mx, my = _gauss(x, sigma_px), _gauss(y, sigma_px)
        sxx = _gauss(x * x, sigma_px) - mx * mx
        syy = _gauss(y * y, sigma_px) - my * my
        sxy = _gauss(x * y, sigma_px) - mx * my
        num = (2 * mx * my + c1) * (2 * sxy + c2)
        out += 1 - num / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return out / b.shape[0]


def _gradient_energy(b: _F32, a: _F32, grad_px: float) -> tuple[_F32, _F32]:
    """``|g_a - g_b|^2`` and ``|g_a|^2 + |g_b|^2`` of the band means' Gaussian gradients."""
    lb, la = b.mean(axis=0), a.mean(axis=0)
    by = ndimage.gaussian_filter(lb, grad_px, order=(1, 0))
    bx = ndimage.gaussian_filter(lb, grad_px, order=(0, 1))
    ay = ndimage.gaussian_filter(la, grad_px, order=(1, 0))
    ax = ndimage.gaussian_filter(la, grad_px, order=(0, 1))
    return (ay - by) ** 2 + (ax - bx) ** 2, ay**2 + ax**2 + by**2 + bx**2


def _cue_orientation(b: _F32, a: _F32, p: dict[str, Any]) -> _F32:
    """``G(|g_a - g_b|^2) / (G(|g_a|^2 + |g_b|^2) + c)``: 0 where both dates share their
    edges, about 1 where an edge is on one date only; insensitive to a gain."""
    num, den = _gradient_energy(b, a, p["grad_px"])
    return _gauss(num, p["window_px"]) / (_gauss(den, p["window_px"]) + np.float32(p["orient_c"]))


def cue_maps(b: _F32, a: _F32, p: dict[str, Any]) -> dict[str, _F32]:
    """The smoothed cue maps of standardised ``(band, row, col)`` arrays, by name."""
    out = {"cva": _cue_cva(b, a, p)}
    if p["ssim_px"] > 0:
        out["ssim"] = _cue_ssim(b, a, p["ssim_px"])
    if p["window_px"] > 0:
        out["orient"] = _cue_orientation(b, a, p)
    return {k: _gauss(m, p["smooth_px"]).astype(np.float32, copy=False) for k, m in out.items()}


def cues_ratio(p: dict[str, Any], before: NDArray, after: NDArray) -> _F32:
    """``exp(mean_k log(cue_k / threshold_k))`` (each ratio floored at 1e-3); >= 0."""
    b = _standardised(before, p["band_median"], p["band_scale"])
    a = _standardised(after, p["band_median"], p["band_scale"])
    logs = np.zeros(b.shape[1:], np.float32)
    maps = cue_maps(b, a, p)
    for name, m in maps.items():
        logs += np.log(np.maximum(m / np.float32(p["thresholds"][name]), np.float32(1e-3)))
    logs /= np.float32(len(maps))
    return np.exp(logs, out=logs)


def _robust(v: NDArray[np.float64]) -> tuple[float, float]:
    """Median and robust standard deviation (1.4826 MAD; the sd, or 1, when that is 0)."""
    med = float(np.median(v))
    s = _ROBUST * float(np.median(np.abs(v - med)))
    return med, s if s > 0 else (float(v.std()) or 1.0)


def cue_parameters(
    before: NDArray,
    after: NDArray,
    valid: NDArray[np.bool_],
    sample: tuple[NDArray[np.float64], NDArray[np.float64]],
    pixel_size_m: float | None,
) -> dict[str, Any]:
    """Fit every global statistic of the ``"cues"`` score (JSON-serialisable).

    Band medians and spreads and the difference spreads come from ``sample`` (``(band, n)``
    pixels of before and after); the orientation constant, the Otsu split of each cue and its
    no-change floor from the fit windows (:func:`~satdelta.imagery.radiometry.fit_windows`).
    """
    x, y = sample
    med, scale = zip(*(_robust(x[i]) for i in range(x.shape[0])), strict=True)
    p: dict[str, Any] = {
        "band_median": list(med),
        "band_scale": list(scale),
        **cue_scales(pixel_size_m),
    }
    d = (y - x) / np.asarray(scale)[:, None]
    dm, ds = zip(*(_robust(d[i]) for i in range(d.shape[0])), strict=True)
    p.update(difference_median=list(dm), difference_scale=list(ds), pixel_size_m=pixel_size_m)
    p["halo_px"] = cue_halo_px(p)
    # 512 px patches: the cues' 36 m halo (73 px at 0.5 m) costs 1.7x a patch, not 2.5x
    wins = fit_windows(valid.shape, valid=valid, patch_px=FIT_PATCH_PX)
    p["orient_c"] = _orientation_constant(before, after, valid, wins, p) if p["window_px"] else 0.0
    real = _window_cues(before, after, valid, wins, p)
    null = _window_cues(
        before, None, valid, fit_windows(valid.shape, valid=valid, max_pixels=NULL_PIXELS), p
    )
    otsu = {k: float(threshold_otsu(v)) if np.ptp(v) > 0 else float(v[0]) for k, v in real.items()}
    floor = {k: float(np.quantile(v, NULL_QUANTILE)) for k, v in null.items()}
    p.update(
        otsu=otsu,
        no_change_floor=floor,
        thresholds={k: max(otsu[k], floor[k], 1e-12) for k in otsu},
        tau=CUE_TAU,
    )
    return p


def _orientation_constant(
    before: NDArray, after: NDArray, valid: NDArray[np.bool_], wins: list[Window], p: dict
) -> float:
    """Median of ``|g_a|^2 + |g_b|^2`` over the valid pixels of the fit windows."""

    def energy(w: Window) -> NDArray:
        outer, inner = with_halo(w, p["halo_px"], valid.shape)
        b = _standardised(before[(slice(None), *outer)], p["band_median"], p["band_scale"])
        a = _standardised(after[(slice(None), *outer)], p["band_median"], p["band_scale"])
        return _gradient_energy(b, a, p["grad_px"])[1][inner][valid[w]]

    e = np.concatenate(run_jobs(energy, wins))
    return float(np.median(e)) if e.size else 1.0


def _window_cues(
    before: NDArray,
    after: NDArray | None,
    valid: NDArray[np.bool_],
    wins: list[Window],
    p: dict[str, Any],
) -> dict[str, NDArray[np.float32]]:
    """Each cue's values on the valid pixels of ``wins`` (with the halo of context).

    With ``after=None`` the after image is simulated: standardised before plus Gaussian noise
    of each band's robust difference spread (a parametric no-change pair, drawn from one
    seeded generator in window order).
    """
    band, halo = slice(None), p["halo_px"]

    def jobs() -> Iterator[tuple[Window, NDArray | None]]:
        rng = np.random.default_rng(0)
        for w in wins:
            if after is not None:
                yield w, None
                continue
            outer, _ = with_halo(w, halo, valid.shape)
            shape = (
                before.shape[0],
                outer[0].stop - outer[0].start,
                outer[1].stop - outer[1].start,
            )
            yield w, rng.standard_normal(shape).astype(np.float32)

    def one(job: tuple[Window, NDArray | None]) -> dict[str, NDArray]:
        w, noise = job
        outer, inner = with_halo(w, halo, valid.shape)
        b = _standardised(before[(band, *outer)], p["band_median"], p["band_scale"])
        if noise is None:
            a = _standardised(after[(band, *outer)], p["band_median"], p["band_scale"])
        else:
            s = np.asarray(p["difference_scale"], np.float32).reshape(-1, 1, 1)
            m = np.asarray(p["difference_median"], np.float32).reshape(-1, 1, 1)
            a = b + noise * s + m
        ok = valid[w]
        return {k: v[inner][ok & np.isfinite(v[inner])] for k, v in cue_maps(b, a, p).items()}

    parts = run_jobs(one, jobs())
    return {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}


def segment_labels(
    before: NDArray, after: NDArray, p: dict[str, Any], segment_m: float = SEGMENT_M
) -> NDArray[np.int64] | None:
    """SLIC superpixels (Achanta et al. 2012) of about ``segment_m`` side on both dates.

    On the standardised bands of both dates clipped to +-4; None when a segment would be under
    :data:`MIN_SEGMENT_PX` pixels (no vote). Without ``mask=`` (20x faster in scikit-image
    0.26): segments may straddle no-data, the vote counts valid pixels only.
    """
    px = p.get("pixel_size_m") or 1.0
    side = segment_m / px
    if side < MIN_SEGMENT_PX:
        return None
    # segments of 8 px or more are found on every other pixel (4x cheaper), then repeated
    k = 2 if side >= 2 * SLIC_MIN_COARSE_PX else 1
    b = _standardised(before[:, ::k, ::k], p["band_median"], p["band_scale"])
    a = _standardised(after[:, ::k, ::k], p["band_median"], p["band_scale"])
    img = np.clip(np.concatenate([b, a]), -4, 4).transpose(1, 2, 0)
    n = max(int(img.shape[0] * img.shape[1] / (side / k) ** 2), 1)
    labels = _slic(img, n)
    if k == 1:
        return labels
    rows, cols = before.shape[1:]
    return np.repeat(np.repeat(labels, k, axis=0), k, axis=1)[:rows, :cols]


def _slic(img: NDArray, n: int) -> NDArray:
    """scikit-image's SLIC with the vote's settings (no ``mask=``: 20x faster in 0.26)."""
    from skimage.segmentation import slic

    return slic(
        img,
        n_segments=n,
        compactness=0.1,
        channel_axis=-1,
        start_label=0,
        sigma=0.5,
        enforce_connectivity=True,
        max_num_iter=SLIC_ITERATIONS,
    )


def segment_vote(
    raw: NDArray[np.bool_],
    labels: NDArray | None,
    valid: NDArray[np.bool_],
    max_pixels: float = np.inf,
) -> NDArray[np.bool_]:
    """Every valid pixel of a segment is changed when >= :data:`VOTE_SHARE` of its valid
    pixels are changed in ``raw`` (``raw`` itself when ``labels`` is None).

    A segment of more than ``max_pixels`` pixels is no vote unit (SLIC merges its fragments
    into such blobs on pixel noise): its pixels keep their own ``raw`` value.
    """
    if labels is None:
        return raw & valid
    lab = np.where(valid.ravel(), labels.ravel() - labels.min() + 1, 0)
    n = np.bincount(lab)
    k = np.bincount(lab, weights=raw.ravel().astype(np.float64), minlength=n.size)
    share = np.divide(k, n, out=np.zeros_like(k), where=n > 0)
    keep = share >= VOTE_SHARE
    keep[0] = False
    voted = keep[lab].reshape(raw.shape)
    huge = (n > max_pixels)[lab].reshape(raw.shape)
    return np.where(huge, raw & valid, voted)


def max_segment_pixels(p: dict[str, Any]) -> float:
    """Largest segment that votes: :data:`MAX_SEGMENT_AREAS` times the nominal segment."""
    side = SEGMENT_M / (p.get("pixel_size_m") or 1.0)
    return MAX_SEGMENT_AREAS * side**2
