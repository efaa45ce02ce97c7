"""Which file tiles a block run reads, and when they are decoded.

The block runner (:mod:`satdelta.imagery.block_run`) reads every block's window from tiles
decoded once (:class:`~satdelta.imagery.tile_cache.TileCache`) when the after scene comes
onto the before grid by a translation. This module plans that: :func:`tile_caches` builds
the two caches for the blocks' windows, :func:`tile_edge_first_blocks` sizes the first
blocks so that each window ends at a tile edge, and :func:`start_prefetch` decodes the
first row of blocks' tiles ahead, while the shift is measured and the detector fitted, on
the core those stages leave idle. Design and figures: ``docs/design-blocks.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rasterio.windows import Window
from satdelta.imagery.errors import SatdeltaError
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.pair import match_bands
from satdelta.imagery.scene import Scene
from satdelta.imagery.tile_cache import TileCache, TilePrefetch, tile_grid, tile_keys
from satdelta.imagery.warp import translation

__all__ = ["PREFETCH_MB", "start_prefetch", "tile_caches", "tile_edge_first_blocks"]

#: Tiles of the first row of blocks decoded ahead, while the shift is measured and the
#: detector fitted (MB, pixels and validity): half the first row of both 8192² benchmark
#: scenes. They are held through the fit, whose peak is the run's: on the 8192² NAIP pair
#: 64 MB of tiles raised the peak from 0.82 to 0.90 GB.
PREFETCH_MB = 64


def start_prefetch(
    before: Scene, after: Scene, options: DetectionOptions, block_px: int
) -> TilePrefetch | None:
    """The first row of blocks' tiles decoded ahead (:class:`TilePrefetch`), when the blocks
    will read tiles (:func:`tile_caches`: cubic resampling, the after scene on the before
    grid by a translation); else None.

    The first row of blocks reads the rows up to ``block_px`` of both scenes
    (:func:`tile_edge_first_blocks` ends its windows at a tile edge there); the tiles are
    decoded column by column, both scenes, the order in which the first blocks read them.
    """
    if options.resampling != "cubic" or PREFETCH_MB <= 0:
        return None
    if not (before.georeferenced and after.georeferenced):
        return None  # opening them warns (NotGeoreferencedWarning); see TilePrefetch
    try:
        bidx, aidx = match_bands(before, after, options.bands)
        rows = min(block_px, before.height)
        region = Window(0, 0, before.width, rows)
        where = translation(
            after, crs=before.crs, transform=before.window_transform(region),
            shape=(rows, before.width), shift_px=(0.0, 0.0),
        )  # fmt: skip
        if where is None or where.window is None:
            return None
        order = []
        for k, (scene, win) in enumerate(((before, region), (after, where.window))):
            with scene.open() as src:
                tile = tile_grid(src.block_shapes[0], scene.width)
            order += [(c, r, k) for r, c in tile_keys(tile, win)]
    except SatdeltaError:  # said again, in its place, by the alignment
        return None
    scenes = [(before, bidx), (after, aidx)]
    ordered = [(k, (r, c)) for c, r, k in sorted(order)]
    return TilePrefetch(scenes, ordered, budget_bytes=PREFETCH_MB * 2**20).start()


def tile_caches(
    before: Scene,
    after: Scene,
    bands: tuple[Sequence[int], Sequence[int]],
    shift_px: tuple[float, float],
    windows: Sequence[Window],
    prefetch: TilePrefetch | None = None,
) -> tuple[TileCache, TileCache] | None:
    """The before and after :class:`TileCache` for the blocks' ``windows`` (before grid), when
    the after scene comes onto every one by a pure translation (else None); with the tiles
    ``prefetch`` decoded ahead. ``bands``: the 1-based bands read of each scene."""
    moved = []
    for win in windows:
        where = translation(
            after,
            crs=before.crs,
            transform=before.window_transform(win),
            shape=(int(win.height), int(win.width)),
            shift_px=shift_px,
        )
        if where is None:
            return None
        if where.window is not None:
            moved.append(where.window)
    ahead = (None, None) if prefetch is None else prefetch.stores
    return (
        TileCache(before, bands[0], windows, prefetched=ahead[0]),
        TileCache(after, bands[1], moved, prefetched=ahead[1]),
    )


def tile_edge_first_blocks(scene: Scene, block_px: int, reach_px: int) -> tuple[int, int]:
    """First blocks' size (rows, cols) that ends every block ``reach_px`` before a tile
    edge of the scene (``block_px`` where the tiles do not divide it, or are not longer
    than ``reach_px``).

    ``reach_px``: how far a window reaches past its block (halo, cubic taps and shift). A
    block's window then ends at a tile edge, and the next row of blocks reads, of the tiles
    the two rows share, only about 2 ``reach_px`` rows: all that the decoded-tile store
    (:class:`~satdelta.imagery.tile_cache.TileCache`) keeps between two rows of blocks.

    Examples
    --------
    With 512-pixel tiles, blocks of 1024 and a reach of 10 pixels the first blocks have 1014
    rows and columns; their windows end at pixel 1024.
    """
    with scene.open() as src:
        tile_h, tile_w = src.block_shapes[0]

    def first(tile: int) -> int:
        fits = tile > reach_px and block_px % tile == 0
        return block_px - reach_px if fits else block_px

    return first(tile_h), first(tile_w)
