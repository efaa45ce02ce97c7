"""Speed and peak memory of ``satdelta detect`` on a large pair, beside Orfeo ToolBox.

Generates an 8192 x 8192 4-band uint16 pair (and a 16384 x 16384 one with ``--big``):
tiled 512 x 512 GeoTIFFs, DEFLATE with the horizontal predictor, 10 m pixels (UTM), a
textured background, about 8 % of the pixels changed (rectangles of new material, the
truth), the after date moved by a sub-pixel shift (dy 0.4, dx -0.3 px) and given a
gain/offset step (x 1.08 + 150 DN) and sensor noise. Then, in one run and best of N each:

* ``satdelta detect`` (the full job: open, align, fit, blocks, candidates, COGs, GeoJSON);
* ``otbcli_MultivariateAlterationDetector`` (Debian ``otb-bin``): the MAD transform only,
  one float image out - it does less than satdelta (no co-registration, normalisation,
  threshold, clean-up, polygons); when the dates' grids differ (the NAIP pair) it is given
  the after file with the before file's georeferencing (:func:`on_grid_of`);
* decoding both inputs (every band, tile by tile) - the floor of any job on these files.

Each runs as a child process; wall time and peak RSS of the child come from GNU time
(``/usr/bin/time``). Prints wall s, Mpix/s, peak RSS, F1 of mask.tif against the truth, the
ratios, and satdelta's stage breakdown (run.json ``timings_s``). Run::

    .venv/bin/python benchmarks/speed.py [--big] [--repeat 2] [--real [SIZE]]

``--real`` adds the NAIP North Dakota pair of ``../shared/data`` mirror-tiled to SIZE²
(default 4096): real texture and change, where candidates number in the thousands.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import NAIP, NAIP_AFTER, NAIP_BEFORE, SHARED_DATA  # noqa: E402

OTB_MAD = "otbcli_MultivariateAlterationDetector"
SATDELTA = Path(sys.executable).with_name("satdelta")
GNU_TIME = "/usr/bin/time"  # Debian package `time`
STRIP = 512
SHIFT = (0.4, -0.3)
GAIN, OFFSET = 1.08, 150.0
CHANGED_FRACTION = 0.08
PIXEL_M = 10.0
ORIGIN = (500_000.0, 4_300_000.0)

DECODE = """
import sys, rasterio
from concurrent.futures import ThreadPoolExecutor
from rasterio.windows import Window
def read(path, r0):
    with rasterio.open(path) as ds:
        ds.read(window=Window(0, r0, ds.width, min(512, ds.height - r0)))
paths = sys.argv[1:]
with rasterio.open(paths[0]) as ds:
    h = ds.height
jobs = [(p, r) for p in paths for r in range(0, h, 512)]
with ThreadPoolExecutor(2) as pool:
    list(pool.map(lambda j: read(*j), jobs))
"""


def _rectangles(size: int, rng: np.random.Generator) -> np.ndarray:
    """(K, 4 + 4) rows of r, c, h, w and four band values, covering about 8 % of the grid."""
    mean_area = 50.0**2
    k = int(size * size * CHANGED_FRACTION / mean_area * 1.05)
    h = rng.integers(12, 90, k)
    w = rng.integers(12, 90, k)
    r = rng.integers(0, size - 90, k)
    c = rng.integers(0, size - 90, k)
    vals = rng.uniform(800, 5000, (k, 4))
    return np.column_stack([r, c, h, w, vals])


def _texture(size: int, r0: int, r1: int, seed: int) -> np.ndarray:
    """Rows r0..r1 of a smooth 4-band field (each row's noise from its own seed)."""
    halo = 16
    a, b = max(r0 - halo, 0), min(r1 + halo, size)
    noise = np.stack(
        [np.random.default_rng((seed, row)).random((4, size), np.float32) for row in range(a, b)],
        axis=1,
    )
    field = ndimage.gaussian_filter(noise, (0, 3, 3), mode="reflect")
    return field[:, r0 - a : r1 - a]


def make_pair(folder: Path, size: int) -> tuple[Path, Path, Path]:
    """Write before.tif, after.tif and truth.tif (1 = changed) of ``size`` x ``size``."""
    rng = np.random.default_rng(12)
    rects = _rectangles(size, rng)
    transform = Affine(PIXEL_M, 0, ORIGIN[0], 0, -PIXEL_M, ORIGIN[1])
    common = dict(
        driver="GTiff", width=size, height=size, crs="EPSG:32633", transform=transform,
        tiled=True, blockxsize=512, blockysize=512, compress="deflate", predictor=2,
        bigtiff="IF_SAFER",
    )  # fmt: skip
    paths = [
        folder / "before_2024-05-01.tif",
        folder / "after_2024-06-01.tif",
        folder / "truth.tif",
    ]
    with (
        rasterio.open(paths[0], "w", count=4, dtype="uint16", **common) as bds,
        rasterio.open(paths[1], "w", count=4, dtype="uint16", **common) as ads,
        rasterio.open(paths[2], "w", count=1, dtype="uint8", **common) as tds,
    ):
        for ds in (bds, ads):
            for i, name in enumerate(("blue", "green", "red", "nir"), start=1):
                ds.set_band_description(i, name)
        noise = np.random.default_rng(5)
        for r0 in range(0, size, STRIP):
            r1 = min(r0 + STRIP, size)
            pad = 2
            a, b = max(r0 - pad, 0), min(r1 + pad, size)
            base = 600 + 4000 * (_texture(size, a, b, 1) - 0.35) * 3
            moved = ndimage.shift(base, (0, SHIFT[0], SHIFT[1]), order=1, mode="nearest")
            before = base[:, r0 - a : r1 - a]
            after = moved[:, r0 - a : r1 - a] * GAIN + OFFSET
            truth = np.zeros((r1 - r0, size), np.uint8)
            hit = (rects[:, 0] < r1) & (rects[:, 0] + rects[:, 2] > r0)
            for rr, cc, hh, ww, *vals in rects[hit]:
                ra, rb = int(max(rr, r0)) - r0, int(min(rr + hh, r1)) - r0
                cs = slice(int(cc), int(cc + ww))
                after[:, ra:rb, cs] = np.asarray(vals, np.float32)[:, None, None]
                truth[ra:rb, cs] = 1
            before = before + noise.normal(0, 15, before.shape)
            after = after + noise.normal(0, 15, after.shape)
            win = Window(0, r0, size, r1 - r0)
            bds.write(np.clip(before, 0, 65535).astype("uint16"), window=win)
            ads.write(np.clip(after, 0, 65535).astype("uint16"), window=win)
            tds.write(truth, 1, window=win)
    return paths[0], paths[1], paths[2]


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Run ``cmd``; (wall seconds, peak RSS in MB, CPU seconds: user + system) of that
    child, from GNU time."""
    proc = subprocess.run(
        [GNU_TIME, "-f", "%e %M %U %S", *cmd], capture_output=True, text=True, check=False,
        env=env,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    if proc.returncode != 0 or not lines:
        said = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        said = [ln for ln in said if not ln.startswith("Command exited")][:-1] or said
        reason = " / ".join(said[-3:])[-600:]
        raise RuntimeError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): {reason}")
    wall, kib, user, system = lines[-1].split()
    return float(wall), float(kib) / 1024.0, float(user) + float(system)


def best_of(
    cmd: list[str], repeat: int, env: dict[str, str] | None = None
) -> tuple[float, float, float]:
    """The best wall time, the largest peak RSS and the least CPU time of ``repeat`` runs.

    On a shared machine the wall time moves with the other tenants' load (by a fifth from
    run to run here); the CPU time (user + system) moves far less, so the table shows both.
    """
    runs = [run_child(cmd, env) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs), min(r[2] for r in runs)


def f1_score(mask_path: Path, truth_path: Path) -> tuple[float, float, float]:
    """Precision, recall and F1 of mask.tif (1 = changed) against the truth, strip by strip."""
    tp = fp = fn = 0
    with rasterio.open(mask_path) as m, rasterio.open(truth_path) as t:
        for r0 in range(0, m.height, 1024):
            win = Window(0, r0, m.width, min(1024, m.height - r0))
            pred = m.read(1, window=win) == 1
            true = t.read(1, window=win) == 1
            tp += int((pred & true).sum())
            fp += int((pred & ~true).sum())
            fn += int((~pred & true).sum())
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    return p, r, 2 * p * r / max(p + r, 1e-12)


def make_real_pair(folder: Path, size: int) -> tuple[Path, Path, None]:
    """The NAIP North Dakota pair (``../shared/data/naip-nd``, 2009 and 2020, 4-band uint8)
    mirror-tiled to ``size`` x ``size``: real texture and real change (thousands of small
    candidates), on the synthetic pair's file layout. No truth (F1 not measured)."""
    paths = [folder / "naip_2009-08-18.tif", folder / "naip_2020-08-31.tif"]
    for name, out in zip((NAIP_BEFORE, NAIP_AFTER), paths, strict=True):
        with rasterio.open(SHARED_DATA / NAIP / name) as src:
            a = src.read()[:, :720, :930]  # both dates' common extent
            tile = np.concatenate([a, a[:, ::-1]], axis=1)  # mirrored: no seams
            tile = np.concatenate([tile, tile[:, :, ::-1]], axis=2)
            reps = (1, -(-size // tile.shape[1]), -(-size // tile.shape[2]))
            big = np.tile(tile, reps)[:, :size, :size]
            profile = src.profile | {
                "width": size, "height": size, "tiled": True, "blockxsize": 512,
                "blockysize": 512, "compress": "deflate", "predictor": 2, "bigtiff": "IF_SAFER",
            }  # fmt: skip
            with rasterio.open(out, "w", **profile) as dst:
                dst.write(big)
                dst.descriptions = src.descriptions
    return paths[0], paths[1], None


def bench(
    folder: Path, size: int, repeat: int, otb: str | None, *, real: bool = False
) -> dict[str, object]:
    sub = folder / f"pair-{size}{'-naip' if real else ''}"
    sub.mkdir()
    before, after, truth = make_real_pair(sub, size) if real else make_pair(sub, size)
    mpix = size * size / 1e6
    row: dict[str, object] = {"size": size, "mpix": mpix, "real": real}
    row["decode"] = best_of([sys.executable, "-c", DECODE, str(before), str(after)], repeat)
    out = sub / "out"
    row["satdelta"] = best_of(
        [str(SATDELTA), "detect", str(before), str(after), "-o", str(out)], repeat
    )
    summary = json.loads((out / "run.json").read_text())
    row["stages"] = summary["timings_s"]
    row["runner"] = summary.get("runner", {"kind": "whole"})
    row["f1"] = None if truth is None else f1_score(out / "mask.tif", truth)
    row["polygons"] = summary["polygons"]["count"]
    if otb:
        mad = sub / "mad.tif"
        try:
            row["otb"] = best_of(
                [otb, "-in1", str(before), "-in2", str(on_grid_of(before, after)), "-out",
                 str(mad)], repeat,
            )  # fmt: skip
        except RuntimeError as exc:  # the table is still printed, with why OTB has no row
            row["otb_error"] = str(exc)
    shutil.rmtree(sub, ignore_errors=True)
    return row


def on_grid_of(before: Path, after: Path) -> Path:
    """``after`` itself when both files have the same grid, else a VRT of it carrying the
    before file's georeferencing (pixels untouched). OTB's MAD compares the two images pixel
    by pixel and refuses inputs that "do not occupy the same physical space" (the NAIP dates
    are 1 m apart); it does no co-registration, which satdelta does. Uses GDAL's
    ``gdal_translate`` (Debian ``gdal-bin``, installed by ``scripts/setup.sh``)."""
    with rasterio.open(before) as b, rasterio.open(after) as a:
        if b.transform == a.transform and b.shape == a.shape:
            return after
        left, bottom, right, top = b.bounds
    vrt = after.with_name(after.stem + ".on-before-grid.vrt")
    subprocess.run(
        ["gdal_translate", "-q", "-of", "VRT", "-a_ullr", repr(left), repr(top), repr(right),
         repr(bottom), str(after), str(vrt)], check=True,
    )  # fmt: skip
    return vrt


def print_table(rows: list[dict[str, object]], repeat: int) -> None:
    head = (
        f"{'pair':<16} {'tool':<22} {'wall s':>7} {'CPU s':>7} {'Mpix/s':>7} {'peak MB':>8} "
        f"{'F1':>6} {'time / sd':>9}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        size, mpix = row["size"], row["mpix"]
        name = f"{size}² NAIP u8" if row["real"] else f"{size}² x4 u16"
        sd_t, sd_m, sd_c = row["satdelta"]  # type: ignore[misc]
        p, r, f1 = row["f1"] or (math.nan, math.nan, math.nan)  # type: ignore[misc]
        tools = [("satdelta detect", row["satdelta"], "-" if row["real"] else f"{f1:.3f}"),
                 ("decode both inputs", row["decode"], "-")]  # fmt: skip
        if "otb" in row:
            tools.append(("OTB MAD", row["otb"], "-"))
        for tool, (t, m, c), f in tools:  # type: ignore[misc]
            print(
                f"{name:<16} {tool:<22} {t:7.2f} {c:7.2f} {mpix / t:7.2f} {m:8.0f} {f:>6} "
                f"{t / sd_t:9.2f}"
            )
        if "otb_error" in row:
            print(f"{name:<16} {'OTB MAD':<22} {row['otb_error']}")
        scored = "no truth" if row["real"] else f"precision {p:.3f} recall {r:.3f}"
        print(f"{'':<16} {scored}; {row['polygons']} polygons; runner {row['runner']}")
        stages = row["stages"]
        print(f"{'':<16} stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))  # type: ignore[union-attr]
        if "otb" in row:
            otb_t, otb_m, otb_c = row["otb"]  # type: ignore[misc]
            dec_t = row["decode"][0]  # type: ignore[index]
            print(
                f"{'':<16} OTB MAD / satdelta: time {otb_t / sd_t:.2f}x, "
                f"CPU {otb_c / sd_c:.2f}x, memory {otb_m / sd_m:.2f}x; "
                f"satdelta / decode time {sd_t / dec_t:.2f}x"
            )
    synthetic = [row for row in rows if not row["real"]]
    if len(synthetic) > 1:
        m0, m1 = synthetic[0]["satdelta"][1], synthetic[-1]["satdelta"][1]  # type: ignore[index]
        print(f"peak RSS {synthetic[-1]['size']}² / {synthetic[0]['size']}²: {m1 / m0:.2f}x")
    print(
        f"\nbest wall time and least CPU time (user + system) of {repeat} runs each; peak RSS "
        "is the largest of the runs (GNU time)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", action="store_true", help="also the 16384² pair")
    parser.add_argument("--size", type=int, default=8192, help="side of the first pair")
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs each (default 2)")
    parser.add_argument("--no-otb", action="store_true", help="skip the OTB anchor")
    parser.add_argument(
        "--real", type=int, nargs="?", const=4096, default=None, metavar="SIZE",
        help="also the NAIP pair of ../shared/data mirror-tiled to SIZE² (default 4096)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    otb = None if args.no_otb else shutil.which(OTB_MAD)
    if otb is None and not args.no_otb:
        print(f"anchor missing: {OTB_MAD} not on PATH; install it with `apt-get install otb-bin`")
    sizes = [args.size] + ([16384] if args.big else [])
    with tempfile.TemporaryDirectory(prefix="satdelta-speed-", dir=Path.home()) as tmp:
        rows = [bench(Path(tmp), s, args.repeat, otb) for s in sizes]
        if args.real:
            rows.append(bench(Path(tmp), args.real, args.repeat, otb, real=True))
    print_table(rows, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
