"""Decoded tiles of a scene shared by the threads of a block run, each tile decoded once.

A block runner reads overlapping windows (each block with its halo) in raster order from
several threads. Reading each window straight from the file decodes every tile it touches,
so tiles under a block's halo are decoded two or four times. A :class:`TileCache` is told
beforehand which windows will be read; it decodes each tile of the file's own tiling once,
in whichever thread needs it first (another thread needing it meanwhile waits for it), keeps
it in the file's data type while later windows still need it, and drops it when the last of
them has been read. Windows not announced are read tile by tile without being kept.

The values equal :meth:`~satdelta.imagery.scene.Scene.read`'s (the same decoded samples,
converted to float32 as GDAL converts them), and so does the validity (the file's masks).
Why and what it saves: ``docs/design-blocks.md``.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.windows import Window
from satdelta.imagery.errors import SceneReadError
from satdelta.imagery.pixel_masks import valid_pixels
from satdelta.imagery.scene import Scene, gdal_env, gdal_reason

__all__ = ["TileCache", "TilePrefetch", "TileStore", "tile_grid", "tile_keys"]

#: Tiles of striped files (or files with very thin tiles) are grouped into chunks of about
#: this many rows, so that a chunk is not a single row decoded through one call each.
MIN_CHUNK_ROWS = 64

Key = tuple[int, int]


def tile_grid(block_shape: tuple[int, int], width: int) -> tuple[int, int]:
    """Rows and columns of the chunks a scene is cut into: its tiles, thin strips grouped.

    Examples
    --------
    >>> tile_grid((512, 512), 8192), tile_grid((1, 8192), 8192), tile_grid((16, 100), 8192)
    ((512, 512), (64, 8192), (64, 100))
    """
    rows, cols = block_shape
    rows = rows * max(1, math.ceil(MIN_CHUNK_ROWS / rows)) if rows < MIN_CHUNK_ROWS else rows
    return rows, min(cols, width)


Box = tuple[int, int, int, int]  # rows r0..r1, cols c0..c1 of the scene


def tile_keys(tile: tuple[int, int], w: Window) -> list[Key]:
    """The (row, col) indexes of the ``tile``-sized chunks window ``w`` touches, row by row.

    Examples
    --------
    >>> tile_keys((512, 512), Window(500, 0, 100, 600))
    [(0, 0), (0, 1), (1, 0), (1, 1)]
    """
    th, tw = tile
    r0, c0 = int(w.row_off), int(w.col_off)
    r1, c1 = r0 + int(w.height), c0 + int(w.width)
    return [
        (i, j)
        for i in range(r0 // th, (r1 - 1) // th + 1)
        for j in range(c0 // tw, (c1 - 1) // tw + 1)
    ]


@dataclass
class _Tile:
    ready: threading.Event = field(default_factory=threading.Event)
    # ((row, col) of data[:, 0, 0] in the scene, (B, h, w) data in the file's data type,
    # (h, w) bool validity or None = every pixel has data); replaced as one when trimmed
    region: tuple[tuple[int, int], np.ndarray, np.ndarray | None] | None = None
    error: BaseException | None = None


class TileCache:
    """Windows of one scene read from tiles decoded once (see the module docstring).

    Parameters
    ----------
    scene : Scene
        Read through :meth:`Scene.open` (one handle per thread inside
        :func:`~satdelta.imagery.scene.handles_kept_open`).
    bands : sequence of int
        1-based band indexes every read returns.
    windows : iterable of Window
        The windows that will be read (whole pixels, inside the scene), in any order: a
        tile is kept until each of them touching it has been read, cut down meanwhile to
        the part the windows still to be read need (a block row's tiles shared with the
        next row keep only the rows the next one reads).
    """

    def __init__(
        self,
        scene: Scene,
        bands: Sequence[int],
        windows: Iterable[Window],
        *,
        prefetched: TileStore | None = None,
    ):
        self.scene = scene
        self.bands = list(bands)
        with scene.open() as src:
            self.tile, self.read_dtype, self.all_valid = _tile_format(src, scene, self.bands)
        #: every value read is finite (integer samples)
        self.finite = self.read_dtype.kind in "iu"
        self.uses: dict[Key, list[Box]] = {}  # windows still to be read, per tile
        for w in windows:
            for key in self._keys(w):
                self.uses.setdefault(key, []).append(_box(w))
        # tiles decoded ahead (TilePrefetch), taken instead of decoded; the rest dropped
        self.prefetched = prefetched
        if prefetched is not None:
            prefetched.keep_only(self.uses, self.tile, self.read_dtype, self.bands)
        self.tiles: dict[Key, _Tile] = {}
        self.lock = threading.Lock()
        self.decoded = 0  # tiles decoded (for tests and the design notes' figures)

    def _keys(self, w: Window) -> list[Key]:
        return tile_keys(self.tile, w)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """(B, M, N) float32 pixels and (M, N) validity of ``window``, as ``Scene.read``."""
        h, w = int(window.height), int(window.width)
        data = np.empty((len(self.bands), h, w), np.float32)
        valid = np.empty((h, w), bool)
        self.read_into(window, data, valid)
        return data, valid

    def read_into(self, window: Window, data: np.ndarray, valid: np.ndarray) -> None:
        """:meth:`read` into ``data`` (B, M, N) and ``valid`` (M, N) (e.g. views of a larger
        buffer)."""
        r0, c0 = int(window.row_off), int(window.col_off)
        h, w = int(window.height), int(window.width)
        for key in self._keys(window):
            (tr, tc), tile_data, tile_valid = self._get(key)
            rows = slice(max(r0, tr), min(r0 + h, tr + tile_data.shape[1]))
            cols = slice(max(c0, tc), min(c0 + w, tc + tile_data.shape[2]))
            out = (slice(rows.start - r0, rows.stop - r0), slice(cols.start - c0, cols.stop - c0))
            src = (slice(rows.start - tr, rows.stop - tr), slice(cols.start - tc, cols.stop - tc))
            data[(slice(None), *out)] = tile_data[(slice(None), *src)]
            valid[out] = True if tile_valid is None else tile_valid[src]
            self._release(key, _box(window))

    def _get(self, key: Key) -> tuple[tuple[int, int], np.ndarray, np.ndarray | None]:
        with self.lock:
            kept = key in self.uses
            tile = self.tiles.get(key) if kept else None
            mine = tile is None
            if mine:
                tile = _Tile()
                if kept:
                    self.tiles[key] = tile
        assert tile is not None
        if mine:
            try:
                ahead = None if self.prefetched is None else self.prefetched.take(key)
                tile.region = ahead if ahead is not None else self._decode(key)
            except BaseException as exc:
                tile.error = exc
            finally:
                tile.ready.set()
        else:
            tile.ready.wait()
        if tile.error is not None:
            raise tile.error
        assert tile.region is not None
        return tile.region

    def _release(self, key: Key, box: Box) -> None:
        """One read of ``box`` done: drop the tile after its last, else keep what the windows
        still to be read need of it."""
        with self.lock:
            left = self.uses.get(key)
            if left is None or box not in left:
                return
            left.remove(box)
            tile = self.tiles.get(key)
            if not left:
                del self.uses[key]
                self.tiles.pop(key, None)
                return
            if tile is None or tile.region is None:
                return
            (tr, tc), data, valid = tile.region
            r0 = max(min(b[0] for b in left), tr)
            r1 = min(max(b[1] for b in left), tr + data.shape[1])
            c0 = max(min(b[2] for b in left), tc)
            c1 = min(max(b[3] for b in left), tc + data.shape[2])
            if (r1 - r0) * (c1 - c0) < data.shape[1] * data.shape[2] * 3 // 4:
                rows, cols = slice(r0 - tr, r1 - tr), slice(c0 - tc, c1 - tc)
                tile.region = (
                    (r0, c0),
                    data[:, rows, cols].copy(),
                    None if valid is None else valid[rows, cols].copy(),
                )

    def _decode(self, key: Key) -> Region:
        with self.scene.open() as src:
            region = _decoded(src, self.scene, key, self.tile, self.bands, self.read_dtype,
                              self.all_valid)  # fmt: skip
        with self.lock:
            self.decoded += 1
        return region


Region = tuple[tuple[int, int], np.ndarray, np.ndarray | None]


def _decoded(
    src: DatasetReader,
    scene: Scene,
    key: Key,
    tile: tuple[int, int],
    bands: Sequence[int],
    read_dtype: np.dtype,
    all_valid: bool,
) -> Region:
    """Tile ``key`` of ``scene`` (open as ``src``): its corner, pixels and validity
    (:func:`~satdelta.imagery.pixel_masks.valid_pixels`)."""
    th, tw = tile
    r0, c0 = key[0] * th, key[1] * tw
    win = Window(c0, r0, min(tw, scene.width - c0), min(th, scene.height - r0))
    try:
        data = src.read(list(bands), window=win, out_dtype=read_dtype)
        valid = None if all_valid else valid_pixels(src, bands, win, data)
    except RasterioIOError as exc:
        raise SceneReadError(
            f"cannot read pixels of {scene.source} (window {win}): "
            f"{gdal_reason(exc)}. The file may be truncated or corrupt; re-download it."
        ) from exc
    return (r0, c0), data, valid


class TileStore:
    """One scene's tiles decoded ahead by a :class:`TilePrefetch`, for a :class:`TileCache`."""

    def __init__(self, scene: Scene, bands: Sequence[int]):
        self.scene = scene
        self.bands = list(bands)
        self.tiles: dict[Key, Region] = {}
        self.lock = threading.Lock()
        self.closed = False  # a TileCache took over: nothing more is added
        self.taken = 0  # tiles a TileCache took (for tests and the design notes' figures)

    def put(self, key: Key, region: Region) -> bool:
        """Keep a decoded tile (False, and not kept, once a TileCache took over)."""
        with self.lock:
            if self.closed:
                return False
            self.tiles[key] = region
            return True

    def take(self, key: Key) -> Region | None:
        """The tile decoded ahead, given once (None when it was not)."""
        with self.lock:
            region = self.tiles.pop(key, None)
            self.taken += region is not None
            return region

    def close(self) -> None:
        """Stop adding; drop every tile held."""
        with self.lock:
            self.closed = True
            self.tiles.clear()

    def keep_only(
        self, keys: Iterable[Key], tile: tuple[int, int], dtype: np.dtype, bands: Sequence[int]
    ) -> None:
        """Stop adding; drop the tiles not among ``keys``, or decoded otherwise than the
        cache would (other bands, chunking or data type)."""
        with self.lock:
            self.closed = True
            wanted = set(keys) if list(bands) == self.bands else set()
            for key in list(self.tiles):
                (r0, c0), data, _ = self.tiles[key]
                if (
                    key not in wanted
                    or data.dtype != dtype
                    or (r0, c0) != (key[0] * tile[0], key[1] * tile[1])
                ):
                    del self.tiles[key]


class TilePrefetch:
    """The first tiles a block run needs, decoded while it measures the shift and fits.

    One daemon thread at the lowest CPU priority (so it takes only the time of a core the
    alignment and the fit leave idle: the last of the shift's samples and most of the fit
    run on one thread) decodes ``order`` — (scene index, tile key) pairs — one tile after
    another into the :class:`TileStore` of each scene (:attr:`stores`), until
    ``budget_bytes`` of tiles are held or a store is closed. A :class:`TileCache` given a
    store takes its tiles instead of decoding them. Any failure only ends the prefetching:
    the cache decodes the tile again and reports it.
    """

    def __init__(
        self,
        scenes: Sequence[tuple[Scene, Sequence[int]]],
        order: Sequence[tuple[int, Key]],
        *,
        budget_bytes: int,
    ):
        self.stores = [TileStore(scene, bands) for scene, bands in scenes]
        self.order = list(order)
        self.budget_bytes = budget_bytes
        self.held = 0  # bytes decoded so far (pixels and validity)
        self.done = threading.Event()

    def start(self) -> TilePrefetch:
        threading.Thread(target=self._run, name="satdelta-prefetch", daemon=True).start()
        return self

    def stop(self) -> None:
        """No more decoding; the tiles no cache took are dropped."""
        for store in self.stores:
            store.close()

    def _run(self) -> None:
        try:
            with contextlib.suppress(OSError, AttributeError):  # Linux: this thread only
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            formats: dict[int, tuple[tuple[int, int], np.dtype, bool]] = {}
            for index, key in self.order:
                store = self.stores[index]
                if store.closed or self.held >= self.budget_bytes:
                    return
                # a handle of this thread's own (kept-open ones belong to a stage of the run
                # that may end meanwhile), closed after each tile: GDAL's block cache then
                # drops the tile's raw blocks instead of holding a copy of each
                # (no warnings.catch_warnings here: it is not thread-safe; a scene without
                # georeference, whose opening warns, is not prefetched, nor one with an
                # alpha band, whose mask reads warned before pixel_masks.valid_pixels)
                with gdal_env(store.scene.gdal_path), rasterio.open(store.scene.gdal_path) as src:
                    if index not in formats:
                        if ColorInterp.alpha in src.colorinterp:
                            return
                        formats[index] = _tile_format(src, store.scene, store.bands)
                    tile, dtype, all_valid = formats[index]
                    region = _decoded(src, store.scene, key, tile, store.bands, dtype, all_valid)
                if not store.put(key, region):
                    return
                self.held += region[1].nbytes + (0 if region[2] is None else region[2].nbytes)
        except Exception:  # noqa: BLE001 - the TileCache decodes the tile itself and says why
            return
        finally:
            self.done.set()


def _tile_format(
    src: DatasetReader, scene: Scene, bands: Sequence[int]
) -> tuple[tuple[int, int], np.dtype, bool]:
    """The chunks a scene is decoded in, the data type they are kept in and whether every
    pixel has data."""
    flags = [src.mask_flag_enums[i - 1] for i in bands]
    dtypes = {np.dtype(src.dtypes[i - 1]) for i in bands}
    # kept as stored where float32 holds every value exactly (8- and 16-bit integers,
    # float32), else converted by GDAL on decoding, as Scene.read converts them
    exact = len(dtypes) == 1 and all(d.itemsize <= 2 or d == np.float32 for d in dtypes)
    dtype = dtypes.pop() if exact else np.dtype(np.float32)
    # every pixel has data: no mask to read (files without nodata, mask or alpha)
    all_valid = all(f == [MaskFlags.all_valid] for f in flags)
    return tile_grid(src.block_shapes[0], scene.width), dtype, all_valid


def _box(w: Window) -> Box:
    r0, c0 = int(w.row_off), int(w.col_off)
    return r0, r0 + int(w.height), c0, c0 + int(w.width)
