"""The object detector's filters: scipy's results, computed faster (median, holes, disks)."""

from __future__ import annotations

import numpy as np
import pytest
from satdelta.imagery import median as median_module
from satdelta.imagery.median import median_filter
from satdelta.imagery.morphology import closing, fill_holes, opening, rows_pass, within_distance
from scipy import ndimage


def _blobs(shape: tuple[int, int], frac: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random(shape), 2)
    return field > np.quantile(field, 1 - frac)


@pytest.mark.parametrize("shape", [(320, 320), (37, 250), (16, 16), (9, 40)])
@pytest.mark.parametrize("size", [3, 15, 31])
def test_median_is_scipys(monkeypatch, shape, size):
    rng = np.random.default_rng(3)
    x = ndimage.gaussian_filter(rng.random(shape) * 200, 2).astype(np.float32)
    x[0, :3] = 500.0  # outliers at an edge: the reflected border shows
    want = ndimage.median_filter(x, size=size, mode="reflect")
    monkeypatch.setattr(median_module, "STRIP_VALUES", 5000)  # several strips
    assert np.array_equal(median_filter(x, size), want)
    ints = (x * 10).astype(np.int32)
    assert np.array_equal(median_filter(ints, size), ndimage.median_filter(ints, size=size))


def test_median_leaves_what_it_cannot_do_to_scipy():
    x = np.arange(64, dtype=np.float64).reshape(8, 8)
    x[3, 3] = np.nan
    assert np.array_equal(
        median_filter(x, 3), ndimage.median_filter(x, size=3, mode="reflect"), equal_nan=True
    )
    y = np.arange(64, dtype=np.float32).reshape(8, 8)
    for size in (4, 21):  # even; wider than the array
        assert np.array_equal(median_filter(y, size), ndimage.median_filter(y, size=size))


@pytest.mark.parametrize("shape", [(400, 517), (7, 9), (1, 20)])
@pytest.mark.parametrize("frac", [0.3, 0.5, 0.7])
def test_fill_holes_is_scipys(shape, frac):
    m = (
        _blobs(shape, frac, seed=1)
        if min(shape) > 3
        else np.random.default_rng(1).random(shape) < frac
    )
    assert np.array_equal(fill_holes(m), ndimage.binary_fill_holes(m))
    ring = np.zeros((9, 9), bool)  # a hole touching no edge, a bay touching one
    ring[1:8, 1:8] = True
    ring[3:6, 3:6] = False
    ring[4, 7:] = False
    assert np.array_equal(fill_holes(ring), ndimage.binary_fill_holes(ring))
    assert fill_holes(np.zeros((4, 4), bool)).sum() == 0 and fill_holes(np.ones((3, 3), bool)).all()


@pytest.mark.parametrize("radius", [1, 2, 3, 5])
def test_rows_pass_is_scipys_erosion_dilation_opening_closing(radius):
    from skimage import morphology

    se = morphology.disk(radius)  # the object detector's element (not clean_mask's disk)
    for shape in ((260, 333), (12, 9)):
        m = _blobs(shape, 0.4, seed=radius)
        m[0, :] = True  # the border: pixels past it are False for both
        ero, dil = rows_pass(m, se, erode=True), rows_pass(m, se, erode=False)
        assert np.array_equal(ero, ndimage.binary_erosion(m, structure=se))
        assert np.array_equal(dil, ndimage.binary_dilation(m, structure=se))
        opened = rows_pass(ero, se, erode=False)
        closed = rows_pass(dil, se, erode=True)
        assert np.array_equal(opened, ndimage.binary_opening(m, structure=se))
        assert np.array_equal(closed, ndimage.binary_closing(m, structure=se))
        assert np.array_equal(opening(m, se), opened) and np.array_equal(closing(m, se), closed)
    diamond = ndimage.generate_binary_structure(2, 1)  # rows 1, 3, 1 wide
    m = _blobs((80, 90), 0.3, seed=9)
    assert np.array_equal(rows_pass(m, diamond, erode=False), ndimage.binary_dilation(m))


@pytest.mark.parametrize("radius", [0.0, 1.0, 2.5, 6.0, 16.666666666666668, 20.0])
def test_within_distance_is_scipys_distance_transform(radius):
    for frac in (0.0005, 0.05, 0.3):
        m = _blobs((300, 280), frac, seed=4)
        want = ndimage.distance_transform_edt(~m) <= radius
        assert np.array_equal(within_distance(m, radius), want)
    none = np.zeros((30, 40), bool)
    assert np.array_equal(
        within_distance(none, radius), ndimage.distance_transform_edt(~none) <= radius
    )


def test_masks_shorter_than_the_element():
    """Fewer rows than the element's radius: every row's neighbour at some offsets lies past
    the border (these crashed before the offsets were checked)."""
    from skimage import morphology

    rng = np.random.default_rng(6)
    for rows in (1, 2, 3, 5):
        m = rng.random((rows, 50)) < 0.3
        for radius in (3, 5, 8):
            se = morphology.disk(radius)
            assert np.array_equal(
                rows_pass(m, se, erode=True), ndimage.binary_erosion(m, structure=se)
            )
            assert np.array_equal(
                rows_pass(m, se, erode=False), ndimage.binary_dilation(m, structure=se)
            )
        for radius in (2.5, 20.0, 100.0):
            want = ndimage.distance_transform_edt(~m) <= radius
            assert np.array_equal(within_distance(m, radius), want)
