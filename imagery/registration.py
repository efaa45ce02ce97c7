"""Measure the sub-pixel translation between two images of one grid.

Correlation (cross and phase) seeds a robust Lucas-Kanade refinement scored by a Tukey
misfit, so changed pixels do not pull the estimate.  The method, its sources and measured
precision: ``docs/design-alignment.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from satdelta.imagery.errors import AlignmentError, InvalidParameterError
from satdelta.imagery.parallel import run_jobs

__all__ = ["MIN_SIDE", "MIN_VALID", "estimate_shift", "measurable"]

log = logging.getLogger(__name__)

# estimate_shift needs at least this many valid pixels, in a sample at least this wide
MIN_VALID = 256
MIN_SIDE = 16


def measurable(ok: np.ndarray) -> bool:
    """True when a sample's validity mask allows :func:`estimate_shift` to measure."""
    return min(ok.shape) >= MIN_SIDE and int(ok.sum()) >= MIN_VALID


def _central_window(shape: tuple[int, int], size: int) -> tuple[slice, slice]:
    rows, cols = shape
    h, w = min(rows, size), min(cols, size)
    r0, c0 = (rows - h) // 2, (cols - w) // 2
    return slice(r0, r0 + h), slice(c0, c0 + w)


# Gaussian band-pass (smoothing sigma, high-pass sigma) in pixels for the two registration steps
_COARSE_BAND = (0.0, 4.0)
_REFINE_BAND = (1.0, 8.0)


# the residuals' robust scale (median, MAD) is taken from at most this many evenly spaced values
_STAT_SAMPLE = 1 << 16


def _every(v: np.ndarray) -> np.ndarray:
    """Evenly spaced subsample of a 1-D array (at most ``_STAT_SAMPLE`` values)."""
    return v[:: max(1, v.size // _STAT_SAMPLE)]


def _mad_scale(res: np.ndarray) -> float:
    """1.4826 x median absolute deviation (a robust standard deviation) of ``res``."""
    r = _every(res)
    return 1.4826 * float(np.median(np.abs(r - np.median(r)))) + 1e-12


def _registration_image(data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean of robustly standardised bands (median, MAD), float32; invalid pixels set to 0.

    Median and MAD keep the two dates' contrast comparable even when a large part changed.
    They are exact here (not subsampled): they set each band's weight in the mean, and the
    refined shift moves by a few hundredths of a pixel with them.
    """
    img = np.zeros(valid.shape, dtype="float32")
    for band in data:
        v = band[valid].astype("float32")
        med = float(np.median(v))
        mad = 1.4826 * float(np.median(np.abs(v - med)))
        if mad <= 0:
            mad = float(v.std())
        if mad > 0:
            img[valid] += (v - np.float32(med)) / np.float32(mad)
    img /= max(len(data), 1)
    img[~valid] = 0.0
    return img


def _band_pass(img: np.ndarray, *, smooth: float, highpass: float) -> np.ndarray:
    """Gaussian band-pass: keeps texture, drops slow radiometric differences and noise
    (scipy's ``gaussian_filter``; the wide high-pass kernel through the FFT)."""
    from satdelta.imagery.gaussian import gaussian

    out = img - gaussian(img, highpass) if highpass else img
    return gaussian(out, smooth) if smooth else out


def _misfits(
    ref: np.ndarray,
    mov: np.ndarray,
    ok: np.ndarray,
    shifts: Sequence[tuple[float, float]],
    coef: np.ndarray,
) -> list[float]:
    """Tukey misfit of ``mov`` moved back by each shift against ``ref`` (one common scale).

    ``coef`` are ``mov``'s cubic B-spline coefficients (:func:`_spline_coefficients`).
    """
    from scipy import ndimage

    margin = int(math.ceil(max(max(abs(v) for v in s) for s in shifts))) + 6
    use = ndimage.binary_erosion(ok, iterations=margin)
    if use.sum() < 256:
        use = ok
    r_use = ref[use]
    scale = _mad_scale(mov[use] - r_use)

    def misfit(shift: tuple[float, float]) -> float:
        dy, dx = shift
        # a zero shift is the image itself (the spline interpolates its samples)
        w_img = mov if dy == 0 and dx == 0 else _spline_shift(coef, (-dy, -dx))
        return _tukey_cost(w_img[use] - r_use, scale)

    return run_jobs(misfit, shifts)  # one shift per thread, results in the order of shifts


def _spline_coefficients(img: np.ndarray) -> np.ndarray:
    """Cubic B-spline coefficients of an image (float32), for :func:`_spline_shift`."""
    from scipy import ndimage

    return ndimage.spline_filter(img, order=3, output=np.float32)


def _cubic_bspline(x: float) -> float:
    """The centred cubic B-spline beta3(x)."""
    x = abs(x)
    if x < 1:
        return 2 / 3 - x * x + x**3 / 2
    return (2 - x) ** 3 / 6 if x < 2 else 0.0


def _spline_shift(coef: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Move a cubic B-spline image by ``shift`` (dy, dx): ``out[x] = f(x - shift)``.

    ``coef`` are the image's B-spline coefficients (``scipy.ndimage.spline_filter``, order 3).
    A translation is separable: along each axis every output sample is four coefficients
    weighted by beta3 at the fractional offset (Unser 1999, "Splines: a perfect fit for signal
    and image processing", IEEE Signal Process. Mag. 16(6):22), coefficients beyond the edge
    repeating the edge one.  Equals ``ndimage.shift(coef, shift, order=3, prefilter=False,
    mode="nearest")`` to float32 rounding, several times faster.
    """
    out = coef
    for axis, d in enumerate(shift):
        t = -float(d)
        n = math.floor(t)
        frac = t - n
        pad = abs(n) + 2
        widths = [(0, 0)] * out.ndim
        widths[axis] = (pad, pad)
        padded = np.pad(out, widths, mode="edge")
        size = out.shape[axis]
        acc: np.ndarray | None = None
        for m in (-1, 0, 1, 2):
            w = np.float32(_cubic_bspline(frac - m))
            if w == 0:
                continue
            index = [slice(None)] * out.ndim
            index[axis] = slice(pad + n + m, pad + n + m + size)
            term = padded[tuple(index)] * w
            if acc is None:
                acc = term
            else:
                acc += term
        assert acc is not None
        out = acc
    return out


def _tukey_cost(res: np.ndarray, scale: float) -> float:
    """Mean Tukey-biweight loss (c = 4.685 ``scale``), normalised to 1 for outliers."""
    u = np.abs(res / np.float32(4.685 * scale))
    # outliers (and NaN) cost 1; clipping before squaring keeps huge residuals finite
    u = np.where(u < 1, u, np.float32(1))
    u *= u
    return float((1 - (1 - u) ** 3).mean())


def _correlation_peak(fa: np.ndarray, fb: np.ndarray, *, phase: bool) -> tuple[float, float]:
    """Shift (dy, dx) of b relative to a at the peak of their cross- or phase correlation.

    ``fa``, ``fb`` are the images' 2-D FFTs.  Phase correlation (Kuglin & Hines 1975, "The
    phase correlation image alignment method", Proc. IEEE Int. Conf. Cybernetics and Society)
    whitens the cross-power spectrum first.  The integer peak is refined by a parabola through
    it and its two neighbours on each axis (wrapping around), to about 0.1 px.
    """
    from scipy import fft

    cross = fb * np.conj(fa)
    if phase:
        mag = np.abs(cross)
        cross = cross / np.maximum(mag, np.float32(1e-12 * float(mag.max()) + 1e-30))
    cc = fft.ifft2(cross).real
    rows, cols = cc.shape
    r, c = np.unravel_index(int(np.argmax(cc)), cc.shape)
    out = []
    for pos, n, lo, hi in (
        (r, rows, cc[(r - 1) % rows, c], cc[(r + 1) % rows, c]),
        (c, cols, cc[r, (c - 1) % cols], cc[r, (c + 1) % cols]),
    ):
        mid = cc[r, c]
        curv = lo - 2 * mid + hi
        frac = 0.5 * (lo - hi) / curv if curv < 0 else 0.0
        v = pos + max(-0.5, min(0.5, float(frac)))
        out.append(v - n if v > n // 2 else v)
    return (float(out[0]) + 0.0, float(out[1]) + 0.0)


def _refine_shift(
    ref: np.ndarray,
    mov: np.ndarray,
    ok: np.ndarray,
    start: tuple[float, float],
    coef: np.ndarray,
    *,
    max_iter: int = 20,
    tol: float = 2e-3,
) -> tuple[tuple[float, float], int]:
    """Robust Lucas-Kanade refinement of a translation (Gauss-Newton with IRLS weights).

    Minimises sum_w (M(x + s) - R(x))^2 over s with Tukey-biweight weights (Holland & Welsch
    1977; scale from the MAD of the residuals), so changed pixels stop pulling the estimate;
    the Jacobian is the mean of both images' gradients (efficient second-order minimisation,
    Benhimane & Malis 2004), and each step is tried at 1, 2 and 4 times its length.
    ``coef`` are ``mov``'s cubic B-spline coefficients (:func:`_spline_coefficients`).
    """
    from scipy import ndimage

    use = ndimage.binary_erosion(ok, iterations=6)
    if use.sum() < 256:
        return start, 0
    gry, grx = (g[use] for g in np.gradient(ref))
    r_use = ref[use]

    def warp(s: np.ndarray) -> np.ndarray:
        # W(x) = M(x + s): a spline shift of the prefiltered coefficients
        return _spline_shift(coef, (-s[0], -s[1]))

    s = np.array(start, dtype="float64")
    w_img = warp(s)
    done = 0
    for it in range(1, max_iter + 1):
        done = it
        gy, gx = np.gradient(w_img)
        jy = (gy[use] + gry) * np.float32(0.5)
        jx = (gx[use] + grx) * np.float32(0.5)
        res = w_img[use] - r_use
        scale = _mad_scale(res)
        u2 = np.square(res / np.float32(4.685 * scale))
        wts = np.where(u2 < 1, np.square(1 - u2), np.float32(0))
        wy, wx = wts * jy, wts * jx
        # 2 x 2 normal equations, accumulated in float64
        hyy, hyx, hxx = (float(np.dot(a, b)) for a, b in ((wy, jy), (wy, jx), (wx, jx)))
        hess = np.array([[hyy, hyx], [hyx, hxx]])
        if abs(np.linalg.det(hess)) < 1e-12:
            break
        grad = np.array([float(np.dot(wy, res)), float(np.dot(wx, res))])
        step = -np.linalg.solve(hess, grad)
        best = None
        for k in (1.0, 2.0, 4.0):
            cand = warp(s + k * step)
            cost = _tukey_cost(cand[use] - r_use, scale)
            if best is not None and cost >= best[0]:
                break
            best = (cost, k, cand)
            if np.abs(k * step).max() < tol:
                break  # converged: a longer step cannot matter
        assert best is not None
        s = s + best[1] * step
        w_img = best[2]
        if np.abs(best[1] * step).max() < tol:
            break
    return (float(s[0]), float(s[1])), done


def estimate_shift(
    reference: np.ndarray,
    moving: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    upsample_factor: int = 100,
    sample_size: int | None = 512,
    refine: bool = True,
    max_shift_px: float | None = None,
) -> tuple[float, float]:
    """Measure the translation of ``moving`` relative to ``reference`` to sub-pixel precision.

    Two steps on a Gaussian band-pass of the mean of the standardised bands:

    1. cross-correlation and phase correlation (Kuglin & Hines 1975) with a Hann window, from
       one pair of FFTs; each peak is located by a parabola through the integer peak and its
       neighbours (about 0.1 px, enough to seed step 2), or, without step 2, by upsampled DFT
       search (Guizar-Sicairos, Thurman & Fienup 2008, via
       ``skimage.registration.phase_cross_correlation``); these two peaks and "no shift" are
       scored by a robust (Tukey) misfit and the best seeds step 2;
    2. robust Lucas-Kanade refinement (Lucas & Kanade 1981; Tukey-weighted Gauss-Newton), which
       ignores changed pixels and converges to about 0.01 px.

    Parameters
    ----------
    reference, moving : (B, M, N) or (M, N) ndarray
        Images on one grid.  Multi-band images are reduced to the mean of their standardised
        bands.
    valid : (M, N) ndarray of bool, optional
        True where both images have data; other pixels are not used.
    upsample_factor : int, default 100
        Precision of the phase-correlation step is 1/upsample_factor px when ``refine`` is
        False.  With refinement (whose precision is about 0.01 px) the step just seeds it: each
        peak is then located to about 0.1 px by a parabola through the integer peak and its
        neighbours, and ``upsample_factor`` is not used.
    sample_size : int or None, default 512
        Only the central ``sample_size`` x ``sample_size`` pixels are used (all when None), so
        the cost is bounded for any scene size.
    refine : bool, default True
        Run the robust refinement (step 2).
    max_shift_px : float, optional
        The largest shift expected.  A correlation peak beyond it is believed only when it fits
        clearly better (robust misfit below 80 %) than the best candidate within it.

    Returns
    -------
    (dy, dx) : tuple of float
        The content of ``moving`` sits at ``reference``'s content moved by (dy, dx) pixels:
        ``moving[r, c] ~ reference[r - dy, c - dx]``.

    Raises
    ------
    AlignmentError
        When fewer than 16 x 16 valid pixels are available.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import ndimage
    >>> ref = ndimage.gaussian_filter(np.random.default_rng(0).random((128, 128)), 2)
    >>> mov = np.fft.ifftn(ndimage.fourier_shift(np.fft.fftn(ref), (0.4, -2.3))).real
    >>> tuple(round(s, 2) for s in estimate_shift(ref, mov))
    (0.4, -2.3)
    """
    from scipy import fft

    ref = np.asarray(reference)
    mov = np.asarray(moving)
    if ref.ndim == 2:
        ref, mov = ref[np.newaxis], mov[np.newaxis]
    if ref.shape != mov.shape:
        raise InvalidParameterError(
            f"reference and moving must have one shape; got {ref.shape} and {mov.shape}."
        )
    ok = np.isfinite(ref).all(0) & np.isfinite(mov).all(0)
    if valid is not None:
        ok &= np.asarray(valid, bool)
    if sample_size is not None:
        sl = _central_window(ok.shape, sample_size)
        ref, mov, ok = ref[(slice(None), *sl)], mov[(slice(None), *sl)], ok[sl]
    if not measurable(ok):
        raise AlignmentError(
            f"too few valid pixels to measure the shift: {int(ok.sum())} in a {ok.shape} sample, "
            f"expected at least {MIN_VALID} in a sample at least {MIN_SIDE} x {MIN_SIDE} px. "
            "Check the scenes' nodata and overlap."
        )
    # separable Hann window (float32) against the FFT's wrap-around edges
    win = np.outer(np.hanning(ok.shape[0]), np.hanning(ok.shape[1])).astype("float32")

    def prepare(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One image's FFT for the correlations and its band-pass for the refinement."""
        x = _registration_image(data, ok)
        coarse = _band_pass(x, smooth=_COARSE_BAND[0], highpass=_COARSE_BAND[1])
        return (
            fft.fft2(np.where(ok, coarse, 0) * win),
            _band_pass(x, smooth=_REFINE_BAND[0], highpass=_REFINE_BAND[1]),
        )

    # the two images are prepared in two threads (run_jobs); both correlations share the
    # pair of FFTs
    (fa, ra), (fb, rb) = run_jobs(prepare, (ref, mov))
    # candidates: cross-correlation, phase correlation (each robust to different content) and
    # no shift; the one with the lowest robust (Tukey) misfit seeds the refinement
    candidates = [(0.0, 0.0), *_correlation_shifts(fa, fb, refine, upsample_factor)]
    coef = _spline_coefficients(rb)  # shared by the misfits and the refinement
    costs = _misfits(ra, rb, ok, candidates, coef)
    log.debug("shift candidates %s, robust misfits %s", candidates, costs)
    coarse = _best_candidate(candidates, costs, max_shift_px)
    if not refine:
        return coarse
    fine, iterations = _refine_shift(ra, rb, ok, coarse, coef)
    log.debug("shift: phase correlation %s, refined %s in %d iterations", coarse, fine, iterations)
    if max(abs(fine[0] - coarse[0]), abs(fine[1] - coarse[1])) > 2.0:
        log.info(
            "shift refinement moved %.2f px from the phase-correlation estimate; "
            "keeping the phase-correlation estimate",
            max(abs(fine[0] - coarse[0]), abs(fine[1] - coarse[1])),
        )
        return coarse
    return (round(fine[0], 4) + 0.0, round(fine[1], 4) + 0.0)


def _correlation_shifts(
    fa: np.ndarray, fb: np.ndarray, refine: bool, upsample_factor: int
) -> list[tuple[float, float]]:
    """The cross- and the phase-correlation shift of b relative to a (FFTs ``fa``, ``fb``)."""
    shifts = []
    for norm in (None, "phase"):
        if refine:
            # the peaks only seed the refinement (which converges from within about a
            # pixel): the integer peak and a parabola through its neighbours are enough
            shifts.append(_correlation_peak(fa, fb, phase=norm == "phase"))
            continue
        from skimage.registration import phase_cross_correlation

        shift, _, _ = phase_cross_correlation(
            fa, fb, upsample_factor=upsample_factor, normalization=norm, space="fourier"
        )
        # skimage returns the shift that registers moving onto reference: the opposite sign
        shifts.append((float(-shift[0]) + 0.0, float(-shift[1]) + 0.0))
    return shifts


def _best_candidate(
    candidates: list[tuple[float, float]], costs: list[float], max_shift_px: float | None
) -> tuple[float, float]:
    """The candidate shift of lowest misfit; one beyond ``max_shift_px`` only when clearly."""
    best = int(np.argmin(costs))
    if max_shift_px is not None:
        # a candidate beyond the limit wins only when it fits clearly better (repetitive
        # structure such as rows of houses or fields gives false peaks far away)
        inside = [i for i, c in enumerate(candidates) if max(map(abs, c)) <= max_shift_px]
        best_inside = min(inside, key=lambda i: costs[i])
        if best not in inside and costs[best] > 0.8 * costs[best_inside]:
            best = best_inside
    return candidates[best]
