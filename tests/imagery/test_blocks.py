"""The block runner's core: block results equal the whole-array results."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.crs import CRS
from satdelta.imagery import block_join
from satdelta.imagery import blocks as blocks_mod
from satdelta.imagery.block_join import detect_in_blocks
from satdelta.imagery.blocks import plan_blocks
from satdelta.imagery.candidates import RING_PX, band_scales, describe_candidates
from satdelta.imagery.detect import fit_detector
from satdelta.imagery.detector import ChangeDetector, score_both
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.morphology import MERGE_GAP_PX
from satdelta.imagery.scores import ScoreModel
from satdelta.imagery.threshold import ThresholdFit
from satdelta.imagery.vectorize import vectorize
from scipy import ndimage

UTM = CRS.from_epsg(32633)


def _pair(n: int = 260, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured 4-band pair with 25 changed rectangles, a gain/offset and a no-data corner."""
    rng = np.random.default_rng(seed)
    tex = ndimage.gaussian_filter(rng.random((4, n, n)), (0, 2, 2)).astype(np.float32) * 400
    before = tex + rng.normal(0, 1, tex.shape).astype(np.float32)
    after = tex * 1.05 + 3 + rng.normal(0, 1, tex.shape).astype(np.float32)
    for _ in range(25):
        r, c = rng.integers(0, n - 40, 2)
        h, w = rng.integers(3, 40, 2)
        after[:, r : r + h, c : c + w] = rng.uniform(0, 400, (4, 1, 1))
    valid = np.ones((n, n), bool)
    valid[:20, :30] = False
    return before, after, valid


def _whole(det, before, after, valid):  # noqa: ANN001, ANN202
    a_n = after if det.normalisation is None else det.normalisation.apply(after)
    fine, s = score_both(det.score, before, a_n, valid)
    return s, det.decide(fine, s, valid, det.segments(before, a_n))


@pytest.mark.parametrize("pixel_size_m", [0.5, 10.0])  # smoothed + opened; neither
@pytest.mark.parametrize(
    ("block_px", "first_px"),
    [(16, None), (50, None), (64, None), (100, None), (256, None), (64, (32, 40)), (100, (7, 100))],
)
def test_blocks_give_the_whole_array_mask_and_score(pixel_size_m, block_px, first_px):
    before, after, valid = _pair()
    det = fit_detector(before, after, valid=valid, pixel_size_m=pixel_size_m)
    score, changed = _whole(det, before, after, valid)
    assert changed.sum() > 1000  # the rectangles were found: the comparison means something
    b_score, b_changed, _ = detect_in_blocks(
        det, before, after, valid, block_px=block_px, first_px=first_px
    )
    assert np.array_equal(b_changed, changed)
    assert np.array_equal(b_score, score, equal_nan=True)


def test_small_regions_spanning_blocks_are_kept_or_dropped_as_a_whole():
    # a region of 6 pixels cut by every block edge in a 4 x 4 checker of blocks: each block
    # sees fewer than min_pixels, the whole region has more, so it stays
    before = np.full((1, 64, 64), 100, np.float32)
    after = before.copy()
    after[0, 15:18, 15:17] = 200  # 3 x 2 = 6 pixels over the edge at row/col 16
    after[0, 40, 40] = 200  # a lone pixel: dropped
    valid = np.ones((64, 64), bool)
    # absolute difference, threshold 50, no clean-up, candidates of at least 4 pixels
    det = ChangeDetector(None, ScoreModel("absdiff"), ThresholdFit(50.0, "value", {}), 0, 4, {})
    score, changed = _whole(det, before, after, valid)
    b_score, b_changed, polys = detect_in_blocks(det, before, after, valid, block_px=16)
    assert np.array_equal(b_changed, changed)
    assert b_changed[15:18, 15:17].all() and not b_changed[40, 40]
    assert len(polys) == 1 and polys[0].pixel_count == 6


@pytest.mark.parametrize(
    ("block_px", "first_px", "at_once"),
    [(32, None, 1000), (64, None, 1000), (100, None, 1000), (64, (48, 16), 1000), (64, None, 3)],
)
def test_candidates_are_one_polygon_each_across_block_edges(
    block_px, first_px, at_once, monkeypatch
):
    # at_once: candidates stitched a few at a time (block_join.FINISHED_AT_ONCE)
    monkeypatch.setattr(block_join, "FINISHED_AT_ONCE", at_once)
    before, after, valid = _pair(seed=3)
    t = Affine(10, 0, 500000, 0, -10, 4000000)
    det = fit_detector(before, after, valid=valid, pixel_size_m=10.0)
    score, changed = _whole(det, before, after, valid)
    whole = vectorize(
        changed, score, t, UTM, valid=valid, pixel_size_m=10.0, merge_gap_px=MERGE_GAP_PX
    )
    whole = describe_candidates(
        whole, changed, before, after, valid, threshold=det.threshold.threshold
    )
    scales = (band_scales(before, valid), band_scales(after, valid))
    _, _, polys = detect_in_blocks(
        det,
        before,
        after,
        valid,
        block_px=block_px,
        first_px=first_px,
        transform=t,
        crs=UTM,
        band_scales=scales,
    )
    # the same candidates: same pixels, same outlines (no seam), same order of evidence
    assert len(polys) == len(whole) > 5
    crossing = 0
    for p, q in zip(polys, whole, strict=True):
        assert p.pixel_count == q.pixel_count
        assert shapely.equals(p.geometry, q.geometry)
        assert p.rank == q.rank
        assert p.score == pytest.approx(q.score, rel=1e-5)
        assert p.area_m2 == pytest.approx(q.area_m2, rel=1e-9)
        assert p.compactness == pytest.approx(q.compactness, rel=1e-6)
        x0, y0, x1, y1 = p.geometry.bounds
        cols = (int((x0 - 500000) / 10), int((x1 - 500000) / 10))
        first = block_px if first_px is None else first_px[1]
        crossing += (cols[0] - first) // block_px != (cols[1] - 1 - first) // block_px
    assert crossing > 0  # some candidates did span a block edge
    # the change kind comes from the same sums: the same on this pair
    assert [p.change for p in polys] == [q.change for q in whole]


@pytest.mark.parametrize("first_px", [None, (8, 3), (16, 16)])
def test_plan_covers_the_grid_once(first_px):
    plan = plan_blocks((70, 45), 16, 5, first_px)
    if first_px is not None:
        assert plan[0][0].shape == first_px and plan[1][1].shape == (16, 16)
    hits = np.zeros((70, 45), int)
    for line in plan:
        for b in line:
            hits[b.rows, b.cols] += 1
            r, c = b.inner
            assert r.stop - r.start == b.shape[0] and c.stop - c.start == b.shape[1]
            assert b.outer_rows.start == max(b.rows.start - 5, 0)
    assert (hits == 1).all()


def test_a_sliver_at_the_far_edge_joins_the_block_before_it():
    plan = plan_blocks((67, 45), 16, 5)  # 67 = 4 x 16 + 3 (under 16 // 4): joined
    assert [line[0].shape[0] for line in plan] == [16, 16, 16, 19]
    assert [b.shape[1] for b in plan[0]] == [16, 16, 13]  # 13 is not a sliver
    assert plan[-1][0].outer_rows == slice(43, 67)


def test_plan_refuses_tiny_blocks():
    with pytest.raises(InvalidParameterError, match="block_px >= 16"):
        plan_blocks((10, 10), 8, 0)
    with pytest.raises(InvalidParameterError, match="first blocks of 1..block_px"):
        plan_blocks((100, 100), 16, 0, (20, 8))


def test_cues_blocks_are_close_to_the_whole_array():
    # the RGB default's segment vote is seeded per window: close, not identical (documented)
    rng = np.random.default_rng(7)
    n = 240
    tex = ndimage.gaussian_filter(rng.random((3, n, n)), (0, 3, 3)).astype(np.float32)
    before = 60 + 400 * (tex - tex.min())
    after = before * 1.03 + 2 + rng.normal(0, 1, before.shape).astype(np.float32)
    for _ in range(12):
        r, c = rng.integers(0, n - 40, 2)
        after[:, r : r + 30, c : c + 24] = rng.uniform(30, 220, (3, 1, 1))
    valid = np.ones((n, n), bool)
    det = fit_detector(
        before, after, valid=valid, pixel_size_m=0.5, band_names=("red", "green", "blue")
    )
    assert det.score.method == "cues"
    _, changed = _whole(det, before, after, valid)
    _, b_changed, _ = detect_in_blocks(det, before, after, valid, block_px=120)
    assert changed.sum() > 2000
    assert (b_changed == changed).mean() > 0.97


@pytest.mark.parametrize("n_regions", [20, 400])
def test_outlines_are_each_labels_changed_pixels_whichever_way_the_pack_is_filled(
    n_regions, monkeypatch
):
    # labels of scattered squares (some with holes, some cut in two pieces by unchanged
    # pixels); every label's outline must be exactly its changed pixels' cells, in map
    # coordinates, whether the pack is filled label by label or in one scatter
    rng = np.random.default_rng(n_regions)
    lab = np.zeros((300, 320), np.int32)
    for k in range(1, n_regions + 1):
        r, c = rng.integers(0, 290), rng.integers(0, 310)
        h, w = rng.integers(2, 9, size=2)
        lab[r : r + h, c : c + w] = k
    changed = (lab > 0) & (rng.random(lab.shape) < 0.85)
    transform = Affine(0.5, 0.0, 1000.0, 0.0, -0.5, 2000.0)
    outlines = blocks_mod._outlines(lab, changed, transform)
    assert (len(outlines) > blocks_mod.FEW_LABELS) == (n_regions > blocks_mod.FEW_LABELS)
    for value, (geom,) in outlines.items():
        rows, cols = np.nonzero((lab == value) & changed)
        cells = shapely.union_all(
            [
                shapely.box(*(transform @ (c, r + 1)), *(transform @ (c + 1, r)))
                for r, c in zip(rows, cols, strict=True)
            ]
        )
        assert shapely.equals(geom, cells), value
        assert geom.is_valid
    assert set(outlines) == set(np.unique(lab[changed]).tolist())
    # the other way of filling the pack, and changed pixels of no label (ignored): the same
    # geometries, vertex for vertex
    stray = changed | ((lab == 0) & (rng.random(lab.shape) < 0.05))
    monkeypatch.setattr(blocks_mod, "FEW_LABELS", 0 if n_regions <= 64 else 10**6)
    for other in (
        blocks_mod._outlines(lab, changed, transform),
        blocks_mod._outlines(lab, stray, transform),
    ):
        assert list(other) == list(outlines)
        for value, (geom,) in outlines.items():
            assert np.array_equal(
                shapely.get_coordinates(other[value][0]), shapely.get_coordinates(geom)
            )


@pytest.mark.parametrize("seed", range(4))
def test_rings_at_once_are_the_rings_region_by_region(seed):
    # dense regions whose rings overlap (pixels near two or more regions), regions at the
    # array's edges, and a base mask with holes: the same (pixel, region) pairs, in the
    # same order (the ring sums add them in that order)
    rng = np.random.default_rng(seed)
    shape_rc = (int(rng.integers(20, 90)), int(rng.integers(20, 90)))
    mask = rng.random(shape_rc) < 0.08
    mask[0, :3] = mask[-1, -2:] = True
    labels, n = ndimage.label(mask)
    labels = labels.astype(np.int32)
    base = ~mask & (rng.random(shape_rc) < 0.9)
    loop = blocks_mod._rings_by_region(labels, base)
    once = blocks_mod._rings_at_once(labels, base)
    assert n > 10 and loop[0].size > 100
    for a, b in zip(loop, once, strict=True):
        assert a.dtype == b.dtype == np.intp
        assert np.array_equal(a, b)
    # and what a ring is: base pixels within RING_PX (a square) of the region
    k = int(rng.integers(0, n))
    near = ndimage.binary_dilation(labels == k + 1, np.ones((2 * RING_PX + 1,) * 2, bool))
    assert np.array_equal(np.sort(once[0][once[1] == k]), np.flatnonzero(near & base))


def test_rings_of_no_region():
    labels = np.zeros((6, 7), np.int32)
    base = np.ones((6, 7), bool)
    for fn in (blocks_mod._rings_by_region, blocks_mod._rings_at_once):
        pixels, regions = fn(labels, base)
        assert pixels.size == regions.size == 0
