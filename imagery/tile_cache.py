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

import math
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from rasterio.enums import MaskFlags
from rasterio.errors import NodataShadowWarning, RasterioIOError
from rasterio.windows import Window
from satdelta.imagery.errors import SceneReadError
from satdelta.imagery.scene import Scene, gdal_reason

__all__ = ["TileCache", "tile_grid"]

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

    def __init__(self, scene: Scene, bands: Sequence[int], windows: Iterable[Window]):
        self.scene = scene
        self.bands = list(bands)
        with scene.open() as src:
            self.tile = tile_grid(src.block_shapes[0], scene.width)
            flags = [src.mask_flag_enums[i - 1] for i in self.bands]
            dtypes = {np.dtype(src.dtypes[i - 1]) for i in self.bands}
        # kept as stored where float32 holds every value exactly (8- and 16-bit integers,
        # float32), else converted by GDAL on decoding, as Scene.read converts them
        exact = len(dtypes) == 1 and all(d.itemsize <= 2 or d == np.float32 for d in dtypes)
        self.read_dtype = dtypes.pop() if exact else np.dtype(np.float32)
        #: every value read is finite (integer samples)
        self.finite = self.read_dtype.kind in "iu"
        # every pixel has data: no mask to read (files without nodata, mask or alpha)
        self.all_valid = all(f == [MaskFlags.all_valid] for f in flags)
        self.uses: dict[Key, list[Box]] = {}  # windows still to be read, per tile
        for w in windows:
            for key in self._keys(w):
                self.uses.setdefault(key, []).append(_box(w))
        self.tiles: dict[Key, _Tile] = {}
        self.lock = threading.Lock()
        self.decoded = 0  # tiles decoded (for tests and the design notes' figures)

    def _keys(self, w: Window) -> list[Key]:
        th, tw = self.tile
        r0, c0 = int(w.row_off), int(w.col_off)
        r1, c1 = r0 + int(w.height), c0 + int(w.width)
        return [
            (i, j)
            for i in range(r0 // th, (r1 - 1) // th + 1)
            for j in range(c0 // tw, (c1 - 1) // tw + 1)
        ]

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
                tile.region = self._decode(key)
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

    def _decode(self, key: Key) -> tuple[tuple[int, int], np.ndarray, np.ndarray | None]:
        th, tw = self.tile
        r0, c0 = key[0] * th, key[1] * tw
        win = Window(c0, r0, min(tw, self.scene.width - c0), min(th, self.scene.height - r0))
        with self.scene.open() as src:
            try:
                data = src.read(self.bands, window=win, out_dtype=self.read_dtype)
                masks = None
                if not self.all_valid:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", NodataShadowWarning)
                        masks = src.read_masks(self.bands, window=win)
            except RasterioIOError as exc:
                raise SceneReadError(
                    f"cannot read pixels of {self.scene.source} (window {win}): "
                    f"{gdal_reason(exc)}. The file may be truncated or corrupt; re-download it."
                ) from exc
        with self.lock:
            self.decoded += 1
        return (r0, c0), data, None if masks is None else np.all(masks > 0, axis=0)


def _box(w: Window) -> Box:
    r0, c0 = int(w.row_off), int(w.col_off)
    return r0, r0 + int(w.height), c0, c0 + int(w.width)
