"""block_join: the candidates' sums and change kinds over all candidates at once equal the
same arithmetic done one region and one candidate at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from satdelta.imagery.block_join import _distinctness, _summed
from satdelta.imagery.blocks import Fragments


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


def test_candidate_sums_are_added_in_block_order_exactly():
    rng = np.random.default_rng(0)
    blocks = []
    for _ in range(30):
        frag = _fragments(rng, int(rng.integers(0, 12)), 4)
        blocks.append((frag, rng.integers(0, 40, len(frag.count))))  # components, some dropped
    row_of = {c: row for row, c in enumerate(rng.permutation(40)[:25].tolist())}
    sums = _summed(blocks, row_of)
    # one region at a time, as Python adds them
    for field in ("count", "score_sum", "score_n", "inside", "ring_n", "ring_sum"):
        for c, row in row_of.items():
            total = 0
            for frag, comps in blocks:
                for k in np.flatnonzero(comps == c):
                    total = total + getattr(frag, field)[k]
            assert np.array_equal(sums[field][row], np.broadcast_to(total, sums[field][row].shape))
    assert sums["inside"].shape == (25, 2, 2, 4)


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
