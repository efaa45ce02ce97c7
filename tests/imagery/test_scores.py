"""Tests of satdelta.imagery.scores: each change score, band roles, smoothing, halo."""

from __future__ import annotations

import json
from typing import get_args

import numpy as np
import pytest
from satdelta.imagery.errors import BandMismatchError, InvalidParameterError
from satdelta.imagery.scores import (
    SCORE_METHODS,
    SCORES,
    ChangeScore,
    ScoreMethod,
    ScoreModel,
    change_score,
    fit_score,
    smooth_score,
    smoothing_px,
)


def noisy_pair(seed=0, nb=3, size=64, sigma=(1.0, 2.0, 4.0)):
    rng = np.random.default_rng(seed)
    before = rng.uniform(50, 200, size=(nb, size, size))
    noise = np.stack([rng.normal(0, s, size=(size, size)) for s in sigma[:nb]])
    return before, before + noise + 10.0  # +10: a global offset between the dates


def test_absdiff_exact():
    b = np.zeros((2, 1, 3))
    a = np.array([[[1.0, -2.0, 0.0]], [[3.0, 2.0, 0.0]]])
    np.testing.assert_allclose(change_score(b, a, method="absdiff"), [[2.0, 2.0, 0.0]])


def test_cva_standardises_each_band_by_its_noise_and_removes_the_offset():
    before, after = noisy_pair()
    model = fit_score(before, after, method="cva", smoothing_m=0)
    np.testing.assert_allclose(model.parameters["difference_median"], [10, 10, 10], atol=0.3)
    np.testing.assert_allclose(model.parameters["difference_scale"], [1, 2, 4], rtol=0.05)
    s = model.apply(before, after)
    # unchanged pixels: sum of three squared standard normals -> chi-square(3), mean 3
    assert np.mean(s**2) == pytest.approx(3.0, rel=0.1)
    # a +8 change in the quiet band counts as much as +32 in the noisy band
    a2 = after.copy()
    a2[0, 0, 0] += 8
    a2[2, 0, 1] += 32
    s2 = model.apply(before, a2)
    assert s2[0, 0] == pytest.approx(s2[0, 1], rel=0.25)
    assert s2[0, 0] > 6


@pytest.mark.parametrize("rows", [1, 63, 64, 65, 150])
def test_cva_magnitude_by_strips_equals_whole_array_passes_bit_for_bit(rows):
    """The strip-by-strip change vector (CVA_STRIP_ROWS rows at a time) gives exactly the
    float32 values of the same operations on whole bands, float32 and float64 inputs alike."""
    from satdelta.imagery.scores import CVA_STRIP_ROWS, _cva_magnitude

    assert CVA_STRIP_ROWS == 64  # the sizes above straddle it
    rng = np.random.default_rng(rows)
    b = rng.uniform(0, 5000, (4, rows, 77))
    a = b + rng.normal(0, 30, b.shape)
    median, scale = [0.5, -1.25, 3.0, 0.0], [20.5, 19.0, 33.3, 7.0]
    for x, y in ((b.astype(np.float32), a.astype(np.float32)), (b, a)):
        expected = np.zeros((rows, 77), np.float32)
        for i in range(4):
            d = np.subtract(y[i], x[i], dtype=np.float32)
            d -= np.float32(median[i])
            d *= np.float32(1) / np.float32(scale[i])
            expected += d * d
        got = _cva_magnitude(x, y, median, scale)
        assert got.dtype == np.float32
        assert np.array_equal(got, np.sqrt(expected))
    # a (band, n) sample, as the fit passes it
    flat = _cva_magnitude(b[:, :, 0].astype(np.float32), a[:, :, 0].astype(np.float32),
                          median, scale)  # fmt: skip
    assert np.array_equal(flat, _cva_magnitude(b[:, :, :1], a[:, :, :1], median, scale)[:, 0])


def test_logratio_is_symmetric_in_time():
    before, after = noisy_pair(seed=1)
    s1 = change_score(before, after, method="logratio")
    s2 = change_score(after, before, method="logratio")
    np.testing.assert_allclose(s1, s2, rtol=1e-3, atol=1e-6)


def test_ndvi_and_ndwi_differences():
    names = ("green", "red", "nir")
    b = np.array([[[50.0]], [[40.0]], [[160.0]]])  # vegetation
    a = np.array([[[60.0]], [[100.0]], [[100.0]]])  # bare
    ndvi = change_score(b, a, method="ndvi", band_names=names)
    assert ndvi[0, 0] == pytest.approx(abs(0.0 - 120 / 200))
    ndwi = change_score(b, a, method="ndwi", band_names=names)
    assert ndwi[0, 0] == pytest.approx(abs((60 - 100) / 160 - (50 - 160) / 210))
    with pytest.raises(BandMismatchError, match="needs bands named nir and red"):
        change_score(b, a, method="ndvi", band_names=("b1", "b2", "b3"))


def test_builtup_score_needs_visible_bands():
    b = np.ones((4, 8, 8))
    with pytest.raises(BandMismatchError, match="needs visible red, green and blue"):
        fit_score(b, b, method="builtup", band_names=("blue", "green", "red", "nir"))


def test_irmad_score_ranks_inserted_changes_first():
    before, after = noisy_pair(seed=2)
    after[:, :4, :4] = after[:, :4, :4] * np.array([0.5, 1.3, 0.8])[:, None, None] + 20
    model = fit_score(before, after, method="irmad")
    s = model.apply(before, after)
    assert s[:4, :4].min() > np.percentile(s, 99)
    # IR-MAD's re-weighting shrinks the no-change sigmas, so unchanged pixels sit above the
    # chi-square(3) median of 2.37 but in the same range
    assert 2.0 < np.median(s) < 10.0
    assert model.halo_px == 0 and model.parameters["irmad"]["iterations"] >= 1


def test_smoothing_scale_in_metres_and_halo():
    assert smoothing_px(0.5) == 2.0 and smoothing_px(30.0) == 0.0 and smoothing_px(None) == 1.0
    before, after = noisy_pair(seed=3)
    m = fit_score(before, after, method="cva", pixel_size_m=0.25)
    # smoothing 4 px, shared-edge gradient at 2 px: 4 * 4 + 4 * 2 + 1
    assert m.smooth_px == 4.0 and m.parameters["edge_sigma_px"] == 2.0 and m.halo_px == 25
    assert fit_score(before, after, method="absdiff", pixel_size_m=0.25).halo_px == 16
    assert fit_score(before, after, method="cva", pixel_size_m=10.0).halo_px == 0
    with pytest.raises(InvalidParameterError, match="smoothing_m must be"):
        fit_score(before, after, method="cva", smoothing_m=-1.0)


def test_smoothing_ignores_invalid_pixels():
    s = np.ones((20, 20))
    s[:, :10] = 1000.0  # garbage under no-data
    valid = np.ones((20, 20), bool)
    valid[:, :10] = False
    out = smooth_score(s, 2.0, valid)
    assert np.isnan(out[:, :10]).all()
    np.testing.assert_allclose(out[:, 10:], 1.0)


def test_nan_outside_valid():
    before, after = noisy_pair(seed=4)
    valid = np.ones(before.shape[1:], bool)
    valid[:5] = False
    for method in ("cva", "absdiff", "logratio", "irmad"):
        s = change_score(before, after, method=method, valid=valid)
        assert np.isnan(s[:5]).all() and np.isfinite(s[5:]).all(), method


def test_parameters_are_json_and_methods_listed():
    before, after = noisy_pair(seed=5)
    for method in ("cva", "absdiff", "logratio", "irmad", "builtup"):
        json.dumps(fit_score(before, after, method=method).parameters)
    assert SCORE_METHODS[0] == "auto" and "builtup" in SCORE_METHODS


def test_one_registry_lists_every_method_once():
    """SCORE_METHODS comes from SCORES, in the order of the ScoreMethod Literal."""
    assert SCORE_METHODS == get_args(ScoreMethod)
    assert SCORE_METHODS == (
        "auto", "cva", "irmad", "absdiff", "logratio", "ndvi", "ndwi", "builtup", "cues"
    )  # fmt: skip
    for name, score in SCORES.items():
        assert isinstance(score, ChangeScore) and score.name == name


def test_every_registered_method_fits_and_applies_through_the_model():
    before, after = noisy_pair(seed=6)
    names = ("red", "green", "nir")
    for name, score in SCORES.items():
        bands = ("red", "green", "blue") if name == "builtup" else names
        model = fit_score(before, after, method=name, band_names=bands)  # type: ignore[arg-type]
        assert model.method == name
        direct = score.apply(model, before.astype(np.float32), after.astype(np.float32))
        np.testing.assert_array_equal(model.apply_scales(before, after)[0], direct)


def test_bad_method():
    with pytest.raises(InvalidParameterError, match="method must be one of"):
        fit_score(np.ones((1, 4, 4)), np.ones((1, 4, 4)), method="sobel")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="needs a fitted IR-MAD"):
        ScoreModel("irmad")


def test_edges_present_at_both_dates_are_discounted_new_objects_are_not():
    """Sub-pixel misregistration of a sharp edge scores low; a new object keeps its score."""
    from scipy import ndimage

    rng = np.random.default_rng(7)
    scene = np.zeros((96, 96))
    scene[:, 48:] = 100.0  # a long sharp edge (runway marking, roof line)
    scene = ndimage.gaussian_filter(scene, 0.7)
    before = np.stack([scene, 0.8 * scene]) + rng.normal(0, 1, (2, 96, 96))
    moved = ndimage.shift(scene, (0, 0.6), order=3)  # 0.6 px misregistration
    after = np.stack([moved, 0.8 * moved]) + rng.normal(0, 1, (2, 96, 96))
    after[:, 20:30, 10:20] += 60.0  # a new object on the flat side
    plain = fit_score(before, after, method="cva", smoothing_m=0).apply(before, after)
    model = fit_score(before, after, method="cva", pixel_size_m=0.5)
    assert "edge_median" in model.parameters
    s = model.apply(before, after)
    edge_plain = np.median(plain[40:90, 46:50].max(axis=1))
    obj_plain = np.median(plain[22:28, 12:18])
    edge = np.median(s[40:90, 46:50].max(axis=1))
    obj = np.median(s[22:28, 12:18])
    assert obj / edge > 3 * (obj_plain / edge_plain), (obj, edge, obj_plain, edge_plain)
    assert edge < 0.5 * obj
