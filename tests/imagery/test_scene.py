"""open_scene / Scene on real files: GeoTIFF, PNG (no georef), ENVI, masks, dates, errors."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.windows import Window
from satdelta.imagery.errors import BandMismatchError, SceneReadError
from satdelta.imagery.scene import open_scene, parse_date

from tests.conftest import require_shared


def test_geotiff_header_and_window(write_raster):
    data = np.arange(2 * 6 * 8, dtype="uint16").reshape(2, 6, 8)
    path = write_raster("site_20190704.tif", data, descriptions=["red", "nir"])
    s = open_scene(path)
    assert s.crs.to_epsg() == 32651
    assert s.transform == Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    assert (s.count, s.height, s.width) == (2, 6, 8)
    assert s.band_names == ("red", "nir")
    assert s.acquired == dt.date(2019, 7, 4)
    assert s.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert s.scene_id == "site_20190704"
    assert s.georeferenced and s.pixel_size_m == 10.0
    assert s.bounds == (500000.0, 4000000.0 - 60, 500080.0, 4000000.0)
    win, valid = s.read(Window(2, 1, 3, 4), bands=["nir"])
    assert win.dtype == np.float32 and win.shape == (1, 4, 3)
    np.testing.assert_array_equal(win[0], data[1, 1:5, 2:5])
    assert valid.shape == (4, 3) and valid.all()


def test_nodata_makes_invalid_only_where_file_says(write_raster):
    data = np.full((2, 4, 4), 7, dtype="uint8")
    data[0, 0, 0] = 0  # nodata in one band only -> pixel invalid
    data[1, 3, 3] = 0
    path = write_raster("nd.tif", data, nodata=0)
    s = open_scene(path)
    assert s.nodata == 0.0
    _, valid = s.read()
    expected = np.ones((4, 4), bool)
    expected[0, 0] = expected[3, 3] = False
    np.testing.assert_array_equal(valid, expected)
    # the same zeros without a nodata value are data, not guessed as missing
    _, valid2 = open_scene(write_raster("nond.tif", data)).read()
    assert valid2.all()


def test_png_not_georeferenced_without_warning(tmp_path, recwarn):
    rgb = np.random.default_rng(1).integers(0, 255, (3, 5, 7), dtype="uint8")
    path = tmp_path / "pair_a.png"
    with rasterio.open(path, "w", driver="PNG", width=7, height=5, count=3, dtype="uint8") as d:
        d.write(rgb)
        d.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    recwarn.clear()
    s = open_scene(path)
    data, valid = s.read()
    assert not [w for w in recwarn if "georeferenc" in str(w.message).lower()]
    assert s.crs is None and not s.georeferenced and s.pixel_size_m is None
    assert s.transform == Affine.identity()
    assert s.band_names == ("red", "green", "blue")
    np.testing.assert_array_equal(data, rgb.astype("float32"))
    assert valid.all()


def test_envi(tmp_path):
    data = np.random.default_rng(2).integers(0, 200, (3, 9, 11)).astype("int16")
    path = tmp_path / "taizhou_2003-02-06.img"
    transform = Affine(30.0, 0.0, 203325.0, 0.0, -30.0, 3604935.0)
    with rasterio.open(
        path,
        "w",
        driver="ENVI",
        width=11,
        height=9,
        count=3,
        dtype="int16",
        crs="EPSG:32651",
        transform=transform,
    ) as d:
        d.write(data)
    assert (tmp_path / "taizhou_2003-02-06.hdr").exists()
    s = open_scene(path)
    assert s.crs.to_epsg() == 32651 and s.transform == transform
    assert s.acquired == dt.date(2003, 2, 6) and s.dtype == "int16"
    np.testing.assert_array_equal(s.read()[0], data.astype("float32"))


def test_geographic_pixel_size_in_metres(write_raster):
    t = Affine(0.0001, 0.0, 10.0, 0.0, -0.0001, 45.0005)  # ~0.0001 degree pixels at 45 N
    s = open_scene(
        write_raster("geo.tif", np.ones((1, 10, 10), "uint8"), crs="EPSG:4326", transform=t)
    )
    # WGS84 at 45 N: one degree of longitude is 78.85 km, one degree of latitude 111.13 km
    expected = np.sqrt(7.885 * 11.113)
    assert s.pixel_size_m == pytest.approx(expected, rel=2e-3)


def test_metadata_date_beats_file_name(write_raster):
    path = write_raster(
        "x_20000101.tif",
        np.ones((1, 2, 2), "uint8"),
        tags={"ACQUISITIONDATETIME": "2015-06-30T10:11:12Z"},
    )
    assert open_scene(path).acquired == dt.date(2015, 6, 30)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("m_4709963_se_14_1_20090818", dt.date(2009, 8, 18)),
        ("2000-03-17", dt.date(2000, 3, 17)),
        ("2009:08:18 10:00:00", dt.date(2009, 8, 18)),
        ("L71119038_03820000317", None),  # date glued to other digits is not trusted
        ("20091318", None),
    ],
)
def test_parse_date(text, expected):
    assert parse_date(text) == expected


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(SceneReadError, match="no such file"):
        open_scene(tmp_path / "nope.tif")
    bad = tmp_path / "bad.tif"
    bad.write_text("not a raster")
    with pytest.raises(SceneReadError, match="cannot read"):
        open_scene(bad)


def test_bad_band_selection(write_raster):
    s = open_scene(write_raster("b.tif", np.ones((2, 2, 2), "uint8")))
    with pytest.raises(BandMismatchError, match="expected 1..2"):
        s.read(bands=[3])
    with pytest.raises(BandMismatchError, match="not in"):
        s.read(bands=["swir"])


@pytest.mark.realdata
def test_naip_real():
    path = require_shared("naip-nd", "m_4709963_se_14_1_20090818.tif")
    s = open_scene(path)
    assert s.crs.to_epsg() == 26914 and (s.width, s.height, s.count) == (934, 724, 4)
    assert s.acquired == dt.date(2009, 8, 18) and s.nodata == 0.0
    data, valid = s.read(Window(0, 0, 64, 32))
    assert data.shape == (4, 32, 64)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(valid, (src.read(window=Window(0, 0, 64, 32)) != 0).all(0))


def test_alpha_shadowed_by_nodata_reads_quietly_in_threads(tmp_path):
    """rasterio warns on each mask read of a 4-band file whose alpha band a nodata value
    shadows; satdelta's reads keep it out, also when threads read at once while others enter
    and leave ``warnings.catch_warnings`` (which restores the filters it found: filters set
    around each read were undone under another thread's read)."""
    import threading
    import warnings

    from rasterio.errors import NodataShadowWarning
    from satdelta.imagery.block_tiles import tile_caches
    from satdelta.imagery.pixel_masks import valid_pixels

    rgba = np.random.default_rng(3).integers(1, 255, (4, 64, 64), dtype="uint8")
    rgba[:, :4, :4] = 0
    rgba[1, 40, 50] = 0  # one band without data: the pixel is invalid
    path = tmp_path / "naip_2020-08-31.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=64, height=64, count=4, dtype="uint8", nodata=0,
        crs="EPSG:32614", transform=Affine(1.0, 0.0, 500000.0, 0.0, -1.0, 5000000.0),
        tiled=True, blockxsize=16, blockysize=16,
    ) as dst:  # fmt: skip
        dst.write(rgba)
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    s = open_scene(path)
    with rasterio.open(path) as src, pytest.warns(NodataShadowWarning):
        masks = src.read_masks([1, 2, 3])  # the file does make rasterio warn
    # the same validity as GDAL's masks, made from the pixels (0 in a band: no data)
    for window in (None, Window(2, 1, 20, 30)):
        with rasterio.open(path) as src:
            data = src.read([1, 2, 3], window=window)
            valid = valid_pixels(src, [1, 2, 3], window, data)
        expected = np.all(masks > 0, axis=0)
        if window is not None:
            expected = expected[1:31, 2:22]
        np.testing.assert_array_equal(valid, expected)
    assert not expected.all() and expected.any()
    expected_all = np.all(masks > 0, axis=0)
    assert not expected_all[40, 50] and not expected_all[:4, :4].any()

    stop = threading.Event()

    def churn() -> None:  # another part of the process entering and leaving the context
        while not stop.is_set():
            with warnings.catch_warnings():
                warnings.simplefilter("always")

    def reads(errors: list[BaseException]) -> None:
        try:
            for k in range(150):
                c, r = k % 48, 30 * (k % 2)
                _, valid = s.read(Window(c, r, 16, 16))
                assert (valid == expected_all[r : r + 16, c : c + 16]).all()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.resetwarnings()  # no filter of satdelta's left: the reads add it again
        warnings.simplefilter("always")
        errors: list[BaseException] = []
        workers = [threading.Thread(target=churn) for _ in range(2)]
        workers += [threading.Thread(target=reads, args=(errors,)) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers[2:]:
            w.join()
        stop.set()
        for w in workers[:2]:
            w.join()
        # the tile cache's reads too
        caches = tile_caches(s, s, ((1, 2, 3), (1, 2, 3)), (0.0, 0.0), [Window(0, 0, 32, 32)])
        assert caches is not None
        _, valid = caches[0].read(Window(0, 0, 32, 32))
        assert not valid[:4, :4].any() and valid[4:, 4:].all()
    assert not errors, errors
    assert not [w for w in caught if issubclass(w.category, NodataShadowWarning)]
