"""Gaussian smoothing of 2-D float32 images as scipy smooths them, wide kernels through the FFT.

``scipy.ndimage.gaussian_filter`` correlates each line with the kernel directly, summing in
float64: its cost grows with the kernel's width, 2 x 4 sigma + 1 taps an axis. The cues
score smooths with sigmas of 6 m at every pixel size, so on 0.5 m imagery (LEVIR, Pléiades
airport extracts, commercial scenes) with 12-pixel sigmas, 97 taps an axis, and at 0.3 m
with 20-pixel ones. :func:`gaussian` computes the same correlation through the real FFT
(``scipy.fft``) once the kernel is wide (:data:`FFT_FROM_SIGMA_PX`), in float64 as scipy
does, axis 0 first, each pass rounded to float32 as scipy rounds it. The two float64 sums
differ only by rounding, but the FFT's rounding error is about 1e-16 of the *largest*
values of a line, not of each value: where a line's values are of one scale (the cues'
standardised bands, shifted to be positive) the float32 results are scipy's, or one unit in
the last place away where a sum falls on a rounding boundary; where a line holds values of
very different scales, the small ones can be several units away, and scipy's exact zeros
(a stretch of zeros wider than the kernel) come out as numbers of about ±1e-16 of the line's
scale, negative ones too. For the callers here that is far below what matters: each cue map
is divided by its threshold and floored at 1e-3 before its logarithm is taken, and the
shift's high-pass is correlated. Every output compared came out byte-identical (the 8192²
benchmark pair, NAIP 4096², four Pléiades airport pairs; `benchmarks/quality.py` unchanged).
Measured on this machine (1064², best of 3): sigma 10: 61 ms directly, 27-30 ms through the
FFT; sigma 12: 74 against 28-31 ms; sigma 20: 180-200 against 34-50 ms. Lines are taken
in strips (:data:`STRIP_LINES`), so the float64 and complex temporaries stay a few MB
whatever the image's size.

The border is scipy's default (``mode="reflect"``: d c b a | a b c d | d c b a) and the
kernel its own (``truncate=4.0``: radius ``int(4 sigma + 0.5)``, weights
``exp(-x² / 2 sigma²)`` normalised to sum 1).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["FFT_FROM_SIGMA_PX", "STRIP_LINES", "gaussian", "gaussian_kernel"]

#: From this sigma (pixels) the FFT is used. Best of 5 here, direct against FFT: 512², sigma 4
#: 9.3 / 7.8 ms, sigma 6 12.9 / 7.7, sigma 8 16.7 / 7.6; 1064², sigma 4 37 / 30 ms, sigma 6
#: 38 / 25, sigma 8 63 / 29. Under 4 pixels the kernel is short and the direct sums win.
FFT_FROM_SIGMA_PX = 6.0
#: Lines filtered at a time through the FFT: a strip of 1,000-pixel lines is about 8 MB of
#: float64 and as much of complex spectrum.
STRIP_LINES = 128
_TRUNCATE = 4.0  # scipy's default


def _radius(sigma_px: float) -> int:
    """scipy's kernel radius for ``sigma_px``: ``int(truncate * sigma + 0.5)``."""
    return int(_TRUNCATE * float(sigma_px) + 0.5)


def gaussian_kernel(sigma_px: float) -> NDArray[np.float64]:
    """The weights ``scipy.ndimage.gaussian_filter`` uses for ``sigma_px`` (truncated at 4
    sigma), centre in the middle.

    Examples
    --------
    >>> w = gaussian_kernel(1.0)
    >>> w.size, round(float(w.sum()), 12), bool(w[4] == w.max())
    (9, 1.0, True)
    """
    sigma = float(sigma_px)
    radius = _radius(sigma)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 / (sigma * sigma) * x * x)
    return w / w.sum()


def gaussian(x: NDArray, sigma_px: float) -> NDArray:
    """``scipy.ndimage.gaussian_filter(x, sigma_px)``; through the FFT, within about 1e-16
    of each line's largest values of scipy's results (see the module's note).

    The FFT is used for 2-D float32 images of finite values whose sides are at least the
    kernel's radius, from :data:`FFT_FROM_SIGMA_PX`; anything else goes to scipy as it is
    (a NaN would spread along its whole line through the FFT).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = rng.random((64, 80)).astype(np.float32)
    >>> bool(np.array_equal(gaussian(img, 9.0), ndimage.gaussian_filter(img, 9.0)))
    True
    """
    if not sigma_px > 0:  # 0, negative or NaN: nothing to smooth (as cues._gauss did)
        return x
    radius = _radius(sigma_px)
    if (
        sigma_px < FFT_FROM_SIGMA_PX
        or x.ndim != 2
        or x.dtype != np.float32
        or min(x.shape) < radius
        or not (np.isfinite(x.min()) and np.isfinite(x.max()))  # NaN or inf: no temporary
    ):
        return ndimage.gaussian_filter(x, sigma_px)
    weights = gaussian_kernel(sigma_px)
    # axis 0, then axis 1, each rounded to float32 in ``out``: scipy's order of passes, and
    # like scipy one array of the image's size (the second pass reads each strip of rows
    # before writing it back)
    out = np.empty(x.shape, np.float32)
    _lines(x.T, weights, out.T)
    _lines(out, weights, out)
    return out


def _lines(src: NDArray[np.float32], weights: NDArray[np.float64], dst: NDArray) -> None:
    """Correlate each line of ``src`` (its last axis; any strides) with ``weights`` (odd
    length, symmetric), reflecting at the line's ends, into ``dst`` (same shape, any
    strides; it may be ``src``: a strip is read whole before it is written)."""
    n_lines, n = src.shape
    r = weights.size // 2
    size = scipy.fft.next_fast_len(n + 2 * r, real=True)
    spectrum = scipy.fft.rfft(weights, size)  # symmetric: correlation = convolution
    padded = np.empty((min(STRIP_LINES, n_lines), size), np.float64)
    for l0 in range(0, n_lines, STRIP_LINES):
        l1 = min(l0 + STRIP_LINES, n_lines)
        p, line = padded[: l1 - l0], src[l0:l1]
        p[:, r : r + n] = line
        if r:  # reflect: d c b a | a b c d | d c b a
            p[:, :r] = line[:, :r][:, ::-1]
            p[:, r + n : n + 2 * r] = line[:, n - r :][:, ::-1]
        p[:, n + 2 * r :] = 0.0
        full = scipy.fft.irfft(scipy.fft.rfft(p, axis=1) * spectrum, size, axis=1)
        # output k is the sum over taps j of w[j] x[k + j - r]: in the circular convolution
        # of the padded line it sits at k + 2r, past the wrap-around of the first 2r
        dst[l0:l1] = full[:, 2 * r : 2 * r + n]
