"""A guard on radiometric normalisation: reject a fit that would invert or distort a band.

A linear fit of after onto before (IR-MAD's regression, Canty & Nielsen 2008) and the local
gain field (:mod:`satdelta.imagery.local_gain`) are checked on a sample of the valid pixels;
a fit with a negative or implausible gain, too few pixels agreeing with it, or dates too weakly
correlated to relate is replaced by histogram matching, and the reason is returned for the
run record (``run.json``: ``parameters.normalisation_rejected``). Figures:
``docs/detection.md``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.local_gain import LocalGain
from satdelta.imagery.radiometry import (
    HistogramMatching,
    LinearNormalisation,
    fit_histogram_matching,
    sample_pixels,
)

Normalisation = LinearNormalisation | HistogramMatching | LocalGain

__all__ = [
    "MAX_GAIN",
    "MIN_CORRELATION",
    "MIN_GAIN",
    "MIN_NO_CHANGE_PX",
    "MIN_NO_CHANGE_SHARE",
    "guard_normalisation",
    "local_gain_problem",
    "linear_fit_problem",
]

log = logging.getLogger(__name__)

#: Plausible gain range between the dates: a negative gain inverts a band, and a sensor or
#: illumination change of more than 5x is not a radiometric difference (issue 9 item 4).
MIN_GAIN, MAX_GAIN = 0.2, 5.0
#: A fit needs at least this many sampled pixels agreeing with its line ...
MIN_NO_CHANGE_PX = 200
#: ... and at least this share of the sample (NAIP's inverted IR-MAD fit: 9-27 %; Taizhou
#: 61-84 %, the sample sites 41-48 %).
MIN_NO_CHANGE_SHARE = 0.2
#: Dates whose bands correlate less than this over the valid pixels are not related by a line
#: (NAIP 2009/2011 visible bands: 0.14-0.25; Taizhou >= 0.61).
MIN_CORRELATION = 0.3
#: A pixel agrees with a line when its residual is within this many robust standard deviations
#: of the invariant pixels' residuals.
AGREE_SD = 2.5


def _band_problem(g: float, o: float, noise: float, x: NDArray, y: NDArray) -> str | None:
    """Why the line ``x = g * y + o`` (before from after) is not trusted for one band, or None."""
    if not (np.isfinite(g) and MIN_GAIN <= g <= MAX_GAIN):
        return f"gain {g:.2f} outside [{MIN_GAIN:g}, {MAX_GAIN:g}]"
    r = _correlation(x, y)
    if r < MIN_CORRELATION:
        return f"correlation {r:.2f} < {MIN_CORRELATION:g}"
    res = x - (g * y + o)
    n = int(np.count_nonzero(np.abs(res - np.median(res)) < AGREE_SD * max(noise, 1e-9)))
    share = n / max(x.size, 1)
    if n < MIN_NO_CHANGE_PX or share < MIN_NO_CHANGE_SHARE:
        return (
            f"{n} no-change pixels ({share:.0%}) agree with the line; needs "
            f">= {MIN_NO_CHANGE_PX} and >= {MIN_NO_CHANGE_SHARE:.0%}"
        )
    return None


def linear_fit_problem(
    norm: LinearNormalisation, x: NDArray[np.float64], y: NDArray[np.float64]
) -> str | None:
    """Why a linear normalisation is rejected (first failing band), or None when it holds.

    ``x`` and ``y`` are ``(band, n)`` samples of before and after.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.gamma(4.0, 10.0, size=(1, 5000))
    >>> y = 0.8 * x + 12 + rng.normal(0, 1, x.shape)
    >>> good = LinearNormalisation(np.array([1.25]), np.array([-15.0]), parameters={})
    >>> linear_fit_problem(good, x, y) is None
    True
    >>> bad = LinearNormalisation(np.array([-1.25]), np.array([90.0]), parameters={})
    >>> linear_fit_problem(bad, x, y)
    'band 1: gain -1.25 outside [0.2, 5]'
    """
    noise = norm.parameters.get("residual_scale")
    for i in range(x.shape[0]):
        res = x[i] - (norm.gains[i] * y[i] + norm.offsets[i])
        scale = noise[i] if noise else 1.4826 * float(np.median(np.abs(res - np.median(res))))
        why = _band_problem(float(norm.gains[i]), float(norm.offsets[i]), scale, x[i], y[i])
        if why:
            return f"band {i + 1}: {why}"
    return None


def local_gain_problem(
    norm: LocalGain, x: NDArray[np.float64], y: NDArray[np.float64]
) -> str | None:
    """Why a local gain field is rejected: an implausible median gain or uncorrelated dates."""
    for i, g in enumerate(norm.parameters["median_gains"]):
        if not MIN_GAIN <= g <= MAX_GAIN:
            return f"band {i + 1}: median gain {g:.2f} outside [{MIN_GAIN:g}, {MAX_GAIN:g}]"
        r = _correlation(x[i], y[i])
        if r < MIN_CORRELATION:
            return f"band {i + 1}: correlation {r:.2f} < {MIN_CORRELATION:g}"
    return None


def _correlation(x: NDArray, y: NDArray) -> float:
    return float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else 0.0


def guard_normalisation(
    before: NDArray,
    after: NDArray,
    valid: NDArray[np.bool_],
    norm: Normalisation | None,
    method: str,
) -> tuple[Normalisation | None, str, dict[str, Any] | None]:
    """The normalisation to use, its method, and the rejected fit's record (or None).

    A :class:`~satdelta.imagery.radiometry.LinearNormalisation` or a
    :class:`~satdelta.imagery.local_gain.LocalGain` that fails its checks is replaced by
    histogram matching; the rejection is logged as a warning. Histogram matching and ``None``
    pass unchanged.
    """
    if norm is None or isinstance(norm, HistogramMatching):
        return norm, method, None
    x, y = sample_pixels(before, after, valid)
    if isinstance(norm, LinearNormalisation):
        why = linear_fit_problem(norm, x, y)
    else:
        why = local_gain_problem(norm, x, y)
    if why is None:
        return norm, method, None
    log.warning("normalisation %r rejected (%s); using histogram matching instead", method, why)
    record = {"method": method, "reason": why, "fit": norm.to_dict()}
    return fit_histogram_matching(before, after, valid=valid), "histogram", record
