"""COG overview levels computed in numpy, strip by strip, as GDAL's COG driver computes them.

:func:`cog_overview_shapes` gives the levels GDAL's COG driver makes for a raster;
:class:`OverviewStep` makes one level from the level above it (GDAL computes each level from
the previous one), for any band of output rows, so a caller can stream a level in strips
from a file in bounded memory. Two of GDAL's resamplings are reproduced:

* ``"average"`` on float data whose nodata is NaN: the mean of the valid (non-NaN) source
  pixels a destination pixel covers, each weighted by the fraction of it that the
  destination pixel covers (GDAL >= 3.1 weighs partial pixels: a level of odd size has a
  ratio slightly above 2); NaN where none is valid. On even sizes this is the mean of the
  valid pixels of each 2 x 2 cell.
* ``"nearest"``: destination pixel ``j`` takes source pixel ``floor(j * ratio + 0.5)``
  (the top-left pixel of each 2 x 2 cell on even sizes), whatever its value.

``tests/imagery/test_overviews.py`` compares both with GDAL's own overviews of the same
raster, on odd sizes and all-NaN cells. Design notes: ``docs/design-blocks.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from satdelta.imagery.errors import InvalidParameterError

__all__ = ["OverviewStep", "cog_overview_shapes", "overview_steps"]

OverviewResampling = Literal["average", "nearest"]


def cog_overview_shapes(shape: tuple[int, int], blocksize: int) -> list[tuple[int, int]]:
    """The (rows, cols) of each overview level GDAL's COG driver makes by default.

    Both sides are halved (rounding down, at least 1) while either is larger than the tile.

    Examples
    --------
    >>> cog_overview_shapes((8192, 8192), 512)
    [(4096, 4096), (2048, 2048), (1024, 1024), (512, 512)]
    >>> cog_overview_shapes((301, 333), 128)
    [(150, 166), (75, 83)]
    """
    rows, cols = shape
    levels = []
    while rows > blocksize or cols > blocksize:
        rows, cols = max(1, rows // 2), max(1, cols // 2)
        levels.append((rows, cols))
    return levels


@dataclass(frozen=True)
class _AxisTaps:
    """How one axis of a level is made from the level above: ``out[j]`` from ``index[j, :]``.

    ``halving`` (source exactly twice the destination) is the fast case: the taps are
    ``2j`` and ``2j + 1`` (average) or ``2j`` (nearest), done with strided slices.
    """

    n_src: int
    n_dst: int
    resampling: OverviewResampling
    index: np.ndarray = field(init=False)  # (n_dst, T) int
    weight: np.ndarray = field(init=False)  # (n_dst, T) float64, 0 for unused taps

    def __post_init__(self) -> None:
        ratio = self.n_src / self.n_dst
        j = np.arange(self.n_dst)
        if self.resampling == "nearest":
            index = np.minimum((j * ratio + 0.5).astype(np.int64), self.n_src - 1)[:, None]
            weight = np.ones(index.shape)
        else:  # the part of each source pixel [k, k + 1) inside [j * ratio, (j + 1) * ratio)
            lo, hi = j * ratio, (j + 1) * ratio
            index = np.floor(lo).astype(np.int64)[:, None] + np.arange(int(np.ceil(ratio)) + 1)
            weight = np.minimum(hi[:, None], index + 1) - np.maximum(lo[:, None], index)
            weight = np.where((weight > 0) & (index < self.n_src), weight, 0.0)
            index = np.minimum(index, self.n_src - 1)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "weight", weight)

    @property
    def halving(self) -> bool:
        return self.n_src == 2 * self.n_dst

    def source_span(self, dst: slice) -> slice:
        """The source indexes that destination indexes ``dst`` read."""
        if self.halving:
            return slice(2 * dst.start, 2 * dst.stop)
        used = self.weight[dst] > 0
        return slice(int(self.index[dst][used].min()), int(self.index[dst][used].max()) + 1)

    def reduce(self, a: np.ndarray, axis: int, dst: slice, offset: int) -> np.ndarray:
        """Weighted sums (or picks) along ``axis`` of ``a``, whose index 0 is source ``offset``."""
        a = np.moveaxis(a, axis, 0)
        if self.halving:
            n = 2 * (dst.stop - dst.start)
            out = a[0:n:2] if self.resampling == "nearest" else a[0:n:2] + a[1:n:2]
        else:
            # taps of weight 0 may point past the rows given: any row will do
            index = np.minimum(self.index[dst] - offset, len(a) - 1)
            weight = self.weight[dst]
            if self.resampling == "nearest":
                out = a[index[:, 0]]
            else:
                shape = (-1,) + (1,) * (a.ndim - 1)
                out = sum(
                    a[index[:, t]] * weight[:, t].reshape(shape) for t in range(index.shape[1])
                )
        return np.moveaxis(out, 0, axis)


@dataclass(frozen=True)
class OverviewStep:
    """One overview level made from the level above it (or the full resolution).

    Parameters
    ----------
    src_shape, dst_shape : tuple of int
        (rows, cols) of the level read and of the level made.
    resampling : {"average", "nearest"}
        ``"average"`` is for float data whose nodata is NaN (NaN pixels are skipped).

    Examples
    --------
    >>> nan = np.nan
    >>> src = np.array([[1, 3, nan, nan], [5, nan, nan, nan]], np.float32)
    >>> step = OverviewStep((2, 4), (1, 2), "average")
    >>> step.apply(src.copy(), slice(0, 1))
    array([[ 3., nan]], dtype=float32)
    >>> OverviewStep((2, 4), (1, 2), "nearest").apply(src.copy(), slice(0, 1))
    array([[ 1., nan]], dtype=float32)
    """

    src_shape: tuple[int, int]
    dst_shape: tuple[int, int]
    resampling: OverviewResampling
    rows: _AxisTaps = field(init=False, repr=False)
    cols: _AxisTaps = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.resampling not in ("average", "nearest"):
            raise InvalidParameterError(
                f"overview resampling must be 'average' or 'nearest'; got {self.resampling!r}."
            )
        if min(self.dst_shape) < 1 or any(
            d > s for d, s in zip(self.dst_shape, self.src_shape, strict=True)
        ):
            raise InvalidParameterError(
                f"an overview level must be smaller than its source and not empty; got "
                f"{self.dst_shape} from {self.src_shape}."
            )
        object.__setattr__(self, "rows", _AxisTaps(self.src_shape[0], self.dst_shape[0],
                                                   self.resampling))  # fmt: skip
        object.__setattr__(self, "cols", _AxisTaps(self.src_shape[1], self.dst_shape[1],
                                                   self.resampling))  # fmt: skip

    def source_rows(self, rows: slice) -> slice:
        """The source rows that destination ``rows`` (a slice with start and stop) read."""
        return self.rows.source_span(rows)

    def apply(self, src: np.ndarray, rows: slice) -> np.ndarray:
        """Destination ``rows`` from ``src``, the source rows ``source_rows(rows)``.

        Parameters
        ----------
        src : (M, N) ndarray
            The source rows, all columns; with ``"average"`` it is overwritten (NaN set to 0).
        rows : slice
            Destination rows, with start and stop.

        Returns
        -------
        (rows, C) ndarray
            In the source's dtype.
        """
        offset = self.source_rows(rows).start
        every = slice(0, self.dst_shape[1])
        if self.resampling == "nearest":
            picked = self.rows.reduce(src, 0, rows, offset)
            return np.ascontiguousarray(self.cols.reduce(picked, 1, every, 0))
        nan = src != src
        np.copyto(src, 0, where=nan)
        valid = np.logical_not(nan, out=nan).view(np.uint8)
        if not (self.rows.halving and self.cols.halving):
            valid = valid.astype(np.float32)  # weights: sums of fractions
        total = self.rows.reduce(self.cols.reduce(src, 1, every, 0), 0, rows, offset)
        count = self.rows.reduce(self.cols.reduce(valid, 1, every, 0), 0, rows, offset)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (total / count).astype(src.dtype, copy=False)


def overview_steps(
    shape: tuple[int, int], blocksize: int, resampling: OverviewResampling
) -> list[OverviewStep]:
    """The steps that make GDAL's COG overview levels of a ``shape`` raster, largest first.

    Examples
    --------
    >>> [s.dst_shape for s in overview_steps((1000, 600), 256, "nearest")]
    [(500, 300), (250, 150)]
    """
    shapes = [(shape[0], shape[1]), *cog_overview_shapes(shape, blocksize)]
    return [OverviewStep(shapes[k], shapes[k + 1], resampling) for k in range(len(shapes) - 1)]
