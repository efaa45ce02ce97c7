"""spill: records on disk give back what was written; the candidates ranked and written
from the spill give the same GeoJSON text as the candidates ranked in memory."""

from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.crs import CRS
from satdelta.imagery.blocks import BlockPieces, apply_window, plan_blocks, window_halo_px
from satdelta.imagery.candidates import rank_candidates
from satdelta.imagery.detector import ChangeDetector
from satdelta.imagery.scores import ScoreModel
from satdelta.imagery.spill import RankedCandidates, RecordSpill, packed_pieces, unpacked_pieces
from satdelta.imagery.threshold import ThresholdFit
from satdelta.imagery.vectorize import CHANGE_KINDS, change_polygons, write_feature_collection

UTM = CRS.from_epsg(32633)


def test_records_written_from_threads_come_back_once(tmp_path):
    path = tmp_path / "records.spill"
    records = {k: (k, np.arange(k * 100, dtype=np.float64), "x" * k) for k in range(200)}
    with RecordSpill(path) as spill:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda k: spill.put(k, records[k]), records))
        for k in reversed(range(200)):
            key, values, text = spill.take(k)
            assert key == k and np.array_equal(values, records[k][1]) and text == "x" * k
        with pytest.raises(KeyError):
            spill.take(3)  # taken already
        assert path.exists()
    assert not path.exists()


def _block_pieces() -> list[BlockPieces]:
    """The pieces of a 3 x 3 plan of blocks over scattered changes (holes, fragments, small
    regions on the edges left undecided)."""
    rng = np.random.default_rng(3)
    n = 90
    before = np.full((1, n, n), 100, np.float32)
    after = before.copy()
    dense = np.where(np.arange(n) < n // 2, 0.3, 0.02)[None, :]  # fragments; lone pixels
    after[0] = np.where(rng.random((n, n)) < dense, 200, 100)
    valid = np.ones((n, n), bool)
    det = ChangeDetector(None, ScoreModel("absdiff"), ThresholdFit(50.0, "value", {}), 0, 4, {})
    t = Affine(10, 0, 500000, 0, -10, 4000000)
    plan = plan_blocks((n, n), 30, window_halo_px(det))
    return [
        apply_window(det, b, before[:, b.outer_rows, b.outer_cols],
                     after[:, b.outer_rows, b.outer_cols], valid[b.outer_rows, b.outer_cols],
                     (n, n), t).pieces
        for line in plan for b in line
    ]  # fmt: skip


def test_packed_pieces_unpack_to_the_same_geometries_and_pixels():
    pieces = _block_pieces()
    assert any(p.undecided for p in pieces)
    kinds = {g.geom_type for p in pieces for parts in p.outlines.values() for g in parts}
    assert kinds == {"Polygon", "MultiPolygon"}
    for p in [*pieces, BlockPieces({}, {}, {})]:
        q = unpacked_pieces(packed_pieces(p))
        assert list(q.outlines) == list(p.outlines)
        for label, parts in p.outlines.items():
            assert [g.wkb for g in q.outlines[label]] == [g.wkb for g in parts]
        assert q.first == p.first
        assert list(q.undecided) == list(p.undecided)
        for label, px in p.undecided.items():
            assert np.array_equal(q.undecided[label], px)


def _candidates(n: int, seed: int, crs: CRS | None):  # noqa: ANN202
    """``n`` unranked candidates with ties in evidence and size, and their first pixels."""
    rng = np.random.default_rng(seed)
    geoms, scores, counts, kinds = [], [], [], []
    for _ in range(n):
        x, y = (float(v) for v in rng.integers(0, 1000, 2) * 10 + 500000)
        w, h = (float(v) for v in rng.integers(1, 4, 2) * 10)
        geoms.append(shapely.box(x, 4000000 + y, x + w, 4000000 + y + h))
        scores.append(float(rng.choice([1.5, 2.0, 3.25, math.nan])))
        counts.append(int(w * h / 100))
        kinds.append(str(rng.choice(CHANGE_KINDS)))
    polygons = change_polygons(geoms, scores, counts, crs, 10.0, changes=kinds)
    firsts = rng.permutation(10 * n)[:n]
    return list(zip(firsts.tolist(), polygons, strict=True))


@pytest.mark.parametrize("seed", [0, 1])
def test_candidates_ranked_from_the_spill_write_the_in_memory_text(tmp_path, seed):
    items = _candidates(300, seed, UTM)
    in_order = [p for _, p in sorted(items, key=lambda item: item[0])]
    ranked = rank_candidates(in_order, threshold=1.8)
    expected = io.StringIO()
    write_feature_collection(expected, ranked, run={"method": "x"})
    path = tmp_path / "candidates.spill"
    with RankedCandidates(path, threshold=1.8, georeferenced=True) as spilled:
        for part in (items[:7], [], items[7:150], items[150:]):  # parts in any order
            spilled.add(part)
        got = io.StringIO()
        spilled.write_geojson(got, run={"method": "x"})
        count, area, kinds = spilled.summary()
    assert got.getvalue() == expected.getvalue()
    assert count == 300
    assert area == sum(p.area_m2 for p in ranked)
    assert kinds == {k: sum(p.change == k for p in ranked) for k in CHANGE_KINDS}
    assert not path.exists()


def test_candidates_without_a_crs_are_counted_but_have_no_geojson(tmp_path):
    items = _candidates(20, 2, None)
    with RankedCandidates(tmp_path / "c.spill", threshold=1.8, georeferenced=False) as spilled:
        spilled.add(items)
        assert spilled.summary()[0] == 20
        with pytest.raises(ValueError, match="no GeoJSON"):
            spilled.write_geojson(io.StringIO())
    assert not (tmp_path / "c.spill").exists()
    with RankedCandidates(tmp_path / "e.spill", threshold=1.8, georeferenced=True) as empty:
        text = io.StringIO()
        empty.write_geojson(text)
        assert empty.summary() == (0, 0, dict.fromkeys(CHANGE_KINDS, 0))
    assert text.getvalue() == '{"type": "FeatureCollection", "features": []}'
