"""Lazy multiscale views of a raster from its overview levels.

A :class:`RasterPyramid` holds one :class:`PyramidLevel` per resolution: the full
resolution band data and each of the file's internal or external overviews (a
Cloud-Optimised GeoTIFF has them inside).  A level is an *array-like*: it has
``shape``, ``dtype``, ``ndim`` and ``__getitem__``, and indexing it reads only
the requested window from the file with rasterio (``overview_level=k`` opens the
k-th overview as its own dataset, so nothing is resampled on the fly).  Viewers
that read only what is on screen (napari's multiscale image layer does) can
therefore show a 10,000 x 10,000 raster in seconds and in a few hundred MB.

This module is pure I/O: it imports neither napari nor Qt.  Each thread gets
its own rasterio handle per level (GDAL dataset handles are not thread-safe).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window
from satdelta.imagery.errors import InvalidParameterError, SceneReadError
from satdelta.imagery.scene import gdal_env

__all__ = ["PyramidLevel", "RasterPyramid", "open_pyramid"]

log = logging.getLogger(__name__)

BandLayout = Literal["last", "first", "none"]


def _normalise_source(source: str | os.PathLike[str]) -> str:
    text = os.fspath(source)
    if text.startswith(("http://", "https://")):
        return "/vsicurl/" + text
    return text


class _Handles(threading.local):
    """One rasterio dataset per (thread, level); opened on first use."""

    def __init__(self) -> None:
        self.datasets: dict[int | None, rasterio.io.DatasetReader] = {}


@dataclass(frozen=True, eq=False)
class PyramidLevel:
    """One resolution of a raster as a lazily read array-like.

    Parameters
    ----------
    path : str
        GDAL path of the raster (``/vsicurl/`` prefix for URLs).
    overview : int or None
        ``None`` for full resolution, else the 0-based overview index passed to
        rasterio as ``overview_level``.
    bands : tuple of int
        1-based band indexes read, in output order.
    height, width : int
        Size of this level in pixels.
    dtype : numpy.dtype
        Data type of the pixels.
    layout : {"last", "first", "none"}
        Where the band axis goes: ``(row, col, band)`` for ``"last"`` (what an
        RGB viewer expects), ``(band, row, col)`` for ``"first"``, and no band
        axis (one band only) for ``"none"``.
    """

    path: str
    overview: int | None
    bands: tuple[int, ...]
    height: int
    width: int
    dtype: np.dtype
    layout: BandLayout = "last"
    _handles: _Handles = field(default_factory=_Handles, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.layout not in ("last", "first", "none"):
            raise InvalidParameterError(
                f"layout must be 'last', 'first' or 'none', got {self.layout!r}; pick one of those."
            )
        if self.layout == "none" and len(self.bands) != 1:
            raise InvalidParameterError(
                f"layout 'none' needs exactly one band, got bands {self.bands}; "
                "pass one band or use layout 'last'."
            )
        if self.height < 1 or self.width < 1:
            raise InvalidParameterError(
                f"a pyramid level needs a positive size, got {self.height} x {self.width}."
            )

    # -- array protocol -------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the level in the chosen band layout."""
        if self.layout == "last":
            return (self.height, self.width, len(self.bands))
        if self.layout == "first":
            return (len(self.bands), self.height, self.width)
        return (self.height, self.width)

    @property
    def ndim(self) -> int:
        """Number of axes (3 with a band axis, else 2)."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Bytes the whole level would take in memory (it is never all read)."""
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:  # noqa: ANN001 - numpy protocol
        out = self[...]
        return out if dtype is None else out.astype(dtype)

    def _dataset(self) -> rasterio.io.DatasetReader:
        ds = self._handles.datasets.get(self.overview)
        if ds is None:
            try:
                with gdal_env(self.path):  # range-request options for /vsicurl/
                    if self.overview is None:
                        ds = rasterio.open(self.path)
                    else:
                        ds = rasterio.open(self.path, overview_level=self.overview)
            except RasterioIOError as exc:
                raise SceneReadError(
                    f"could not reopen {self.path} (overview {self.overview}): {exc}; "
                    "check that the file still exists and is readable."
                ) from exc
            self._handles.datasets[self.overview] = ds
        return ds

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """Read a window as ``(band, row, col)``.

        Parameters
        ----------
        rows, cols : slice
            Half-open pixel ranges with step 1, already clipped to the level.

        Returns
        -------
        (B, R, C) ndarray
            The pixels of the selected bands.
        """
        r0, r1 = rows.start, rows.stop
        c0, c1 = cols.start, cols.stop
        if r1 <= r0 or c1 <= c0:
            return np.zeros((len(self.bands), max(r1 - r0, 0), max(c1 - c0, 0)), self.dtype)
        window = Window(c0, r0, c1 - c0, r1 - r0)
        dataset = self._dataset()
        if self.path.startswith("/vsicurl/"):
            with gdal_env(self.path):
                return dataset.read(list(self.bands), window=window)
        return dataset.read(list(self.bands), window=window)

    def __getitem__(self, key) -> np.ndarray:  # noqa: ANN001 - numpy indexing
        key = _expand_key(key, self.ndim)
        if self.layout == "last":
            rkey, ckey, bkey = key
        elif self.layout == "first":
            bkey, rkey, ckey = key
        else:
            (rkey, ckey), bkey = key, 0
        rslice, rpost = _window_of(rkey, self.height)
        cslice, cpost = _window_of(ckey, self.width)
        block = self.read(rslice, cslice)  # (band, row, col)
        block = block[:, rpost]
        block = block[:, cpost] if _is_int(rpost) else block[:, :, cpost]
        if self.layout == "last":
            return np.moveaxis(block, 0, -1)[..., bkey]
        if self.layout == "first":
            return block[bkey]
        return block[0]


def _is_int(key: object) -> bool:
    return isinstance(key, (int, np.integer))


def _expand_key(key, ndim: int) -> tuple:  # noqa: ANN001
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is None for k in key):
        raise IndexError("new axes (None) are not supported on a pyramid level")
    n_ellipsis = sum(1 for k in key if k is Ellipsis)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis")
    if n_ellipsis == 1:
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (ndim - (len(key) - 1))
        key = key[:i] + fill + key[i + 1 :]
    if len(key) > ndim:
        raise IndexError(f"too many indices: level has {ndim} axes, got {len(key)}")
    return key + (slice(None),) * (ndim - len(key))


def _window_of(key, n: int) -> tuple[slice, object]:  # noqa: ANN001
    """Split an axis index into the window to read and the index to apply to it."""
    if _is_int(key):
        i = int(key)
        if i < -n or i >= n:
            raise IndexError(f"index {i} is out of bounds for axis with size {n}")
        i %= n
        return slice(i, i + 1), 0
    if isinstance(key, slice):
        start, stop, step = key.indices(n)
        if step > 0:
            lo, hi = start, max(stop, start)
            return slice(lo, hi), slice(None, None, step)
        # negative step: read the covered range, then walk it backwards
        lo, hi = stop + 1, start + 1
        if hi <= lo:
            return slice(0, 0), slice(None)
        return slice(lo, hi), slice(None, None, step)
    arr = np.asarray(key)
    if arr.dtype == bool:
        arr = np.flatnonzero(arr)
    arr = np.where(arr < 0, arr + n, arr)
    if arr.size == 0:
        return slice(0, 0), arr
    lo, hi = int(arr.min()), int(arr.max()) + 1
    if lo < 0 or hi > n:
        raise IndexError(f"index out of bounds for axis with size {n}")
    return slice(lo, hi), arr - lo


@dataclass(frozen=True)
class RasterPyramid:
    """All resolutions of a raster, finest first.

    Attributes
    ----------
    levels : tuple of PyramidLevel
        Full resolution first, then each overview, sizes strictly decreasing.
    bands : tuple of int
        1-based band indexes every level reads.
    """

    levels: tuple[PyramidLevel, ...]
    bands: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.levels:
            raise InvalidParameterError("a pyramid needs at least one level, got none.")
        sizes = [(lv.height, lv.width) for lv in self.levels]
        for (h0, w0), (h1, w1) in zip(sizes, sizes[1:], strict=False):
            if h1 > h0 or w1 > w0:
                raise InvalidParameterError(
                    f"pyramid levels must shrink, got {sizes}; "
                    "the file's overviews are out of order, rebuild them with gdaladdo."
                )

    @property
    def downsample_factors(self) -> tuple[float, ...]:
        """Column-wise factor of each level relative to full resolution."""
        w0 = self.levels[0].width
        return tuple(w0 / lv.width for lv in self.levels)

    def __len__(self) -> int:
        return len(self.levels)

    def __getitem__(self, k: int) -> PyramidLevel:
        return self.levels[k]


def open_pyramid(
    source: str | os.PathLike[str],
    *,
    bands: tuple[int, ...] | None = None,
    layout: BandLayout = "last",
    max_levels: int | None = None,
) -> RasterPyramid:
    """Open a raster as a lazy multiscale pyramid from its overview levels.

    Parameters
    ----------
    source : str or path-like
        A GDAL-readable path or an ``http(s)://`` URL (read with range requests
        through GDAL's ``/vsicurl/``).
    bands : tuple of int, optional
        1-based bands to read. Default: the first three when the raster has
        three or more bands, else the first one.
    layout : {"last", "first", "none"}
        Band axis position, see :class:`PyramidLevel`.
    max_levels : int, optional
        Keep at most this many levels (full resolution counts as one).

    Returns
    -------
    RasterPyramid
        Level 0 is full resolution; one more level per overview.

    Raises
    ------
    SceneReadError
        When the raster cannot be opened.
    InvalidParameterError
        When a band index is outside ``1..count``.

    Examples
    --------
    >>> import numpy as np, rasterio, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.tif")
    >>> with rasterio.open(path, "w", driver="GTiff", width=64, height=32, count=1,
    ...                    dtype="uint8") as ds:
    ...     ds.write(np.arange(64 * 32, dtype="uint8").reshape(1, 32, 64))
    >>> pyr = open_pyramid(path, layout="none")
    >>> pyr[0].shape, int(pyr[0][1, 2])
    ((32, 64), 66)
    """
    path = _normalise_source(source)
    try:
        with gdal_env(path), rasterio.open(path) as ds:
            count = ds.count
            height, width = ds.height, ds.width
            dtype = np.dtype(ds.dtypes[0])
            factors = ds.overviews(1) if count else []
    except RasterioIOError as exc:
        raise SceneReadError(
            f"could not open {os.fspath(source)} as a raster: {exc}; "
            "check the path or URL and that GDAL can read the format."
        ) from exc
    if bands is None:
        bands = (1, 2, 3) if count >= 3 and layout != "none" else (1,)
    bands = tuple(int(b) for b in bands)
    bad = [b for b in bands if not 1 <= b <= count]
    if bad:
        raise InvalidParameterError(
            f"bands must be between 1 and {count} for {os.fspath(source)}, got {bad}; "
            "pick bands the file has."
        )
    levels = [PyramidLevel(path, None, bands, height, width, dtype, layout)]
    for k, _factor in enumerate(factors):
        # ask GDAL for the true overview size (rounding differs between writers)
        try:
            with gdal_env(path), rasterio.open(path, overview_level=k) as ov:
                h, w = ov.height, ov.width
        except RasterioIOError:  # pragma: no cover - listed but unreadable overview
            log.warning("overview %d of %s is listed but cannot be read; skipped", k, path)
            break
        levels.append(PyramidLevel(path, k, bands, h, w, dtype, layout))
        if max_levels is not None and len(levels) >= max_levels:
            break
    log.debug("opened %s as a %d-level pyramid", path, len(levels))
    return RasterPyramid(tuple(levels), bands)
