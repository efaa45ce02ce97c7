"""The normalisation guard: a fit that inverts a band or relates unrelated dates is rejected."""

from __future__ import annotations

import logging

import numpy as np
from satdelta.imagery.detect import detect_change
from satdelta.imagery.options import DetectionOptions
from skimage.filters import gaussian


def _scene(seed: int, n: int = 128, bands: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = gaussian(rng.normal(0, 1, (bands, n, n)), sigma=(0, 2, 2)) * 300 + 100
    return np.clip(base, 5, None).astype(np.float32)


def test_a_plausible_irmad_fit_is_kept():
    before = _scene(0)
    after = 0.8 * before + 12 + np.random.default_rng(1).normal(0, 2, before.shape)
    maps = detect_change(before, after.astype(np.float32), pixel_size_m=10.0)
    assert maps.parameters["normalise"] == "irmad"
    assert maps.parameters["normalisation_rejected"] is None


def test_an_inverted_after_image_falls_back_to_histogram_matching(caplog):
    before = _scene(0)
    after = (before.max() + 10 - before).astype(np.float32)  # every band inverted
    with caplog.at_level(logging.WARNING, logger="satdelta.imagery.normalisation_guard"):
        maps = detect_change(before, after, pixel_size_m=10.0)
    rejected = maps.parameters["normalisation_rejected"]
    assert maps.parameters["normalise"] == "histogram"
    assert rejected["method"] == "irmad"
    assert "gain" in rejected["reason"] or "correlation" in rejected["reason"]
    assert "histogram matching instead" in caplog.text
    assert all(g > 0 for g in maps.parameters["normalisation"]["gains"])


def test_weakly_correlated_dates_fall_back_with_the_reason():
    before = _scene(0)
    after = _scene(7)  # an unrelated scene: correlation near 0
    maps = detect_change(before, after, pixel_size_m=10.0)
    assert maps.parameters["normalise"] == "histogram"
    assert maps.parameters["normalisation_rejected"]["reason"].startswith("band ")


def test_the_local_gain_is_guarded_too():
    before = _scene(0, bands=3)
    after = _scene(7, bands=3)
    maps = detect_change(before, after, DetectionOptions(normalise="local"), pixel_size_m=1.0)
    assert maps.parameters["normalise"] == "histogram"
    assert maps.parameters["normalisation_rejected"]["method"] == "local"
