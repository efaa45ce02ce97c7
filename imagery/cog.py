"""Write rasters as Cloud Optimized GeoTIFFs (tiled, compressed, with overviews).

Uses GDAL's COG driver (GDAL >= 3.1, present in the rasterio wheel), so the layout (IFDs first,
tiles in overview-then-full-resolution order) is exactly what COG readers expect and what GDAL's
``validate_cloud_optimized_geotiff.py`` checks.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import sys
import tempfile
import threading
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
import rasterio.shutil
import rasterio.windows
from affine import Affine
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from satdelta.imagery.errors import InvalidParameterError, OutputError, write_failure
from satdelta.imagery.loaded_libraries import loaded_library_paths
from satdelta.imagery.overviews import OverviewResampling, OverviewStep, overview_steps
from satdelta.imagery.parallel import run_jobs

__all__ = ["libtiff_quiet", "streamed_cog", "write_cog"]

log = logging.getLogger(__name__)

#: Source pixels one strip of the overview pass reads (16 MB of float32), at least 32 rows.
OVERVIEW_STRIP_PX = 2**22


def write_cog(
    path: str | os.PathLike[str],
    data: np.ndarray,
    *,
    transform: Affine,
    crs: CRS | None,
    nodata: float | None = None,
    band_names: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    overview_resampling: Literal["nearest", "average", "mode"] = "nearest",
    blocksize: int = 512,
    compress: Literal["deflate", "lzw", "zstd"] = "deflate",
) -> Path:
    """Write ``data`` to ``path`` as a COG.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (overwritten).
    data : (B, M, N) or (M, N) ndarray
        Pixels; the file takes the array's dtype.
    transform : affine.Affine
        Grid transform.
    crs : rasterio.crs.CRS or None
        Grid CRS; None writes a plain (not georeferenced) tiled TIFF with the same layout.
    nodata : float, optional
        Nodata value recorded in the file (NaN allowed for float data).
    band_names : sequence of str, optional
        Band descriptions.
    tags : mapping of str to str, optional
        Dataset metadata.
    overview_resampling : {"nearest", "average", "mode"}, default "nearest"
        Use "nearest"/"mode" for categorical masks, "average" for continuous scores.
    blocksize : int, default 512
        Tile size in pixels (a multiple of 16).
    compress : {"deflate", "lzw", "zstd"}, default "deflate"

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        When the file cannot be written.
    """
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3 or 0 in arr.shape:
        raise InvalidParameterError(
            f"expected a (band, row, col) or (row, col) array; got shape {np.shape(data)}."
        )
    if blocksize % 16:
        raise InvalidParameterError(f"blocksize must be a multiple of 16; got {blocksize}.")
    if band_names is not None and len(band_names) != arr.shape[0]:
        raise InvalidParameterError(f"expected {arr.shape[0]} band names, got {len(band_names)}.")
    out = Path(path)
    profile = {
        "driver": "COG",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "nodata": nodata,
        "compress": compress,
        "blocksize": blocksize,
        "predictor": "YES",
        "overview_resampling": overview_resampling,
        "bigtiff": "IF_SAFER",
    }
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    try:
        with warnings.catch_warnings(), _stderr_of_c_code() as c_messages:
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(out, "w", **profile) as dst:
                dst.write(arr)
                if band_names is not None:
                    for i, name in enumerate(band_names, start=1):
                        dst.set_band_description(i, name)
                if tags:
                    dst.update_tags(**{k: str(v) for k, v in tags.items()})
    except (RasterioIOError, OSError, CPLE_BaseError) as exc:
        said = " ".join(" ".join(c_messages).split())  # libtiff's words, e.g. "No space left"
        raise OutputError(
            f"cannot write {out}: {' '.join(str(exc).split())}{f' ({said})' if said else ''}. "
            "Check that the folder exists, is writable and has free space."
        ) from exc
    log.debug("wrote COG %s (%s, %d x %d x %d)", out, arr.dtype, *arr.shape)
    return out


@contextmanager
def streamed_cog(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int],
    dtype: str,
    transform: Affine,
    crs: CRS | None,
    nodata: float | None = None,
    band_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    overview_resampling: Literal["nearest", "average", "mode"] = "nearest",
    blocksize: int = 512,
    compress: Literal["deflate", "lzw", "zstd", "none"] = "deflate",
    level: int | None = None,
) -> Iterator[Callable[[np.ndarray, int, int], None]]:
    """A one-band COG written window by window, in bounded memory.

    Yields ``write(data, row_off, col_off)`` for (M, N) windows. The windows go to a tiled,
    uncompressed GeoTIFF beside ``path``; when the block ends without error, GDAL's COG
    driver copies it to ``path`` with ``compress`` at ``level`` (GDAL's default when None),
    and the temporary files are removed. The overview levels are those the COG driver
    makes; with ``"nearest"``, or ``"average"`` on float data whose nodata is NaN, they are
    computed here (:mod:`satdelta.imagery.overviews`: GDAL's values, in a fraction of its
    time), each level from the one above in strips over the threads, written to its own
    temporary file and handed to the COG driver through a VRT's ``<Overview>`` elements;
    otherwise GDAL computes them as :func:`write_cog` does. When the first level halves both
    sides, it is made from the windows as they are written (``"nearest"``: any window;
    ``"average"``: windows on even rows and columns, else it is made from the file at the
    end), so that the end of the block reads the full resolution once (for the COG copy)
    instead of twice. ``write`` may be called from several threads (one writes at a time).

    ZSTD at level 1 copies a float score about 3x faster than DEFLATE; ``compress="none"``
    (no predictor) about 2.5x faster again, for data that hardly compresses (a float score
    of noisy imagery: ZSTD saves about 20 %).

    Raises
    ------
    OutputError
        When a file cannot be written.
    """
    out = Path(path)
    tmp = out.with_name(f".{out.name}.tiles.tif")
    staged = [tmp]  # every temporary file, removed at the end
    profile: dict[str, object] = {
        "driver": "GTiff", "width": shape[1], "height": shape[0], "count": 1,
        "dtype": dtype, "nodata": nodata, "tiled": True, "blockxsize": blocksize,
        "blockysize": blocksize, "bigtiff": "IF_SAFER",
    }  # fmt: skip
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    ours = _overviews_made_here(dtype, nodata, overview_resampling)
    steps = [] if ours is None else overview_steps(shape, blocksize, ours)
    # the first level made from the windows as they come, when it halves both sides
    first = steps[0] if steps and steps[0].rows.halving and steps[0].cols.halving else None
    level1 = _level_path(tmp, 1)  # the same file _write_levels would make level 1 in
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with contextlib.ExitStack() as files:
                dst = files.enter_context(rasterio.open(tmp, "w", **profile))
                below = None
                if first is not None:
                    staged.append(level1)
                    below = files.enter_context(rasterio.open(
                        level1, "w", driver="GTiff", width=first.dst_shape[1],
                        height=first.dst_shape[0], count=1, dtype=dtype, nodata=nodata,
                        tiled=True, blockxsize=blocksize, blockysize=blocksize,
                        bigtiff="IF_SAFER",
                    ))  # fmt: skip
                lock = threading.Lock()
                exact = [below is not None]  # level 1 holds every window written so far

                def write(data: np.ndarray, row_off: int, col_off: int) -> None:
                    win = rasterio.windows.Window(col_off, row_off, data.shape[1], data.shape[0])
                    part = (
                        _level_of_window(first, data, row_off, col_off)
                        if first is not None and exact[0]
                        else None
                    )
                    with lock:  # one writer at a time (GDAL datasets are not thread-safe)
                        dst.write(data, 1, window=win)
                        if part is None:
                            exact[0] = False
                        elif part[0].size:
                            assert below is not None
                            pixels, (r, c) = part
                            below.write(pixels, 1, window=rasterio.windows.Window(
                                c, r, pixels.shape[1], pixels.shape[0]))  # fmt: skip

                yield write
                if band_name is not None:
                    dst.set_band_description(1, band_name)
                if tags:
                    dst.update_tags(**{k: str(v) for k, v in tags.items()})
            extra: dict[str, object] = {} if level is None else {"level": level}
            if compress != "none":
                extra["predictor"] = "YES"
            source = tmp
            if steps:
                source = tmp.with_name(f"{tmp.stem}.vrt")
                staged.append(source)
                if exact[0]:  # level 1 made already: the others from it
                    later = _write_levels(
                        level1, steps[1:], dtype, nodata, blocksize, staged, first_number=2,
                        named_after=tmp,
                    )  # fmt: skip
                    levels = [level1, *later]
                else:
                    levels = _write_levels(tmp, steps, dtype, nodata, blocksize, staged)
                _vrt_with_overviews(tmp, source, levels)
                extra["overviews"] = "FORCE_USE_EXISTING"
            rasterio.shutil.copy(
                source, out, driver="COG", compress=compress.upper(), blocksize=blocksize,
                overview_resampling=overview_resampling,
                bigtiff="IF_SAFER", num_threads="ALL_CPUS", **extra,
            )  # fmt: skip
    except OutputError:
        raise  # said already (another output, or the run's temporary files)
    except (RasterioIOError, OSError, CPLE_BaseError) as exc:
        raise write_failure(out, exc) from exc
    finally:
        for file in staged:
            file.unlink(missing_ok=True)


@contextmanager
def libtiff_quiet() -> Iterator[None]:
    """libtiff's process-wide error printer off inside the block (put back after).

    GDAL reports a failed write of a GeoTIFF in its own error (which
    :func:`~satdelta.imagery.errors.write_failure` turns into one line), but its file layer
    also calls libtiff's global error handler, which prints ``_tiffWriteProc: No space left
    on device.`` straight to file descriptor 2 from whichever thread writes: lines above the
    one-line message. The block runner writes from worker threads, where
    :func:`_stderr_of_c_code` cannot catch them. Where no libtiff is found in the process
    (not Linux), nothing is done.
    """
    libs = _loaded_libtiffs()
    previous = [(lib.TIFFSetErrorHandler(None), lib.TIFFSetErrorHandlerExt(None)) for lib in libs]
    try:
        yield
    finally:
        for lib, (plain, ext) in zip(libs, previous, strict=True):
            lib.TIFFSetErrorHandler(plain)
            lib.TIFFSetErrorHandlerExt(ext)


def _loaded_libtiffs() -> list[ctypes.CDLL]:
    """The libtiffs this process has loaded (GDAL's among them; Linux), else none."""
    libs = []
    for path in loaded_library_paths("libtiff"):
        try:
            lib = ctypes.CDLL(path)
            for name in ("TIFFSetErrorHandler", "TIFFSetErrorHandlerExt"):
                fn = getattr(lib, name)
                fn.argtypes, fn.restype = [ctypes.c_void_p], ctypes.c_void_p
        except (OSError, AttributeError):  # not a libtiff after all
            continue
        libs.append(lib)
    return libs


def _overviews_made_here(
    dtype: str, nodata: float | None, resampling: str
) -> OverviewResampling | None:
    """The resampling :mod:`~satdelta.imagery.overviews` does as GDAL would, or None."""
    if resampling == "nearest":
        return "nearest"
    nan_nodata = nodata is not None and math.isnan(nodata)
    if resampling == "average" and np.dtype(dtype).kind == "f" and nan_nodata:
        return "average"
    return None


def _level_of_window(
    step: OverviewStep, data: np.ndarray, row_off: int, col_off: int
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """The pixels of the level ``step`` makes (halving both sides) that a window written at
    (``row_off``, ``col_off``) decides alone, and where they go; None when it decides none
    whole (an ``"average"`` window off the 2 x 2 cells: the level is then made from the file).

    ``"nearest"`` takes each cell's top-left pixel, so any window decides the level pixels
    whose top-left pixel it holds (possibly none: an empty array). ``"average"`` needs the
    window's edges on even rows and columns; its cells' means are then the same numbers
    :meth:`OverviewStep.apply` gives on the whole raster.
    """
    h, w = data.shape
    if step.resampling == "nearest":
        r, c = -(-row_off // 2), -(-col_off // 2)
        return np.ascontiguousarray(data[row_off % 2 :: 2, col_off % 2 :: 2]), (r, c)
    if row_off % 2 or col_off % 2 or h % 2 or w % 2:
        return None
    cells = OverviewStep((h, w), (h // 2, w // 2), step.resampling)
    return cells.apply(data.copy(), slice(0, h // 2)), (row_off // 2, col_off // 2)


def _level_path(tmp: Path, k: int) -> Path:
    """The temporary file of overview level ``k`` of the staging file ``tmp``."""
    return tmp.with_name(f"{tmp.stem}.level{k}.tif")


def _write_levels(
    tmp: Path,
    steps: Sequence[OverviewStep],
    dtype: str,
    nodata: float | None,
    blocksize: int,
    staged: list[Path],
    *,
    first_number: int = 1,
    named_after: Path | None = None,
) -> list[Path]:
    """Each overview level of ``tmp`` in a tiled GeoTIFF beside it, each from the one above,
    named after ``named_after`` (default ``tmp``): ``.level{first_number}.tif``,
    ``.level{first_number + 1}.tif``...

    The files are added to ``staged`` before they are created.
    """
    levels: list[Path] = []
    source = tmp
    base = tmp if named_after is None else named_after
    for k, step in enumerate(steps, start=first_number):
        level = _level_path(base, k)
        staged.append(level)
        _write_level(source, level, step, dtype, nodata, blocksize)
        levels.append(level)
        source = level
    return levels


def _write_level(
    source: Path, level: Path, step: OverviewStep, dtype: str, nodata: float | None,
    blocksize: int,
) -> None:  # fmt: skip
    """One level from ``source``, in strips of rows over the threads.

    A strip reads about :data:`OVERVIEW_STRIP_PX` source pixels through its own handle
    (GDAL handles are not thread-safe) and writes under a lock.
    """
    rows, cols = step.dst_shape
    lock = threading.Lock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            level, "w", driver="GTiff", width=cols, height=rows, count=1, dtype=dtype,
            nodata=nodata, tiled=True, blockxsize=blocksize, blockysize=blocksize,
            bigtiff="IF_SAFER",
        ) as dst:  # fmt: skip

            def one_strip(part: slice) -> None:
                span = step.source_rows(part)
                with rasterio.open(source) as src:
                    window = rasterio.windows.Window(
                        0, span.start, src.width, span.stop - span.start
                    )
                    data = src.read(1, window=window)
                pixels = step.apply(data, part)
                with lock:
                    dst.write(pixels, 1, window=rasterio.windows.Window(
                        0, part.start, pixels.shape[1], pixels.shape[0]))  # fmt: skip

            run_jobs(one_strip, _strips(step, blocksize))


def _strips(step: OverviewStep, blocksize: int) -> list[slice]:
    """Bands of destination rows that read about :data:`OVERVIEW_STRIP_PX` source pixels."""
    rows = step.dst_shape[0]
    per_strip = max(32, OVERVIEW_STRIP_PX // (2 * step.src_shape[1]))
    if per_strip >= blocksize:  # whole tile rows: no tile written by two strips
        per_strip -= per_strip % blocksize
    return [slice(r, min(rows, r + per_strip)) for r in range(0, rows, per_strip)]


def _vrt_with_overviews(tmp: Path, vrt: Path, levels: Sequence[Path]) -> None:
    """A VRT of ``tmp`` (its georeferencing, nodata, tags) whose overviews are ``levels``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        rasterio.shutil.copy(tmp, vrt, driver="VRT")
    tree = ET.parse(vrt)
    band = tree.getroot().find("VRTRasterBand")
    if band is None:  # GDAL's VRT driver always writes one per band
        raise OSError(f"GDAL wrote a VRT without a band: {vrt}")
    for level in levels:
        overview = ET.SubElement(band, "Overview")
        ET.SubElement(overview, "SourceFilename", relativeToVRT="0").text = str(level.absolute())
        ET.SubElement(overview, "SourceBand").text = "1"
    tree.write(vrt, encoding="utf-8")


@contextmanager
def _stderr_of_c_code() -> Iterator[list[str]]:
    """Collect what C libraries (libtiff under GDAL) print straight to file descriptor 2.

    Yields a list that holds the text once the block ends.  A failed write then says it in
    its one-line error instead of leaving stray lines above it; after a block that raised
    nothing, the text is passed on to stderr unchanged.  Other threads write as they are.
    """
    collected: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield collected  # fd 2 is the whole process's: only the main thread may swap it
        return
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        yield collected
        return
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield collected
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            collected.append(text)
            if text and not failed:
                sys.stderr.write(text)
