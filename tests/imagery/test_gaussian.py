"""Gaussian smoothing through the FFT: scipy's gaussian_filter values, wide kernels only."""

from __future__ import annotations

import numpy as np
import pytest
from satdelta.imagery import gaussian as gaussian_module
from satdelta.imagery.gaussian import FFT_FROM_SIGMA_PX, STRIP_LINES, gaussian, gaussian_kernel
from scipy import ndimage


def _image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Texture like a scene's: smooth structure, noise, an offset (float32)."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random(shape) * 3000, 2)
    return (smooth + rng.normal(0, 50, shape) + 200).astype(np.float32)


def _same_as_scipy(got: np.ndarray, want: np.ndarray) -> None:
    """float32 values equal, but for a rare last-place rounding of a sum."""
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_max_ulp(want, got, maxulp=1)
    assert np.count_nonzero(got != want) <= max(1, want.size // 100_000)


@pytest.mark.parametrize(
    "shape",
    [(1064, 1064), (300, 517), (2 * STRIP_LINES + 7, 90), (40, 1000), (25, 25)],
)
@pytest.mark.parametrize("sigma", [FFT_FROM_SIGMA_PX, 10.0, 12.5, 20.0])
def test_wide_kernels_through_the_fft_give_scipys_values(monkeypatch, shape, sigma):
    x = _image(shape)
    want = ndimage.gaussian_filter(x, sigma)
    radius = int(4 * sigma + 0.5)
    if min(shape) >= radius:  # the FFT is used: scipy must not be called

        def refuse(*args, **kwargs):
            raise AssertionError("scipy's direct filter called for a wide kernel")

        monkeypatch.setattr(gaussian_module.ndimage, "gaussian_filter", refuse)
    got = gaussian(x, sigma)
    monkeypatch.undo()
    _same_as_scipy(got, want)


def test_lines_of_very_different_scales_within_the_fft_rounding():
    """Zeros beside data and a faint background beside a bright block: the FFT's error is
    about 1e-16 of a line's largest values (the module's note), so small values may be
    several units in the last place from scipy's, never more than that bound."""
    zeros = np.zeros((100, 200), np.float32)
    zeros[:, :40] = 1000.0
    faint = np.full((120, 160), 1e-4, np.float32)
    faint[:, :40] += 1e6
    for x in (zeros, faint, zeros.T.copy()):
        for sigma in (6.0, 12.5):
            want = ndimage.gaussian_filter(x, sigma)
            got = gaussian(x, sigma)
            assert got.dtype == np.float32 and got.shape == x.shape
            bound = 1e-12 * float(np.abs(x).max())
            assert float(np.abs(got.astype(np.float64) - want).max()) <= bound
            far = want == 0  # scipy's exact zeros: tiny numbers here, of either sign
            assert float(np.abs(got[far]).max(initial=0.0)) <= bound


def test_reflection_at_both_ends_of_both_axes():
    """A ramp and a step at the edges: what the border rule gives shows there."""
    x = np.zeros((120, 150), np.float32)
    x[:, :5] = 1000.0
    x[-3:, :] += 500.0
    x += np.arange(150, dtype=np.float32)
    _same_as_scipy(gaussian(x, 9.0), ndimage.gaussian_filter(x, 9.0))


def test_narrow_kernels_and_other_inputs_go_to_scipy_as_they_are():
    x = _image((200, 220))
    for sigma in (0.7, 2.0, FFT_FROM_SIGMA_PX - 0.5):
        assert np.array_equal(gaussian(x, sigma), ndimage.gaussian_filter(x, sigma))
    with_nan = x.copy()
    with_nan[50, 60] = np.nan  # through the FFT the NaN would reach the whole line
    got = gaussian(with_nan, 10.0)
    assert np.array_equal(got, ndimage.gaussian_filter(with_nan, 10.0), equal_nan=True)
    assert np.isfinite(got[0, 0]) and np.isfinite(got[50, 0])
    wide = x.astype(np.float64)  # float64 stays scipy's, in float64
    assert np.array_equal(gaussian(wide, 10.0), ndimage.gaussian_filter(wide, 10.0))
    assert gaussian(wide, 10.0).dtype == np.float64
    small = _image((30, 30))  # sides under the radius (80): scipy's repeated reflection
    assert np.array_equal(gaussian(small, 20.0), ndimage.gaussian_filter(small, 20.0))
    assert gaussian(x, 0) is x and gaussian(x, float("nan")) is x


def test_kernel_is_scipys():
    for sigma in (1.0, 6.0, 12.5):
        impulse = np.zeros(201)
        impulse[100] = 1.0
        response = ndimage.gaussian_filter1d(impulse, sigma)
        w = gaussian_kernel(sigma)
        r = w.size // 2
        assert np.allclose(response[100 - r : 101 + r], w, rtol=0, atol=1e-15)
        assert np.count_nonzero(response) == w.size
