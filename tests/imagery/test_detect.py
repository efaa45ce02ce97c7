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
from satdelta.imagery.options import DetectionOptions
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
    assert NORMALISE_METHODS == ("auto", "none", "histogram", "irmad", "local")


def test_defaults_find_inserted_blobs():
    before, after, truth = textured_pair()
    maps = detect_change(before, after, pixel_size_m=10.0)
    p, r, f = prf(maps.changed, truth)
    assert p > 0.9 and r > 0.9, (p, r)
    assert isinstance(maps, ChangeMaps)
    assert maps.score.dtype == np.float32 and maps.changed.dtype == bool
    assert maps.method != "auto" and maps.threshold_method != "auto"
    json.dumps(maps.parameters)  # every parameter is JSON-serialisable


@pytest.mark.parametrize(
    "method", [m for m in SCORE_METHODS if m not in ("ndvi", "ndwi", "builtup")]
)
def test_every_score_method_finds_blobs(method):
    before, after, truth = textured_pair(seed=1)
    maps = detect_change(before, after, DetectionOptions(method=method, threshold="otsu"))
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
    small = detect_change(before, after, DetectionOptions(min_area_m2=0), pixel_size_m=10.0)
    big = detect_change(
        before, after, DetectionOptions(min_area_m2=300 * 100.0), pixel_size_m=10.0
    )  # 300 px
    lab, n = ndimage.label(big.changed, structure=np.ones((3, 3)))
    sizes = np.bincount(lab.ravel())[1:]
    assert n == 0 or sizes.min() >= 300
    assert big.changed.sum() < small.changed.sum()
    assert big.parameters["min_pixels"] == 300


@pytest.mark.parametrize("pixel_size_m", [None, 0.5, 30.0])
def test_fit_then_apply_per_window_matches_whole_array(pixel_size_m):
    before, after, truth = textured_pair(seed=4)
    valid = np.ones(truth.shape, bool)
    det = fit_detector(before, after, valid=valid, pixel_size_m=pixel_size_m)
    expected = det.score.halo_px + 2 * det.cleanup_radius_px  # 1 m opening: 2 px at 0.5 m
    assert (det.score.halo_px == 0) == (pixel_size_m == 30.0)
    assert det.cleanup_radius_px == (2 if pixel_size_m == 0.5 else 0)
    assert det.halo_px == expected
    whole_s, whole_c = det.apply(before, after, valid)
    h = det.halo_px
    rows = slice(64 - h, 128)
    s, c = det.apply(before[:, rows], after[:, rows], valid[rows])
    # inside the window (past the halo) the result equals the whole-array one
    np.testing.assert_allclose(s[h : -h or None], whole_s[64 : 128 - h], rtol=1e-4, atol=1e-5)
    assert (c[h : -h or None] == whole_c[64 : 128 - h]).all()


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
    scene = {k: v for k, v in kwargs.items() if k in ("pixel_size_m", "band_names")}
    options = {k: v for k, v in kwargs.items() if k not in scene}
    with pytest.raises((InvalidParameterError, BandMismatchError), match=needle):
        detect_change(before, after, DetectionOptions(**options), **scene)


def test_shape_mismatch_raises_band_mismatch():
    with pytest.raises(BandMismatchError, match="coregister"):
        detect_change(np.zeros((3, 10, 10)), np.zeros((3, 10, 11)))


def test_valid_mask_must_be_bool():
    before, after, _ = textured_pair(seed=5, shape=(2, 32, 32), n_blobs=1)
    with pytest.raises(InvalidParameterError, match="bool mask"):
        detect_change(before, after, valid=np.ones((32, 32), np.uint8))


def rgb_scene(seed: int = 0):
    """Before/after RGB (0-255) of grass, trees, a soil patch, a grey apron with a white aircraft.

    After: three grey roofs built on grass/soil, the aircraft gone, and the trees turned
    from green to autumn colours - a natural-cover change the default must not call.
    Returns before, after, built_truth (roofs + aircraft), trees (True = tree patch).
    """
    rng = np.random.default_rng(seed)
    h = w = 128
    tex = ndimage.gaussian_filter(rng.normal(size=(h, w)), 2)
    tex = tex / tex.std()
    grass = np.array([70.0, 120.0, 50.0])
    img = grass[:, None, None] * (1 + 0.08 * tex)[None]
    trees = np.zeros((h, w), bool)
    trees[80:120, 5:60] = True
    img[:, trees] = np.array([40.0, 75.0, 35.0])[:, None] * (1 + 0.2 * tex[trees])
    soil = np.zeros((h, w), bool)
    soil[10:50, 70:120] = True
    img[:, soil] = np.array([150.0, 120.0, 90.0])[:, None] * (1 + 0.05 * tex[soil])
    apron = np.zeros((h, w), bool)
    apron[70:120, 70:125] = True
    img[:, apron] = np.array([120.0, 120.0, 118.0])[:, None] * (1 + 0.03 * tex[apron])
    aircraft = np.zeros((h, w), bool)
    aircraft[85:95, 80:110] = True
    aircraft[75:105, 92:97] = True
    before = img.copy()
    before[:, aircraft] = 235.0
    after = img.copy()
    after[:, aircraft] = np.array([120.0, 120.0, 118.0])[:, None]
    after[:, trees] = np.array([95.0, 80.0, 35.0])[:, None] * (1 + 0.2 * tex[trees])  # autumn
    roofs = np.zeros((h, w), bool)
    roofs[15:30, 15:35] = True
    roofs[40:55, 40:60] = True
    roofs[20:40, 80:100] = True
    after[:, roofs] = np.array([95.0, 96.0, 100.0])[:, None] * (1 + 0.02 * tex[roofs])
    noise = rng.normal(0, 2.0, size=(2, 3, h, w))
    before = np.clip(before + noise[0], 0, 255).astype(np.float32)
    after = np.clip(after + noise[1], 0, 255).astype(np.float32)
    return before, after, roofs | aircraft, trees


def test_builtup_on_rgb_finds_built_change_not_seasonal_vegetation():
    """The former RGB default (``auto`` until issue 9), now chosen explicitly."""
    before, after, built, veg = rgb_scene()
    opts = DetectionOptions(method="builtup", normalise="none")
    maps = detect_change(before, after, opts, band_names=("red", "green", "blue"), pixel_size_m=0.5)
    assert maps.method == "builtup"
    # the score ranks every built change above the autumn trees and the stable surfaces
    assert np.nanpercentile(maps.score[built], 5) > np.nanpercentile(maps.score[~built], 95)
    p, r, f = prf(maps.changed, built)
    assert p > 0.85 and r > 0.95, (p, r)
    assert not maps.changed[veg].any()
    otsu = detect_change(
        before,
        after,
        DetectionOptions(method="builtup", normalise="none", threshold="otsu"),
        band_names=("red", "green", "blue"),
        pixel_size_m=0.5,
    )
    p, r, f = prf(otsu.changed, built)
    assert p > 0.85 and r > 0.95, (p, r)
    # whereas the generic per-pixel CVA scores the autumn trees far above stable ground
    cva = detect_change(
        before, after, DetectionOptions(method="cva", normalise="none"), pixel_size_m=10.0
    )
    stable = ~built & ~veg
    assert np.nanmedian(cva.score[veg]) > 2 * np.nanpercentile(cva.score[stable], 95)
    assert np.nanmedian(maps.score[veg]) < 0.1 * np.nanmedian(maps.score[built])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"threshold": "otsu"},
        {"threshold": "kmeans"},
        {"threshold": "percentile"},
        {"method": "irmad"},
        {"normalise": "histogram"},
        {"pixel_size_m": np.float32(0.5)},
    ],
)
def test_rgb_parameters_are_json_for_every_choice(kwargs):
    before, after, _, _ = rgb_scene(seed=1)
    scene = {k: v for k, v in kwargs.items() if k == "pixel_size_m"}
    options = DetectionOptions(**{k: v for k, v in kwargs.items() if k not in scene})
    maps = detect_change(before, after, options, band_names=("red", "green", "blue"), **scene)
    back = json.loads(json.dumps(maps.parameters))
    assert back["threshold"] == pytest.approx(maps.threshold)


def test_auto_on_multispectral_is_cva_with_irmad():
    before, after, truth = textured_pair(seed=6)
    names = ("blue", "green", "red", "nir")
    maps = detect_change(before, after, band_names=names)
    assert maps.method == "cva" and maps.parameters["normalise"] == "irmad"
    gains = maps.parameters["normalisation"]["gains"]
    assert np.allclose(gains, 1 / 0.9, rtol=0.02), gains  # the pair's 0.9 gain is undone


def test_cleanup_removes_slivers_but_keeps_objects_at_the_border():
    from satdelta.imagery.morphology import clean_mask

    m = np.zeros((40, 40), bool)
    m[10, 5:35] = True  # a one-pixel sliver (edge residue)
    m[0:12, 28:40] = True  # an object in the corner, touching two borders
    out = clean_mask(m, radius_px=2)
    assert not out[10, 5:20].any()
    # the corner object keeps its border rows and columns (a disk opening only rounds
    # its one inner corner)
    assert out[0, 28:40].all() and out[0:12, 39].all()
    assert out[0:12, 28:40].sum() >= 0.98 * 144
    with pytest.raises(InvalidParameterError, match="mode must be"):
        clean_mask(m, radius_px=1, mode="erode")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- CLI, real subprocess


@pytest.mark.parametrize(
    "options, needles",
    [
        (["--threshold", "percentile", "--threshold-value", "150"], ["between 0 and 100", "150"]),
        (["--threshold", "value"], ["needs a finite threshold value"]),
        (["--threshold", "otsu", "--threshold-value", "2"], ["only used with threshold method"]),
        (["--method", "ndvi"], ["needs bands named nir and red", "b1"]),
        (["--method", "builtup"], ["needs visible red, green and blue", "--bands"]),
    ],
)
def test_cli_reports_bad_detection_options_in_one_line(write_raster, tmp_path, options, needles):
    import subprocess
    import sys

    before, after, _ = textured_pair(seed=8, shape=(4, 48, 48), n_blobs=2)
    a = write_raster("before.tif", before.astype("float32"))
    b = write_raster("after.tif", after.astype("float32"))
    cmd = [sys.executable, "-m", "satdelta.plugins.cli.main", "detect", str(a), str(b)]
    res = subprocess.run(
        [*cmd, "-o", str(tmp_path / "out"), *options], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 1, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("satdelta: error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seed", [0, 1])
def test_a_pair_without_change_is_not_split_in_two(seed):
    before, after, truth = textured_pair(seed=seed, n_blobs=0)
    assert not truth.any()
    plain = detect_change(before, after, DetectionOptions(null_quantile=None), pixel_size_m=10.0)
    maps = detect_change(before, after, pixel_size_m=10.0)
    # a two-class threshold alone always finds two classes ...
    assert plain.changed_fraction > 0.2
    # ... the no-change floor keeps it near the 1 % of the simulated null
    assert maps.changed_fraction < 0.02
    assert maps.threshold == pytest.approx(maps.parameters["no_change_quantile"])
    assert maps.parameters["threshold_fit"]["fitted_threshold"] < maps.threshold


def test_no_change_floor_does_not_touch_a_clear_change():
    before, after, truth = textured_pair(seed=9)
    maps = detect_change(before, after, pixel_size_m=10.0)
    assert maps.parameters["no_change_quantile"] < maps.threshold
    assert "fitted_threshold" not in maps.parameters["threshold_fit"]


def test_null_quantile_validated():
    before, after, _ = textured_pair(seed=5, shape=(4, 32, 32), n_blobs=1)
    with pytest.raises(InvalidParameterError, match="null_quantile must be in"):
        detect_change(before, after, DetectionOptions(null_quantile=1.5))


def test_auto_normalisation_falls_back_on_tiny_inputs():
    rng = np.random.default_rng(3)
    maps = detect_change(rng.random((4, 5, 5)), rng.random((4, 5, 5)))
    assert maps.parameters["normalise"] == "histogram"
    with pytest.raises(InvalidParameterError, match="IR-MAD needs at least 18 valid pixels"):
        detect_change(
            rng.random((4, 3, 3)), rng.random((4, 3, 3)), DetectionOptions(normalise="irmad")
        )


def test_builtup_per_window_matches_whole_array():
    before, after, _, _ = rgb_scene(seed=2)
    valid = np.ones(before.shape[1:], bool)
    det = fit_detector(
        before,
        after,
        DetectionOptions(method="builtup", normalise="none"),
        valid=valid,
        band_names=("red", "green", "blue"),
        pixel_size_m=0.5,
    )
    assert det.score.method == "builtup" and det.halo_px > 0
    whole_s, whole_c = det.apply(before, after, valid)
    h = det.halo_px
    cols = slice(40 - h, 100 + h)
    s, c = det.apply(before[:, :, cols], after[:, :, cols], valid[:, cols])
    np.testing.assert_allclose(s[:, h:-h], whole_s[:, 40:100], rtol=1e-4, atol=1e-5)
    assert (c[:, h:-h] == whole_c[:, 40:100]).all()


# --------------------------------------------------------------------------- delineation


def _one_pixel_off_iou(truth: np.ndarray) -> float:
    """IoU of a mask wrong by one pixel along every boundary: erosion / dilation areas."""
    return ndimage.binary_erosion(truth).sum() / ndimage.binary_dilation(truth).sum()


@pytest.mark.parametrize("seed", [4, 7])
def test_fine_pixels_outline_follows_the_change_not_the_smoothing(seed):
    """At 0.5 m the 1 m smoothing decides which regions changed, the pixel score their outline."""
    from satdelta.imagery.morphology import clean_mask

    before, after, truth = textured_pair(seed=seed)
    valid = np.ones(truth.shape, bool)
    det = fit_detector(before, after, valid=valid, pixel_size_m=0.5)
    assert det.score.smooth_px == 2.0
    score, changed = det.apply(before, after, valid)
    # the regions the smoothed score alone gives (the previous result): bloated by the kernel
    region = clean_mask(score > det.threshold.threshold, radius_px=det.cleanup_radius_px)
    assert not (changed & ~region).any()  # delineation never grows a region
    iou = lambda m: (m & truth).sum() / (m | truth).sum()  # noqa: E731
    assert iou(region) < _one_pixel_off_iou(truth)
    assert iou(changed) >= _one_pixel_off_iou(truth), (iou(changed), iou(region))
    p, r, _ = prf(changed, truth)
    p_region, r_region, _ = prf(region, truth)
    # the outline loses (almost) nothing of the change and drops most of the kernel's halo
    assert r > 0.97 and r_region > 0.99, (r, r_region)
    assert p > 0.8 and p - p_region > 0.15, (p, p_region)
    assert det.parameters["delineation"] is not None


def test_without_smoothing_the_delineation_changes_nothing():
    from satdelta.imagery.morphology import clean_mask

    before, after, _ = textured_pair(seed=5)
    valid = np.ones(before.shape[1:], bool)
    det = fit_detector(
        before, after, DetectionOptions(min_area_m2=9 * 900.0), valid=valid, pixel_size_m=30.0
    )
    assert det.score.smooth_px == 0 and det.parameters["delineation"] is None
    score, changed = det.apply(before, after, valid)
    expected = clean_mask(
        score > det.threshold.threshold, radius_px=0, min_pixels=det.min_pixels, valid=valid
    )
    assert (changed == expected).all() and changed.any()


def test_majority_vote_removes_pixel_noise_and_keeps_edges():
    from satdelta.imagery.morphology import majority3

    m = np.zeros((20, 20), bool)
    m[5:15, 5:15] = True
    noisy = m.copy()
    noisy[8, 8] = noisy[11, 12] = False  # dropouts inside
    noisy[2, 2] = noisy[17, 3] = True  # stray pixels outside
    out = majority3(noisy)
    assert out[8, 8] and out[11, 12] and not out[2, 2] and not out[17, 3]
    # straight edges stay where they are; only the four corner pixels go
    assert (out ^ m).sum() == 4 and not out[5, 5] and out[5, 6:14].all()


@pytest.mark.parametrize("radius", [1, 2, 3, 5])
@pytest.mark.parametrize("mode", ["open", "open-close"])
def test_clean_mask_matches_scipy_morphology_with_the_disk(radius, mode):
    """The row-segment opening/closing equals scipy's with the same disk (borders reflected)."""
    from satdelta.imagery.morphology import clean_mask, disk, majority3

    rng = np.random.default_rng(radius)
    kept = 0
    for shape, p in (((61, 47), 0.3), ((40, 90), 0.6), ((3, 50), 0.5)):
        blobs = ndimage.binary_dilation(rng.random(shape) < p / 20, iterations=radius + 1)
        m = blobs | (rng.random(shape) < p / 4)
        pad = 2 * radius
        padded = np.pad(m, pad, mode="reflect")
        se = disk(radius)
        want = ndimage.binary_opening(padded, structure=se)
        if mode == "open-close":
            want = ndimage.binary_closing(want, structure=se)
        want = want[pad:-pad, pad:-pad]
        got = clean_mask(m, radius_px=radius, mode=mode)
        assert (got == want).all()
        kept += int(got.sum())
        box = ndimage.correlate(m.astype(np.uint8), np.ones((3, 3), np.uint8), mode="reflect")
        assert (majority3(m) == (box >= 5)).all()
    assert kept > 0  # the opening kept something: the comparison is not between empty masks


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_on_a_patch_set_matches_the_whole_array_fit(seed, monkeypatch):
    """Above the patch budget the fit samples patches; its threshold and masks stay put."""
    import satdelta.imagery.radiometry as radiometry

    before, after, truth = textured_pair(seed=seed, shape=(4, 320, 320), n_blobs=30)
    valid = np.ones(truth.shape, bool)
    whole = fit_detector(before, after, valid=valid, pixel_size_m=0.5)
    whole_maps = detect_change(before, after, valid=valid, pixel_size_m=0.5)
    # a budget of 6 patches of 64² (24 % of the scene) instead of the whole array
    monkeypatch.setattr(radiometry, "MAX_FIT_PATCH_PIXELS", 6 * 64**2)
    monkeypatch.setattr(radiometry, "FIT_PATCH_PX", 64)
    assert len(radiometry.fit_windows(truth.shape)) == 6
    part = fit_detector(before, after, valid=valid, pixel_size_m=0.5)
    part_maps = detect_change(before, after, valid=valid, pixel_size_m=0.5)
    for key in ("threshold", "no_change_quantile"):
        assert part.parameters[key] == pytest.approx(whole.parameters[key], rel=0.05), key
        assert part.parameters[key] != whole.parameters[key], key  # the patches were used
    assert part.score.parameters["edge_median"] == pytest.approx(
        whole.score.parameters["edge_median"], rel=0.05
    )
    iou = lambda a, b: (a & b).sum() / (a | b).sum()  # noqa: E731
    assert iou(part.apply(before, after, valid)[1], whole.apply(before, after, valid)[1]) > 0.95
    assert iou(part_maps.changed, whole_maps.changed) > 0.95
    assert iou(part_maps.changed, truth) > 0.8
