"""Tests of satdelta.imagery.detect: the whole-array change detector."""

from __future__ import annotations

import json

import numpy as np
import pytest
from satdelta.imagery.detect import (
    NORMALISE_METHODS,
    SCORE_METHODS,
    THRESHOLD_METHODS,
    ChangeMaps,
    detect_change,
    fit_detector,
)
from satdelta.imagery.errors import BandMismatchError, InvalidParameterError
from scipy import ndimage


def textured_pair(seed: int = 0, shape=(4, 128, 128), n_blobs: int = 6):
    """A smooth textured scene, its re-acquisition with noise and a gain, and changed blobs."""
    rng = np.random.default_rng(seed)
    nb, h, w = shape
    base = np.stack(
        [
            ndimage.gaussian_filter(rng.normal(size=(h, w)), 3) * 400 + 100 * (b + 1)
            for b in range(nb)
        ]
    ).astype(np.float32)
    after = 0.9 * base + 7 + rng.normal(0, 3, size=base.shape).astype(np.float32)
    truth = np.zeros((h, w), bool)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(n_blobs):
        cy, cx, r = rng.integers(12, h - 12), rng.integers(12, w - 12), rng.integers(4, 9)
        truth |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    new = rng.normal(size=nb) * 120 + 60
    after[:, truth] = (after[:, truth] + new[:, None]).astype(np.float32)
    before = base + rng.normal(0, 3, size=base.shape).astype(np.float32)
    return before, after.astype(np.float32), truth


def prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = float((pred & truth).sum())
    p = tp / max(pred.sum(), 1)
    r = tp / max(truth.sum(), 1)
    return p, r, 2 * p * r / max(p + r, 1e-12)


def test_method_tuples_follow_contract():
    assert SCORE_METHODS[0] == "auto" and {
        "cva",
        "irmad",
        "absdiff",
        "logratio",
        "ndvi",
        "ndwi",
    } <= set(SCORE_METHODS)
    assert THRESHOLD_METHODS == ("auto", "mixture", "otsu", "kmeans", "value", "percentile")
    assert NORMALISE_METHODS == ("auto", "none", "histogram", "irmad")


def test_defaults_find_inserted_blobs():
    before, after, truth = textured_pair()
    maps = detect_change(before, after, pixel_size_m=10.0)
    p, r, f = prf(maps.changed, truth)
    assert p > 0.9 and r > 0.9, (p, r)
    assert isinstance(maps, ChangeMaps)
    assert maps.score.dtype == np.float32 and maps.changed.dtype == bool
    assert maps.method != "auto" and maps.threshold_method != "auto"
    json.dumps(maps.parameters)  # every parameter is JSON-serialisable


@pytest.mark.parametrize("method", [m for m in SCORE_METHODS if m not in ("ndvi", "ndwi")])
def test_every_score_method_finds_blobs(method):
    before, after, truth = textured_pair(seed=1)
    maps = detect_change(before, after, method=method, threshold="otsu")
    p, r, f = prf(maps.changed, truth)
    assert f > 0.8, (method, p, r)


def test_nodata_never_changes_and_score_is_nan():
    before, after, truth = textured_pair(seed=2)
    valid = np.ones(truth.shape, bool)
    valid[:, :40] = False
    after[:, :, :40] = 0  # garbage under no-data
    before[:, 5, 5] = np.nan  # a non-finite pixel inside the valid area
    maps = detect_change(before, after, valid=valid)
    assert not maps.changed[:, :40].any()
    assert np.isnan(maps.score[:, :40]).all()
    assert not maps.valid[5, 5] and not maps.changed[5, 5] and np.isnan(maps.score[5, 5])
    assert maps.changed[:, 40:][truth[:, 40:]].mean() > 0.8


def test_min_area_in_square_metres():
    before, after, truth = textured_pair(seed=3)
    small = detect_change(before, after, pixel_size_m=10.0, min_area_m2=0)
    big = detect_change(before, after, pixel_size_m=10.0, min_area_m2=300 * 100.0)  # 300 px
    lab, n = ndimage.label(big.changed, structure=np.ones((3, 3)))
    sizes = np.bincount(lab.ravel())[1:]
    assert n == 0 or sizes.min() >= 300
    assert big.changed.sum() < small.changed.sum()
    assert big.parameters["min_pixels"] == 300


def test_fit_then_apply_per_window_matches_whole_array():
    before, after, truth = textured_pair(seed=4)
    valid = np.ones(truth.shape, bool)
    det = fit_detector(before, after, valid=valid)
    whole_s, whole_c = det.apply(before, after, valid)
    h = det.halo_px
    rows = slice(64 - h, 128)
    s, c = det.apply(before[:, rows], after[:, rows], valid[rows])
    np.testing.assert_allclose(s[h:], whole_s[64:], rtol=1e-5)
    # clean-up near the window edge may differ only within the halo
    assert (c[h:][h:] == whole_c[64 + h :]).all()


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"method": "sobel"}, "method must be one of"),
        ({"threshold": "triangle"}, "threshold must be one of"),
        ({"normalise": "zscore"}, "normalise must be one of"),
        ({"threshold": "value"}, "needs a finite threshold value"),
        ({"threshold": "percentile", "threshold_value": 120}, "between 0 and 100"),
        ({"threshold": "otsu", "threshold_value": 3.0}, "only used with threshold method"),
        ({"pixel_size_m": -1.0}, "pixel_size_m must be a positive number"),
        ({"min_area_m2": -5.0}, "min_area_m2 must be a finite number >= 0"),
        ({"band_names": ("a", "b")}, "band_names has 2 names for 4 bands"),
        ({"method": "ndvi", "band_names": ("a", "b", "c", "d")}, "needs bands named nir and red"),
    ],
)
def test_invalid_parameters_raise_with_message(kwargs, needle):
    before, after, _ = textured_pair(seed=5, shape=(4, 32, 32), n_blobs=1)
    with pytest.raises((InvalidParameterError, BandMismatchError), match=needle):
        detect_change(before, after, **kwargs)


def test_shape_mismatch_raises_band_mismatch():
    with pytest.raises(BandMismatchError, match="coregister"):
        detect_change(np.zeros((3, 10, 10)), np.zeros((3, 10, 11)))


def test_valid_mask_must_be_bool():
    before, after, _ = textured_pair(seed=5, shape=(2, 32, 32), n_blobs=1)
    with pytest.raises(InvalidParameterError, match="bool mask"):
        detect_change(before, after, valid=np.ones((32, 32), np.uint8))
