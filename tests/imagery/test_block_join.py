"""block_join: the candidates' sums and change kinds over all candidates at once equal the
same arithmetic done one region and one candidate at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.features import shapes
from satdelta.imagery import block_join
from satdelta.imagery.block_join import (
    CandidateCollector,
    GroupIndex,
    RunningSums,
    _distinctness,
    _turning_everywhere,
    union_pieces,
)
from satdelta.imagery.blocks import Fragments, apply_window, plan_blocks, window_halo_px
from satdelta.imagery.detector import ChangeDetector
from satdelta.imagery.scores import ScoreModel
from satdelta.imagery.threshold import ThresholdFit


def _fragments(rng: np.random.Generator, k: int, bands: int) -> Fragments:
    return Fragments(
        anchors=np.zeros((k, 2), np.int64),
        labels=np.arange(1, k + 1, dtype=np.int64),
        count=rng.integers(1, 500, k),
        score_sum=rng.random(k) * 1e3,
        score_n=rng.integers(1, 500, k),
        inside=rng.random((k, 2, 2, bands)) * 1e6,
        ring_n=rng.integers(0, 50, k),
        ring_sum=rng.random((k, 2, bands)) * 1e4,
    )


def test_running_sums_are_added_in_block_order_exactly():
    rng = np.random.default_rng(0)
    blocks = []
    for _ in range(30):
        frag = _fragments(rng, int(rng.integers(0, 12)), 4)
        blocks.append((frag, rng.integers(0, 40, len(frag.count))))  # components
    kept = set(rng.permutation(40)[:25].tolist())
    sums = RunningSums(4)
    taken = {}
    for n, (frag, comps) in enumerate(blocks):
        sums.add(frag, comps, np.isin(comps, list(kept - set(taken))))
        if n in (9, 19):  # some components handed out part way (their rows then reused)
            ended = sorted(c for c in kept if c % 3 == n % 3 and c not in taken)
            got = sums.taken(ended)
            taken.update({c: (n, {f: v[k] for f, v in got.items()}) for k, c in enumerate(ended)})
    rest = sorted(kept - set(taken))
    got = sums.taken(rest)
    taken.update({c: (len(blocks), {f: v[k] for f, v in got.items()}) for k, c in enumerate(rest)})
    assert sums.open() == []
    # one region at a time, as Python adds them, up to the block each was handed out after
    for field in ("count", "score_sum", "score_n", "inside", "ring_n", "ring_sum"):
        for c, (upto, values) in taken.items():
            total = 0
            for frag, comps in blocks[: min(upto, len(blocks) - 1) + 1]:
                for k in np.flatnonzero(comps == c):
                    total = total + getattr(frag, field)[k]
            assert np.array_equal(values[field], np.broadcast_to(total, values[field].shape))
    assert got["inside"].shape == (len(rest), 2, 2, 4)


def _collector_case():  # noqa: ANN202
    """30 x 30 blocks of 20 pixels over 400 changed rectangles of 5 x 4 pixels."""
    rng = np.random.default_rng(5)
    n, block = 600, 20
    before = np.full((1, n, n), 100, np.float32)
    after = before.copy()
    for r, c in rng.integers(0, n - 6, (400, 2)).tolist():
        after[0, r : r + 5, c : c + 4] = 200
    valid = np.ones((n, n), bool)
    det = ChangeDetector(None, ScoreModel("absdiff"), ThresholdFit(50.0, "value", {}), 0, 4, {})
    plan = plan_blocks((n, n), block, window_halo_px(det))
    results = {
        (i, j): apply_window(
            det, b, before[:, b.outer_rows, b.outer_cols], after[:, b.outer_rows, b.outer_cols],
            valid[b.outer_rows, b.outer_cols], (n, n),
        )
        for i, line in enumerate(plan)
        for j, b in enumerate(line)
    }  # fmt: skip
    index = GroupIndex(plan, lambda i, j: results[i, j].labels)
    collector = CandidateCollector(
        plan, index, 4, lambda i, j: results[i, j].labels, crs=None, pixel_size_m=1.0,
        band_scales=(np.ones(1), np.ones(1)),
    )  # fmt: skip
    return det, (before, after, valid), plan, index, results, collector


def test_the_collector_holds_only_the_candidates_still_open(monkeypatch):
    # after each row of blocks, only the candidates that reach the row just added are held
    monkeypatch.setattr(block_join, "FINISHED_AT_ONCE", 7)  # several parts a row
    det, (before, after, valid), plan, index, results, collector = _collector_case()
    finished, most_open, parts = [], 0, 0
    for (i, j), r in results.items():
        collector.add(i, j, r.fragments, r.pieces)
        if j == len(plan[i]) - 1:
            row = list(collector.finished(i - 1))
            assert all(len(part) <= 7 for part in row)
            parts += len(row)
            finished += [c for part in row for c in part]
            assert all(index.last_row[c] >= i for c in collector.pieces)
            most_open = max(most_open, len(collector.pieces), len(collector.sums.open()))
    finished += [c for part in collector.finished() for c in part]
    assert not collector.pieces and not collector.sums.open()
    # every candidate once, and never more than a few rows' worth held at a time
    _, whole = _whole_candidates(det, before, after, valid)
    assert len(finished) == len(whole) > 200
    assert parts > 2 * len(plan)  # rows handed out in several parts
    assert most_open < len(whole) / 5
    got = sorted((p.pixel_count, p.score, p.change, p.geometry.wkb) for _, p in finished)
    assert got == sorted((p.pixel_count, p.score, p.change, p.geometry.wkb) for p in whole)


def test_a_block_adding_to_a_candidate_handed_out_stops_the_run():
    # handing out a row's candidates before the next row is in (no lag): a region in the
    # next row's margin, named by an anchor above, would add its ring to a finished one
    _, _, plan, _, results, collector = _collector_case()
    with pytest.raises(RuntimeError, match="handed out before"):
        for (i, j), r in results.items():
            collector.add(i, j, r.fragments, r.pieces)
            if j == len(plan[i]) - 1:
                for _ in collector.finished(i):
                    pass


def _whole_candidates(det, before, after, valid):  # noqa: ANN001, ANN202
    from satdelta.imagery.block_join import detect_in_blocks

    *_, polys = detect_in_blocks(det, before, after, valid, block_px=before.shape[1])
    return None, polys


@pytest.mark.parametrize("bands", [1, 4, 11])
def test_distinctness_of_all_candidates_equals_one_at_a_time(bands):
    rng = np.random.default_rng(bands)
    n = rng.integers(1, 10_000, 200)
    inside = rng.random((200, 2, bands)) * np.array([1e3, 1e6])[None, :, None]
    ring_mean = rng.random((200, bands)) * 10
    scales = rng.random(bands) + 0.5
    got = _distinctness(inside, n, ring_mean, scales)
    for i in range(200):
        s1, s2 = inside[i]
        ss = (s2 - 2 * ring_mean[i] * s1 + int(n[i]) * ring_mean[i] ** 2) / scales**2
        expected = math.sqrt(max(ss.sum(), 0.0) / (int(n[i]) * bands))
        assert got[i] == expected


def _traced(mask: np.ndarray, transform: Affine) -> list:
    """Pixel outlines of the True regions (4-connected), as the blocks trace them."""
    return [
        shapely.geometry.shape(g)
        for g, _ in shapes(mask.astype(np.uint8), mask=mask, connectivity=4, transform=transform)
    ]


def test_outlines_turning_everywhere_are_the_ones_simplify_leaves_alone():
    rng = np.random.default_rng(7)
    mask = rng.random((60, 60)) < 0.45  # ragged regions, holes, corner touches
    t = Affine(0.5, 0, 300000.5, 0, -0.5, 5000000.25)
    traced = _traced(mask, t)
    # the same regions traced in two blocks (columns 0-29, 30-59) and joined again: vertices
    # left on the block edge, which simplify removes
    cut = _traced(mask[:, :30], t) + _traced(mask[:, 30:], t * Affine.translation(30, 0))
    joined = list(shapely.get_parts(shapely.union_all(cut)))
    odd = [
        shapely.Polygon([(0, 0), (2, 1), (1, 3)]),  # slanted edges
        shapely.Polygon([(0, 0), (2, 0), (4, 0), (4, 2), (0, 2)]),  # a straight vertex
        shapely.Polygon([(2, 2), (0, 2), (0, 0), (4, 0), (4, 2)]),  # ... at the ring start
        shapely.Polygon([(0, 0), (2, 0), (2, 0), (2, 2), (0, 2)]),  # a repeated vertex
    ]
    geoms = np.asarray([*traced, shapely.MultiPolygon(traced[:3]), *joined, *odd], object)
    turning = _turning_everywhere(geoms)
    unchanged = shapely.equals_exact(shapely.simplify(geoms, 0.0), geoms, 0)
    assert np.all(unchanged[turning])  # never skips a simplify that would change something
    assert turning[: len(traced) + 1].all()  # traced in one block: nothing to simplify
    assert not unchanged[len(traced) + 1 : -len(odd)].all()  # the block edges were left
    assert not turning[-len(odd) :].any()


def _block_pieces(mask: np.ndarray, cut: int) -> list:
    """The pixel outlines of ``mask`` left and right of column ``cut``, each side one
    (Multi)Polygon of its 4-connected pieces, as a block's outlines are."""
    pieces = []
    for cols in (slice(0, cut), slice(cut, mask.shape[1])):
        side = np.zeros(mask.shape, np.uint8)
        side[:, cols] = mask[:, cols]
        polys = [shapely.geometry.shape(g) for g, _ in shapes(side, mask=side > 0, connectivity=4)]
        pieces.append(polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys))
    return pieces


@pytest.mark.parametrize("seed", range(6))
def test_union_pieces_is_union_all_with_far_polygons_left_out_of_the_overlay(seed):
    rng = np.random.default_rng(seed)
    # speckle: many small 4-connected pieces, some touching only at corners, some with holes,
    # a few crossing the cut
    mask = (rng.random((60, 80)) < 0.45).astype(np.uint8)
    mask[20:40, 30:50] = 1
    mask[28:32, 38:42] = 0
    pieces = _block_pieces(mask, 40)
    want = shapely.union_all(pieces)
    got = union_pieces(pieces)
    assert got.is_valid and got.equals(want)

    def canonical(g):
        return shapely.to_wkb(shapely.normalize(shapely.simplify(g, 0.0)))

    assert canonical(got) == canonical(want)


def test_union_pieces_when_nothing_or_everything_meets():
    a, b = shapely.box(0, 0, 2, 2), shapely.box(2, 0, 4, 2)  # share an edge: everything meets
    assert union_pieces([a, b]).equals(shapely.box(0, 0, 4, 2))
    far = shapely.MultiPolygon([shapely.box(10, 10, 11, 11), shapely.box(12, 10, 13, 11)])
    got = union_pieces([far, shapely.box(20, 20, 21, 21)])  # nothing meets
    assert got.geom_type == "MultiPolygon" and len(got.geoms) == 3
    assert got.equals(shapely.union_all([far, shapely.box(20, 20, 21, 21)]))


@pytest.mark.parametrize("seed", range(4))
def test_union_pieces_of_four_blocks_meeting_at_a_corner(seed):
    """Only polygons reaching their piece's box go through the overlay: pieces of four
    blocks, touching along edges and at the corner where the four meet, still union as
    union_all does."""
    rng = np.random.default_rng(100 + seed)
    mask = (rng.random((50, 50)) < 0.4).astype(np.uint8)
    mask[24:26, 24:26] = [[1, 0], [0, 1]]  # two blocks touch only at the corner (25, 25)
    pieces = []
    for rows in (slice(0, 25), slice(25, 50)):
        for cols in (slice(0, 25), slice(25, 50)):
            side = np.zeros(mask.shape, np.uint8)
            side[rows, cols] = mask[rows, cols]
            polys = [
                shapely.geometry.shape(g) for g, _ in shapes(side, mask=side > 0, connectivity=4)
            ]
            pieces.append(polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys))
    want = shapely.union_all(pieces)
    got = union_pieces(pieces)
    assert got.is_valid and got.equals(want)
    assert shapely.get_num_geometries(got) == shapely.get_num_geometries(want)


@pytest.mark.parametrize(
    ("block", "first_px", "georeferenced", "least_alone"),
    [(40, None, True, 100), (24, (3, 5), False, 10)],  # the second: first blocks narrower
)  # than twice the margin (nothing split off there) and no CRS (no WGS84, no text)
def test_candidates_within_one_block_are_finished_there_as_the_collector_would(
    block, first_px, georeferenced, least_alone
):
    # noisy two-band rectangles: the sums are floats whose value depends on the order they
    # are added in; a block's candidates split off by whole_in_block have the sums, and
    # stitch to the candidates (and GeoJSON text), the collector makes of the unsplit blocks
    from rasterio.crs import CRS
    from satdelta.imagery.block_join import StitchSettings, whole_in_block
    from satdelta.imagery.spill import prepared_candidates

    rng = np.random.default_rng(11)
    n = 600
    before = (100 + rng.normal(0, 3, (2, n, n))).astype(np.float32)
    after = before + rng.normal(0, 3, (2, n, n)).astype(np.float32)
    for r, c in rng.integers(0, n - 9, (500, 2)).tolist():
        h, w = (int(v) for v in rng.integers(2, 9, 2))
        after[:, r : r + h, c : c + w] += rng.normal(120, 20, (2, h, w)).astype(np.float32)
    valid = np.ones((n, n), bool)
    det = ChangeDetector(None, ScoreModel("absdiff"), ThresholdFit(50.0, "value", {}), 0, 6, {})
    crs = CRS.from_epsg(32633) if georeferenced else None
    transform = Affine(10, 0, 500000, 0, -10, 4000000)
    plan = plan_blocks((n, n), block, window_halo_px(det), first_px)
    results = {
        (i, j): apply_window(
            det, b, before[:, b.outer_rows, b.outer_cols], after[:, b.outer_rows, b.outer_cols],
            valid[b.outer_rows, b.outer_cols], (n, n), transform,
        )
        for i, line in enumerate(plan)
        for j, b in enumerate(line)
    }  # fmt: skip
    scales = (np.array([3.0, 4.0]), np.array([5.0, 6.0]))
    settings = StitchSettings.of(crs, 10.0, scales)

    def collected(split: bool) -> tuple[dict, int]:
        """first pixel -> (its sums, its candidate) over all blocks; how many split off."""
        labels = lambda i, j: results[i, j].labels  # noqa: E731
        index = GroupIndex(plan, labels)
        collector = CandidateCollector(
            plan, index, 6, labels, crs=crs, pixel_size_m=10.0, band_scales=scales
        )
        parts, alone = [], 0
        for (i, j), r in results.items():
            fragments, pieces = r.fragments, r.pieces
            if split:
                whole, fragments, pieces = whole_in_block(r.fragments, r.pieces, r.labels, settings)
                gone = sorted(set(r.pieces.outlines) - set(pieces.outlines))
                assert not np.isin(fragments.labels, gone).any()  # their regions taken
                assert set(pieces.first) == set(pieces.outlines)
                firsts = [f for part in whole for f in part.firsts]
                assert firsts == sorted(r.pieces.first[k] for k in gone)
                parts += whole
                alone += len(firsts)
            collector.add(i, j, fragments, pieces)
            if j == len(plan[i]) - 1:
                parts += collector.finished_parts(i - 1)
        parts += collector.finished_parts()
        out = {}
        for part in parts:
            stitched = part.stitched()
            columns, texts = prepared_candidates(
                stitched, threshold=50.0, georeferenced=georeferenced
            )
            texts = texts or [None] * len(stitched)
            for k, (first, polygon) in enumerate(stitched):
                assert first not in out
                sums = {f: v[k] for f, v in part.sums.items()}
                out[first] = (sums, polygon, [c[k] for c in columns], texts[k])
        return out, alone

    split, alone = collected(True)
    unsplit, _ = collected(False)
    assert split.keys() == unsplit.keys()
    for first, (sums, p, columns, text) in unsplit.items():
        sums_q, q, columns_q, text_q = split[first]
        for field, value in sums.items():
            assert np.array_equal(sums_q[field], value), field
        assert columns_q == columns and text_q == text
        assert q.geometry.wkb == p.geometry.wkb
        assert shapely.to_wkb(q.geometry_wgs84) == shapely.to_wkb(p.geometry_wgs84)
        assert (q.score, q.pixel_count, q.area_m2, q.planar_area_m2, q.change) == (
            p.score, p.pixel_count, p.area_m2, p.planar_area_m2, p.change)  # fmt: skip
        assert np.array_equal(q.compactness, p.compactness, equal_nan=True)
    assert least_alone < alone < len(unsplit) - 50  # many split off, many left to the collector
