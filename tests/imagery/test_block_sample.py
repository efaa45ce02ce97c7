"""The block runner's samples: patches inside tiles, reads ahead, the shift on a window."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rasterio.windows import Window
from satdelta.imagery import block_run
from satdelta.imagery.align import coregister, measure_window_shift
from satdelta.imagery.block_sample import (
    ReadAhead,
    fit_read_windows,
    tile_patch_windows,
)
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.radiometry import fit_windows
from satdelta.imagery.scene import open_scene

from tests.imagery.test_block_run import pair  # noqa: F401 (the fixture)


@pytest.mark.parametrize(
    ("shape", "tile", "reach"),
    [
        ((8192, 8192), (512, 512), 24),
        ((5000, 3000), (512, 256), 20),
        ((3000, 3000), (1024, 1024), 90),
    ],
)
def test_patches_move_inside_one_tile_each(shape, tile, reach):
    kw = {"max_pixels": 16 * 200**2, "patch_px": 200}
    placed = fit_windows(shape, **kw)
    moved = tile_patch_windows(shape, tile, reach, **kw)
    assert len(moved) == len(placed) >= 15
    for (r, c), (r0, c0) in zip(moved, placed, strict=True):
        assert (r.stop - r.start, c.stop - c.start) == (r0.stop - r0.start, c0.stop - c0.start)
        # the patch and all it reads in one tile, near its place (within a tile)
        for s, side in ((r, tile[0]), (c, tile[1])):
            assert (s.start - reach) // side == (s.stop + reach - 1) // side
            assert 0 <= s.start - reach and s.stop + reach <= max(shape)
        assert abs(r.start - r0.start) < tile[0] and abs(c.start - c0.start) < tile[1]
    boxes = {(r.start, c.start) for r, c in moved}
    assert len(boxes) == len(placed)
    for k, (r, c) in enumerate(moved):  # no two overlap
        for r2, c2 in moved[k + 1 :]:
            assert (
                r.stop <= r2.start or r2.stop <= r.start or c.stop <= c2.start or c2.stop <= c.start
            )


def test_patches_stay_where_tiles_cannot_hold_them():
    kw = {"max_pixels": 16 * 200**2, "patch_px": 200}
    assert tile_patch_windows((4096, 4096), (1, 4096), 24, **kw) == fit_windows((4096, 4096), **kw)
    assert tile_patch_windows((4096, 4096), (256, 256), 40, **kw) == fit_windows((4096, 4096), **kw)
    # a scene within the sample: the whole of it
    assert tile_patch_windows((300, 340), (128, 128), 24, **kw) == [(slice(0, 300), slice(0, 340))]


def test_read_ahead_serves_what_the_scene_reads(pair):  # noqa: F811
    from concurrent.futures import ThreadPoolExecutor

    scene = open_scene(pair[1], checksum=False)
    patches = [(slice(20, 84), slice(30, 94)), (slice(150, 214), slice(200, 264))]
    _, grown = fit_read_windows(patches, 8, 12, (scene.height, scene.width))
    assert grown[0] == (slice(8, 96), slice(18, 106))
    pool = ThreadPoolExecutor(1)
    ahead = ReadAhead(scene, (1, 2, 3, 4), grown, pool)
    pool.shutdown(wait=True)
    assert ahead.finite  # uint16
    for win in (Window(19, 10, 80, 70), Window(18, 8, 88, 88), Window(300, 250, 40, 50)):
        want, want_ok = scene.read(win, bands=(1, 2, 3, 4))
        data = np.empty_like(want)
        ok = np.zeros_like(want_ok)
        ahead.read_into(win, data, ok)
        assert np.array_equal(data, want) and np.array_equal(ok, want_ok)
    # each window read ahead serves once; then the scene serves it
    again, _ = ahead.read(Window(19, 10, 80, 70))
    assert np.array_equal(again, scene.read(Window(19, 10, 80, 70), bands=(1, 2, 3, 4))[0])
    ahead.close()


def test_window_shift_is_the_one_coregister_removes(pair):  # noqa: F811
    before, after = (open_scene(p, checksum=False) for p in pair)
    win = Window(20, 10, 300, 280)
    measured = measure_window_shift(before, after, win, sample_size=128)
    aligned = coregister(before, after, window=win, sample_size=128)
    assert measured.shift_px == aligned.shift_before_px
    assert measured.sample == aligned.shift_sample and measured.note == ""
    assert measured.shift_px == pytest.approx((0.4, -0.3), abs=0.05)


def test_fit_on_patches_read_ahead_equals_reading_them(pair, monkeypatch):  # noqa: F811
    """The detector fitted from the patches read ahead during the alignment is the one
    fitted from reading them afterwards; the residual after correction is near zero."""
    monkeypatch.setattr(block_run, "FIT_SAMPLE_PX", 4 * 64**2)
    monkeypatch.setattr(block_run, "FIT_PATCH_PX", 64)
    before, after = (open_scene(p, checksum=False) for p in pair)
    options = DetectionOptions()
    pair_ = block_run._open_and_align(before, after, options)
    assert pair_.fit_sample is not None and pair_.fit_sample.ahead is not None
    assert len(pair_.fit_sample.patches) == 4
    ahead = block_run._fit(pair_, pair_.fit_sample.halo)
    direct = block_run._fit(
        block_run.dataclasses.replace(pair_, fit_sample=None), pair_.fit_sample.halo
    )
    assert ahead[0].parameters == direct[0].parameters
    for a, d in zip(ahead[1], direct[1], strict=True):
        assert np.array_equal(a, d)
    residual = pair_.shift.shift_after_px
    assert not math.isnan(residual[0]) and max(map(abs, residual)) < 0.05
