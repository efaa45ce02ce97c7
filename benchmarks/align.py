"""Accuracy and cost of satdelta's shift estimate (``estimate_shift``), printed as a table.

Synthetic: a smooth random texture is moved by a random sub-pixel shift (Fourier shift, |shift| <=
3 px), then a fraction of the area is "changed" (bright rectangles added to the after image), and
the shift is measured back.  Scene: ``coregister`` on the 2048 x 2048 4-band uint8 pair of
``benchmarks/gui.py`` (made the same way: shifted (0.4, -0.3) px, gain, offset, noise, 40 changed
rectangles), best wall-clock and CPU seconds of 3 calls after a first one.  Real: the NAIP pair in
../shared/data (if present) through ``coregister``: residual shift before and after correction
and the time taken.

    .venv/bin/python benchmarks/align.py [--n 10] [--size 256] [--no-scene]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
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


def scene() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gui import make_pair  # the napari benchmark's pair

    with tempfile.TemporaryDirectory() as tmp:
        b_path, a_path = make_pair(Path(tmp))
        before, after = open_scene(b_path), open_scene(a_path)
        coregister(before, after)  # first call: imports, file cache
        walls, cpus = [], []
        for _ in range(3):
            w0, c0 = time.perf_counter(), time.process_time()
            pair = coregister(before, after)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
    dy, dx = pair.shift_before_px
    print(
        f"scene 2048x2048x4 (planted 0.4, -0.3): measured ({dy:.3f}, {dx:.3f}) px, after "
        f"correction {pair.shift_after_px} px, best of 3: {min(walls):.2f} s wall, "
        f"{min(cpus):.2f} s CPU"
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
    ap.add_argument("--no-scene", action="store_true", help="skip the 2048 x 2048 pair")
    args = ap.parse_args()
    synthetic(args.n, args.size)
    if not args.no_scene:
        scene()
    naip()


if __name__ == "__main__":
    main()
