"""Put the after scene on the before scene's grid and remove the residual shift.

Two steps (both recorded on the result):

1. **Register**: on a sample square of the before grid (``sample_size``, 512 px by default,
   where both scenes have data: the centre, unless it is featureless or outside the overlap,
   see :func:`coregister`), resample only that part of the after scene and measure the
   residual translation by cross- and phase correlation (Kuglin & Hines 1975) refined by a
   robust Lucas-Kanade step that ignores changed pixels (see :func:`estimate_shift`), on the
   mean of the standardised bands.  When the scenes are too small to measure (fewer than
   16 x 16 pixels with data in both) but share one pixel grid, no shift is assumed and the
   result says so (:attr:`AlignedPair.shift_measured`).
2. **Resample** the after scene onto the before grid (``rasterio.warp.reproject``) once, with
   its georeference moved by the measured shift (one interpolation from the original pixels,
   which also handles differing CRS, resolution, origin or size; only the part of the after
   file that covers the before grid is read), and measure again on the same sample.

Cost on a 2048 x 2048 4-band pair is about 0.5-1 s, mostly the one full-scene warp (see
``benchmarks/align.py``).  :func:`coregister` accepts a ``window`` on the before grid plus a
precomputed ``shift_px``, so a block runner can estimate once and then align block by block in
bounded memory.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window
from satdelta.imagery.errors import (
    AlignmentError,
    BandMismatchError,
    InvalidParameterError,
    NoOverlapError,
)
from satdelta.imagery.parallel import run_jobs, thread_count
from satdelta.imagery.scene import Scene

__all__ = [
    "AlignedPair",
    "check_max_shift",
    "coregister",
    "estimate_shift",
    "match_bands",
    "measure_shift",
    "resample_to_grid",
    "RESAMPLING_METHODS",
]

log = logging.getLogger(__name__)

ResamplingName = Literal["nearest", "bilinear", "cubic", "lanczos"]
RESAMPLING_METHODS: tuple[str, ...] = get_args(ResamplingName)

# a planar CRS for images that are not georeferenced: their pixel grid is the map
_PIXEL_CRS = CRS.from_wkt('LOCAL_CS["satdelta pixel grid",UNIT["metre",1]]')


@dataclass(frozen=True)
class AlignedPair:
    """Before and after pixels on one grid (the before scene's), ready for change detection.

    Attributes
    ----------
    before, after : (B, M, N) ndarray of float32
        Pixel values on the before grid.
    valid : (M, N) ndarray of bool
        True where both scenes have data in every band.
    transform : affine.Affine
        Transform of the grid (the before scene's, or of its window).
    crs : rasterio.crs.CRS or None
        CRS of the grid; None when the inputs are not georeferenced.
    shift_before_px : (float, float)
        Residual (dy, dx) of the after content relative to before, in pixels, measured after
        resampling and before correction (after(r, c) ~ before(r - dy, c - dx)).
    shift_after_px : (float, float)
        The same, measured again after correction (NaN when not re-measured).
    band_names : tuple of str
        Names of the B bands (the before scene's names).
    pixel_size_m : float or None
        Pixel edge in metres, None when unknown.
    shift_measured : bool
        True when this call measured ``shift_before_px`` on the images; False when it was
        given (``shift_px``) or assumed to be (0, 0) because the images are too small to
        measure and share one pixel grid (``shift_note`` says which).
    shift_sample : (int, int, int, int) or None
        (row_off, col_off, height, width) on this grid of the sample the shift was measured
        (and re-measured) on; None when it was not measured.
    shift_note : str
        Why the shift was not measured (empty when it was).
    """

    before: np.ndarray
    after: np.ndarray
    valid: np.ndarray
    transform: Affine
    crs: CRS | None
    shift_before_px: tuple[float, float]
    shift_after_px: tuple[float, float]
    band_names: tuple[str, ...]
    pixel_size_m: float | None
    shift_measured: bool = True
    shift_sample: tuple[int, int, int, int] | None = None
    shift_note: str = ""

    def __post_init__(self) -> None:
        b, a, v = self.before, self.after, self.valid
        sample = self.shift_sample
        if sample is not None and (
            len(sample) != 4
            or sample[0] < 0
            or sample[1] < 0
            or sample[0] + sample[2] > v.shape[0]
            or sample[1] + sample[3] > v.shape[1]
        ):
            raise InvalidParameterError(
                f"shift_sample must be (row_off, col_off, height, width) inside the {v.shape} "
                f"grid, or None; got {sample}."
            )
        if b.ndim != 3 or a.shape != b.shape:
            raise InvalidParameterError(
                f"before and after must be (band, row, col) arrays of one shape; got {b.shape} "
                f"and {a.shape}."
            )
        if v.dtype != bool or v.shape != b.shape[1:]:
            raise InvalidParameterError(
                f"valid must be a bool (row, col) array of shape {b.shape[1:]}; got {v.dtype} "
                f"{v.shape}."
            )
        if len(self.band_names) != b.shape[0]:
            raise InvalidParameterError(f"expected {b.shape[0]} band names, got {self.band_names}.")

    @property
    def shape(self) -> tuple[int, int]:
        """(row, col) size of the grid."""
        return self.valid.shape  # type: ignore[return-value]


def match_bands(
    before: Scene, after: Scene, bands: Sequence[int | str] | None = None
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Choose which 1-based bands of each scene are compared.

    Parameters
    ----------
    before, after : Scene
    bands : sequence of int or str, optional
        1-based indexes or names, picked from each scene.  When None, alpha bands are left
        out (their information is already in the validity mask); then both scenes must have
        the same number of bands, or share band names (then the shared names are used).

    Returns
    -------
    before_idx, after_idx : tuple of int

    Raises
    ------
    BandMismatchError
        When the bands cannot be matched.
    """
    if bands is not None:
        return before.band_indexes(bands), after.band_indexes(bands)
    b_data = tuple(i for i, n in enumerate(before.band_names, 1) if n != "alpha")
    a_data = tuple(i for i, n in enumerate(after.band_names, 1) if n != "alpha")
    if b_data and len(b_data) == len(a_data):
        return b_data, a_data
    generic = {f"b{i}" for i in range(1, max(before.count, after.count) + 1)}
    shared = [n for n in before.band_names if n in after.band_names and n not in generic]
    shared = [n for n in shared if n != "alpha"]
    if shared:
        log.info(
            "band counts differ (%d vs %d): using shared bands %s",
            before.count,
            after.count,
            shared,
        )
        return before.band_indexes(shared), after.band_indexes(shared)
    raise BandMismatchError(
        f"before ({before.scene_id}) has {before.count} bands {before.band_names}, after "
        f"({after.scene_id}) has {after.count} bands {after.band_names}; they cannot be matched. "
        "Pick the same bands from each with bands=/--bands (e.g. --bands 1,2,3)."
    )


def _grid_crs(scene: Scene) -> CRS:
    return scene.crs if scene.crs is not None else _PIXEL_CRS


def _check_overlap(before: Scene, after: Scene) -> None:
    if before.georeferenced != after.georeferenced:
        which = "before" if before.georeferenced else "after"
        raise AlignmentError(
            f"only the {which} scene is georeferenced ({before.scene_id}: {before.crs}, "
            f"{after.scene_id}: {after.crs}); expected both or neither. Use two georeferenced "
            "scenes, or two plain images of the same size."
        )
    if not before.georeferenced:
        if (before.width, before.height) != (after.width, after.height):
            raise NoOverlapError(
                f"the scenes are not georeferenced and their sizes differ: before "
                f"{before.width}x{before.height} px, after {after.width}x{after.height} px. "
                "Plain images must share one pixel grid; crop them to the same size."
            )
        return
    b = before.bounds
    a = transform_bounds(after.crs, before.crs, *after.bounds, densify_pts=21)
    left, bottom = max(b.left, a[0]), max(b.bottom, a[1])
    right, top = min(b.right, a[2]), min(b.top, a[3])
    if right <= left or top <= bottom:
        raise NoOverlapError(
            "before and after do not overlap: before covers "
            f"({b.left:.1f}, {b.bottom:.1f}, {b.right:.1f}, {b.top:.1f}), after covers "
            f"({a[0]:.1f}, {a[1]:.1f}, {a[2]:.1f}, {a[3]:.1f}) ({before.crs.to_string()}). "
            "Check that both scenes show the same place."
        )


def _source_window(
    after: Scene, crs: CRS | None, transform: Affine, shape: tuple[int, int], pad: int
) -> Window | None:
    """Window of ``after`` that covers the target grid (None if it covers none of it)."""
    rows, cols = shape
    corners = [transform @ (c, r) for c, r in ((0, 0), (cols, 0), (0, rows), (cols, rows))]
    if after.crs is not None and crs is not None and after.crs != crs:
        xs, ys = zip(*corners, strict=True)
        w, s_, e, n = transform_bounds(
            crs, after.crs, min(xs), min(ys), max(xs), max(ys), densify_pts=21
        )
        corners = [(w, s_), (e, s_), (w, n), (e, n)]
    inv = ~after.transform
    pix = [inv @ xy for xy in corners]
    cs, rs = [p[0] for p in pix], [p[1] for p in pix]
    col0 = max(math.floor(min(cs)) - pad, 0)
    row0 = max(math.floor(min(rs)) - pad, 0)
    col1 = min(math.ceil(max(cs)) + pad, after.width)
    row1 = min(math.ceil(max(rs)) + pad, after.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def resample_to_grid(
    scene: Scene,
    *,
    transform: Affine,
    crs: CRS | None,
    shape: tuple[int, int],
    bands: Sequence[int] | None = None,
    shift_px: tuple[float, float] = (0.0, 0.0),
    resampling: ResamplingName = "cubic",
) -> tuple[np.ndarray, np.ndarray]:
    """Read the part of ``scene`` covering a target grid and resample it onto that grid.

    Parameters
    ----------
    scene : Scene
    transform, crs, shape
        The target grid: affine transform, CRS (None for a plain pixel grid) and (rows, cols).
    bands : sequence of int, optional
        1-based band indexes of ``scene``.
    shift_px : (float, float)
        (dy, dx) in target pixels to remove: the scene's content is moved by (-dy, -dx).
    resampling : {"nearest", "bilinear", "cubic", "lanczos"}

    Returns
    -------
    data : (B, M, N) ndarray of float32
        NaN where the scene has no data.
    valid : (M, N) ndarray of bool
        True where every band has data.
    """
    if resampling not in RESAMPLING_METHODS:
        raise InvalidParameterError(
            f"resampling must be one of {RESAMPLING_METHODS}; got {resampling!r}."
        )
    idx = scene.band_indexes(bands)
    rows, cols = shape
    out = np.full((len(idx), rows, cols), np.nan, dtype="float32")
    win = _source_window(
        scene,
        crs,
        transform,
        shape,
        pad=4 + int(math.ceil(max(abs(shift_px[0]), abs(shift_px[1])))),
    )
    if win is None:
        return out, np.zeros(shape, bool)
    data, valid = scene.read(win, bands=idx)
    complete = bool(valid.all())
    if not complete:
        data[:, ~valid] = np.nan
    src_transform = scene.window_transform(win)
    dy, dx = shift_px
    if dy or dx:
        # move the source's georeference by (-dx, -dy) target pixels
        mx, my = (transform.a * -dx + transform.b * -dy, transform.d * -dx + transform.e * -dy)
        src_transform = Affine.translation(mx, my) @ src_transform
    # Without nodata GDAL takes its unmasked warp kernels, about 4x faster.  When every source
    # pixel has data and the grids share CRS and axes, they give the same values as the masked
    # path, whose only other effect is then to leave out target pixels whose centre falls
    # outside the source: that coverage is computed here.  Otherwise (holes, another CRS) the
    # masked path renormalises each kernel over the valid source pixels.
    covered = (
        _covered(~src_transform @ transform, shape, (int(win.height), int(win.width)))
        if complete and (scene.crs == crs or (scene.crs is None and crs is None))
        else None
    )
    nodata: dict[str, object] = (
        {}
        if covered is not None
        else {"src_nodata": np.nan, "dst_nodata": np.nan, "init_dest_nodata": True}
    )
    reproject(
        source=data,
        destination=out,
        src_transform=src_transform,
        src_crs=_grid_crs(scene),
        dst_transform=transform,
        dst_crs=crs if crs is not None else _PIXEL_CRS,
        resampling=Resampling[resampling],
        # GDAL's multithreaded warp (it releases the GIL): the target is split into chunks,
        # each pixel computed as with one thread (same values), about 0.1 s less on a
        # 2048 x 2048 x 4 scene with two threads
        num_threads=thread_count(),
        **nodata,
    )
    if covered is not None and not covered.all():
        out[:, ~covered] = np.nan
    return out, np.isfinite(out).all(axis=0)


def _covered(
    to_src: Affine, shape: tuple[int, int], src_shape: tuple[int, int]
) -> np.ndarray | None:
    """True where a target pixel's centre falls inside the source (None if the axes differ).

    ``to_src`` maps target pixel coordinates to source pixel coordinates.
    """
    if to_src.b != 0 or to_src.d != 0:
        return None
    x = to_src.a * (np.arange(shape[1]) + 0.5) + to_src.c
    y = to_src.e * (np.arange(shape[0]) + 0.5) + to_src.f
    cols = (x >= 0) & (x < src_shape[1])
    rows = (y >= 0) & (y < src_shape[0])
    return rows[:, None] & cols[None, :]


def _central_window(shape: tuple[int, int], size: int) -> tuple[slice, slice]:
    rows, cols = shape
    h, w = min(rows, size), min(cols, size)
    r0, c0 = (rows - h) // 2, (cols - w) // 2
    return slice(r0, r0 + h), slice(c0, c0 + w)


def _footprint(
    after: Scene, crs: CRS | None, transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    """True where a pixel of the target grid lies inside the after scene's extent.

    Exact for a grid in the after scene's CRS with the same axes (pixel centres inside its
    edges); otherwise the box of its bounds on the grid (a little larger than the scene when
    it is rotated or in another CRS).  Nodata inside the extent is not seen here.
    """
    if after.crs == crs or (after.crs is None and crs is None):
        cov = _covered(~after.transform @ transform, shape, (after.height, after.width))
        if cov is not None:
            return cov
    out = np.zeros(shape, bool)
    r0, r1, c0, c1 = _extent_box(after, crs, transform, shape)
    out[r0:r1, c0:c1] = True
    return out


def _extent_box(
    after: Scene, crs: CRS | None, transform: Affine, shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the after scene's bounds on a grid, clipped to it.

    Empty (row1 <= row0 or col1 <= col0) when they do not meet.
    """
    b = after.bounds
    same_crs = after.crs == crs or after.crs is None or crs is None
    w, s_, e, n = (
        (b.left, b.bottom, b.right, b.top)
        if same_crs
        else transform_bounds(after.crs, crs, *b, densify_pts=21)
    )
    inv = ~transform
    pix = [inv @ xy for xy in ((w, s_), (e, s_), (w, n), (e, n))]
    cs, rs = [p[0] for p in pix], [p[1] for p in pix]
    r0, r1 = max(math.floor(min(rs)), 0), min(math.ceil(max(rs)), shape[0])
    c0, c1 = max(math.floor(min(cs)), 0), min(math.ceil(max(cs)), shape[1])
    return r0, max(r1, r0), c0, max(c1, c0)


def _same_pixel_grid(after: Scene, crs: CRS | None, transform: Affine) -> bool:
    """True when the after scene's pixels are the target grid's, offset by whole pixels."""
    if not (after.crs == crs or (after.crs is None and crs is None)):
        return False
    t = ~transform @ after.transform  # after pixel -> target pixel
    return (
        abs(t.a - 1) < 1e-9
        and abs(t.e - 1) < 1e-9
        and abs(t.b) < 1e-9
        and abs(t.d) < 1e-9
        and abs(t.c - round(t.c)) < 1e-6
        and abs(t.f - round(t.f)) < 1e-6
    )


# estimate_shift needs at least this many valid pixels, in a sample at least this wide
_MIN_VALID = 256
_MIN_SIDE = 16


def _measurable(ok: np.ndarray) -> bool:
    """True when a sample's validity mask allows :func:`estimate_shift` to measure."""
    return min(ok.shape) >= _MIN_SIDE and int(ok.sum()) >= _MIN_VALID


def _sample_window(data: np.ndarray, valid: np.ndarray, size: int) -> tuple[slice, slice]:
    """Where to measure the shift: a ``size`` square with data and texture, central by default.

    Candidate squares: 3 x 3 positions (centre, edge middles, corners) plus the square
    centred on the valid pixels' centroid (which finds an overlap that lies between the
    others).  Each is scored by the mean absolute gradient of the band mean on every 4th
    pixel, counting pixels that are not valid as flat.  Squares with an (estimated) 256 valid
    pixels or more are preferred; among them the central square is kept unless another scores
    25 % higher, so a featureless or empty centre (water, cloud, a nodata hole, the part of the
    before scene the after scene does not cover) does not decide the shift.

    Parameters
    ----------
    data : (B, M, N) ndarray
        The before scene's pixels.
    valid : (M, N) ndarray of bool
        True where the pixel can be used: where both scenes have data, as far as known.
    size : int
    """
    rows, cols = valid.shape
    h, w = min(rows, size), min(cols, size)
    centre = ((rows - h) // 2, (cols - w) // 2)
    if (h, w) == (rows, cols):
        return slice(0, rows), slice(0, cols)
    step = 4
    img = data[:, ::step, ::step].mean(axis=0, dtype="float32")
    ok = valid[::step, ::step] & np.isfinite(img)
    grad = np.zeros(img.shape, "float32")
    gy = np.abs(np.diff(img, axis=0))
    gy[~(ok[1:] & ok[:-1])] = 0
    gx = np.abs(np.diff(img, axis=1))
    gx[~(ok[:, 1:] & ok[:, :-1])] = 0
    grad[1:] += gy
    grad[:, 1:] += gx

    def cut(a: np.ndarray, r0: int, c0: int) -> np.ndarray:
        return a[r0 // step : (r0 + h) // step, c0 // step : (c0 + w) // step]

    spots = {(r, c) for r in (0, centre[0], rows - h) for c in (0, centre[1], cols - w)}
    if ok.any():
        rr, cc = np.nonzero(ok)
        spots.add(
            (
                min(max(int(rr.mean() * step) - h // 2, 0), rows - h),
                min(max(int(cc.mean() * step) - w // 2, 0), cols - w),
            )
        )
    scores = {}
    counts = {}
    for spot in spots:
        sub = cut(grad, *spot)
        scores[spot] = float(sub.mean()) if sub.size else 0.0
        counts[spot] = int(cut(ok, *spot).sum()) * step * step
    pool = [spot for spot in sorted(spots) if counts[spot] >= _MIN_VALID] or sorted(spots)
    best = max(pool, key=lambda spot: (scores[spot], counts[spot]))
    keep = centre in pool and scores[best] <= 1.25 * scores[centre]
    r0, c0 = centre if keep else best
    if (r0, c0) != centre:
        log.info(
            "shift sample moved from the centre to rows %d, cols %d (more texture or data)", r0, c0
        )
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
    """Gaussian band-pass: keeps texture, drops slow radiometric differences and noise."""
    from scipy import ndimage

    out = img - ndimage.gaussian_filter(img, highpass) if highpass else img
    return ndimage.gaussian_filter(out, smooth) if smooth else out


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
    if not _measurable(ok):
        raise AlignmentError(
            f"too few valid pixels to measure the shift: {int(ok.sum())} in a {ok.shape} sample, "
            f"expected at least {_MIN_VALID} in a sample at least {_MIN_SIDE} x {_MIN_SIDE} px. "
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
    candidates = [(0.0, 0.0)]
    for norm in (None, "phase"):
        if refine:
            # the peaks only seed the refinement (which converges from within about a
            # pixel): the integer peak and a parabola through its neighbours are enough
            candidates.append(_correlation_peak(fa, fb, phase=norm == "phase"))
            continue
        from skimage.registration import phase_cross_correlation

        shift, _, _ = phase_cross_correlation(
            fa, fb, upsample_factor=upsample_factor, normalization=norm, space="fourier"
        )
        # skimage returns the shift that registers moving onto reference: the opposite sign
        candidates.append((float(-shift[0]) + 0.0, float(-shift[1]) + 0.0))
    coef = _spline_coefficients(rb)  # shared by the misfits and the refinement
    costs = _misfits(ra, rb, ok, candidates, coef)
    log.debug("shift candidates %s, robust misfits %s", candidates, costs)
    best = int(np.argmin(costs))
    if max_shift_px is not None:
        # a candidate beyond the limit wins only when it fits clearly better (repetitive
        # structure such as rows of houses or fields gives false peaks far away)
        inside = [i for i, c in enumerate(candidates) if max(map(abs, c)) <= max_shift_px]
        best_inside = min(inside, key=lambda i: costs[i])
        if best not in inside and costs[best] > 0.8 * costs[best_inside]:
            best = best_inside
    coarse = candidates[best]
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


def measure_shift(
    before: Scene,
    after: Scene,
    *,
    bands: Sequence[int | str] | None = None,
    sample_size: int = 512,
    max_shift_px: float = 5.0,
    resampling: ResamplingName = "cubic",
) -> tuple[float, float]:
    """Measure the residual shift from one ``sample_size`` square of the before grid only.

    The square is centred on the part of the before grid the after scene's extent covers
    (the whole grid when they cover the same ground), and inside it :func:`coregister` looks
    for the pixels both scenes have data in.  Only that window of each scene is read, so a
    block runner can measure once in bounded memory and pass the result to
    :func:`coregister` (``shift_px=``) for every block.  Nodata inside the after scene's
    extent is not seen when placing the square: an overlap made only by nodata elsewhere
    needs :func:`coregister` on the whole grid.

    Returns
    -------
    (dy, dx) : tuple of float
        As :attr:`AlignedPair.shift_before_px` ((0, 0) when too small to measure on one
        pixel grid, see :func:`coregister`).
    """
    check_max_shift(max_shift_px)
    _check_overlap(before, after)
    size = int(sample_size)
    w, h = min(before.width, size), min(before.height, size)
    r0, r1, c0, c1 = (
        _extent_box(after, before.crs, before.transform, (before.height, before.width))
        if before.georeferenced
        else (0, before.height, 0, before.width)
    )
    row = min(max((r0 + r1 - h) // 2, 0), before.height - h)
    col = min(max((c0 + c1 - w) // 2, 0), before.width - w)
    win = Window(col, row, w, h)
    pair = coregister(
        before,
        after,
        bands=bands,
        max_shift_px=max_shift_px,
        correct=False,
        window=win,
        resampling=resampling,
        sample_size=size,
    )
    return pair.shift_before_px


def coregister(
    before: Scene,
    after: Scene,
    *,
    bands: Sequence[int | str] | None = None,
    max_shift_px: float = 5.0,
    correct: bool = True,
    window: Window | None = None,
    shift_px: tuple[float, float] | None = None,
    resampling: ResamplingName = "cubic",
    sample_size: int = 512,
) -> AlignedPair:
    """Put ``after`` on ``before``'s grid, measure and remove the residual shift.

    The shift is measured by :func:`estimate_shift` with its robust refinement (about
    0.01 px).

    Parameters
    ----------
    before, after : Scene
    bands : sequence of int or str, optional
        1-based indexes or names picked from each scene (see :func:`match_bands`).
    max_shift_px : float, default 5.0
        Largest residual shift (in before pixels, either axis) accepted: a finite number > 0.
    correct : bool, default True
        Remove the measured shift (False: only measure and record it).
    window : rasterio.windows.Window, optional
        Align only this window of the before grid (for block-by-block processing).
    shift_px : (float, float), optional
        A shift measured beforehand (e.g. once for the whole scene); skips measuring.  Pass
        (0, 0) to put the after scene on the grid by its georeference alone.
    resampling : {"nearest", "bilinear", "cubic", "lanczos"}, default "cubic"
    sample_size : int, default 512
        Side of the square sample used to measure the shift (262,144 pixels are plenty for a
        translation and bound the cost: about 0.1-0.2 s per measurement), smaller when the
        grid is.  It is chosen where both scenes have data: the central square unless another
        (corners, edge middles, the centroid of the overlap) has 25 % more texture, so a
        featureless centre, or one the after scene does not cover, does not decide the shift.
        The square used is recorded as :attr:`AlignedPair.shift_sample`.

    Returns
    -------
    AlignedPair
        When the grid (or the overlap) is too small to measure a shift (fewer than 256 pixels
        with data in both scenes, or a sample narrower than 16 px) and the after scene lies on
        the before scene's pixel grid (same CRS and pixel size, offset by whole pixels), no
        shift is assumed: ``shift_before_px`` is (0, 0), ``shift_measured`` False and
        ``shift_note`` says why.  When the residual cannot be measured again after the
        correction (the corrected overlap is too small), ``shift_after_px`` is NaN.

    Raises
    ------
    NoOverlapError
        When the scenes do not cover the same ground, or share no pixel with data.
    AlignmentError
        When the residual shift exceeds ``max_shift_px``, or cannot be measured on grids that
        differ.
    BandMismatchError
        When the bands cannot be matched.
    InvalidParameterError
        When ``max_shift_px`` is not a finite number > 0.
    """
    check_max_shift(max_shift_px)
    _check_overlap(before, after)
    bidx, aidx = match_bands(before, after, bands)
    if window is None:
        window = Window(0, 0, before.width, before.height)
    window = window.round_offsets().round_lengths()
    transform = before.window_transform(window)
    shape = (int(window.height), int(window.width))
    crs = before.crs

    before_data, before_valid = before.read(window, bands=bidx)
    if not before_valid.all():
        before_data[:, ~before_valid] = np.nan

    def resample(shift: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        return resample_to_grid(
            after,
            transform=transform,
            crs=crs,
            shape=shape,
            bands=aidx,
            shift_px=shift,
            resampling=resampling,
        )

    def no_overlap() -> NoOverlapError:
        return NoOverlapError(
            f"before ({before.scene_id}) and after ({after.scene_id}) have no pixel with data in "
            "common on the before grid. Check that both scenes show the same place and their "
            "nodata values."
        )

    def measure(
        sl: tuple[slice, slice], after_sample: np.ndarray, ok: np.ndarray
    ) -> tuple[float, float]:
        return estimate_shift(
            before_data[(slice(None), *sl)],
            after_sample,
            valid=ok,
            sample_size=None,
            max_shift_px=max_shift_px,
        )

    nan2 = (math.nan, math.nan)
    after_data: np.ndarray | None = None
    sl: tuple[slice, slice] | None = None
    note = ""
    if shift_px is None:
        # measure on a sample only (see _sample_window), chosen where the before scene has data
        # and the after scene's extent lies: resample just that part of the after scene, so the
        # whole window is resampled once (with the correction) below
        sl = _sample_window(
            before_data, before_valid & _footprint(after, crs, transform, shape), sample_size
        )
        sample_shape = (sl[0].stop - sl[0].start, sl[1].stop - sl[1].start)
        sample_after, sample_after_valid = resample_to_grid(
            after,
            transform=transform @ Affine.translation(sl[1].start, sl[0].start),
            crs=crs,
            shape=sample_shape,
            bands=aidx,
            resampling=resampling,
        )
        sample_valid = sample_after_valid & before_valid[sl]
        if _measurable(sample_valid):
            measured = measure(sl, sample_after, sample_valid)
        else:
            # too little data in the sample (nodata inside the after scene's extent, or a small
            # grid): the after scene's real validity on the whole window decides (or explains)
            if sample_shape == shape:  # the sample was the whole window
                after_data, after_valid = sample_after, sample_after_valid
            else:
                after_data, after_valid = resample((0.0, 0.0))
            joint = before_valid & after_valid
            if not joint.any():
                raise no_overlap()
            sl = _sample_window(before_data, joint, sample_size)
            if _measurable(joint[sl]):
                measured = measure(sl, after_data[(slice(None), *sl)], joint[sl])
            else:
                n, sample_shape = int(joint[sl].sum()), joint[sl].shape
                why = (
                    f"{n} pixels with data in both scenes in a {sample_shape[0]} x "
                    f"{sample_shape[1]} px sample are too small to measure a shift (at least "
                    f"{_MIN_VALID} in a sample at least {_MIN_SIDE} x {_MIN_SIDE} px are needed)"
                )
                if not _same_pixel_grid(after, crs, transform):
                    raise AlignmentError(
                        f"too few pixels to measure the shift between {before.scene_id} and "
                        f"{after.scene_id}: {why}, and their grids differ, so a zero shift "
                        "cannot be assumed. Use scenes that overlap more, or pass "
                        "shift_px=(0, 0) to put the after scene on the before grid by its "
                        "georeference alone."
                    )
                note = (
                    f"shift not measured: {why}; the scenes share the same pixel grid, so no "
                    "shift (0, 0) was assumed"
                )
                log.info("%s vs %s: %s", after.scene_id, before.scene_id, note)
                measured = (0.0, 0.0)
                sl = None
    else:
        measured = (float(shift_px[0]), float(shift_px[1]))
        note = "shift given (shift_px), not measured here"
    if sl is not None:
        log.info(
            "residual shift of %s vs %s: dy=%.3f dx=%.3f px",
            after.scene_id,
            before.scene_id,
            *measured,
        )
    if max(abs(measured[0]), abs(measured[1])) > max_shift_px:
        raise AlignmentError(
            f"residual shift between {before.scene_id} and {after.scene_id} is "
            f"(dy={measured[0]:.2f}, dx={measured[1]:.2f}) px, beyond the limit of "
            f"{max_shift_px} px. Check that both scenes show the same place, or raise "
            "max_shift_px / --max-shift if a larger misregistration is expected."
        )
    residual = nan2
    if correct and (abs(measured[0]) > 1e-3 or abs(measured[1]) > 1e-3):
        after_data, after_valid = resample(measured)
        valid = before_valid & after_valid
        if not valid.any():
            raise no_overlap()
        if sl is not None:  # measured again on the same sample
            try:
                residual = measure(sl, after_data[(slice(None), *sl)], valid[sl])
            except AlignmentError:
                # the correction moved data out of a small sample: the run stands, the residual
                # is unknown
                log.info(
                    "shift after correction not measured: %d pixels with data in both scenes "
                    "left in the %d x %d sample",
                    int(valid[sl].sum()),
                    *valid[sl].shape,
                )
    else:
        if after_data is None:
            after_data, after_valid = resample((0.0, 0.0))
        valid = before_valid & after_valid
        if not valid.any():
            raise no_overlap()
        if sl is not None:
            residual = measured  # nothing was corrected: the residual is what was measured
    if not math.isnan(residual[0]):
        log.info("shift after correction: dy=%.3f dx=%.3f px", *residual)
    names = tuple(before.band_names[i - 1] for i in bidx)
    return AlignedPair(
        before=before_data,
        after=after_data,
        valid=valid,
        transform=transform,
        crs=crs,
        shift_before_px=measured,
        shift_after_px=residual,
        band_names=names,
        pixel_size_m=before.pixel_size_m,
        shift_measured=sl is not None,
        shift_sample=(
            None
            if sl is None
            else (sl[0].start, sl[1].start, sl[0].stop - sl[0].start, sl[1].stop - sl[1].start)
        ),
        shift_note=note,
    )


def check_max_shift(max_shift_px: float) -> float:
    """Return ``max_shift_px`` as a float after checking it is a finite number > 0.

    Raises
    ------
    InvalidParameterError
        Otherwise (e.g. ``inf``, NaN, 0 or a negative number).
    """
    try:
        value = float(max_shift_px)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InvalidParameterError(
            "max_shift_px must be a finite number of pixels > 0 (the largest residual shift "
            f"expected, e.g. 5); got {max_shift_px!r}."
        )
    return value
