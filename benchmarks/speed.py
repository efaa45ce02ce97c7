"""Speed and peak memory of ``satdelta detect`` beside Orfeo ToolBox, in the same run.

The machine is shared and noisy, so the figure that matters is the ratio to the anchor timed
in the same run, not the seconds. Both programs run as child processes on the same files; wall
time and peak resident memory of each child come from GNU time (``/usr/bin/time``, Debian's
``time`` package).

Anchor: Orfeo ToolBox's ``otbcli_MultivariateAlterationDetector`` (MAD transform of two
co-registered images, one float image out), from Debian's ``otb-bin``
(``apt-get install otb-bin``). It does less than ``satdelta detect`` (no co-registration, no
normalisation, no threshold, no clean-up, no polygons, no COG), so a ratio near 1 means
satdelta does the whole job in the time OTB takes for the change transform alone.

Pairs: the synthetic 4-band pairs of ``benchmarks/gui.py`` at 1024² and 2048² (same grid, a
sub-pixel shift, 40 changed rectangles), and the real Taizhou Landsat pair from
``../shared/data`` (6 bands, same grid). Run::

    .venv/bin/python benchmarks/speed.py [--sizes 1024 2048] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import TAIZHOU, TAIZHOU_AFTER, TAIZHOU_BEFORE, data_path  # noqa: E402
from gui import make_pair  # noqa: E402

OTB_MAD = "otbcli_MultivariateAlterationDetector"
SATDELTA = Path(sys.executable).with_name("satdelta")
GNU_TIME = "/usr/bin/time"  # Debian package `time`


def run_child(cmd: list[str]) -> tuple[float, float]:
    """Run *cmd*; return (wall seconds, peak RSS in MB) of that child alone.

    GNU time reports the peak; it is used rather than ``os.wait4`` from here because a child
    forked from this (large) Python process starts with this process's peak already counted.
    """
    proc = subprocess.run(
        [GNU_TIME, "-f", "%e %M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, check=False,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    wall, kib = lines[-1].split()
    return float(wall), float(kib) / 1024.0


def best_of(cmd: list[str], repeat: int) -> tuple[float, float]:
    runs = [run_child(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def megapixels(path: Path) -> float:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.width * ds.height / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1024, 2048])
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs each (default 3)")
    args = parser.parse_args(argv)

    otb = shutil.which(OTB_MAD)
    if otb is None:
        print(f"anchor missing: {OTB_MAD} not on PATH; install it with `apt-get install otb-bin`")
    with tempfile.TemporaryDirectory(prefix="satdelta-speed-") as tmp:
        folder = Path(tmp)
        pairs: list[tuple[str, Path, Path]] = []
        for size in args.sizes:
            sub = folder / f"synthetic-{size}"
            sub.mkdir()
            pairs.append((f"synthetic {size}² x4", *make_pair(sub, size)))
        taizhou = data_path(TAIZHOU)
        if (taizhou / TAIZHOU_BEFORE).is_file():
            before, after = taizhou / TAIZHOU_BEFORE, taizhou / TAIZHOU_AFTER
            pairs.append(("taizhou 400² x6 (real)", before, after))
        else:
            print(f"skipping taizhou: {taizhou} not found")

        header = (
            f"{'pair':<24} {'Mpix':>5} | {'satdelta s':>10} {'MB':>6} {'Mpix/s':>7} | "
            f"{'OTB MAD s':>9} {'MB':>6} | {'time ratio':>10} {'mem ratio':>9}"
        )
        print(header)
        print("-" * len(header))
        for name, before, after in pairs:
            mpix = megapixels(before)
            out = folder / f"out-{abs(hash(name))}"
            sd_t, sd_m = best_of(
                [str(SATDELTA), "detect", str(before), str(after), "-o", str(out)], args.repeat
            )
            row = f"{name:<24} {mpix:5.2f} | {sd_t:10.2f} {sd_m:6.0f} {mpix / sd_t:7.2f} | "
            if otb:
                mad = folder / f"mad-{abs(hash(name))}.tif"
                otb_t, otb_m = best_of(
                    [otb, "-in1", str(before), "-in2", str(after), "-out", str(mad)], args.repeat
                )
                row += f"{otb_t:9.2f} {otb_m:6.0f} | {sd_t / otb_t:10.2f} {sd_m / otb_m:9.2f}"
            else:
                row += f"{'-':>9} {'-':>6} | {'-':>10} {'-':>9}"
            print(row, flush=True)
    print(
        "\nratios are satdelta / OTB (lower is better for satdelta); best wall time of "
        f"{args.repeat} runs, peak RSS of the child process."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
