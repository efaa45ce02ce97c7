"""interp_increasing gives np.interp's values, bit for bit, on the cases that trip lookups."""

from __future__ import annotations

import numpy as np
import pytest
from satdelta.imagery.interpolation import interp_increasing

KNOTS = {
    "spread": lambda rng, k: np.sort(rng.random(k) * 255),
    "ties": lambda rng, k: np.sort(rng.integers(0, 30, k)).astype(float),  # runs of equal knots
    "heavy tail": lambda rng, k: np.sort(np.r_[rng.random(k - 1) * 10, 1e5]),  # many per bucket
    "constant": lambda rng, k: np.full(k, 7.0),
    "normal": lambda rng, k: np.sort(rng.normal(1000, 300, k)),
}


@pytest.mark.parametrize("kind", sorted(KNOTS))
@pytest.mark.parametrize("seed", range(6))
def test_same_values_as_np_interp(kind, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 1200))
    xp = KNOTS[kind](rng, k)
    fp = rng.random(k) * 300 if seed % 2 else np.sort(rng.random(k) * 300)
    if seed == 3:
        fp[:] = 5.0  # flat values: zero slopes
    lo, hi = xp.min() - 1, xp.max() + 1
    x = np.r_[
        rng.random(200_000) * (hi - lo) + lo,  # inside, left and right of the knots
        xp,  # on every knot, the last one included
        rng.choice(xp, 50),
        [np.nan, -np.inf, np.inf],
    ]
    if seed % 3 == 0:  # float32 data, as a block's after image
        x = x.astype(np.float32)
    got, want = interp_increasing(x, xp, fp), np.interp(x, xp, fp)
    assert got.dtype == np.float64 and got.shape == x.shape
    assert np.array_equal(got, want, equal_nan=True)


def test_the_table_is_used_and_most_values_are_found_in_it(monkeypatch):
    # with few values np.interp alone does it; with many, it only sees the misses
    rng = np.random.default_rng(1)
    xp, fp = np.sort(rng.random(1001) * 255), np.sort(rng.random(1001) * 255)
    x = (rng.random((512, 512)) * 255).astype(np.float32)
    seen: list[int] = []
    real = np.interp

    def counting(values, *args):  # noqa: ANN001, ANN202
        seen.append(np.size(values))
        return real(values, *args)

    monkeypatch.setattr(np, "interp", counting)
    out = interp_increasing(x, xp, fp)
    assert np.array_equal(out, real(x, xp, fp))
    assert len(seen) == 1 and seen[0] < x.size // 10  # nine values in ten from the table
    interp_increasing(x[:3, :3], xp, fp)
    assert seen[-1] == 9  # too few values: np.interp itself


@pytest.mark.parametrize("strip", [1000, 4096])
def test_same_values_across_strip_edges(strip, monkeypatch):
    # values looked up a strip at a time (the table path, not np.interp alone): misses and
    # edge values in every strip, the last strip partial
    from satdelta.imagery import interpolation

    monkeypatch.setattr(interpolation, "STRIP_VALUES", strip)
    rng = np.random.default_rng(7)
    xp, fp = np.sort(rng.random(90) * 255), rng.random(90) * 100
    x = np.r_[rng.random(9 * strip + 17) * 270 - 7, xp, [np.nan, np.inf]]
    rng.shuffle(x)
    real, seen = np.interp, []

    def counting(values, *args):  # noqa: ANN001, ANN202
        seen.append(np.size(values))
        return real(values, *args)

    monkeypatch.setattr(np, "interp", counting)
    got = interp_increasing(x, xp, fp)
    assert seen and seen[0] < x.size // 2  # the misses only: the strips ran
    assert np.array_equal(got, real(x, xp, fp), equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_memory_stays_near_the_output(dtype):
    # strips: no whole-array float64 temporaries (a 1024² band made eight of 8 MB) and no
    # float64 copy of a float32 input, so the peak beside the input is about the output
    import tracemalloc

    rng = np.random.default_rng(3)
    xp, fp = np.sort(rng.random(257) * 255), np.sort(rng.random(257) * 255)
    x = (rng.random(2_000_000) * 255).astype(dtype)
    out_bytes = x.size * 8
    tracemalloc.start()
    try:
        out = interp_increasing(x, xp, fp)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(out, np.interp(x, xp, fp))
    assert peak < 1.5 * out_bytes, f"peak {peak / 2**20:.0f} MB, output {out_bytes / 2**20:.0f} MB"
