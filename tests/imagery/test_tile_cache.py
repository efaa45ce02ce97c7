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
