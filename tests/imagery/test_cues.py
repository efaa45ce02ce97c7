"""The "cues" score: registered, the default for visible-only imagery, quiet on a no-change pair."""

from __future__ import annotations

import numpy as np
import pytest
from satdelta.imagery.cues import cue_scales, segment_vote
from satdelta.imagery.detect import detect_change, fit_detector, resolve_auto
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.scores import SCORES, fit_score
from skimage.filters import gaussian


def _scene(seed: int = 0, n: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = gaussian(rng.normal(0, 1, (3, n, n)), sigma=(0, 2, 2)) * 300 + 100
    return np.clip(base, 5, None).astype(np.float32)


def test_cues_is_registered_and_the_visible_default():
    assert "cues" in SCORES and "builtup" in SCORES
    assert resolve_auto(3, ("red", "green", "blue"), "auto", "auto") == ("cues", "histogram")
    assert resolve_auto(3, None, "auto", "auto") == ("cues", "histogram")
    assert resolve_auto(4, ("red", "green", "blue", "nir"), "auto", "auto") == ("cva", "irmad")


def test_cue_scales_drop_the_spatial_cues_at_30_m():
    assert cue_scales(30.0)["ssim_px"] == 0 and cue_scales(30.0)["window_px"] == 0
    assert cue_scales(0.5)["grad_px"] == pytest.approx(4.0)


def test_no_change_pair_is_quiet_and_a_new_object_is_found():
    before = _scene()
    rng = np.random.default_rng(1)
    noisy = before + rng.normal(0, 3, before.shape).astype(np.float32)
    # 2 m pixels: a 512 m scene. (On a 128 m scene at 0.5 m the per-cue floors, quantiles of
    # a field smoothed over 6 m, come from too few independent samples: 10-14 % flagged.)
    quiet = detect_change(before, noisy, pixel_size_m=2.0)
    assert quiet.method == "cues" and quiet.threshold_method == "value"
    assert quiet.changed_fraction < 0.01
    after = noisy.copy()
    after[:, 60:100, 60:100] = np.array([250, 240, 230], np.float32)[:, None, None]
    maps = detect_change(before, after, pixel_size_m=2.0)
    assert maps.changed[65:95, 65:95].mean() > 0.9
    assert maps.changed[:, :40].mean() < 0.02
    assert maps.parameters["delineation"] == "SLIC 8 m majority vote"


def test_cues_model_declares_its_halo_and_records_thresholds():
    before = _scene()
    after = before[:, ::-1].copy()
    model = fit_score(before, after, method="cues", pixel_size_m=0.5)
    p = model.parameters
    assert model.smooth_px == 0 and model.halo_px == p["halo_px"] >= 4 * 12
    for k in ("cva", "ssim", "orient"):
        assert p["thresholds"][k] == max(p["otsu"][k], p["no_change_floor"][k])
    det = fit_detector(before, after, DetectionOptions(method="cues"), pixel_size_m=0.5)
    assert det.halo_px >= model.halo_px


def test_segment_vote_takes_the_majority_of_valid_pixels():
    raw = np.array([[1, 1, 0, 0], [1, 0, 0, 1]], bool)
    labels = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    valid = np.ones_like(raw)
    assert segment_vote(raw, labels, valid).tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]
    assert segment_vote(raw, None, valid).tolist() == raw.tolist()
    # a segment larger than max_pixels does not vote: its pixels keep their own decision
    assert segment_vote(raw, labels, valid, max_pixels=3).tolist() == raw.tolist()


def test_cues_score_per_window_matches_the_whole_array():
    """The score is window-local with its halo (the SLIC vote is not: design-detection.md)."""
    before = _scene()
    after = before.copy()
    after[:, 100:140, 80:150] = 200
    det = fit_detector(before, after, pixel_size_m=1.0, band_names=("red", "green", "blue"))
    valid = np.ones(before.shape[1:], bool)
    whole = det.score_window(before, after, valid)
    h = det.halo_px
    cols = slice(100 - h, 140 + h)
    part = det.score_window(before[:, :, cols], after[:, :, cols], valid[:, cols])
    np.testing.assert_allclose(part[:, h:-h], whole[:, 100:140], rtol=1e-4, atol=1e-6)


def test_standardised_bands_leave_the_input_as_it_was():
    # made in place in a copy: the caller's float32 dates (reused by the segment vote) stay
    from satdelta.imagery.cues import _standardised

    rng = np.random.default_rng(5)
    x = (rng.random((3, 40, 50)) * 200).astype(np.float32)
    x[1, 3, 4] = np.nan
    kept = x.copy()
    median, scale = [10.0, 20.0, 30.0], [2.0, 4.0, 0.5]
    out = _standardised(x, median, scale)
    assert np.array_equal(x, kept, equal_nan=True) and out is not x
    m = np.asarray(median, np.float32).reshape(-1, 1, 1)
    s = np.asarray(scale, np.float32).reshape(-1, 1, 1)
    want = (x - m) / s
    want[~np.isfinite(want)] = 0
    assert out.dtype == np.float32 and np.array_equal(out, want)
