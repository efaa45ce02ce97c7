"""``benchmarks/speed.py``'s helpers: OTB given the after file on the before grid, and a
failing child reported with what it said (the table is still printed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import speed  # noqa: E402


def _write(path: Path, transform: Affine, value: int) -> Path:
    data = np.full((2, 40, 60), value, np.uint8)
    data[:, 5:9, 7:11] = value + 1
    with rasterio.open(
        path, "w", driver="GTiff", width=60, height=40, count=2, dtype="uint8",
        crs="EPSG:26914", transform=transform,
    ) as dst:  # fmt: skip
        dst.write(data)
    return path


def test_on_grid_of_gives_otb_the_after_pixels_on_the_before_grid(tmp_path):
    before = _write(tmp_path / "b.tif", Affine(5, 0, 485900, 0, -5, 5209247), 10)
    after = _write(tmp_path / "a.tif", Affine(5, 0, 485899, 0, -5, 5209246), 20)
    vrt = speed.on_grid_of(before, after)
    assert vrt != after and vrt.suffix == ".vrt"
    with rasterio.open(vrt) as v, rasterio.open(after) as a, rasterio.open(before) as b:
        assert v.transform == b.transform and v.crs == b.crs
        np.testing.assert_array_equal(v.read(), a.read())  # pixels untouched
    # same grid: the file itself
    same = _write(tmp_path / "s.tif", Affine(5, 0, 485900, 0, -5, 5209247), 30)
    assert speed.on_grid_of(before, same) == same


def test_a_failing_child_is_reported_with_what_it_printed(tmp_path):
    tool = tmp_path / "fake_otb"
    tool.write_text('#!/bin/sh\necho "(FATAL) MAD: Inputs do not occupy the same space"\nexit 3\n')
    tool.chmod(0o755)
    with pytest.raises(RuntimeError, match=r"fake_otb failed \(exit 3\): .*same space"):
        speed.run_child([str(tool)])
    wall, mb, cpu = speed.run_child([sys.executable, "-c", "pass"])
    assert wall >= 0 and mb > 0 and cpu >= 0
    # CPU time is the child's own: a child busy on one thread for about 0.3 s reports it
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    wall, _, cpu = speed.run_child([sys.executable, "-c", busy])
    assert 0.25 <= cpu <= wall + 0.05


def test_the_table_shows_cpu_time_beside_wall_time(capsys):
    # wall time moves with a shared machine's load; the CPU column and ratio move far less
    row = {
        "size": 8192, "mpix": 8192**2 / 1e6, "real": False, "f1": (0.95, 1.0, 0.976),
        "satdelta": (8.0, 560.0, 14.6), "decode": (2.3, 210.0, 4.5), "otb": (34.0, 1556.0, 60.0),
        "polygons": 1851, "runner": {"kind": "blocks"}, "stages": {"align": 1.0},
    }  # fmt: skip
    speed.print_table([row], 2)
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[3:5] == ["s", "CPU"]  # "wall s", "CPU s"
    assert "OTB MAD / satdelta: time 4.25x, CPU 4.11x, memory 2.78x" in out
    satdelta_line = next(ln for ln in out.splitlines() if "satdelta detect" in ln)
    assert satdelta_line.split()[5:7] == ["8.00", "14.60"]
