"""Radiometric normalisation of the *after* image to the *before* image, and IR-MAD.

Everything here is split into a *fit* on global statistics (computed on the
valid pixels, or a random sample of them, so a block runner can fit once) and
an *apply* that is a per-pixel function and needs no halo.

* :func:`fit_irmad` - the iteratively re-weighted multivariate alteration
  detection (IR-MAD) transform (Nielsen 2007, "The regularized iteratively
  reweighted MAD method for change detection in multi- and hyperspectral
  data", IEEE TIP 16(2)). Its chi-square statistic is a change score and its
  weights are no-change probabilities.
* :func:`fit_linear_normalisation` - per-band gain/offset mapping after onto
  before, fitted by orthogonal regression on invariant pixels picked by
  IR-MAD no-change probability (Canty & Nielsen 2008, "Automatic radiometric
  normalization of multitemporal satellite imagery with the iteratively
  re-weighted MAD transformation", Remote Sens. Environ. 112(3)).
* :func:`fit_histogram_matching` - per-band quantile mapping after onto before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.errors import BandMismatchError, InvalidParameterError
from satdelta.imagery.interpolation import interp_increasing
from satdelta.imagery.local_gain import LocalGain, fit_local_gain
from satdelta.imagery.parallel import map_row_blocks, run_jobs
from scipy import linalg, special

__all__ = [
    "NORMALISE_METHODS",
    "HistogramMatching",
    "IRMADFit",
    "LinearNormalisation",
    "NormaliseMethod",
    "fit_histogram_matching",
    "fit_irmad",
    "fit_linear_normalisation",
    "fit_normalisation",
    "finite_pixels",
    "fit_windows",
    "orthogonal_regression",
    "sample_pixels",
    "with_halo",
]

log = logging.getLogger(__name__)

NormaliseMethod = Literal["auto", "none", "histogram", "irmad", "local"]
NORMALISE_METHODS: tuple[str, ...] = get_args(NormaliseMethod)

#: Maximum number of pixels used to fit global statistics.
MAX_FIT_PIXELS = 50_000
#: Most pixels of the patch set on which spatial statistics are fitted (:func:`fit_windows`).
MAX_FIT_PATCH_PIXELS = 1 << 20
#: Side (pixels) of one fitting patch.
FIT_PATCH_PX = 256

Window = tuple[slice, slice]


def finite_pixels(before: NDArray, after: NDArray) -> NDArray[np.bool_]:
    """``(row, col)`` mask, True where every band of both ``(band, row, col)`` arrays is finite.

    Computed by row blocks in threads (:func:`~satdelta.imagery.parallel.map_row_blocks`).

    Examples
    --------
    >>> b = np.ones((2, 2, 3)); a = b.copy(); a[1, 0, 2] = np.nan
    >>> finite_pixels(b, a).tolist()
    [[True, True, False], [True, True, True]]
    """
    band = slice(None)

    def block(rows: slice) -> list[NDArray[np.bool_]]:
        return [
            np.isfinite(before[band, rows]).all(axis=0) & np.isfinite(after[band, rows]).all(axis=0)
        ]

    return map_row_blocks(block, before.shape[1], 0)[0]


def _check_pair(before: NDArray, after: NDArray, valid: NDArray | None) -> NDArray[np.bool_]:
    if before.ndim != 3 or after.ndim != 3:
        raise BandMismatchError(
            f"before and after must be (band, row, col) arrays, got shapes {before.shape} "
            f"and {after.shape}; add a band axis with arr[None] for single-band images."
        )
    if before.shape != after.shape:
        raise BandMismatchError(
            f"before and after must have the same (band, row, col) shape, got {before.shape} "
            f"and {after.shape}; coregister the scenes and select the same bands first."
        )
    finite = finite_pixels(before, after)
    if valid is None:
        return finite
    valid = np.asarray(valid)
    if valid.shape != before.shape[1:]:
        raise InvalidParameterError(
            f"valid must be a (row, col) mask of shape {before.shape[1:]}, got {valid.shape}."
        )
    return valid.astype(bool) & finite


def sample_pixels(
    before: NDArray,
    after: NDArray,
    valid: NDArray[np.bool_],
    *,
    max_pixels: int = MAX_FIT_PIXELS,
    seed: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return ``(band, n)`` float64 samples of the valid pixels of both dates.

    At most ``max_pixels`` pixels, drawn without replacement with a fixed seed
    so fits are reproducible.
    """
    idx = np.flatnonzero(valid.ravel())
    if idx.size > max_pixels:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_pixels, replace=False))
    nb = before.shape[0]
    x = before.reshape(nb, -1)[:, idx].astype(np.float64)
    y = after.reshape(nb, -1)[:, idx].astype(np.float64)
    return x, y


def fit_windows(
    shape: tuple[int, int],
    *,
    valid: NDArray[np.bool_] | None = None,
    max_pixels: int | None = None,
    patch_px: int | None = None,
) -> list[Window]:
    """A fixed, deterministic set of square patches spread over a grid, for spatial fits.

    Statistics that need whole neighbourhoods (a smoothed score, a simulated no-change
    pair, edge strengths) cannot be fitted on scattered pixels. They are fitted on
    ``max_pixels // patch_px**2`` patches of ``patch_px`` x ``patch_px`` pixels, one centred
    in each cell of a grid laid over the scene (a systematic, stratified sample: Cochran
    1977, *Sampling Techniques*, ch. 8), so cost and memory stay bounded however large
    the scene. A scene of at most ``max_pixels`` pixels is one window: the whole array.

    Parameters
    ----------
    shape : (rows, cols)
        Size of the scene.
    valid : (rows, cols) bool ndarray, optional
        True = pixel has data. Each patch is then placed where its cell has the most data,
        and a scene where the grid finds less than half the data it could hold (mostly
        no-data) is sampled by the tiles with the most valid pixels instead.
    max_pixels : int, optional
        Scenes up to this size are used whole; larger ones are sampled with this many
        pixels at most (default :data:`MAX_FIT_PATCH_PIXELS`).
    patch_px : int, optional
        Side of one patch (default :data:`FIT_PATCH_PX`).

    Returns
    -------
    list of (row slice, col slice)
        Non-overlapping windows, in row-major order.

    Examples
    --------
    >>> fit_windows((100, 80))
    [(slice(0, 100, None), slice(0, 80, None))]
    >>> w = fit_windows((2048, 2048), max_pixels=4 * 256**2)
    >>> len(w), [(r.start, c.start) for r, c in w]
    (4, [(384, 384), (384, 1408), (1408, 384), (1408, 1408)])
    """
    max_pixels = MAX_FIT_PATCH_PIXELS if max_pixels is None else int(max_pixels)
    patch_px = FIT_PATCH_PX if patch_px is None else int(patch_px)
    if max_pixels < 1 or patch_px < 1:
        raise InvalidParameterError(
            f"max_pixels and patch_px must be >= 1, got {max_pixels} and {patch_px}."
        )
    rows, cols = int(shape[0]), int(shape[1])
    if rows * cols <= max_pixels:
        return [(slice(0, rows), slice(0, cols))]
    ph, pw = min(patch_px, rows), min(patch_px, cols)
    k = max(1, max_pixels // (ph * pw))
    # grid of about k cells with the scene's aspect ratio
    nr = int(min(k, max(1, round(np.sqrt(k * rows / cols)))))
    nc = max(1, k // nr)
    nr, nc = min(nr, max(1, rows // ph)), min(nc, max(1, cols // pw))
    # one patch per cell: at its centre, or - with a valid mask - at whichever of the centre and
    # the four quarter-centres of the cell holds the most valid pixels (ties: the centre)
    out: list[Window] = []
    for i in range(nr):
        top, bottom = i * rows // nr, (i + 1) * rows // nr
        for j in range(nc):
            left, right = j * cols // nc, (j + 1) * cols // nc
            best: Window | None = None
            best_n = -1
            cy, cx = (top + bottom) / 2, (left + right) / 2
            dy, dx = (bottom - top) / 4, (right - left) / 4
            for oy, ox in ((0, 0), (-1, -1), (-1, 1), (1, -1), (1, 1)):
                r0 = int(np.clip(round(cy + oy * dy - ph / 2), top, max(top, bottom - ph)))
                c0 = int(np.clip(round(cx + ox * dx - pw / 2), left, max(left, right - pw)))
                r0, c0 = min(r0, rows - ph), min(c0, cols - pw)
                win = (slice(r0, r0 + ph), slice(c0, c0 + pw))
                n = 0 if valid is None else int(np.count_nonzero(valid[win]))
                if n > best_n:
                    best, best_n = win, n
                if valid is None:
                    break
            assert best is not None
            out.append(best)
    if valid is None:
        return out
    # a scene mostly without data (a rotated footprint, a thin strip): when the grid holds
    # less than half of what it could, take the patch-sized tiles with the most valid pixels
    # (ties in a seeded random order, so equally good tiles are spread over the scene)
    got = sum(int(np.count_nonzero(valid[w])) for w in out)
    want = min(int(np.count_nonzero(valid)), len(out) * ph * pw)
    if got >= 0.5 * want:
        return out
    tiles = [
        (slice(r0, min(r0 + ph, rows)), slice(c0, min(c0 + pw, cols)))
        for r0 in range(0, rows, ph)
        for c0 in range(0, cols, pw)
    ]
    counts = np.array([np.count_nonzero(valid[w]) for w in tiles])
    tie = np.random.default_rng(0).permutation(len(tiles))
    order = np.lexsort((tie, -counts))[: len(out)]
    return [tiles[t] for t in sorted(int(t) for t in order) if counts[t] > 0]


def with_halo(window: Window, halo_px: int, shape: tuple[int, int]) -> tuple[Window, Window]:
    """A window grown by ``halo_px`` on each side (clipped to ``shape``), and the inner part.

    Returns ``(outer, inner)``: ``outer`` indexes the scene, ``inner`` indexes an array cut
    with ``outer`` and gives back ``window``.

    Examples
    --------
    >>> with_halo((slice(10, 20), slice(0, 5)), 3, (30, 30))
    ((slice(7, 23, None), slice(0, 8, None)), (slice(3, 13, None), slice(0, 5, None)))
    """
    outer, inner = [], []
    for sl, n in zip(window, shape, strict=True):
        a, b = max(sl.start - halo_px, 0), min(sl.stop + halo_px, n)
        outer.append(slice(a, b))
        inner.append(slice(sl.start - a, sl.stop - a))
    return (outer[0], outer[1]), (inner[0], inner[1])


# --------------------------------------------------------------------------- IR-MAD


@dataclass(frozen=True)
class IRMADFit:
    """A fitted IR-MAD transform.

    Attributes
    ----------
    a, b : (band, band) ndarray
        Canonical vectors (columns) for before and after, ordered by
        increasing canonical correlation (MAD variate 1 is the most changed).
    mean_before, mean_after : (band,) ndarray
        Weighted means subtracted before projecting.
    sigma : (band,) ndarray
        Standard deviation of each MAD variate on no-change pixels.
    rho : (band,) ndarray
        Canonical correlations.
    iterations : int
        Re-weighting iterations run.
    """

    a: NDArray[np.float64]
    b: NDArray[np.float64]
    mean_before: NDArray[np.float64]
    mean_after: NDArray[np.float64]
    sigma: NDArray[np.float64]
    rho: NDArray[np.float64]
    iterations: int

    def __post_init__(self) -> None:
        n = self.mean_before.shape[0]
        if self.a.shape != (n, n) or self.b.shape != (n, n):
            raise InvalidParameterError(
                f"IR-MAD canonical vectors must be ({n}, {n}), got {self.a.shape}, {self.b.shape}."
            )
        if self.sigma.shape != (n,) or self.rho.shape != (n,) or self.mean_after.shape != (n,):
            raise InvalidParameterError(f"IR-MAD sigma/rho/means must all have length {n}.")

    @property
    def nbands(self) -> int:
        return int(self.mean_before.shape[0])

    def mad(self, before: NDArray, after: NDArray) -> NDArray[np.float64]:
        """MAD variates ``(band, ...)`` of pixels given as ``(band, ...)`` arrays."""
        nb = self.nbands
        shp = before.shape[1:]
        x = before.reshape(nb, -1).astype(np.float64) - self.mean_before[:, None]
        y = after.reshape(nb, -1).astype(np.float64) - self.mean_after[:, None]
        m = self.a.T @ x - self.b.T @ y
        return m.reshape((nb, *shp))

    def chi2(self, before: NDArray, after: NDArray) -> NDArray[np.float64]:
        """Chi-square change statistic ``sum_i (MAD_i / sigma_i)^2`` per pixel."""
        m = self.mad(before, after)
        return np.sum((m / self.sigma.reshape((-1,) + (1,) * (m.ndim - 1))) ** 2, axis=0)

    def no_change_probability(self, before: NDArray, after: NDArray) -> NDArray[np.float64]:
        """``P(chi2_N > observed)``: near 1 for unchanged pixels, near 0 for changed ones."""
        return special.chdtrc(self.nbands, self.chi2(before, after))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rho": [float(r) for r in self.rho],
            "sigma": [float(s) for s in self.sigma],
            "iterations": int(self.iterations),
        }


def _weighted_cov(z: NDArray[np.float64], w: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    sw = w.sum()
    mean = (z * w).sum(axis=1) / sw
    zc = z - mean[:, None]
    cov = (zc * w) @ zc.T / sw
    return mean, cov


def fit_irmad(
    before: NDArray,
    after: NDArray,
    *,
    valid: NDArray[np.bool_] | None = None,
    max_iter: int = 30,
    tol: float = 1e-4,
    regularisation: float = 1e-4,
    max_pixels: int = MAX_FIT_PIXELS,
) -> IRMADFit:
    """Fit the IR-MAD transform between two co-registered images.

    Canonical correlation analysis of the two dates gives pairs of canonical
    variates ``U_i = a_i^T X``, ``V_i = b_i^T Y``; their differences (MAD
    variates) are uncorrelated and ``sum (MAD_i / sigma_i)^2`` is ~chi-square
    with N degrees of freedom on unchanged pixels. Each iteration re-weights
    pixels by their no-change probability ``P(chi2_N > z)`` and refits, so
    the transform is driven by unchanged pixels (Nielsen 2007). Regularisation
    adds ``regularisation * trace(S)/N * I`` to each auto-covariance (a ridge
    form of Nielsen's penalised CCA), which keeps highly correlated bands
    (e.g. RGB) solvable.

    Parameters
    ----------
    before, after : (B, M, N) ndarray
        The two dates on one grid.
    valid : (M, N) bool ndarray, optional
        True where both dates have data; other pixels are ignored.
    max_iter, tol : optional
        Iteration limit; stop when canonical correlations move less than ``tol``.
    regularisation : float, optional
        Ridge fraction (>= 0).
    max_pixels : int, optional
        Fit on a random sample of at most this many valid pixels.

    Returns
    -------
    IRMADFit

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(3, 60, 60))
    >>> y = 2 * x + 1 + 0.05 * rng.normal(size=x.shape)
    >>> y[:, :10, :10] += 5          # a changed corner
    >>> fit = fit_irmad(x, y)
    >>> z = fit.chi2(x, y)
    >>> bool(z[:10, :10].mean() > 10 * np.median(z))
    True
    """
    ok = _check_pair(before, after, valid)
    if regularisation < 0:
        raise InvalidParameterError(f"regularisation must be >= 0, got {regularisation!r}.")
    nb = before.shape[0]
    x, y = sample_pixels(before, after, ok, max_pixels=max_pixels)
    if x.shape[1] < 4 * nb + 2:
        raise InvalidParameterError(
            f"IR-MAD needs at least {4 * nb + 2} valid pixels for {nb} bands, got {x.shape[1]}; "
            "use a larger area, or normalise 'histogram' / method 'cva'."
        )
    z = np.vstack([x, y])
    w = np.ones(x.shape[1])
    rho_old = np.zeros(nb)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (count used after the loop)
        mean, cov = _weighted_cov(z, w)
        s11, s22, s12 = cov[:nb, :nb], cov[nb:, nb:], cov[:nb, nb:]
        s11 = s11 + regularisation * np.trace(s11) / nb * np.eye(nb) + 1e-12 * np.eye(nb)
        s22 = s22 + regularisation * np.trace(s22) / nb * np.eye(nb) + 1e-12 * np.eye(nb)
        # S12 S22^-1 S21 a = rho^2 S11 a  (generalised symmetric eigenproblem)
        c = s12 @ linalg.solve(s22, s12.T, assume_a="pos")
        c = 0.5 * (c + c.T)
        lam, a = linalg.eigh(c, s11)  # ascending rho^2; a^T S11 a = I
        lam = np.clip(lam, 0.0, 1.0)
        rho = np.sqrt(lam)
        b = linalg.solve(s22, s12.T @ a, assume_a="pos")
        bnorm = np.sqrt(np.einsum("ij,ij->j", b, s22 @ b))
        b = b / np.where(bnorm > 0, bnorm, 1.0)
        # orient so that U_i and V_i are positively correlated
        sign = np.sign(np.einsum("ij,ij->j", a, s12 @ b))
        b = b * np.where(sign == 0, 1.0, sign)
        sigma = np.sqrt(np.maximum(2.0 * (1.0 - rho), 1e-12))
        mad = a.T @ (x - mean[:nb, None]) - b.T @ (y - mean[nb:, None])
        chi = np.sum((mad / sigma[:, None]) ** 2, axis=0)
        w = special.chdtrc(nb, chi)
        if w.sum() < 2 * nb + 2:
            w = np.ones_like(w)
            break
        if np.max(np.abs(rho - rho_old)) < tol:
            break
        rho_old = rho
    fit = IRMADFit(
        a=a, b=b, mean_before=mean[:nb], mean_after=mean[nb:], sigma=sigma, rho=rho, iterations=it
    )
    log.debug("IR-MAD converged in %d iterations, rho=%s", it, np.round(rho, 4))
    return fit


# --------------------------------------------------------------------------- linear normalisation


def orthogonal_regression(x: NDArray, y: NDArray) -> tuple[float, float]:
    """Total-least-squares line ``y = gain * x + offset``.

    Orthogonal regression treats both dates as noisy, as Canty & Nielsen
    (2008) recommend for relative normalisation.

    Examples
    --------
    >>> x = np.array([0.0, 1.0, 2.0, 3.0])
    >>> orthogonal_regression(x, 2 * x + 1)
    (2.0, 1.0)
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mx, my = x.mean(), y.mean()
    sxx = ((x - mx) ** 2).mean()
    syy = ((y - my) ** 2).mean()
    sxy = ((x - mx) * (y - my)).mean()
    if abs(sxy) < 1e-15 * max(sxx, syy, 1e-300):
        gain = 1.0 if sxx == 0 else float(np.sqrt(syy / sxx)) if sxx > 0 else 1.0
    else:
        gain = float((syy - sxx + np.sqrt((syy - sxx) ** 2 + 4 * sxy**2)) / (2 * sxy))
    offset = float(my - gain * mx)
    return round(gain, 12), round(offset, 12)


@dataclass(frozen=True)
class LinearNormalisation:
    """Per-band ``after_normalised = gain * after + offset``.

    Attributes
    ----------
    gains, offsets : (band,) ndarray
    method : str
        How the line was fitted (``"irmad"``).
    parameters : dict
        JSON-serialisable record (gains, offsets, invariant-pixel count, ...).
    """

    gains: NDArray[np.float64]
    offsets: NDArray[np.float64]
    method: str = "irmad"
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.gains.ndim != 1 or self.gains.shape != self.offsets.shape:
            raise InvalidParameterError(
                f"gains and offsets must be 1-D of equal length, got {self.gains.shape} "
                f"and {self.offsets.shape}."
            )
        if not (np.isfinite(self.gains).all() and np.isfinite(self.offsets).all()):
            raise InvalidParameterError("gains and offsets must be finite.")

    def apply(self, after: NDArray) -> NDArray[np.float32]:
        """Normalise a ``(band, ...)`` after-image (whole image or any window)."""
        if after.shape[0] != self.gains.shape[0]:
            raise BandMismatchError(
                f"normalisation was fitted for {self.gains.shape[0]} bands, got {after.shape[0]}."
            )
        shape = (-1,) + (1,) * (after.ndim - 1)
        kind, size = after.dtype.kind, after.dtype.itemsize
        if (kind == "f" and size <= 4) or (kind in "iu" and size <= 2):
            # the input is exact in float32: scale in float32, in place (within a rounding)
            out = after.astype(np.float32, copy=True)
            out *= self.gains.astype(np.float32).reshape(shape)
            out += self.offsets.astype(np.float32).reshape(shape)
            return out
        return (after * self.gains.reshape(shape) + self.offsets.reshape(shape)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "gains": [float(g) for g in self.gains],
            "offsets": [float(o) for o in self.offsets],
            **self.parameters,
        }


def fit_linear_normalisation(
    before: NDArray,
    after: NDArray,
    *,
    valid: NDArray[np.bool_] | None = None,
    no_change_probability: float = 0.95,
    irmad: IRMADFit | None = None,
    max_pixels: int = MAX_FIT_PIXELS,
) -> LinearNormalisation:
    """Fit per-band gain/offset of after onto before on IR-MAD invariant pixels.

    Canty & Nielsen (2008): run IR-MAD, keep the pixels whose no-change
    probability exceeds ``no_change_probability``, and fit each band by
    orthogonal regression ``before = gain * after + offset`` on them.

    Parameters
    ----------
    before, after : (B, M, N) ndarray
    valid : (M, N) bool ndarray, optional
        True where both dates have data.
    no_change_probability : float, optional
        Invariant-pixel cut-off in (0, 1).
    irmad : IRMADFit, optional
        Reuse an existing fit.
    max_pixels : int, optional
        Sample size for the fits.

    Returns
    -------
    LinearNormalisation

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> x = rng.gamma(4.0, 10.0, size=(4, 80, 80))
    >>> y = 0.8 * x + 12.0
    >>> norm = fit_linear_normalisation(x, y)
    >>> np.round(norm.gains, 3).tolist()
    [1.25, 1.25, 1.25, 1.25]
    """
    if not (0.0 < no_change_probability < 1.0):
        raise InvalidParameterError(
            f"no_change_probability must be in (0, 1), got {no_change_probability!r}."
        )
    ok = _check_pair(before, after, valid)
    fit = irmad or fit_irmad(before, after, valid=ok, max_pixels=max_pixels)
    x, y = sample_pixels(before, after, ok, max_pixels=max_pixels)
    p = fit.no_change_probability(x, y)
    inv = p > no_change_probability
    nb = before.shape[0]
    if inv.sum() < max(10, 2 * nb):
        # too few invariant pixels: fall back to the most probable 10 %
        inv = p >= np.quantile(p, 0.9)
    gains, offsets, spread = np.empty(nb), np.empty(nb), np.empty(nb)
    for i in range(nb):
        gains[i], offsets[i] = orthogonal_regression(y[i, inv], x[i, inv])
        res = x[i, inv] - gains[i] * y[i, inv] - offsets[i]  # the invariant pixels' noise
        spread[i] = 1.4826 * np.median(np.abs(res - np.median(res))) or res.std()
    return LinearNormalisation(
        gains=gains,
        offsets=offsets,
        method="irmad",
        parameters={
            "invariant_pixels": int(inv.sum()),
            "residual_scale": [float(v) for v in spread],
            "no_change_probability": float(no_change_probability),
            "irmad": fit.to_dict(),
        },
    )


# --------------------------------------------------------------------------- histogram matching


@dataclass(frozen=True)
class HistogramMatching:
    """Per-band quantile mapping of after onto before.

    Attributes
    ----------
    source_quantiles, target_quantiles : (band, K) ndarray
        Matching quantiles of after (source) and before (target); values in
        between are interpolated linearly and values outside extrapolate flat.
    """

    source_quantiles: NDArray[np.float64]
    target_quantiles: NDArray[np.float64]

    def __post_init__(self) -> None:
        if self.source_quantiles.shape != self.target_quantiles.shape:
            raise InvalidParameterError("histogram matching quantile tables differ in shape.")

    def apply(self, after: NDArray) -> NDArray[np.float32]:
        """Map a ``(band, ...)`` after-image onto the before histogram."""
        nb = self.source_quantiles.shape[0]
        if after.shape[0] != nb:
            raise BandMismatchError(
                f"histogram matching was fitted for {nb} bands, got {after.shape[0]}."
            )
        out = np.empty(after.shape, dtype=np.float32)

        def band(i: int) -> None:
            source, target = self.source_quantiles[i], self.target_quantiles[i]
            out[i] = interp_increasing(after[i], source, target)  # np.interp's values

        run_jobs(band, range(nb))  # bands in threads (one after another inside a block's job)
        return out

    def gains_offsets(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Least-squares line through the quantile pairs (a summary for the run record)."""
        nb = self.source_quantiles.shape[0]
        g, o = np.empty(nb), np.empty(nb)
        for i in range(nb):
            s, t = self.source_quantiles[i], self.target_quantiles[i]
            if np.ptp(s) == 0:
                g[i], o[i] = 1.0, float(t.mean() - s.mean())
            else:
                g[i], o[i] = np.polyfit(s, t, 1)
        return g, o

    def to_dict(self) -> dict[str, Any]:
        g, o = self.gains_offsets()
        return {
            "method": "histogram",
            "gains": [float(v) for v in g],
            "offsets": [float(v) for v in o],
            "quantiles": int(self.source_quantiles.shape[1]),
        }


def fit_histogram_matching(
    before: NDArray,
    after: NDArray,
    *,
    valid: NDArray[np.bool_] | None = None,
    n_quantiles: int = 257,
    max_pixels: int = MAX_FIT_PIXELS,
) -> HistogramMatching:
    """Fit per-band histogram matching of after onto before.

    Examples
    --------
    >>> x = np.linspace(0, 100, 400).reshape(1, 20, 20)
    >>> hm = fit_histogram_matching(x, 0.5 * x + 3)
    >>> bool(np.allclose(hm.apply(0.5 * x + 3), x, atol=1e-3))
    True
    """
    ok = _check_pair(before, after, valid)
    x, y = sample_pixels(before, after, ok, max_pixels=max_pixels)
    if x.shape[1] < 2:
        raise InvalidParameterError("histogram matching needs at least 2 valid pixels.")
    q = np.linspace(0, 100, n_quantiles)
    return HistogramMatching(
        source_quantiles=np.percentile(y, q, axis=1).T.copy(),
        target_quantiles=np.percentile(x, q, axis=1).T.copy(),
    )


def fit_normalisation(
    before: NDArray,
    after: NDArray,
    *,
    method: NormaliseMethod = "irmad",
    valid: NDArray[np.bool_] | None = None,
    irmad: IRMADFit | None = None,
    pixel_size_m: float | None = None,
) -> LinearNormalisation | HistogramMatching | LocalGain | None:
    """Fit the chosen normalisation (``None`` for ``"none"``).

    ``"auto"`` is resolved by the caller (:func:`satdelta.imagery.detect.detect_change`);
    here it means ``"irmad"``. ``"local"`` (:func:`~satdelta.imagery.local_gain.fit_local_gain`)
    reads ``pixel_size_m`` (None = 1 m) and needs ``valid``.
    """
    if method not in NORMALISE_METHODS:
        raise InvalidParameterError(
            f"normalise must be one of {NORMALISE_METHODS}, got {method!r}."
        )
    if method == "none":
        return None
    if method == "histogram":
        return fit_histogram_matching(before, after, valid=valid)
    if method == "local":
        return fit_local_gain(before, after, _check_pair(before, after, valid), pixel_size_m)
    return fit_linear_normalisation(before, after, valid=valid, irmad=irmad)
