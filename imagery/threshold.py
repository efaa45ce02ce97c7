"""Split a change score into changed / unchanged: fit a threshold on score samples.

Each method in :data:`THRESHOLDS` is one object whose ``fit`` turns a 1-D sample of
finite scores into a :class:`ThresholdFit`; a block runner can fit once and apply
``score > threshold`` per window. The methods and their sources are described in
``docs/design-detection-methods.md``.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from satdelta.imagery.errors import InvalidParameterError
from scipy.special import gammaln
from skimage.filters import threshold_otsu

__all__ = [
    "THRESHOLDS",
    "THRESHOLD_METHODS",
    "ThresholdFit",
    "ThresholdMethod",
    "ThresholdRule",
    "fit_threshold",
    "kmeans_threshold",
    "mixture_threshold",
    "otsu_threshold",
]

log = logging.getLogger(__name__)

#: The threshold methods' names; :data:`THRESHOLD_METHODS` (from :data:`THRESHOLDS`) lists
#: the same.
ThresholdMethod = Literal["auto", "mixture", "otsu", "kmeans", "value", "percentile"]

#: Percentile used by ``method="percentile"`` when the caller gives none.
DEFAULT_PERCENTILE = 95.0


@dataclass(frozen=True)
class ThresholdFit:
    """A fitted threshold: pixels with ``score > threshold`` are changed.

    Attributes
    ----------
    threshold : float
        Decision value on the score scale.
    method : str
        Concrete method used (never ``"auto"``).
    parameters : dict
        JSON-serialisable details of the fit (e.g. mixture means and weights).
    """

    threshold: float
    method: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold):
            raise InvalidParameterError(
                f"threshold must be a finite number, got {self.threshold!r}; "
                "check that the score has finite values."
            )
        if self.method not in THRESHOLDS:
            raise InvalidParameterError(
                f"threshold method must be one of {tuple(THRESHOLDS)}, got {self.method!r}."
            )


def _finite_sample(values: ArrayLike) -> NDArray[np.float64]:
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2:
        raise InvalidParameterError(
            f"a threshold needs at least 2 finite score values, got {v.size}; "
            "check the valid mask (no-data everywhere?)."
        )
    return v


def otsu_threshold(values: ArrayLike, *, nbins: int = 256) -> float:
    """Otsu's (1979) threshold of the finite values: maximal between-class variance.

    Computed on a ``nbins`` histogram by :func:`skimage.filters.threshold_otsu`; the
    threshold is the upper edge of the last bin of the lower class, so every value in the
    lower class is ``<= threshold``.

    Parameters
    ----------
    values : array_like
        Score samples; non-finite values are ignored.
    nbins : int, optional
        Histogram bins.

    Returns
    -------
    float
        The threshold; values strictly above it form the upper class.

    Examples
    --------
    >>> t = otsu_threshold([0.0, 0.1, 0.2, 5.0, 5.1, 5.2])
    >>> 0.2 <= t < 5.0
    True
    """
    v = _finite_sample(values)
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return lo
    counts, edges = np.histogram(v, bins=nbins, range=(lo, hi))
    # each bin valued at its upper edge: Otsu's between-class variance is the same for any
    # common shift of the bin values, and the value returned is then the lower class's top
    return float(threshold_otsu(hist=(counts, edges[1:])))


def kmeans_threshold(values: ArrayLike, *, max_iter: int = 100) -> tuple[float, dict[str, Any]]:
    """Two-cluster 1-D k-means (Lloyd's algorithm); threshold between the centres.

    Parameters
    ----------
    values : array_like
        Score samples; non-finite values are ignored.
    max_iter : int, optional
        Iteration limit.

    Returns
    -------
    threshold : float
        Mid-point of the two cluster centres.
    parameters : dict
        ``{"centres": [low, high], "iterations": n}``.

    Examples
    --------
    >>> t, p = kmeans_threshold([0.0, 0.1, 0.2, 5.0, 5.1, 5.2])
    >>> round(t, 3)
    2.6
    """
    v = _finite_sample(values)
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return lo, {"centres": [lo, hi], "iterations": 0}
    c0, c1 = lo, hi
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (count used after the loop)
        t = 0.5 * (c0 + c1)
        low, high = v[v <= t], v[v > t]
        n0 = float(low.mean()) if low.size else c0
        n1 = float(high.mean()) if high.size else c1
        if abs(n0 - c0) <= 1e-9 * (hi - lo) and abs(n1 - c1) <= 1e-9 * (hi - lo):
            c0, c1 = n0, n1
            break
        c0, c1 = n0, n1
    return 0.5 * (c0 + c1), {"centres": [c0, c1], "iterations": it}


def _log_pdf(x: NDArray[np.float64], family: str, p0: float, p1: float) -> NDArray[np.float64]:
    """Log density; ``(p0, p1)`` = (mean, std) for gaussian, (shape, scale) for gamma."""
    if family == "gaussian":
        return -np.log(p1) - 0.5 * np.log(2 * np.pi) - 0.5 * ((x - p0) / p1) ** 2
    return (p0 - 1.0) * np.log(x) - x / p1 - gammaln(p0) - p0 * np.log(p1)


def _params_from_moments(family: str, mean: float, var: float) -> tuple[float, float]:
    var = max(var, 1e-12 * max(mean * mean, 1e-300))
    if family == "gaussian":
        return mean, math.sqrt(var)
    return mean * mean / var, var / mean


def mixture_threshold(
    values: ArrayLike,
    *,
    family: Literal["gamma", "gaussian"] = "gamma",
    max_iter: int = 300,
    tol: float = 1e-8,
    max_samples: int = 20_000,
) -> tuple[float, dict[str, Any]]:
    """Bayes threshold of a two-class mixture fitted to the scores by EM.

    Follows Bruzzone & Prieto (2000): the unchanged and changed classes are
    modelled as two parametric densities whose parameters are estimated by
    EM, starting from a split of the histogram (here Otsu's), and the
    threshold is the minimum-error (Bayes) decision boundary, where
    ``P(u) p(x|u) = P(c) p(x|c)``, searched between the two class means.
    ``family="gamma"`` (default) suits non-negative, right-skewed change
    magnitudes; the M-step uses weighted moments (method of moments).
    ``family="gaussian"`` is the original Gaussian model.

    Parameters
    ----------
    values : array_like
        Score samples; non-finite values are ignored (and, for the gamma
        family, values <= 0 are raised to a tiny positive floor).
    family : {"gamma", "gaussian"}
        Class density.
    max_iter, tol : optional
        EM iteration limit and tolerance on the mean log-likelihood.
    max_samples : int, optional
        EM runs on an evenly strided subsample of at most this many values.

    Returns
    -------
    threshold : float
    parameters : dict
        Family, class means, standard deviations and weights, EM iterations,
        and ``"fallback": "otsu"`` when the mixture was degenerate.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.gamma(2.0, 0.5, 9000), rng.gamma(30.0, 0.3, 1000)])
    >>> t, p = mixture_threshold(x)
    >>> 3.0 < t < 6.0, [round(w, 1) for w in p["weights"]]
    (True, [0.9, 0.1])
    """
    if family not in ("gamma", "gaussian"):
        raise InvalidParameterError(f"family must be 'gamma' or 'gaussian', got {family!r}.")
    x = np.sort(_finite_sample(values))
    if x.size > max_samples:
        x = x[:: int(math.ceil(x.size / max_samples))]
    t0 = otsu_threshold(x)
    if x[0] == x[-1]:
        return float(x[0]), {"family": family, "fallback": "constant"}
    if family == "gamma":
        floor = max(float(x[x > 0].min()) if np.any(x > 0) else 1e-12, 1e-12) * 0.5
        x = np.maximum(x, floor)
    r1 = (x > t0).astype(np.float64)
    if r1.sum() < 1 or r1.sum() > x.size - 1:
        return t0, {"family": family, "fallback": "otsu"}
    prev = -np.inf
    it = 0
    w = m = sd = np.zeros(2)
    n = x.size
    x2 = x * x
    sum_x, sum_x2 = float(x.sum()), float(x2.sum())
    log_x = np.log(x) if family == "gamma" else None
    for it in range(1, max_iter + 1):  # noqa: B007 (count used after the loop)
        # M-step from responsibilities (weighted moments; class 0 = the complement of r1)
        n1 = float(r1.sum())
        w = np.array([n - n1, n1]) / n
        if w.min() * n < 2:
            break
        s1, q1 = float((r1 * x).sum()), float((r1 * x2).sum())  # no BLAS: tiny, often contended
        m = np.array([(sum_x - s1) / (n - n1), s1 / n1])
        var = np.maximum(np.array([(sum_x2 - q1) / (n - n1), q1 / n1]) - m * m, 0.0)
        sd = np.sqrt(var)
        par = [_params_from_moments(family, float(m[k]), float(var[k])) for k in range(2)]
        # E-step
        if log_x is not None:  # gamma: (k - 1) log x - x / theta - log Gamma(k) - k log theta
            lp = [
                math.log(w[k])
                - gammaln(par[k][0])
                - par[k][0] * math.log(par[k][1])
                + (par[k][0] - 1.0) * log_x
                - x / par[k][1]
                for k in range(2)
            ]
        else:
            lp = [math.log(w[k]) + _log_pdf(x, family, *par[k]) for k in range(2)]
        mx = np.maximum(lp[0], lp[1])
        ll_pix = mx + np.log(np.exp(lp[0] - mx) + np.exp(lp[1] - mx))  # log-sum-exp
        r1 = np.exp(lp[1] - ll_pix)
        ll = float(ll_pix.mean())
        if abs(ll - prev) < tol:
            break
        prev = ll
    params: dict[str, Any] = {
        "family": family,
        "means": [float(v) for v in m],
        "stds": [float(v) for v in sd],
        "weights": [float(v) for v in w],
        "iterations": it,
    }
    if w.min() * x.size < 2 or not m[0] < m[1]:
        params["fallback"] = "otsu"
        return t0, params
    par = [_params_from_moments(family, float(m[k]), float(sd[k] ** 2)) for k in range(2)]
    # Bayes boundary: first point between the means where the changed class wins
    grid = np.linspace(m[0], m[1], 2049)
    diff = (np.log(w[1]) + _log_pdf(grid, family, *par[1])) - (
        np.log(w[0]) + _log_pdf(grid, family, *par[0])
    )
    wins = np.flatnonzero(diff > 0)
    if wins.size == 0 or wins[0] == 0:
        params["fallback"] = "otsu"
        return t0, params
    i = int(wins[0])
    # linear interpolation of the zero crossing
    g0, g1, d0, d1 = grid[i - 1], grid[i], diff[i - 1], diff[i]
    t = g0 + (g1 - g0) * (-d0) / (d1 - d0) if d1 != d0 else g1
    return float(t), params


class ThresholdRule(ABC):
    """One threshold method: :meth:`fit` a threshold on score samples.

    Attributes
    ----------
    name : str
        The method's key in :data:`THRESHOLDS`.
    takes_value : bool
        True when :meth:`fit` reads the caller's ``value``; the others refuse one.
    """

    name: str
    takes_value: bool = False

    @abstractmethod
    def fit(self, values: ArrayLike, value: float | None) -> ThresholdFit:
        """The threshold of ``values`` (non-finite ones ignored)."""


class MixtureRule(ThresholdRule):
    """Bayes threshold of a two-class gamma mixture (:func:`mixture_threshold`), at most Otsu's."""

    name = "mixture"

    def fit(self, values: ArrayLike, value: float | None) -> ThresholdFit:
        t, p = mixture_threshold(values)
        # The mixture's job is to correct Otsu's under-calling of rare change, i.e. to lower
        # the threshold. When its Bayes boundary lies above Otsu's, EM has locked onto the
        # strongest of several change populations (bright aircraft and grey roofs, say):
        # keep Otsu's split.
        t_otsu = otsu_threshold(values)
        p = {**p, "bayes_threshold": t, "otsu_threshold": t_otsu, "capped_at_otsu": t > t_otsu}
        return ThresholdFit(min(t, t_otsu), self.name, p)


class OtsuRule(ThresholdRule):
    """Otsu's (1979) maximal between-class variance (:func:`otsu_threshold`)."""

    name = "otsu"

    def fit(self, values: ArrayLike, value: float | None) -> ThresholdFit:
        return ThresholdFit(otsu_threshold(values), self.name, {})


class KMeansRule(ThresholdRule):
    """Mid-point of two k-means centres (:func:`kmeans_threshold`)."""

    name = "kmeans"

    def fit(self, values: ArrayLike, value: float | None) -> ThresholdFit:
        t, p = kmeans_threshold(values)
        return ThresholdFit(t, self.name, p)


class ValueRule(ThresholdRule):
    """The caller's fixed threshold."""

    name = "value"
    takes_value = True

    def fit(self, values: ArrayLike, value: float | None) -> ThresholdFit:
        if value is None or not math.isfinite(float(value)):
            raise InvalidParameterError(
                f'threshold method "value" needs a finite threshold value, got {value!r}; '
                "pass threshold_value (CLI: --threshold-value)."
            )
        return ThresholdFit(float(value), self.name, {"value": float(value)})


class PercentileRule(ThresholdRule):
    """The caller's percentile of the scores (default :data:`DEFAULT_PERCENTILE`)."""

    name = "percentile"
    takes_value = True

    def fit(self, values: ArrayLike, value: float | None) -> ThresholdFit:
        q = DEFAULT_PERCENTILE if value is None else float(value)
        if not (0.0 < q < 100.0):
            raise InvalidParameterError(
                f'threshold method "percentile" needs a percentile between 0 and 100 '
                f"(exclusive), got {value!r}."
            )
        v = _finite_sample(values)
        return ThresholdFit(float(np.percentile(v, q)), self.name, {"percentile": q})


#: The threshold methods by name; a new method is one :class:`ThresholdRule` added here (and
#: its name in :data:`ThresholdMethod`).
THRESHOLDS: MappingProxyType[str, ThresholdRule] = MappingProxyType(
    {r.name: r for r in (MixtureRule(), OtsuRule(), KMeansRule(), ValueRule(), PercentileRule())}
)
#: ``"auto"`` (the mixture) and the methods.
THRESHOLD_METHODS: tuple[str, ...] = ("auto", *THRESHOLDS)


def fit_threshold(
    values: ArrayLike,
    *,
    method: ThresholdMethod = "auto",
    value: float | None = None,
) -> ThresholdFit:
    """Fit a change threshold on score samples.

    Parameters
    ----------
    values : array_like
        Score samples (any shape; non-finite values are ignored).
    method : {"auto", "mixture", "otsu", "kmeans", "value", "percentile"}
        A key of :data:`THRESHOLDS` (see ``docs/design-detection-methods.md``);
        ``"auto"`` is ``"mixture"``.
    value : float, optional
        The threshold for ``"value"`` (required), or the percentile in
        (0, 100) for ``"percentile"`` (default 95).

    Returns
    -------
    ThresholdFit

    Raises
    ------
    InvalidParameterError
        Unknown method, missing or out-of-range ``value``, or fewer than two
        finite scores.

    Examples
    --------
    >>> fit_threshold([0.0, 1.0, 2.0, 3.0, 4.0], method="value", value=2.5).threshold
    2.5
    >>> fit_threshold(np.arange(101.0), method="percentile", value=90).threshold
    90.0
    """
    if method not in THRESHOLD_METHODS:
        raise InvalidParameterError(
            f"threshold method must be one of {THRESHOLD_METHODS}, got {method!r}."
        )
    rule = THRESHOLDS["mixture" if method == "auto" else method]
    if value is not None and not rule.takes_value:
        takers = " or ".join(repr(name) for name, r in THRESHOLDS.items() if r.takes_value)
        raise InvalidParameterError(
            f"threshold_value={value!r} is only used with threshold method {takers}, "
            f"not {method!r}; drop it or change the method."
        )
    return rule.fit(values, value)
