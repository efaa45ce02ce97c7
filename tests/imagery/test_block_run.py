"""The block runner on files: COG outputs, one polygon per candidate, threads, block sizes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from satdelta.imagery import block_join
from satdelta.imagery.aoi import AreaOfInterest
from satdelta.imagery.block_run import detect_in_files, uses_blocks
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.morphology import MERGE_GAP_PX, group_labels
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.parallel import threads
from satdelta.imagery.pipeline import run_detection
from satdelta.imagery.scene import open_scene
from scipy import ndimage

from tests.plugins.test_cli_detect import assert_valid_cog

SIZE = (300, 340)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 4-band uint16 pair, 10 m UTM tiles: texture, 30 changed rectangles (some on block
    edges), a sub-pixel shift and a gain/offset step."""
    folder = tmp_path_factory.mktemp("blockpair")
    rng = np.random.default_rng(4)
    rows, cols = SIZE
    tex = ndimage.gaussian_filter(rng.random((4, rows + 8, cols + 8)), (0, 2, 2))
    tex = 500 + 3000 * (tex - tex.min()) / np.ptp(tex)
    before = tex[:, 4:-4, 4:-4]
    moved = ndimage.shift(tex, (0, 0.4, -0.3), order=3, mode="nearest")[:, 4:-4, 4:-4]
    after = moved * 1.08 + 150
    for k in range(30):
        r, c = rng.integers(0, rows - 40, 2)
        if k < 6:  # across the edges of 64-pixel blocks
            r, c = 64 * rng.integers(1, 4) - 10, 64 * rng.integers(1, 4) - 12
        h, w = rng.integers(12, 36, 2)
        after[:, r : r + h, c : c + w] = rng.uniform(800, 4000, (4, 1, 1))
    paths = []
    for name, arr in (("before.tif", before), ("after.tif", after)):
        p = folder / name
        arr = arr + rng.normal(0, 8, arr.shape)
        with rasterio.open(
            p, "w", driver="GTiff", width=cols, height=rows, count=4, dtype="uint16",
            crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 4300000),
            tiled=True, blockxsize=128, blockysize=128, compress="deflate", predictor=2,
        ) as ds:  # fmt: skip
            ds.write(np.clip(arr, 0, 65535).astype("uint16"))
            ds.descriptions = ("blue", "green", "red", "nir")
        paths.append(p)
    return paths[0], paths[1]


def _read(folder: Path) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    with rasterio.open(folder / "mask.tif") as m, rasterio.open(folder / "score.tif") as s:
        mask, score = m.read(1), s.read(1)
    fc = json.loads((folder / "changes.geojson").read_text())
    run = json.loads((folder / "run.json").read_text())
    return mask, score, fc, run


def test_outputs_are_cogs_and_candidates_one_polygon_each(pair, tmp_path):
    out = tmp_path / "out"
    summary = detect_in_files(*pair, out, block_px=64)
    for name in ("mask.tif", "score.tif"):
        assert_valid_cog(out / name)
    mask, score, fc, run = _read(out)
    assert run["runner"]["kind"] == "blocks" and run["runner"]["blocks"] == 30
    assert summary["polygons"]["count"] == len(fc["features"]) == run["polygons"]["count"]
    changed = mask == 1
    assert 0.03 < changed.mean() < 0.3
    assert np.isnan(score[mask == 255]).all()
    # one feature per candidate of the mask, however many blocks it spans
    _, n = group_labels(changed, gap_px=MERGE_GAP_PX, connectivity=4)
    assert len(fc["features"]) == n
    counts = [f["properties"]["pixel_count"] for f in fc["features"]]
    assert sum(counts) == int(changed.sum())
    assert sorted(f["properties"]["rank"] for f in fc["features"]) == list(range(1, n + 1))
    spans = [f for f in fc["features"] if f["properties"]["pixel_count"] > 64 * 12]
    assert spans  # the rectangles laid across block edges came out whole
    assert run["inputs"]["before"]["sha256"] and run["alignment"]["shift_measured"]
    dy, dx = run["alignment"]["shift_before_px"]
    assert abs(dy - 0.4) < 0.05 and abs(dx + 0.3) < 0.05


def test_tiles_decoded_ahead_change_no_output(pair, tmp_path, monkeypatch):
    """The first row of blocks' tiles, decoded while the run aligns and fits, are the ones the
    blocks take; the outputs are those of a run without them."""
    from satdelta.imagery import block_tiles, tile_cache

    started = []
    start = tile_cache.TilePrefetch.start
    monkeypatch.setattr(
        tile_cache.TilePrefetch, "start", lambda self: started.append(self) or start(self)
    )
    detect_in_files(*pair, tmp_path / "ahead", block_px=64)
    (prefetch,) = started
    assert prefetch.done.wait(60)
    # 64-pixel blocks of a 128-pixel tiled scene: the first row reads tile row 0 (3 tiles
    # of each scene); each taken by the blocks, nothing decoded that was not needed
    assert len(prefetch.order) == 6
    assert [s.taken for s in prefetch.stores] == [3, 3]
    assert all(not s.tiles and s.closed for s in prefetch.stores)
    monkeypatch.setattr(block_tiles, "PREFETCH_MB", 0)
    detect_in_files(*pair, tmp_path / "plain", block_px=64)
    assert len(started) == 1  # no prefetch at 0 MB
    ahead, plain = _read(tmp_path / "ahead"), _read(tmp_path / "plain")
    assert np.array_equal(ahead[0], plain[0])
    assert np.array_equal(ahead[1], plain[1], equal_nan=True)
    assert ahead[2]["features"] == plain[2]["features"]


def test_a_failure_in_the_candidates_stage_leaves_nothing_behind(pair, tmp_path, monkeypatch):
    # after the blocks: the score's COG copy is under way, the mask and the spills are open
    def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("candidates failed")

    monkeypatch.setattr(block_join.CandidateCollector, "add", fail)
    with pytest.raises(RuntimeError, match="candidates failed"):
        detect_in_files(*pair, tmp_path / "out", block_px=64)
    assert list(tmp_path.iterdir()) == []  # no output folder, no staging folder, no spill


def test_the_mask_does_not_depend_on_block_size_or_threads(pair, tmp_path):
    results = []
    for block_px, n_threads in ((64, 1), (64, 2), (100, 2), (128, 2), (512, 1)):
        out = tmp_path / f"out-{block_px}-{n_threads}"
        with threads(n_threads):
            detect_in_files(*pair, out, block_px=block_px)
        results.append(_read(out))
        # 128-pixel tiles: blocks of 128 or 512 end where their windows reach a tile edge
        run = results[-1][3]
        shift = max(abs(v) for v in run["alignment"]["shift_before_px"])
        reach = run["runner"]["halo_px"] + 3 + math.ceil(shift)
        first = [block_px - reach] * 2 if block_px % 128 == 0 else [block_px] * 2
        assert run["runner"]["first_px"] == first
    mask0, score0, fc0, _ = results[0]
    for mask, score, fc, _ in results[1:]:
        assert np.array_equal(mask, mask0)
        assert np.array_equal(score, score0, equal_nan=True)
        assert [f["geometry"] for f in fc["features"]] == [f["geometry"] for f in fc0["features"]]
        assert [f["properties"]["change"] for f in fc["features"]] == [
            f["properties"]["change"] for f in fc0["features"]
        ]


def test_block_runner_agrees_with_the_whole_runner(pair, tmp_path):
    # the fits differ (a sample of patches against the whole scene): not identical, close
    detect_in_files(*pair, tmp_path / "b", block_px=64)
    mask, _, _, _ = _read(tmp_path / "b")
    run = run_detection(*pair)
    whole = np.where(run.maps.valid, run.maps.changed, 255)
    both = (mask != 255) & (whole != 255)
    agree = (mask[both] == whole[both]).mean()
    assert agree > 0.99, agree


def test_uses_blocks_says_what_it_cannot_do(pair):
    before = open_scene(pair[0], checksum=False)
    assert not uses_blocks(before, DetectionOptions())  # small: whole, as before
    assert uses_blocks(before, DetectionOptions(), "blocks")
    aoi = AreaOfInterest.from_bbox((15.0, 38.8, 15.01, 38.81))
    with pytest.raises(InvalidParameterError, match="does not support an area of interest"):
        uses_blocks(before, DetectionOptions(aoi=aoi), "blocks")
    assert not uses_blocks(before, DetectionOptions(aoi=aoi))


def test_cli_runner_blocks_is_quiet_when_piped(pair, tmp_path):
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "satdelta.plugins.cli.main", "detect", *map(str, pair)]
    res = subprocess.run(
        [*cmd, "-o", str(out), "--runner", "blocks"], capture_output=True, text=True, timeout=180
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == "" and res.stdout == ""  # no bars, no summary line when piped
    assert json.loads((out / "run.json").read_text())["runner"]["kind"] == "blocks"


@pytest.mark.parametrize("shift", [(0.4, -0.3), (-1.25, 2.5), (0.0, 0.0)])
def test_translation_matches_gdal_cubic_warp(pair, shift):
    from rasterio.windows import Window
    from satdelta.imagery.warp import resample_to_grid, translate_window

    before, after = (open_scene(p, checksum=False) for p in pair)
    for win in (Window(40, 30, 120, 90), Window(0, 0, 64, 64), Window(280, 250, 60, 50)):
        t = before.window_transform(win)
        shape = (int(win.height), int(win.width))
        g, g_ok = resample_to_grid(
            after, transform=t, crs=before.crs, shape=shape, bands=(1, 2, 3, 4), shift_px=shift
        )
        moved = translate_window(
            after, crs=before.crs, transform=t, shape=shape, bands=(1, 2, 3, 4), shift_px=shift
        )
        assert moved is not None
        f, f_ok = moved
        assert not (f_ok & ~g_ok).any()  # never valid where GDAL has no data
        assert f_ok.sum() >= g_ok.sum() - 3 * (shape[0] + shape[1])  # at most an edge strip less
        assert np.abs(f[:, f_ok] - g[:, f_ok]).max() < 2e-3


@pytest.fixture(scope="module", params=[12.0, 10.0], ids=["12m", "10m"])
def regridded_pair(
    pair, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Path, Path]:
    """The pair with its after date warped to another grid in UTM zone 34 (the neighbouring
    zone), as a second sensor's scene comes: 12 m pixels, or 10 m like the before date's
    (the same pixel size in another CRS is no translation: its coordinates are the other
    zone's)."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    folder = tmp_path_factory.mktemp("regridded")
    out = folder / "after-zone34.tif"
    with rasterio.open(pair[1]) as src:
        dst_crs = "EPSG:32634"
        transform, width, height = calculate_default_transform(
            src.crs, dst_crs, src.width, src.height, *src.bounds, resolution=request.param
        )
        profile = src.profile | {
            "crs": dst_crs, "transform": transform, "width": width, "height": height,
            "nodata": 0,
        }  # fmt: skip
        with rasterio.open(out, "w", **profile) as dst:
            for b in range(1, src.count + 1):
                reproject(
                    rasterio.band(src, b), rasterio.band(dst, b),
                    dst_transform=transform, dst_crs=dst_crs, resampling=Resampling.cubic,
                )  # fmt: skip
            dst.descriptions = src.descriptions
    return pair[0], out


def test_a_pair_on_different_grids_is_warped_per_window(regridded_pair, tmp_path):
    """The after date in another CRS (and pixel size, or the same one): each window is
    warped through GDAL onto the before grid; the result hardly depends on the block size
    and agrees with the whole-grid runner.

    GDAL's warp of a window is not exactly the same pixels' warp in a larger one (its
    approximate transformer and its per-chunk resampling scale): on this pair 24 of the
    102,000 mask pixels differ between 64- and 128-pixel blocks at 10 m, none at 12 m
    (docs/design-blocks.md, "What is exact"). Before the translation shortcut checked the
    CRS, the 10 m pair (the before date's pixel size) was taken for a translation of the
    other zone's coordinates and no window had data."""
    masks = []
    for block_px in (64, 128):
        out = tmp_path / f"b{block_px}"
        detect_in_files(*regridded_pair, out, block_px=block_px)
        mask, _, fc, run = _read(out)
        assert mask.shape == SIZE and run["grid"]["crs"] == "EPSG:32633"
        masks.append(mask)
    assert (masks[0] == masks[1]).mean() > 0.999
    assert 0.03 < (masks[0] == 1).mean() < 0.3
    whole_run = run_detection(*regridded_pair)
    whole = np.where(whole_run.maps.valid, whole_run.maps.changed, 255)
    both = (masks[0] != 255) & (whole != 255)
    assert both.mean() > 0.9
    assert (masks[0][both] == whole[both]).mean() > 0.98
