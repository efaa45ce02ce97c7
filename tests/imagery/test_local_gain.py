"""normalise="local": a gain step along a straight seam inside one date is not change."""

from __future__ import annotations

import numpy as np
from satdelta.imagery.detect import detect_change
from satdelta.imagery.local_gain import fit_local_gain
from satdelta.imagery.options import DetectionOptions
from skimage.filters import gaussian


def _seam_pair(n: int = 384) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    before = gaussian(rng.normal(0, 1, (3, n, n)), sigma=(0, 3, 3)) * 300 + 100
    before = np.clip(before, 5, None).astype(np.float32)
    after = before + rng.normal(0, 3, before.shape).astype(np.float32)
    after[:, :, n // 2 :] *= 1.3  # a mosaic seam: a 30 % gain step on one side, no change
    return before, after


def test_no_candidate_follows_the_seam():
    before, after = _seam_pair()
    maps = detect_change(before, after, DetectionOptions(normalise="local"), pixel_size_m=1.0)
    assert maps.parameters["normalise"] == "local"
    seam = maps.changed[:, 186:198]
    assert seam.sum() == 0, f"{seam.mean():.1%} of the seam band flagged"
    assert maps.changed_fraction < 0.005


def test_global_matching_leaves_the_seam_as_change():
    before, after = _seam_pair()
    maps = detect_change(before, after, DetectionOptions(normalise="histogram"), pixel_size_m=1.0)
    assert maps.changed[:, 186:198].mean() > 0.05  # what "local" is for


def test_the_gain_window_is_in_metres_at_any_pixel_size():
    before, after = _seam_pair(96)
    valid = np.ones(before.shape[1:], bool)
    assert fit_local_gain(before, after, valid, 30.0).parameters["window_cells"] == 7
    assert fit_local_gain(before, after, valid, 0.5).parameters["window_cells"] == 21
    fit = fit_local_gain(before, after, valid, 1.0)
    right = np.exp(fit.log_gain[:, :, 60:]).mean()
    left = np.exp(fit.log_gain[:, :, :36]).mean()
    assert abs(right - 1.3) < 0.02 and abs(left - 1.0) < 0.02
