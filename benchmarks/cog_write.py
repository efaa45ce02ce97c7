"""The block runner's two COG copies: overviews made by GDAL against overviews made here.

Writes an 8192 x 8192 float32 score (noisy, NaN along a 300-pixel border, as the runner's
``score.tif``) and a uint8 mask (0/1, 255 on the border) as the runner does, through
:func:`satdelta.imagery.cog.streamed_cog`, and times the end of the ``with`` block (levels,
VRT, COG copy). Beside it, the old way on the same temporary file: one GDAL COG copy that
computes the overviews itself. Prints wall and CPU seconds (best of N) and the file sizes,
with the mask's compressions too. Run::

    .venv/bin/python benchmarks/cog_write.py [--size 8192] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.windows import Window
from satdelta.imagery.cog import streamed_cog

GRID = {"transform": Affine(10, 0, 500000, 0, -10, 4300000), "crs": "EPSG:32633"}
BLOCK = 1024


def rasters(size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    score = rng.gamma(2.0, 3.0, (size, size)).astype(np.float32)
    mask = np.zeros((size, size), np.uint8)
    for r, c, h, w in rng.integers(0, size, (size // 8, 4)) // np.array([1, 1, 40, 40]):
        mask[r : r + h + 4, c : c + w + 4] = 1  # changed rectangles, about 8 % of the pixels
        score[r : r + h + 4, c : c + w + 4] += 20
    for a, nodata in ((score, np.nan), (mask, 255)):
        a[:300], a[:, :300] = nodata, nodata
    return {"score": score, "mask": mask}


def staging(a: np.ndarray, nodata: float, path: Path) -> None:
    """The tiled, uncompressed GeoTIFF streamed_cog writes before its COG copy."""
    with rasterio.open(path, "w", driver="GTiff", width=a.shape[1], height=a.shape[0],
                       count=1, dtype=a.dtype.name, nodata=nodata, tiled=True,
                       blockxsize=512, blockysize=512, **GRID) as dst:  # fmt: skip
        for r in range(0, a.shape[0], BLOCK):
            dst.write(a[r : r + BLOCK], 1, window=Window(0, r, a.shape[1], BLOCK))


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall and CPU seconds of ``fn`` over ``repeat`` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = rasters(args.size)
    folder = Path(tempfile.mkdtemp(prefix="cog_write-"))
    options = {
        "score": {"overview_resampling": "average", "compress": "none"},
        "mask": {"overview_resampling": "nearest", "compress": "deflate"},
    }
    mask_variants = {"zstd level 1": {"compress": "zstd", "level": 1},
                     "deflate level 1": {"compress": "deflate", "level": 1}}  # fmt: skip
    rows = []
    try:
        with rasterio.Env(GDAL_CACHEMAX=32 * 2**20):  # the block runner's setting
            for name, a in data.items():
                nodata = float("nan") if a.dtype.kind == "f" else 255
                variants = {"": options[name]}
                if name == "mask":
                    variants |= {k: {**options[name], **v} for k, v in mask_variants.items()}
                for variant, opts in variants.items():
                    out = folder / f"{name}.tif"

                    def streamed(a=a, opts=opts, out=out, nodata=nodata) -> None:
                        with streamed_cog(out, shape=a.shape, dtype=a.dtype.name,
                                          nodata=nodata, **GRID, **opts) as write:  # fmt: skip
                            for r in range(0, a.shape[0], BLOCK):
                                write(a[r : r + BLOCK], r, 0)
                            streamed.t = (time.perf_counter(), time.process_time())
                        streamed.wall = time.perf_counter() - streamed.t[0]
                        streamed.cpu = time.process_time() - streamed.t[1]

                    best = (np.inf, np.inf)
                    for _ in range(args.repeat):
                        streamed()
                        best = (min(best[0], streamed.wall), min(best[1], streamed.cpu))
                    size_mb = os.path.getsize(out) / 1e6
                    label = f"{name} {variant}".strip()
                    rows.append((f"{label}: overviews made here", *best, size_mb))
                    if variant:
                        continue
                    staging(a, nodata, folder / "gdal-source.tif")  # the same temporary file
                    extra = {"predictor": "YES"} if opts["compress"] != "none" else {}
                    gdal = timed(lambda opts=opts, out=out, extra=extra: rasterio.shutil.copy(
                        folder / "gdal-source.tif", out, driver="COG",
                        compress=opts["compress"].upper(), blocksize=512,
                        overview_resampling=opts["overview_resampling"], bigtiff="IF_SAFER",
                        num_threads="ALL_CPUS", **extra), args.repeat)  # fmt: skip
                    rows.append((f"{label}: overviews by GDAL", *gdal, os.path.getsize(out) / 1e6))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{args.size} x {args.size}, best of {args.repeat}, load {os.getloadavg()[0]:.2f}")
    print(f"{'output':44} {'wall s':>7} {'CPU s':>7} {'MB':>8}")
    for label, wall, cpu, mb in rows:
        print(f"{label:44} {wall:7.2f} {cpu:7.2f} {mb:8.1f}")


if __name__ == "__main__":
    main()
