"""TileCache: windows read from tiles decoded once equal Scene.read, in any thread."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from satdelta.imagery.block_run import _window
from satdelta.imagery.blocks import plan_blocks
from satdelta.imagery.parallel import run_jobs, threads
from satdelta.imagery.scene import handles_kept_open, open_scene
from satdelta.imagery.tile_cache import TileCache


def _write(path, dtype, nodata=None):  # noqa: ANN001, ANN202
    rng = np.random.default_rng(3)
    data = (rng.random((3, 150, 170)) * 3000).astype(dtype)
    if nodata is not None:
        data[:, 10:30, 40:70] = nodata
        data[1, 100, 100] = nodata  # one band only: the pixel is invalid
    with rasterio.open(
        path, "w", driver="GTiff", width=170, height=150, count=3, dtype=dtype,
        crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 4000000), nodata=nodata,
        tiled=True, blockxsize=32, blockysize=48, compress="deflate",
    ) as dst:  # fmt: skip
        dst.write(data)
    return open_scene(path, checksum=False)


@pytest.mark.parametrize(("dtype", "nodata"), [("uint16", None), ("int16", -9), ("float64", None)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_windows_equal_scene_read_and_tiles_are_decoded_once(tmp_path, dtype, nodata, n_threads):
    scene = _write(tmp_path / "a.tif", dtype, nodata)
    # blocks with a halo, edges mid-tile: neighbouring windows share tiles
    plan = plan_blocks((150, 170), 40, 3, (24, 16))
    wins = [_window(b.outer_rows, b.outer_cols) for line in plan for b in line]
    cache = TileCache(scene, (1, 3, 2), wins)
    assert cache.finite == (dtype != "float64")
    with threads(n_threads), handles_kept_open([scene], cache_mb=1):
        got = run_jobs(cache.read, wins)
    for w, (data, valid) in zip(wins, got, strict=True):
        want, want_valid = scene.read(w, bands=(1, 3, 2))
        assert data.dtype == np.float32 and np.array_equal(valid, want_valid)
        assert np.array_equal(data[:, valid], want[:, valid])
    th, tw = cache.tile  # 48-row tiles grouped in twos (thin tiles), 32 columns
    assert (th, tw) == (96, 32)
    assert cache.decoded == 2 * 6  # every chunk once
    assert not cache.tiles and not cache.uses  # all dropped after their last window
    if nodata is not None:
        assert not all(v.all() for _, v in got)  # the masks were read


def test_a_window_not_announced_is_read_and_not_kept(tmp_path):
    scene = _write(tmp_path / "a.tif", "uint16")
    cache = TileCache(scene, (1,), [Window(0, 0, 40, 40)])
    data, valid = cache.read(Window(100, 60, 50, 70))
    assert np.array_equal(data, scene.read(Window(100, 60, 50, 70), bands=(1,))[0])
    assert valid.all() and not cache.tiles and list(cache.uses) == [(0, 0), (0, 1)]


def _prefetched(scene, bands, keys, budget_bytes=1 << 30):  # noqa: ANN001, ANN202
    from satdelta.imagery.tile_cache import TilePrefetch

    prefetch = TilePrefetch([(scene, bands)], [(0, k) for k in keys], budget_bytes=budget_bytes)
    prefetch.start()
    assert prefetch.done.wait(60)
    return prefetch


@pytest.mark.parametrize(("dtype", "nodata"), [("uint16", None), ("int16", -9), ("float64", None)])
def test_tiles_decoded_ahead_are_taken_and_read_as_scene_read(tmp_path, dtype, nodata):
    scene = _write(tmp_path / "a.tif", dtype, nodata)
    plan = plan_blocks((150, 170), 40, 3, (24, 16))
    wins = [_window(b.outer_rows, b.outer_cols) for line in plan for b in line]
    # the first chunk row ahead, and a chunk no window of the cache reads (dropped)
    prefetch = _prefetched(scene, (1, 3, 2), [(0, 0), (0, 1), (0, 2), (0, 9)])
    store = prefetch.stores[0]
    assert sorted(store.tiles) == [(0, 0), (0, 1), (0, 2)]  # (0, 9) is past the scene
    cache = TileCache(scene, (1, 3, 2), wins, prefetched=store)
    with threads(2), handles_kept_open([scene], cache_mb=1):
        got = run_jobs(cache.read, wins)
    for w, (data, valid) in zip(wins, got, strict=True):
        want, want_valid = scene.read(w, bands=(1, 3, 2))
        assert np.array_equal(valid, want_valid)
        assert np.array_equal(data[:, valid], want[:, valid])
    assert store.taken == 3 and cache.decoded == 2 * 6 - 3  # taken, not decoded again
    assert not store.tiles and store.closed


def test_prefetching_stops_at_its_budget_and_for_other_bands(tmp_path):
    scene = _write(tmp_path / "a.tif", "uint16")
    one_tile = 3 * 96 * 32 * 2  # bands x chunk rows x columns x bytes
    prefetch = _prefetched(scene, (1, 2, 3), [(0, 0), (0, 1), (0, 2)], budget_bytes=one_tile)
    assert list(prefetch.stores[0].tiles) == [(0, 0)] and prefetch.held == one_tile
    # decoded with other bands than the cache reads: never used
    cache = TileCache(scene, (3, 2, 1), [Window(0, 0, 40, 40)], prefetched=prefetch.stores[0])
    data, _ = cache.read(Window(0, 0, 40, 40))
    assert np.array_equal(data, scene.read(Window(0, 0, 40, 40), bands=(3, 2, 1))[0])
    assert prefetch.stores[0].taken == 0 and cache.decoded == 2  # 40 columns: two chunks


def test_stop_drops_what_no_cache_took_and_a_failure_only_ends_the_prefetching(tmp_path):
    scene = _write(tmp_path / "a.tif", "uint16")
    prefetch = _prefetched(scene, (1,), [(0, 0), (0, 1)])
    prefetch.stop()
    assert not prefetch.stores[0].tiles and prefetch.stores[0].closed
    # a file cut short: the prefetch ends quietly, the cache's own read says what is wrong
    path = tmp_path / "cut.tif"
    path.write_bytes((tmp_path / "a.tif").read_bytes())
    cut = open_scene(path, checksum=False)
    path.write_bytes(path.read_bytes()[:4000])
    prefetch = _prefetched(cut, (1,), [(0, 0), (0, 1)])
    assert not prefetch.stores[0].tiles
    with pytest.raises(Exception, match="cannot read pixels|truncated|corrupt|cannot open"):
        TileCache(cut, (1,), [Window(0, 0, 40, 40)], prefetched=prefetch.stores[0]).read(
            Window(0, 0, 40, 40)
        )
