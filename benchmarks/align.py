"""Accuracy and cost of satdelta's shift estimate (``estimate_shift``), printed as a table.

Synthetic: a smooth random texture is moved by a random sub-pixel shift (Fourier shift, |shift| <=
3 px), then a fraction of the area is "changed" (bright rectangles added to the after image), and
the shift is measured back.  Real: the NAIP pair in ../shared/data (if present) through
``coregister``: residual shift before and after correction and the time taken.

    .venv/bin/python benchmarks/align.py [--n 10] [--size 256]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from satdelta.imagery.align import coregister, estimate_shift
from satdelta.imagery.scene import open_scene
from scipy import ndimage


def texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    t = ndimage.gaussian_filter(rng.random(shape), 2.0)
    return (t - t.min()) / (t.max() - t.min()) * 200 + 20


def synthetic(n: int, size: int) -> None:
    rng = np.random.default_rng(42)
    print(f"synthetic {size}x{size}, {n} random shifts per row")
    print(f"{'changed':>8} {'median err px':>14} {'max err px':>11} {'median s':>9}")
    for frac in (0.0, 0.1, 0.25):
        errs, times = [], []
        for _ in range(n):
            ref = texture((size, size), rng)
            shift = tuple(rng.uniform(-3, 3, 2))
            mov = np.fft.ifftn(ndimage.fourier_shift(np.fft.fftn(ref), shift)).real
            area = 0
            while area < frac * size * size:
                h, w = rng.integers(8, size // 4, 2)
                r, c = rng.integers(0, size - h), rng.integers(0, size - w)
                mov[r : r + h, c : c + w] += rng.uniform(60, 120)
                area += h * w
            t0 = time.perf_counter()
            got = estimate_shift(ref, mov)
            times.append(time.perf_counter() - t0)
            errs.append(max(abs(got[0] - shift[0]), abs(got[1] - shift[1])))
        print(
            f"{frac:>8.0%} {np.median(errs):>14.3f} {np.max(errs):>11.3f} {np.median(times):>9.3f}"
        )


def naip() -> None:
    d = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "naip-nd"
    files = sorted(d.glob("m_*.tif"))
    if len(files) < 2:
        print("naip-nd not found: skipped")
        return
    t0 = time.perf_counter()
    pair = coregister(open_scene(files[0]), open_scene(files[1]))
    dt = time.perf_counter() - t0
    print(
        f"NAIP {files[0].stem} -> {files[1].stem}: residual (dy, dx) "
        f"{pair.shift_before_px} px, after correction {pair.shift_after_px} px, "
        f"valid {pair.valid.mean():.4f}, {dt:.1f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    synthetic(args.n, args.size)
    naip()


if __name__ == "__main__":
    main()
