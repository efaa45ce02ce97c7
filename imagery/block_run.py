"""One pair of any size in bounded memory: fit on a sample, apply per block, stream to COG.

The I/O edge of :mod:`satdelta.imagery.blocks`: :func:`detect_in_files` opens both scenes,
measures the residual shift on a sample (as :func:`~satdelta.imagery.align.coregister`
does), fits the detector on a fixed set of patches, then reads each block with its halo
(the after scene warped onto the block's window with the shift removed, GDAL's warper via
:func:`~satdelta.imagery.warp.resample_to_grid`), applies the detector in threads and
streams ``score.tif`` and ``mask.tif`` into tiled COGs; the candidates are joined across
blocks and written to ``changes.geojson``. Design, limits and figures:
``docs/design-blocks.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window
from satdelta.imagery.align import coregister
from satdelta.imagery.allocator import blocks_allocator, blocks_done
from satdelta.imagery.block_join import (
    CandidateCollector,
    GroupIndex,
    StitchSettings,
    whole_in_block,
)
from satdelta.imagery.block_sample import (
    RegionShift,
    fit_on_patches,
    measure_region_shift,
    tile_patch_windows,
)
from satdelta.imagery.block_summary import block_run_summary
from satdelta.imagery.block_tiles import start_prefetch, tile_caches, tile_edge_first_blocks
from satdelta.imagery.blocks import (
    Block,
    BlockLabels,
    apply_window,
    plan_blocks,
    window_halo_px,
)
from satdelta.imagery.detect import resolve_auto
from satdelta.imagery.detector import ChangeDetector
from satdelta.imagery.errors import InvalidParameterError, NoOverlapError
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.pair import match_bands
from satdelta.imagery.parallel import run_jobs, thread_count
from satdelta.imagery.radiometry import finite_pixels
from satdelta.imagery.scene import Scene, handles_kept_open, open_scene, with_checksum
from satdelta.imagery.spill import (
    RankedCandidates,
    RecordSpill,
    packed_pieces,
    unpacked_pieces,
)
from satdelta.imagery.tile_cache import TileCache, TilePrefetch
from satdelta.imagery.warp import translate_window

__all__ = [
    "BLOCK_PX",
    "BLOCKS_FROM_PX",
    "check_runner",
    "Progress",
    "ProgressThrottle",
    "detect_in_files",
    "tile_edge_first_blocks",
    "uses_blocks",
]

log = logging.getLogger(__name__)

#: Side (pixels) of a block's own area.
BLOCK_PX = 1024
#: Grids of at least this many pixels run block by block by default (``runner="auto"``);
#: smaller ones whole, as before (their results, and benchmarks/quality.py's, unchanged).
BLOCKS_FROM_PX = 4096 * 4096
#: Side of the square the residual shift is measured in (the centre of the grid).
SHIFT_REGION_PX = 1024
#: GDAL block cache (MB) while the shift's samples are read: the square's tiles, for both
#: scenes and threads (16 tiles of 2 MB on the benchmark's after scene).
SAMPLES_GDAL_CACHE_MB = 128
#: Fitting sample: at most this many pixels in patches of FIT_PATCH_PX (plus halo).
FIT_SAMPLE_PX = 16 * 384 * 384
FIT_PATCH_PX = 384
#: GDAL block cache (MB) while the outputs are written (the COG copies read through it).
GDAL_CACHE_MB = 32
#: GDAL block cache (MB) during the blocks: the inputs' tiles are kept decoded by
#: :class:`~satdelta.imagery.tile_cache.TileCache`, GDAL's cache only passes them on (and
#: holds score.tif's tiles until they are written).
BLOCKS_GDAL_CACHE_MB = 32

#: ``progress(stage, done, total)``: called as blocks finish (``total`` 0 for a stage
#: without steps); stages ``open``, ``align``, ``fit``, ``blocks``, ``candidates``, ``write``.
Progress = Callable[[str, int, int], None]


class ProgressThrottle:
    """Which :data:`Progress` reports to pass on: the first and the last of each stage
    always, the others at most one per ``min_interval_s`` (a run of thousands of blocks
    then does not flood a queue, a scheduler or a window).

    Examples
    --------
    >>> t = ProgressThrottle(60.0)
    >>> [t.due("blocks", 0, 9), t.due("blocks", 1, 9), t.due("blocks", 9, 9), t.due("fit", 0, 0)]
    [True, False, True, True]
    """

    def __init__(self, min_interval_s: float) -> None:
        self.min_interval_s = min_interval_s
        self._last: tuple[str, float] = ("", 0.0)

    def due(self, stage: str, done: int, total: int) -> bool:
        """Whether this report goes out (and, if so, it counts as the stage's latest)."""
        now = time.monotonic()
        last_stage, last_t = self._last
        if stage == last_stage and 0 < done < total and now - last_t < self.min_interval_s:
            return False
        self._last = (stage, now)
        return True


def _quiet(stage: str, done: int, total: int) -> None:
    return None


def _unsupported(options: DetectionOptions) -> list[str]:
    """The options of ``options`` the block runner cannot honour, named for a message."""
    return [
        name
        for name, why in (
            ("an area of interest (--aoi/--claim)", options.aoi is not None),
            ("local-gain normalisation", options.normalise == "local"),
            ("objects (--objects)", bool(options.objects)),
        )
        if why
    ]


def check_runner(options: DetectionOptions, runner: str = "auto") -> None:
    """Refuse a runner name that is not auto/whole/blocks, or "blocks" with an option it
    cannot honour (before any scene is opened).

    Raises
    ------
    InvalidParameterError
    """
    if runner not in ("auto", "whole", "blocks"):
        raise InvalidParameterError(f"runner must be auto, whole or blocks; got {runner!r}.")
    unsupported = _unsupported(options)
    if runner == "blocks" and unsupported:
        raise InvalidParameterError(
            f"the block runner does not support {', '.join(unsupported)}; run it with "
            "--runner whole (the whole grid in memory) or drop the option."
        )


def uses_blocks(
    before: Scene,
    options: DetectionOptions,
    runner: str = "auto",
    *,
    from_px: int = BLOCKS_FROM_PX,
) -> bool:
    """Whether a pair runs block by block: ``runner`` "blocks", or "auto" and a large grid.

    "auto" keeps the whole-array path for an area of interest, for local-gain normalisation
    (fitted on the whole grid) and for grids under ``from_px`` pixels
    (:data:`BLOCKS_FROM_PX`).

    Raises
    ------
    InvalidParameterError
        As :func:`check_runner`.
    """
    check_runner(options, runner)
    if runner == "auto":
        return not _unsupported(options) and before.width * before.height >= from_px
    return runner == "blocks"


@dataclass(frozen=True)
class _Pair:
    """The opened pair, its bands and the shift measured once for every window."""

    before: Scene
    after: Scene
    options: DetectionOptions
    shift: RegionShift  # measured on the central square (shift, sample, residual, note)
    bands: tuple[int, ...]
    before_bands: tuple[int, ...]
    after_bands: tuple[int, ...]
    # the blocks' tiles decoded once (before, after), for translated windows only
    tiles: tuple[TileCache, TileCache] | None = None

    def read(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Aligned before, after (float32, NaN where no data) and joint validity of a window."""
        win = _window(rows, cols)
        if self.options.resampling == "cubic":
            shape = (rows.stop - rows.start, cols.stop - cols.start)
            tiles = self.tiles
            moved = translate_window(
                self.after,
                crs=self.before.crs,
                transform=self.before.window_transform(win),
                shape=shape,
                bands=self.after_bands,
                shift_px=self.shift.shift_before_px,
                read_into=None if tiles is None else tiles[1].read_into,
                finite_source=tiles is not None and tiles[1].finite,
            )
            if moved is not None:  # the after scene on the before grid: a pure translation
                if tiles is None:
                    b, valid = self.before.read(win, bands=self.before_bands)
                else:
                    b, valid = tiles[0].read(win)
                if not valid.all():
                    b[:, ~valid] = np.nan
                af, after_valid = moved
                valid &= after_valid
                if tiles is None or not tiles[0].finite:
                    valid &= finite_pixels(b, af)
                return b, af, valid
        try:
            a = coregister(
                self.before,
                self.after,
                bands=self.options.bands,
                max_shift_px=self.options.max_shift_px,
                resampling=self.options.resampling,
                window=win,
                shift_px=self.shift.shift_before_px,
            )
        except NoOverlapError:  # this window only: nothing in common here
            n = len(self.bands)
            shape = (rows.stop - rows.start, cols.stop - cols.start)
            return (
                np.full((n, *shape), np.nan, np.float32),
                np.full((n, *shape), np.nan, np.float32),
                np.zeros(shape, bool),
            )
        b, af = a.before, a.after
        return b, af, a.valid & finite_pixels(b, af)


def _with_tiles(
    pair: _Pair, blocks: Sequence[Block], prefetch: TilePrefetch | None = None
) -> _Pair:
    """``pair`` reading the blocks' windows from tiles decoded once (:func:`tile_caches`),
    when the after scene comes onto them by a pure translation (else ``pair`` itself); with
    the tiles ``prefetch`` decoded ahead."""
    if pair.options.resampling != "cubic":
        return pair
    wins = [_window(b.outer_rows, b.outer_cols) for b in blocks]
    bands = (pair.before_bands, pair.after_bands)
    tiles = tile_caches(pair.before, pair.after, bands, pair.shift.shift_before_px, wins, prefetch)
    return pair if tiles is None else dataclasses.replace(pair, tiles=tiles)


def _window(rows: slice, cols: slice) -> Window:
    return Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)


def _open_and_align(before: Scene, after: Scene, options: DetectionOptions) -> _Pair:
    """The pair with the shift measured on the central square; the residual after correction
    on the square's sample is measured beside the fit (:func:`_fit` starts it)."""
    bidx, aidx = match_bands(before, after, options.bands)
    # a handle per thread: the samples' overlapping reads decode each tile once per thread
    with handles_kept_open([before, after], cache_mb=SAMPLES_GDAL_CACHE_MB):
        shift = measure_region_shift(
            before, after, options, region_px=SHIFT_REGION_PX, before_bands=bidx
        )
        pair = _Pair(before, after, options, shift, tuple(range(len(bidx))), bidx, aidx)
        shift = shift.measure_residual(pair.read, options.max_shift_px)
    return dataclasses.replace(pair, shift=shift)


def _fit(pair: _Pair, halo: int) -> tuple[ChangeDetector, tuple[np.ndarray, np.ndarray], int]:
    """The detector fitted on a mosaic of patches inside the before scene's tiles (a patch
    and all its reads in one tile: :func:`tile_patch_windows`); band scales of it."""
    shape = (pair.before.height, pair.before.width)
    with pair.before.open() as src:
        tile = src.block_shapes[0]
    # a patch's reads reach its halo, the cubic taps and the largest shift past it
    reach = halo + 3 + int(math.ceil(pair.options.max_shift_px))
    wins = tile_patch_windows(shape, tile, reach, max_pixels=FIT_SAMPLE_PX, patch_px=FIT_PATCH_PX)
    with handles_kept_open([pair.before, pair.after], cache_mb=SAMPLES_GDAL_CACHE_MB):
        det, scales = fit_on_patches(
            pair.read,
            wins,
            halo,
            shape,
            len(pair.bands),
            pair.options,
            pixel_size_m=pair.shift.pixel_size_m or pair.options.pixel_size_m,
            band_names=pair.shift.band_names,
            beside=pair.shift.start_residual,  # the fit runs mostly on one thread
        )
    return det, scales, len(wins)


@dataclass
class _Kept:
    """What the blocks stage keeps in memory of a block for the candidates (its region sums
    and outlines wait in a :class:`~satdelta.imagery.spill.RecordSpill`)."""

    block: Block
    labels: BlockLabels


def _clear(
    write_mask: Callable[[np.ndarray, int, int], None], dropped: np.ndarray, b: Block
) -> None:
    """Write 0 (unchanged) over a block's pixels the size filter dropped (raster indexes)."""
    w = b.cols.stop - b.cols.start
    for index in dropped.tolist():
        write_mask(_UNCHANGED, b.rows.start + index // w, b.cols.start + index % w)


_UNCHANGED = np.zeros((1, 1), np.uint8)


def detect_in_files(
    before_source: str | os.PathLike[str] | Scene,
    after_source: str | os.PathLike[str] | Scene,
    outdir: str | os.PathLike[str],
    options: DetectionOptions = DetectionOptions(),
    *,
    block_px: int = BLOCK_PX,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Detect change block by block and write mask.tif, score.tif, changes.geojson, run.json.

    Parameters
    ----------
    before_source, after_source : str, os.PathLike or Scene
    outdir : str or os.PathLike
        Written as :func:`~satdelta.imagery.outputs.write_outputs` writes it.
    options : DetectionOptions
        As for :func:`~satdelta.imagery.pipeline.detection_stages`, without ``aoi``,
        ``objects`` or ``normalise="local"`` (see :func:`uses_blocks`).
    block_px : int
        Side of a block's own area.
    progress : callable, optional
        ``progress(stage, done, total)`` (:data:`Progress`); during the ``blocks`` stage it is
        called from the worker threads, one call at a time.

    Returns
    -------
    dict
        The run.json content.
    """
    check_runner(options, "blocks")
    with blocks_allocator():
        return _run_blocks(before_source, after_source, outdir, options, block_px, progress)


def _run_blocks(
    before_source: str | os.PathLike[str] | Scene,
    after_source: str | os.PathLike[str] | Scene,
    outdir: str | os.PathLike[str],
    options: DetectionOptions,
    block_px: int,
    progress: Progress,
) -> dict[str, Any]:
    from satdelta.imagery.outputs import check_output_space

    timings: dict[str, float] = {}
    t = time.perf_counter()
    progress("open", 0, 0)
    before = (
        before_source
        if isinstance(before_source, Scene)
        else open_scene(before_source, checksum=False)
    )
    after = (
        after_source
        if isinstance(after_source, Scene)
        else open_scene(after_source, checksum=False)
    )
    # a grid whose outputs cannot fit is refused before any pixel is read
    check_output_space((before.height, before.width), outdir, source=before.source)
    # the inputs' sha256 in the background, beside the alignment and the first pass
    hasher = ThreadPoolExecutor(1)
    checksums = hasher.map(with_checksum, (before, after))
    timings["open"] = round(time.perf_counter() - t, 4)
    prefetch = start_prefetch(before, after, options, block_px)
    try:
        return _aligned_and_fitted(
            before, after, outdir, options, block_px, progress, timings, hasher, checksums,
            prefetch,
        )  # fmt: skip
    finally:
        if prefetch is not None:
            prefetch.stop()


def _aligned_and_fitted(
    before: Scene,
    after: Scene,
    outdir: str | os.PathLike[str],
    options: DetectionOptions,
    block_px: int,
    progress: Progress,
    timings: dict[str, float],
    hasher: ThreadPoolExecutor,
    checksums: Iterator[Scene],
    prefetch: TilePrefetch | None,
) -> dict[str, Any]:
    from satdelta.imagery.cog import libtiff_quiet, streamed_cog
    from satdelta.imagery.outputs import MASK_NODATA, write_staged
    from satdelta.imagery.pipeline import scene_ref, scene_summary, software_versions

    t = time.perf_counter()
    progress("align", 0, 0)
    pair = _open_and_align(before, after, options)
    timings["align"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    progress("fit", 0, 0)
    score_method, _ = resolve_auto(
        len(pair.bands), pair.shift.band_names, options.method, options.normalise
    )
    probe_halo = 64 if score_method == "cues" else 16
    det, scales, n_patches = _fit(pair, probe_halo)
    timings["fit"] = round(time.perf_counter() - t, 4)
    shape = (before.height, before.width)
    px = before.pixel_size_m or options.pixel_size_m
    halo = window_halo_px(det)
    # a window reaches the halo, the cubic taps (1 before, 2 after) and the shift past its block
    reach = halo + 3 + int(math.ceil(max(abs(v) for v in pair.shift.shift_before_px)))
    first_px = tile_edge_first_blocks(before, block_px, reach)
    plan = plan_blocks(shape, block_px, halo, first_px)
    flat = [(i, j, b) for i, line in enumerate(plan) for j, b in enumerate(line)]
    transform, crs = before.transform, before.crs
    tags = {
        "satdelta_method": det.score.method,
        "satdelta_threshold": repr(det.threshold.threshold),
    }
    kept: dict[tuple[int, int], _Kept] = {}
    counted = [0, 0]  # changed and valid pixels
    stitch = StitchSettings.of(crs, px, scales)

    lock = threading.Lock()
    done = [0]

    def step(stage: str) -> None:
        with lock:
            done[0] += 1
            progress(stage, done[0], len(flat))

    def write_files(tmp: Path) -> tuple[list[str], dict[str, Any]]:
        # the candidates' spill from the start: the blocks hand it those within one block
        with (
            RecordSpill(tmp / ".blocks.spill") as spill,
            RankedCandidates(
                tmp / ".candidates.spill", threshold=det.threshold.threshold,
                georeferenced=crs is not None,
            ) as ranked,
        ):  # fmt: skip
            return write_through(tmp, spill, ranked)

    def write_through(
        tmp: Path, spill: RecordSpill, ranked: RankedCandidates
    ) -> tuple[list[str], dict[str, Any]]:
        t1 = time.perf_counter()
        files = {"score": contextlib.ExitStack(), "mask": contextlib.ExitStack()}
        write_score = files["score"].enter_context(streamed_cog(
            tmp / "score.tif", shape=shape, dtype="float32", transform=transform, crs=crs,
            nodata=float("nan"), band_name="score", tags=tags, overview_resampling="average",
            compress="none",  # noisy float scores: ZSTD saved 20 % at 2.5x the copy time
        ))  # fmt: skip
        # the COG copies (about 2 s at 8192²) in two threads beside the candidates: the
        # score's when the blocks end, the mask's once the size filter has cleared its
        # pixels; until its copy starts, a failure closes a file without a copy
        copier = ThreadPoolExecutor(2)
        copied: list[Future[None]] = []
        try:
            with contextlib.ExitStack() as mask_on_error:
                mask_on_error.push(files["mask"])
                with contextlib.ExitStack() as score_on_error:
                    score_on_error.push(files["score"])
                    write_mask = files["mask"].enter_context(streamed_cog(
                        tmp / "mask.tif", shape=shape, dtype="uint8", transform=transform,
                        crs=crs, nodata=MASK_NODATA, band_name="changed",
                        tags={**tags, "values": "1=changed 0=unchanged 255=nodata"},
                    ))  # fmt: skip
                    the_blocks(spill, ranked, write_score, write_mask)
                    score_on_error.pop_all()
                blocks_done()  # the heap trimmed again: the candidates' memory comes and goes
                timings["blocks"] = round(time.perf_counter() - t1, 4)
                t1 = time.perf_counter()
                copied.append(copier.submit(_closed_timed, files["score"], timings, "score_cog"))
                joined(spill, write_mask, ranked)
                spill.close()
                mask_on_error.pop_all()
                copied.append(copier.submit(_closed_timed, files["mask"], timings, "mask_cog"))
                result = candidates(tmp, ranked, t1)
        except BaseException:
            _settled(copied)  # the copies' own errors, if any, come after this one
            raise
        finally:
            copier.shutdown()
        failed = _settled(copied)
        if failed is not None:
            raise failed
        return result

    def the_blocks(
        spill: RecordSpill,
        ranked: RankedCandidates,
        write_score: Callable[[np.ndarray, int, int], None],
        write_mask: Callable[[np.ndarray, int, int], None],
    ) -> None:
        """Every block, in the threads: score and mask written, the rest kept or spilled."""

        def one_block(item: tuple[int, int, Block]) -> None:
            i, j, b = item
            bb, aa, vv = tiled.read(b.outer_rows, b.outer_cols)
            r = apply_window(det, b, bb, aa, vv, shape, transform)
            del bb, aa, vv
            score = np.where(r.valid, r.score, np.float32(np.nan))
            mask = np.where(r.valid, r.changed.view(np.uint8), np.uint8(MASK_NODATA))
            # each writer takes its own lock (streamed_cog), after making its file's first
            # overview level of the block outside it
            write_score(score, b.rows.start, b.cols.start)
            write_mask(mask, b.rows.start, b.cols.start)
            with lock:
                counted[0] += int(r.changed.sum())
                counted[1] += int(r.valid.sum())
            # the candidates within this block finished here, in the block's thread
            whole, fragments, pieces = whole_in_block(r.fragments, r.pieces, r.labels, stitch)
            finished_here = [ranked.prepared(part.stitched()) for part in whole]
            spill.put((i, j), (fragments, packed_pieces(pieces), finished_here))
            kept[i, j] = _Kept(b, r.labels)
            step("blocks")

        progress("blocks", 0, len(flat))
        # blocks in raster order over the threads: neighbours read the tiles they share
        # at about the same time, so few decoded tiles wait for their last reader
        tiled = _with_tiles(pair, [b for _, _, b in flat], prefetch)
        with handles_kept_open([before, after], cache_mb=BLOCKS_GDAL_CACHE_MB):
            run_jobs(one_block, flat)

    def joined(
        spill: RecordSpill,
        write_mask: Callable[[np.ndarray, int, int], None],
        ranked: RankedCandidates,
    ) -> None:
        """The candidates across blocks, handed to ``ranked`` a row of blocks at a time; the
        pixels of small candidates cut by block edges cleared from the mask (those within one
        block were finished in its thread)."""
        progress("candidates", 0, len(flat))
        index = GroupIndex(plan, lambda i, j: kept[i, j].labels)
        collector = CandidateCollector(
            plan, index, det.min_pixels, lambda i, j: kept[i, j].labels, crs=crs,
            pixel_size_m=px, band_scales=scales,
        )  # fmt: skip
        for n, (i, j, b) in enumerate(flat, start=1):
            fragments, pieces, finished_here = spill.take((i, j))
            for part in finished_here:
                ranked.add_prepared(part)
            dropped = collector.add(i, j, fragments, unpacked_pieces(pieces))
            _clear(write_mask, dropped, b)
            counted[0] -= int(dropped.size)
            if j == len(plan[i]) - 1:  # a row in: the candidates above it are whole
                for part in collector.finished(i - 1):
                    ranked.add(part)
            progress("candidates", n, len(flat))
        for part in collector.finished():
            ranked.add(part)

    def candidates(
        tmp: Path, ranked: RankedCandidates, t1: float
    ) -> tuple[list[str], dict[str, Any]]:
        n_changed, n_valid = counted
        before_c, after_c = checksums  # the scenes with their sha256
        hasher.shutdown()
        count, area, kinds = ranked.summary()
        timings["candidates"] = round(time.perf_counter() - t1, 4)
        created = (
            _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        )
        provenance = {
            "before": scene_ref(before_c),
            "after": scene_ref(after_c),
            "method": det.score.method,
            "threshold_method": det.threshold.method,
            "threshold": float(det.threshold.threshold),
            "parameters": det.parameters,
            "shift_px": [float(v) for v in pair.shift.shift_before_px],
            "created": created,
        }
        written = ["mask.tif", "score.tif"]
        if crs is not None:
            t2 = time.perf_counter()
            with open(tmp / "changes.geojson", "w", encoding="utf-8") as fh:
                ranked.write_geojson(fh, run=provenance)
            written.append("changes.geojson")
            timings["geojson"] = round(time.perf_counter() - t2, 4)
        summary = block_run_summary(
            before_c, after_c, options, pair.shift, det, (count, area, kinds), n_changed,
            n_valid, px, created,
            {"block_px": block_px, "first_px": list(first_px), "halo_px": halo,
             "blocks": len(flat),
             "fit_patches": n_patches, "fit_patch_px": FIT_PATCH_PX, "threads": thread_count()},
            scene_summary, software_versions,
        )  # fmt: skip
        summary["outputs"] = sorted(written) + ["run.json"]
        return written, summary

    t = time.perf_counter()
    result: dict[str, Any] = {}

    def write_and_keep(tmp: Path) -> tuple[list[str], dict[str, Any]]:
        written, summary = write_files(tmp)
        summary["timings_s"] = dict(timings)
        result.update(summary)
        return written, summary

    # GDAL's block cache bounded for the whole write, the COG copies included (by default it
    # may take 5 % of the RAM, and a COG copy reads the whole temporary raster through it)
    # libtiff's own printing of a failed write (from the worker threads) off: the failure
    # is said in one line (errors.write_failure)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20), libtiff_quiet():
        write_staged(outdir, write_and_keep, timings)
    progress("write", 1, 1)
    result.setdefault("timings_s", {})["total_after_fit"] = round(time.perf_counter() - t, 4)
    return result


def _settled(futures: Sequence[Future[None]]) -> BaseException | None:
    """Wait for every one of ``futures``; the first one's exception (None when all ended)."""
    failed = None
    for future in futures:
        try:
            future.result()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failed = failed or exc
    return failed


def _closed_timed(stack: contextlib.ExitStack, timings: dict[str, float], name: str) -> None:
    """Close ``stack`` (in a worker thread) within GDAL's cache limit; its duration as ``name``."""
    t = time.perf_counter()
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20):
        stack.close()
    timings[name] = round(time.perf_counter() - t, 4)
