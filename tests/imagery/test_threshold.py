"""Tests of satdelta.imagery.threshold: each method on bimodal samples, and bad input."""

from __future__ import annotations

import json
from typing import get_args

import numpy as np
import pytest
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.threshold import (
    THRESHOLD_METHODS,
    THRESHOLDS,
    ThresholdFit,
    ThresholdMethod,
    fit_threshold,
    kmeans_threshold,
    mixture_threshold,
    otsu_threshold,
)


def bimodal(frac_changed: float, n: int = 50_000, seed: int = 0):
    """Change magnitudes: unchanged ~ chi(3) (noise), changed ~ shifted chi(3)."""
    rng = np.random.default_rng(seed)
    n1 = int(n * frac_changed)
    low = np.sqrt(rng.chisquare(3, n - n1))
    high = np.sqrt(rng.chisquare(3, n1)) + 4.5
    x = np.concatenate([low, high])
    y = np.concatenate([np.zeros(n - n1, bool), np.ones(n1, bool)])
    return x, y


def f1(pred, y):
    tp = (pred & y).sum()
    p = tp / max(pred.sum(), 1)
    r = tp / max(y.sum(), 1)
    return 2 * p * r / max(p + r, 1e-12), p, r


@pytest.mark.parametrize("method", ["auto", "mixture", "otsu", "kmeans"])
def test_each_automatic_method_splits_a_balanced_bimodal_sample(method):
    x, y = bimodal(0.3)
    fit = fit_threshold(x, method=method)
    assert isinstance(fit, ThresholdFit)
    assert fit.method == ("mixture" if method == "auto" else method)
    f, p, r = f1(x > fit.threshold, y)
    assert f > 0.95, (method, fit.threshold, p, r)
    json.dumps(fit.parameters)


@pytest.mark.parametrize("shift", [2.0, 2.5, 3.0])
def test_mixture_beats_otsu_when_change_is_rare_and_broad(shift):
    """8 % changed pixels with a broad change class: Otsu's equal-size bias misplaces the cut,
    the Bayes threshold of the fitted mixture (Bruzzone & Prieto 2000) does better."""
    rng = np.random.default_rng(1)
    n, n1 = 50_000, 4_000
    x = np.concatenate(
        [np.sqrt(rng.chisquare(3, n - n1)), 1.5 * np.sqrt(rng.chisquare(3, n1)) + shift]
    )
    y = np.arange(n) >= n - n1
    f_otsu = f1(x > otsu_threshold(x), y)[0]
    t_mix, params = mixture_threshold(x)
    f_mix = f1(x > t_mix, y)[0]
    assert f_mix > f_otsu + 0.005, (f_otsu, f_mix)
    assert params["family"] == "gamma" and "fallback" not in params
    assert params["weights"][1] == pytest.approx(0.08, abs=0.04)


def test_gaussian_mixture_family():
    x, y = bimodal(0.3, seed=2)
    t, params = mixture_threshold(x, family="gaussian")
    assert f1(x > t, y)[0] > 0.95
    assert params["family"] == "gaussian"


def test_kmeans_threshold_is_midpoint_of_centres():
    x, _ = bimodal(0.5, seed=3)
    t, params = kmeans_threshold(x)
    lo, hi = params["centres"]
    assert t == pytest.approx((lo + hi) / 2)
    assert x[x <= t].mean() == pytest.approx(lo, rel=1e-6)


def test_value_and_percentile():
    x = np.arange(1000.0)
    assert fit_threshold(x, method="value", value=3.5).threshold == 3.5
    fit = fit_threshold(x, method="percentile", value=80)
    assert fit.threshold == pytest.approx(np.percentile(x, 80))
    assert (x > fit.threshold).mean() == pytest.approx(0.2, abs=0.002)
    assert fit_threshold(x, method="percentile").parameters["percentile"] == 95.0


def test_nan_values_are_ignored():
    x, y = bimodal(0.3, n=5000, seed=4)
    xn = np.concatenate([x, np.full(1000, np.nan), [np.inf]])
    assert fit_threshold(xn, method="otsu").threshold == pytest.approx(
        fit_threshold(x, method="otsu").threshold
    )


def test_constant_scores_do_not_crash():
    x = np.full(100, 2.0)
    for method in ("mixture", "otsu", "kmeans"):
        assert fit_threshold(x, method=method).threshold == 2.0  # nothing is above it


def test_method_tuple():
    assert THRESHOLD_METHODS == ("auto", "mixture", "otsu", "kmeans", "value", "percentile")
    assert THRESHOLD_METHODS == get_args(ThresholdMethod)  # one registry, one Literal
    assert all(rule.name == name for name, rule in THRESHOLDS.items())


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"method": "triangle"}, "threshold method must be one of"),
        ({"method": "value"}, "needs a finite threshold value, got None"),
        ({"method": "value", "value": float("nan")}, "needs a finite threshold value"),
        ({"method": "percentile", "value": 0}, "between 0 and 100"),
        ({"method": "percentile", "value": 100}, "between 0 and 100"),
        ({"method": "otsu", "value": 1.0}, "only used with threshold method"),
    ],
)
def test_invalid_parameters(kwargs, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        fit_threshold(np.arange(10.0), **kwargs)


def test_too_few_values():
    with pytest.raises(InvalidParameterError, match="at least 2 finite score values, got 1"):
        fit_threshold([1.0, np.nan], method="otsu")
    with pytest.raises(InvalidParameterError, match="family must be"):
        mixture_threshold([1.0, 2.0], family="beta")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="finite"):
        ThresholdFit(float("inf"), "otsu")


def test_mixture_is_capped_at_otsu_when_change_has_two_populations():
    """Two change populations (weak 6 %, strong 3 %): EM models only the strong one."""
    rng = np.random.default_rng(5)
    noise = rng.gamma(2.0, 0.5, 91_000)
    weak = rng.normal(14.0, 1.0, 6_000)
    strong = rng.normal(40.0, 1.0, 3_000)
    x = np.concatenate([noise, weak, strong])
    fit = fit_threshold(x, method="mixture")
    p = fit.parameters
    assert p["capped_at_otsu"] and p["bayes_threshold"] > 30  # EM took only the strong mode
    assert fit.threshold == p["otsu_threshold"] < p["bayes_threshold"]
    assert (strong > fit.threshold).all() and (noise < fit.threshold).all()
