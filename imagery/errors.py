"""Errors raised by satdelta.

Every error is a :class:`SatdeltaError` and also the builtin it narrows (as
rasterio does with ``RasterioIOError(RasterioError, OSError)``), so callers
can catch either.  Messages say what was expected, what came, and what to do;
front-ends print them as one line.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from satdelta.errors import SatdeltaError

__all__ = [
    "SatdeltaError",
    "SceneReadError",
    "RasterTooLargeError",
    "NoOverlapError",
    "AlignmentError",
    "BandMismatchError",
    "InvalidParameterError",
    "OutputError",
    "AreaOfInterestError",
    "FetchError",
    "StacError",
    "TileError",
    "nearest_existing",
    "one_line",
    "write_failure",
]


class SceneReadError(SatdeltaError, OSError):
    """A raster could not be opened or read."""


class RasterTooLargeError(SatdeltaError, MemoryError):
    """A raster is too large to hold in memory whole."""


class NoOverlapError(SatdeltaError, ValueError):
    """Before and after scenes do not cover the same ground."""


class AlignmentError(SatdeltaError, ValueError):
    """The residual shift between the scenes is beyond the allowed limit."""


class BandMismatchError(SatdeltaError, ValueError):
    """The scenes' bands cannot be matched to each other."""


class InvalidParameterError(SatdeltaError, ValueError):
    """A method, threshold or other option is out of its allowed range."""


class AreaOfInterestError(InvalidParameterError):
    """An area of interest is malformed, empty, not in lon/lat or outside the scene."""


class OutputError(SatdeltaError, OSError):
    """An output file or directory could not be written."""


class FetchError(SceneReadError):
    """A remote file could not be fetched (not found, timed out, truncated, no range support)."""

    #: The HTTP status that ended the fetch, when the server answered with one.
    status: int | None = None


class StacError(SatdeltaError, ValueError):
    """A STAC item, search or asset choice gave nothing satdelta can use."""


class TileError(SatdeltaError, OSError):
    """A web tile service could not be mosaicked for the area asked for."""


def one_line(exc: BaseException | str) -> str:
    r"""An error's message folded onto one line (what every front-end shows).

    Examples
    --------
    >>> one_line(ValueError("no such file: a.tif.\n  Check the path."))
    'no such file: a.tif. Check the path.'
    """
    return " ".join(str(exc).split())


#: Free bytes under which a failed write is put down to a full disk.
FULL_DISK_BYTES = 1 << 20


def write_failure(path: Path, exc: BaseException) -> OutputError:
    """The one-line :class:`OutputError` for a failed write of ``path``: a full disk said so
    (GDAL's own words, e.g. "Write failed. See previous exception", do not)."""
    reason = one_line(exc).rstrip(".")
    try:
        full = shutil.disk_usage(nearest_existing(path)).free < FULL_DISK_BYTES
    except OSError:
        full = False
    if full:
        return OutputError(
            f"cannot write {path}: the disk is full ({reason}). Free some space or pick "
            "another output folder."
        )
    return OutputError(
        f"cannot write {path}: {reason}. Check that the folder exists, is writable and has "
        "free space."
    )


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest parent that exists (a folder not made yet is asked there)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
