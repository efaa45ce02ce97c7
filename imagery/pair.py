"""The two scenes on one grid (:class:`AlignedPair`) and which of their bands are compared."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from satdelta.imagery.errors import BandMismatchError, InvalidParameterError
from satdelta.imagery.scene import Scene

__all__ = ["AlignedPair", "match_bands"]

log = logging.getLogger(__name__)


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
        "Pick the same bands from each with bands=/--bands "
        f"(e.g. --bands {','.join(map(str, range(1, min(before.count, after.count, 3) + 1)))})."
    )
