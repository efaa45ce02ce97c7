"""polygonize: GDAL's polygons through its C API, the same as rasterio.features.shapes."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.features import shapes
from satdelta.imagery import polygonize as poly_mod
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.polygonize import polygonize
from shapely.geometry import shape

NORTH_UP = Affine(0.5, 0.0, 485900.0, 0.0, -0.5, 5209247.0)
ROTATED = Affine(0.3, 0.4, 1000.0, 0.4, -0.3, 2000.0)


def _reference(values, mask, connectivity, transform):
    """What rasterio.features.shapes gives, one shapely polygon at a time."""
    kwargs = {} if transform is None else {"transform": transform}
    out = list(shapes(values.astype(np.int32), mask=mask, connectivity=connectivity, **kwargs))
    return [int(v) for _, v in out], [shape(g) for g, _ in out]


def _assert_same(got, ref):
    values, polygons = got
    ref_values, ref_polygons = ref
    assert values.dtype == np.int64
    assert values.tolist() == ref_values
    assert len(polygons) == len(ref_polygons)
    for a, b in zip(polygons, ref_polygons, strict=True):
        assert a.geom_type == "Polygon"
        # every ring: the same vertices, the same first vertex, the same direction
        assert shapely.get_num_interior_rings(a) == shapely.get_num_interior_rings(b)
        assert np.array_equal(shapely.get_coordinates(a), shapely.get_coordinates(b))


def _labels(rng, shape_rc, n_values, fill):
    values = rng.integers(1, n_values + 1, size=shape_rc).astype(np.int32)
    return values, rng.random(shape_rc) < fill


def test_gdal_is_found_here():
    # the fast path must not silently turn into the fallback on the machine CI runs on
    gdal = poly_mod._gdal()
    assert gdal is not None
    assert "libgdal" in gdal.path
    # the polygonizer runs without the GIL; the per-polygon calls keep it
    flags = type(gdal._fn["GDALPolygonize"])._flags_
    assert not flags & ctypes._FUNCFLAG_PYTHONAPI
    assert type(gdal._fn["OGR_L_GetNextFeature"])._flags_ & ctypes._FUNCFLAG_PYTHONAPI


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("transform", [None, NORTH_UP, ROTATED], ids=["pixels", "north", "rot"])
def test_same_polygons_as_rasterio(connectivity, transform):
    rng = np.random.default_rng(connectivity)
    for _ in range(40):
        shape_rc = tuple(int(x) for x in rng.integers(1, 40, size=2))
        values, mask = _labels(rng, shape_rc, int(rng.integers(1, 5)), float(rng.random()))
        if not mask.any():
            continue
        got = polygonize(values, mask, connectivity=connectivity, transform=transform)
        _assert_same(got, _reference(values, mask, connectivity, transform))


def test_holes_diagonals_and_pieces():
    # a ring with a hole holding an island, two pieces of one value, diagonal touches
    v = np.zeros((9, 9), np.int32)
    v[1:8, 1:8] = 1
    v[3:6, 3:6] = 0
    v[4, 4] = 2
    v[0, 8] = 1
    v[8, 0] = 3
    v[7, 1] = 3  # diagonal to (8, 0)
    for connectivity in (4, 8):
        got = polygonize(v, v > 0, connectivity=connectivity)
        _assert_same(got, _reference(v, v > 0, connectivity, None))
    values, polygons = polygonize(v, v > 0, connectivity=4)
    ring = max(polygons[values == 1], key=lambda p: p.area)
    assert shapely.get_num_interior_rings(ring) == 1
    assert ring.area == 49 - 9 - 1  # less the hole and the pixel of value 3
    assert sorted(values.tolist()) == [1, 1, 2, 3, 3]  # 4-connected: diagonals split
    assert sorted(polygonize(v, v > 0, connectivity=8)[0].tolist()) == [1, 2, 3]


def test_other_dtypes_and_views():
    rng = np.random.default_rng(7)
    big = rng.integers(0, 4, size=(60, 70)).astype(np.uint16)
    view = big[5:50:2, 3:60]  # not contiguous
    mask = view > 0
    got = polygonize(view, mask)
    _assert_same(got, _reference(view, mask, 4, None))
    got64 = polygonize(view.astype(np.int64), np.asfortranarray(mask))
    _assert_same(got64, _reference(view, mask, 4, None))


def test_the_rasterio_fallback_gives_the_same(monkeypatch):
    rng = np.random.default_rng(3)
    values, mask = _labels(rng, (50, 45), 3, 0.6)
    fast = polygonize(values, mask, transform=NORTH_UP)
    monkeypatch.setattr(poly_mod, "_loaded", [None])  # as where libgdal is not found
    slow = polygonize(values, mask, transform=NORTH_UP)
    _assert_same(slow, (fast[0].tolist(), list(fast[1])))
    _assert_same(slow, _reference(values, mask, 4, NORTH_UP))


def test_the_library_is_used_only_when_it_is_one_gdal(tmp_path):
    assert poly_mod._find([]) is None
    assert poly_mod._find(["/a/libgdal.so", "/b/libgdal.so"]) is None  # which is rasterio's?
    not_gdal = tmp_path / "libgdal-fake.so"
    not_gdal.write_bytes(b"not a library")
    assert poly_mod._find([str(not_gdal)]) is None
    libc = ctypes.util.find_library("c")
    assert poly_mod._find([libc or "libc.so.6"]) is None  # loads, lacks GDAL's functions


def test_empty_and_bad_input():
    v = np.ones((3, 4), np.int32)
    values, polygons = polygonize(v, np.zeros((3, 4), bool))
    assert values.shape == (0,) and polygons.shape == (0,)
    assert polygonize(np.zeros((0, 4), np.int32), np.zeros((0, 4), bool))[0].size == 0
    with pytest.raises(ValueError, match="same shape"):
        polygonize(v, np.ones((4, 3), bool))
    with pytest.raises(ValueError, match="connectivity 4 or 8"):
        polygonize(v, v > 0, connectivity=6)
    with pytest.raises(ValueError, match=r"\(M, N\)"):
        polygonize(np.ones((2, 3, 4), np.int32), np.ones((2, 3, 4), bool))
    with pytest.raises(ValueError, match="integer values; got float32"):
        polygonize(v.astype(np.float32), v > 0)
    wide = np.array([[1, 2**31 + 5]], np.int64)
    with pytest.raises(ValueError, match=r"fit in int32; got 1\.\.2147483653"):
        polygonize(wide, wide > 0)
    with pytest.raises(InvalidParameterError):  # a SatdeltaError: one line in the CLI
        polygonize(v, v > 0, connectivity=6)
    small = np.array([[3, 0], [2**31 - 1, 3]], np.uint32)  # wider type, values that fit
    assert sorted(polygonize(small, small > 0)[0].tolist()) == [3, 3, 2**31 - 1]


def test_threads_give_the_serial_result():
    rng = np.random.default_rng(11)
    cases = [_labels(rng, (300, 280), 6, 0.5) for _ in range(6)]
    serial = [polygonize(v, m) for v, m in cases]
    results: list = [None] * len(cases)

    def run(k):
        for i in range(k, len(cases), 2):
            results[i] = polygonize(*cases[i])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, ref in zip(results, serial, strict=True):
        _assert_same(got, (ref[0].tolist(), list(ref[1])))


def test_a_gdal_that_makes_no_in_memory_raster_falls_back_to_rasterio(monkeypatch):
    gdal = poly_mod._gdal()
    monkeypatch.setattr(poly_mod, "_loaded", [gdal])  # restored after the test

    def refuse(arr, kind):
        raise poly_mod._Unusable("no MEM band here")

    monkeypatch.setattr(gdal, "_band_over", refuse)
    rng = np.random.default_rng(5)
    values, mask = _labels(rng, (30, 40), 3, 0.7)
    _assert_same(polygonize(values, mask), _reference(values, mask, 4, None))
    assert poly_mod._loaded == [None]  # rasterio's from now on
