"""``satdelta view``: bad input is one line and exit 1 before any window; good input opens
napari with the Change annotator docked (checked headless with ``--screenshot``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from satdelta.annotations import Store

SATDELTA = [sys.executable, "-m", "satdelta.plugins.cli.main"]


def _satdelta(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SATDELTA, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def test_view_refuses_missing_and_unreadable_files(tmp_path: Path, write_raster) -> None:
    good = write_raster("good.tif", np.zeros((1, 8, 8), np.uint8))
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    for args, needle in (
        (("view", str(tmp_path / "missing.tif"), str(good)), "does not exist"),
        (("view", str(good), str(junk)), "not a raster GDAL can read"),
    ):
        proc = _satdelta(*args, cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("satdelta: error: "), proc.stderr
        assert needle in lines[0]
    proc = _satdelta("view", str(good), cwd=tmp_path)
    assert proc.returncode == 1 and "give BEFORE and AFTER" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.gui
def test_view_opens_napari_with_the_widget_and_runs(tmp_path: Path, write_raster) -> None:
    rng = np.random.default_rng(3)
    base = (rng.random((3, 200, 200)) * 40 + 100).astype(np.uint8)
    changed = base.copy()
    changed[:, 60:120, 80:150] = 250
    before = write_raster("before.tif", base, transform=Affine(2, 0, 500000, 0, -2, 4000000))
    after = write_raster("after.tif", changed, transform=Affine(2, 0, 500000, 0, -2, 4000000))
    shot = tmp_path / "window.png"
    store = tmp_path / "view.gpkg"
    assert os.environ.get("DISPLAY"), "needs Xvfb (pytest-xvfb sets DISPLAY)"
    proc = _satdelta(
        "--store", str(store), "view", str(before), str(after), "--run",
        "--screenshot", str(shot), cwd=tmp_path, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    import imageio.v3 as iio

    img = iio.imread(shot)
    assert img.shape[0] >= 600 and img.shape[1] >= 1000  # the whole window, dock included
    assert img[..., :3].std() > 10  # not a black frame
    with Store.open(store) as s:
        cands = s.list_annotations(status="candidate")
    assert cands, "the run saved no candidates"
    biggest = max(cands, key=lambda a: a.area_m2)
    assert 0.7 * 60 * 70 * 4 < biggest.area_m2 < 1.3 * 60 * 70 * 4  # the 120 m x 140 m block
