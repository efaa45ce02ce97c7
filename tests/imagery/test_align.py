"""coregister / estimate_shift: known sub-pixel shifts, grid resampling, overlap and band errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from rasterio.windows import Window
from satdelta.imagery import align
from satdelta.imagery.align import coregister, estimate_shift, match_bands, measure_shift
from satdelta.imagery.errors import (
    AlignmentError,
    BandMismatchError,
    InvalidParameterError,
    NoOverlapError,
)
from satdelta.imagery.scene import open_scene
from scipy import ndimage

from tests.conftest import make_texture, require_shared


def fourier_shifted(img: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    return np.fft.ifftn(ndimage.fourier_shift(np.fft.fftn(img), shift)).real


@pytest.mark.parametrize("shift", [(0.3, -1.7), (-1.25, 0.6), (2.4, 2.05)])
def test_known_subpixel_shift_measured_and_corrected(write_raster, shift):
    tex = make_texture((256, 256), seed=7) * 200 + 20
    moved = fourier_shifted(tex, shift)
    before = open_scene(write_raster("before.tif", tex.astype("float32")))
    after = open_scene(write_raster("after.tif", moved.astype("float32")))
    pair = coregister(before, after)
    assert pair.shift_before_px == pytest.approx(shift, abs=0.1)
    assert max(map(abs, pair.shift_after_px)) < 0.1
    # the corrected after really matches before (away from the borders)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    err_before = np.abs(moved[8:-8, 8:-8] - tex[8:-8, 8:-8]).mean()
    err_after = np.nanmean(np.abs(pair.after[inner] - pair.before[inner]))
    assert err_after < 0.1 * err_before
    assert pair.after.dtype == np.float32 and pair.before.shape == (1, 256, 256)


def test_estimate_shift_masked_region_ignored():
    tex = make_texture((200, 200), seed=1)
    moved = fourier_shifted(tex, (0.8, -0.4))
    moved[:60, :60] = 50.0  # a big "change" / garbage block, marked invalid
    valid = np.ones(tex.shape, bool)
    valid[:60, :60] = False
    assert estimate_shift(tex, moved, valid=valid) == pytest.approx((0.8, -0.4), abs=0.1)


def test_correlation_alone_is_subpixel_and_seeds_refinement():
    from satdelta.imagery.registration import _correlation_peak
    from scipy import fft

    tex = make_texture((160, 160), seed=11)
    moved = fourier_shifted(tex, (1.37, -2.62))
    # without refinement: skimage's upsampled DFT peak, to 1/upsample_factor px
    got = estimate_shift(tex, moved, refine=False, upsample_factor=50)
    assert got == pytest.approx((1.37, -2.62), abs=0.05)
    # the refinement's seeds: integer peak + parabola, within its basin
    fa, fb = fft.fft2(tex), fft.fft2(moved)
    for phase in (False, True):
        assert _correlation_peak(fa, fb, phase=phase) == pytest.approx((1.37, -2.62), abs=0.3)


def test_grid_differing_in_origin_and_size_is_resampled(write_raster):
    # the after grid starts 1.5 pixels east, one pixel north, and is 3 rows taller;
    # content is a smooth map-space function, so the resampled values are known
    def field(x, y):
        return 100 + 30 * np.sin(x / 70.0) + 20 * np.cos(y / 50.0)

    def grid(transform, rows, cols):
        c, r = np.meshgrid(np.arange(cols) + 0.5, np.arange(rows) + 0.5)
        x, y = transform @ (c, r)
        return field(x, y).astype("float32")

    tb = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    ta = Affine(10.0, 0.0, 500015.0, 0.0, -10.0, 4000010.0)
    before = open_scene(write_raster("b.tif", grid(tb, 60, 80), transform=tb))
    after = open_scene(write_raster("a.tif", grid(ta, 63, 80), transform=ta))
    pair = coregister(before, after, correct=False)
    assert pair.transform == tb and pair.after.shape == (1, 60, 80)
    inner = (0, slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(pair.after[inner], pair.before[inner], atol=0.05)
    assert max(map(abs, pair.shift_before_px)) < 0.05
    # the first column has no after data -> invalid, not extrapolated
    assert not pair.valid[:, 0].any() and pair.valid[5, 5]


def test_window_and_precomputed_shift(write_raster):
    tex = make_texture((128, 128), seed=2) * 100
    moved = fourier_shifted(tex, (0.5, 0.5))
    before = open_scene(write_raster("b.tif", tex.astype("float32")))
    after = open_scene(write_raster("a.tif", moved.astype("float32")))
    full = coregister(before, after)
    win = Window(32, 16, 48, 40)
    part = coregister(before, after, window=win, shift_px=full.shift_before_px)
    assert part.after.shape == (1, 40, 48)
    assert part.transform == before.transform @ Affine.translation(32, 16)
    np.testing.assert_allclose(part.after[0], full.after[0, 16:56, 32:80], atol=1e-3)


def test_measure_shift_from_a_sample_then_align_blocks(write_raster):
    tex = make_texture((200, 240), seed=12) * 150 + 30
    moved = fourier_shifted(tex, (-0.6, 0.9))
    before = open_scene(write_raster("b.tif", tex.astype("float32")))
    after = open_scene(write_raster("a.tif", moved.astype("float32")))
    shift = measure_shift(before, after, sample_size=96)  # reads a 96 x 96 window only
    assert shift == pytest.approx((-0.6, 0.9), abs=0.1)
    blocks = [
        coregister(before, after, window=Window(c, r, 120, 100), shift_px=shift)
        for r in (0, 100)
        for c in (0, 120)
    ]
    mosaic = np.block(
        [[blocks[0].after[0], blocks[1].after[0]], [blocks[2].after[0], blocks[3].after[0]]]
    )
    whole = coregister(before, after, shift_px=shift)
    np.testing.assert_allclose(mosaic[5:-5, 5:-5], whole.after[0, 5:-5, 5:-5], atol=1e-3)


def test_featureless_centre_is_not_the_shift_sample(write_raster):
    # a 1200 x 1200 scene whose central 600 x 600 is flat (water, say): the central 512 px
    # sample has nothing to measure, a textured corner has
    tex = make_texture((1200, 1200), seed=21) * 150 + 40
    tex[300:900, 300:900] = 90.0
    moved = fourier_shifted(tex, (0.6, -0.8))
    moved[300:900, 300:900] = 90.0
    before = open_scene(write_raster("b.tif", tex.astype("float32")))
    after = open_scene(write_raster("a.tif", moved.astype("float32")))
    pair = coregister(before, after, sample_size=512)
    assert pair.shift_before_px == pytest.approx((0.6, -0.8), abs=0.1)
    assert max(map(abs, pair.shift_after_px)) < 0.1


def test_one_misleading_sample_is_outvoted(write_raster):
    # the central 512 px square of the after scene shows its own content moved by 20 px (an
    # apron where everything changed, say), the rest is shifted by (1.5, -1): the central
    # sample alone would measure about (20, 0) (beyond max_shift_px); the samples around it
    # agree on the scene's shift
    tex = make_texture((1536, 1536), seed=5) * 150 + 40
    moved = fourier_shifted(tex, (1.5, -1.0))
    moved[512:1024, 512:1024] = fourier_shifted(tex, (20.0, 0.0))[512:1024, 512:1024]
    before = open_scene(write_raster("b.tif", tex.astype("float32")))
    after = open_scene(write_raster("a.tif", moved.astype("float32")))
    pair = coregister(before, after, sample_size=512)
    assert pair.shift_before_px == pytest.approx((1.5, -1.0), abs=0.1)
    r0, c0, h, w = pair.shift_sample
    assert (r0, c0) != (512, 512) and (h, w) == (512, 512)


def test_spline_shift_equals_scipy_shift():
    from satdelta.imagery.registration import _spline_shift

    img = make_texture((64, 80), seed=3).astype("float32")
    coef = ndimage.spline_filter(img, order=3, output=np.float32)
    for shift in [(0.3, -1.7), (0.0, 0.5), (-2.6, 3.0), (4.25, -0.99)]:
        want = ndimage.shift(coef, shift, order=3, prefilter=False, mode="nearest")
        np.testing.assert_allclose(_spline_shift(coef, shift), want, atol=1e-5)


def test_unmasked_warp_matches_masked_warp(write_raster):
    # a scene without holes takes GDAL's unmasked warp (plus computed coverage); one nodata
    # pixel sends the same data through the masked warp: away from it, the values agree
    from satdelta.imagery.align import resample_to_grid

    tex = (make_texture((90, 110), seed=8) * 200 + 20).astype("float32")
    holed = tex.copy()
    holed[10, 10] = -9999.0
    full = open_scene(write_raster("full.tif", tex))
    hole = open_scene(write_raster("hole.tif", holed, nodata=-9999.0))
    # target grid: 2.5 px east and 1 px south of the source, so its last column and row are
    # outside; the hole lands on target row 9, column 7 (column 9 once moved 1.2 px east)
    grid = dict(
        transform=full.transform @ Affine.translation(2.5, 1.0), crs=full.crs, shape=(90, 110)
    )
    away = np.ones((90, 110), bool)
    away[3:16, 2:14] = False
    for shift, at in [((0.0, 0.0), (9, 7)), ((0.37, -1.2), (9, 9))]:
        a, va = resample_to_grid(full, **grid, shift_px=shift)
        b, vb = resample_to_grid(hole, **grid, shift_px=shift)
        assert va[at] and not vb[at] and vb[3:16, 2:14].sum() == 13 * 12 - 1
        np.testing.assert_array_equal(va[away], vb[away])
        assert not va[:, -1].any() and not va[-1].any() and va[0, 0]
        np.testing.assert_allclose(a[:, away], b[:, away], equal_nan=True, atol=1e-4)


def test_non_overlapping_scenes_raise(write_raster):
    data = np.ones((1, 20, 20), "uint8")
    before = open_scene(write_raster("b.tif", data))
    far = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 4000000.0)
    after = open_scene(write_raster("a.tif", data, transform=far))
    with pytest.raises(NoOverlapError, match="do not overlap"):
        coregister(before, after)


def test_shift_beyond_limit_raises(write_raster):
    tex = make_texture((128, 128), seed=5)
    before = open_scene(write_raster("b.tif", tex.astype("float32")))
    after = open_scene(write_raster("a.tif", fourier_shifted(tex, (4.0, 0)).astype("float32")))
    with pytest.raises(AlignmentError, match="beyond the limit of 2"):
        coregister(before, after, max_shift_px=2)


def test_band_mismatch(write_raster):
    before = open_scene(write_raster("b.tif", np.ones((4, 8, 8), "int16")))
    after = open_scene(write_raster("a.tif", np.ones((3, 8, 8), "int16")))
    with pytest.raises(BandMismatchError, match="--bands"):
        match_bands(before, after)
    assert match_bands(before, after, [1, 3]) == ((1, 3), (1, 3))
    # RGBA vs RGB (uint8 GeoTIFFs get colour interpretation): the colour bands match
    rgba = open_scene(write_raster("rgba.tif", np.ones((4, 8, 8), "uint8")))
    rgb = open_scene(write_raster("rgb.tif", np.ones((3, 8, 8), "uint8")))
    assert rgba.band_names[3] == "alpha"
    assert match_bands(rgba, rgb) == ((1, 2, 3), (1, 2, 3))
    named_b = open_scene(
        write_raster("nb.tif", np.ones((2, 8, 8), "uint8"), descriptions=["red", "nir"])
    )
    named_a = open_scene(
        write_raster("na.tif", np.ones((3, 8, 8), "uint8"), descriptions=["green", "nir", "red"])
    )
    assert match_bands(named_b, named_a) == ((1, 2), (3, 2))


def test_alpha_band_is_not_compared(write_raster):
    rgba = np.full((4, 8, 8), 100, "uint8")
    rgba[3] = 255
    rgba[3, 0, 0] = 0  # transparent pixel: not valid
    a = open_scene(write_raster("a.tif", rgba))
    b = open_scene(write_raster("b.tif", rgba))
    assert match_bands(a, b) == ((1, 2, 3), (1, 2, 3))
    _, valid = a.read(bands=[1, 2, 3])
    assert not valid[0, 0] and valid.sum() == 63


def test_georeferenced_with_plain_raises(write_raster):
    geo = open_scene(write_raster("g.tif", np.ones((1, 8, 8), "uint8")))
    plain = open_scene(write_raster("p.tif", np.ones((1, 8, 8), "uint8"), crs=None))
    with pytest.raises(AlignmentError, match="only the before scene is georeferenced"):
        coregister(geo, plain)


def test_after_in_another_crs_is_reprojected(write_raster):
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    tex = (make_texture((160, 160), seed=4, sigma=4) * 200 + 20).astype("float32")
    tb = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    before = open_scene(write_raster("b.tif", tex, transform=tb))
    dst_crs = "EPSG:4326"
    t4326, w, h = calculate_default_transform(
        "EPSG:32651", dst_crs, 160, 160, *before.bounds, resolution=0.00005
    )
    warped = np.full((1, h, w), np.nan, "float32")
    reproject(
        tex[None],
        warped,
        src_transform=tb,
        src_crs="EPSG:32651",
        dst_transform=t4326,
        dst_crs=dst_crs,
        resampling=Resampling.cubic,
        dst_nodata=np.nan,
    )
    after = open_scene(
        write_raster("a.tif", warped, crs=dst_crs, transform=t4326, nodata=float("nan"))
    )
    pair = coregister(before, after)
    assert pair.crs.to_epsg() == 32651 and pair.transform == tb
    assert max(map(abs, pair.shift_before_px)) < 0.1
    inner = (0, slice(10, -10), slice(10, -10))
    assert pair.valid[10:-10, 10:-10].all()
    assert np.abs(pair.after[inner] - pair.before[inner]).mean() < 0.02 * tex.std()


def test_plain_images_of_different_size_raise(tmp_path, write_raster):
    a = open_scene(write_raster("a.png", np.ones((3, 8, 8), "uint8"), driver="PNG", crs=None))
    b = open_scene(write_raster("b.png", np.ones((3, 9, 8), "uint8"), driver="PNG", crs=None))
    with pytest.raises(NoOverlapError, match="sizes differ"):
        coregister(a, b)


def test_plain_images_shift(write_raster):
    tex = (make_texture((128, 128), seed=9) * 255).astype("float32")
    moved = fourier_shifted(tex, (-0.7, 1.1))
    a = open_scene(write_raster("a.tif", tex, crs=None))
    b = open_scene(write_raster("b.tif", moved.astype("float32"), crs=None))
    pair = coregister(a, b)
    assert pair.crs is None and pair.pixel_size_m is None
    assert pair.shift_before_px == pytest.approx((-0.7, 1.1), abs=0.1)
    assert max(map(abs, pair.shift_after_px)) < 0.1


@pytest.mark.parametrize("kind", ["cropped", "nodata"])
def test_partial_overlap_is_measured_where_both_have_data(write_raster, kind):
    # before 1200 x 1200; the after scene has data only over its left 300 columns, either as a
    # smaller file on the same grid ("cropped": the sample is chosen from its footprint) or as
    # a full-size file whose other columns are nodata ("nodata": the footprint says "all", the
    # fallback finds the joint data)
    tex = make_texture((1200, 1200), seed=23) * 150 + 40
    moved = fourier_shifted(tex, (0.7, -0.5))
    before = open_scene(write_raster("b.tif", tex.astype("float32")))
    if kind == "cropped":
        after = open_scene(write_raster("a.tif", moved[:, :300].astype("float32")))
    else:
        moved[:, 300:] = -9999.0
        after = open_scene(write_raster("a.tif", moved.astype("float32"), nodata=-9999.0))
    pair = coregister(before, after)
    assert pair.shift_measured
    assert pair.shift_before_px == pytest.approx((0.7, -0.5), abs=0.1)
    assert max(map(abs, pair.shift_after_px)) < 0.1
    r0, c0, h, w = pair.shift_sample
    assert (h, w) == (512, 512) and c0 < 300 - 256  # the sample is mostly over the after data
    assert pair.valid[:, :290].mean() > 0.99 and not pair.valid[:, 302:].any()
    if kind == "cropped":  # a block runner's measurement reads a square inside the overlap
        assert measure_shift(before, after) == pytest.approx((0.7, -0.5), abs=0.1)


def test_overlap_between_the_candidate_squares_is_found(write_raster):
    # 2048 px wide: the 3 x 3 candidate squares leave columns 512-768 uncovered; the after
    # data lies just there, the valid-data centroid candidate finds it
    tex = make_texture((600, 2048), seed=24) * 150 + 40
    moved = fourier_shifted(tex, (-0.4, 0.6))
    moved[:, :520] = -9999.0
    moved[:, 760:] = -9999.0
    before = open_scene(write_raster("b.tif", tex.astype("float32")))
    after = open_scene(write_raster("a.tif", moved.astype("float32"), nodata=-9999.0))
    pair = coregister(before, after)
    assert pair.shift_before_px == pytest.approx((-0.4, 0.6), abs=0.1)
    assert max(map(abs, pair.shift_after_px)) < 0.1


def test_residual_not_measurable_after_correction_is_nan(write_raster):
    # 17 x 17: 289 valid pixels suffice to measure; once corrected by 2 px only 15 x 15 = 225
    # remain in the sample, too few to measure again: the run goes on, the residual is NaN
    tex = (make_texture((40, 40), seed=25, sigma=1.5) * 200 + 20).astype("float32")
    before = open_scene(write_raster("b.tif", tex[10:27, 10:27]))
    after = open_scene(write_raster("a.tif", tex[8:25, 10:27]))  # after(r, c) = before(r - 2, c)
    pair = coregister(before, after)
    assert pair.shift_measured and pair.shift_sample == (0, 0, 17, 17)
    assert pair.shift_before_px == pytest.approx((2.0, 0.0), abs=0.25)
    assert all(math.isnan(v) for v in pair.shift_after_px)
    assert pair.valid.sum() == 15 * 17


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 0.0, -1.0])
def test_max_shift_must_be_finite_and_positive(write_raster, value):
    tex = make_texture((64, 64), seed=26).astype("float32")
    scene = open_scene(write_raster("b.tif", tex))
    with pytest.raises(InvalidParameterError, match=r"finite number of pixels > 0.*got"):
        coregister(scene, scene, max_shift_px=value)


@pytest.mark.parametrize("shape", [(1, 200), (10, 10), (3, 3000), (40, 12)])
def test_too_small_to_measure_on_one_grid_assumes_no_shift(write_raster, shape, monkeypatch):
    rng = np.random.default_rng(27)
    b = rng.random(shape).astype("float32")
    a = (b + rng.normal(0, 0.01, shape)).astype("float32")
    before = open_scene(write_raster("b.tif", b))
    after = open_scene(write_raster("a.tif", a))
    resampled = []
    resample = align._Job.resample

    def counted(job, *args, **kwargs):
        resampled.append(args)
        return resample(job, *args, **kwargs)

    monkeypatch.setattr(align._Job, "resample", counted)
    pair = coregister(before, after)
    # the after scene is resampled on the whole grid once (when the sample was the whole
    # grid, that resampling serves the rest of the run)
    whole = (slice(0, shape[0]), slice(0, shape[1]))
    assert sum(len(c) == 1 or c[1] == whole for c in resampled) == 1
    monkeypatch.undo()
    assert pair.shift_before_px == (0.0, 0.0) and not pair.shift_measured
    assert all(math.isnan(v) for v in pair.shift_after_px) and pair.shift_sample is None
    assert "same pixel grid" in pair.shift_note and "not measured" in pair.shift_note
    assert pair.valid.all() and pair.shape == shape
    np.testing.assert_allclose(pair.after[0], a, atol=1e-5)  # pixel for pixel, no warp
    # an after file on the same grid but offset by whole pixels is still "the same grid"
    crop = open_scene(
        write_raster("c.tif", a[:, 1:], transform=before.transform @ Affine.translation(1, 0))
    )
    assert not coregister(before, crop).shift_measured


def test_too_small_to_measure_on_differing_grids_raises(write_raster):
    b = np.random.default_rng(28).random((10, 10)).astype("float32")
    before = open_scene(write_raster("b.tif", b))
    # half a pixel east: the grids differ, so "no shift" cannot be assumed
    after = open_scene(
        write_raster("a.tif", b, transform=before.transform @ Affine.translation(0.5, 0))
    )
    with pytest.raises(AlignmentError, match=r"too few .*grids differ.*shift_px=\(0, 0\)"):
        coregister(before, after)
    pair = coregister(before, after, shift_px=(0, 0))  # resampling by georeference alone
    assert not pair.shift_measured and "given" in pair.shift_note and pair.shift_sample is None
    assert pair.valid[:, :-1].all()
    # tiny but disjoint on one grid: still no overlap
    far = open_scene(
        write_raster("far.tif", b, transform=before.transform @ Affine.translation(10, 0))
    )
    with pytest.raises(NoOverlapError):
        coregister(before, far)


@pytest.mark.realdata
def test_naip_pair_aligned_to_2009_grid():
    d = require_shared("naip-nd")
    before = open_scene(d / "m_4709963_se_14_1_20090818.tif")
    after = open_scene(d / "m_4709963_se_14_1_20200831.tif")
    pair = coregister(before, after)
    assert pair.transform == before.transform and pair.shape == (724, 934)
    assert max(map(abs, pair.shift_after_px)) < 0.5
    assert pair.valid.mean() > 0.95
