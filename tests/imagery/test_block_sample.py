"""The block runner's samples: patches inside tiles, the shift on a window, the residual."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rasterio.windows import Window
from satdelta.imagery import block_run
from satdelta.imagery.align import coregister, measure_window_shift
from satdelta.imagery.block_sample import tile_patch_windows
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.parallel import threads
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


def test_window_shift_is_the_one_coregister_removes(pair):  # noqa: F811
    before, after = (open_scene(p, checksum=False) for p in pair)
    win = Window(20, 10, 300, 280)
    measured = measure_window_shift(before, after, win, sample_size=128)
    aligned = coregister(before, after, window=win, sample_size=128)
    assert measured.shift_px == aligned.shift_before_px
    assert measured.sample == aligned.shift_sample and measured.note == ""
    assert measured.shift_px == pytest.approx((0.4, -0.3), abs=0.05)


def test_fit_on_patches_in_tiles(pair, monkeypatch):  # noqa: F811
    """Patches of 64 px in the 128-pixel tiles: the fit runs on them, gives the same detector
    with one thread or two, and the residual after correction is near zero."""
    monkeypatch.setattr(block_run, "FIT_SAMPLE_PX", 4 * 64**2)
    monkeypatch.setattr(block_run, "FIT_PATCH_PX", 64)
    before, after = (open_scene(p, checksum=False) for p in pair)
    fits = []
    for n in (1, 2):
        with threads(n):
            aligned = block_run._open_and_align(before, after, DetectionOptions())
            fits.append(block_run._fit(aligned, 16))
        residual = aligned.shift.shift_after_px
        assert not math.isnan(residual[0]) and max(map(abs, residual)) < 0.05
    (det1, scales1, n1), (det2, scales2, n2) = fits
    assert n1 == n2 == 4
    assert det1.parameters == det2.parameters
    for a, b in zip(scales1, scales2, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_fit_mosaic_cells_and_gutters(monkeypatch, n_threads):
    """Five patches on a 3 x 3 mosaic: each cell holds its patch read with the halo, every
    other pixel (the gutters, the four cells without a patch) is NaN and invalid, whatever
    the memory held before."""
    from satdelta.imagery import block_sample

    halo, shape = 2, (100, 100)
    rng = np.random.default_rng(5)
    scene = rng.random((3, *shape)).astype(np.float32)
    seen = {}

    def read(rows, cols):
        b = scene[:, rows, cols]
        return b, b + 1, np.ones(b.shape[1:], bool)

    def fake_fit(mb, ma, options, *, valid, **kw):
        seen.update(mb=mb.copy(), ma=ma.copy(), mv=valid.copy())
        return "det"

    # memory that held other values: the fresh mosaic must not show them
    junk = [np.full((3, 3 * 64, 3 * 64), 7.0, np.float32) for _ in range(4)]
    del junk
    monkeypatch.setattr(block_sample, "fit_detector", fake_fit)
    wins = [(slice(r, r + 20), slice(c, c + 20)) for r, c in
            [(5, 5), (5, 60), (40, 30), (70, 5), (70, 70)]]  # fmt: skip
    with threads(n_threads):
        det, _ = block_sample.fit_on_patches(
            read, wins, halo, shape, 3, DetectionOptions(), pixel_size_m=1.0,
            band_names=("a", "b", "c"),
        )  # fmt: skip
    assert det == "det"
    cell = 20 + 2 * halo + block_sample.GUTTER_PX
    mb, ma, mv = seen["mb"], seen["ma"], seen["mv"]
    assert mb.shape == ma.shape == (3, 3 * cell, 3 * cell) and mv.shape == mb.shape[1:]
    filled = np.zeros(mv.shape, bool)
    for k, (r, c) in enumerate(wins):
        r0, c0 = (k // 3) * cell, (k % 3) * cell
        rows, cols = slice(r.start - halo, r.stop + halo), slice(c.start - halo, c.stop + halo)
        h, w = rows.stop - rows.start, cols.stop - cols.start
        assert np.array_equal(mb[:, r0 : r0 + h, c0 : c0 + w], scene[:, rows, cols])
        assert np.array_equal(ma[:, r0 : r0 + h, c0 : c0 + w], scene[:, rows, cols] + 1)
        assert mv[r0 : r0 + h, c0 : c0 + w].all()
        filled[r0 : r0 + h, c0 : c0 + w] = True
    assert np.isnan(mb[:, ~filled]).all() and np.isnan(ma[:, ~filled]).all()
    assert not mv[~filled].any()
