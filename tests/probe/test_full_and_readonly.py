"""Read-only and full filesystems (real mounts, root only): exports and detect runs say
so in one line; a healthy store there is never called corrupt."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.probe.conftest import assert_one_line_error, fill, satdelta, write_tif


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "s.gpkg"
    assert satdelta("--store", path, "report", "add", "--title", "probe").returncode == 0
    return path


def test_export_into_read_only_folder(store: Path, readonly_dir: Path) -> None:
    for name in ("e.geojson", "e.gpkg"):
        res = satdelta("--store", store, "export", "-o", readonly_dir / name)
        assert_one_line_error(res, "read-only file system")


def test_export_on_full_disk(store: Path, full_dir: Path) -> None:
    fill(full_dir)
    for name in ("e.geojson", "e.gpkg", "e.csv"):
        assert_one_line_error(satdelta("--store", store, "export", "-o", full_dir / name), "full")
    assert sorted(p.name for p in full_dir.iterdir()) == ["fill"]


def test_detect_on_full_disk(tmp_path: Path, full_dir: Path, texture: np.ndarray) -> None:
    tif = write_tif(tmp_path / "a.tif", texture)
    fill(full_dir)
    res = satdelta("detect", tif, tif, "-o", full_dir / "out")
    assert_one_line_error(res, "free space")
    assert sorted(p.name for p in full_dir.iterdir()) == ["fill"]


def test_healthy_store_on_read_only_filesystem(store: Path, readonly_dir: Path) -> None:
    shutil.copy(store, readonly_dir.parent / "rw" / "s.gpkg")
    ro = readonly_dir / "s.gpkg"
    for args in (
        ("report", "list"),
        ("annotation", "list"),
        ("export", "-o", store.parent / "x.geojson"),
    ):
        res = satdelta("--store", ro, *args)
        assert res.returncode == 0, res.stderr
    line = assert_one_line_error(
        satdelta("--store", ro, "report", "add", "--title", "t"), "read-only"
    )
    assert "corrupt" not in line


def test_healthy_store_on_full_disk(store: Path, full_dir: Path) -> None:
    shutil.copy(store, full_dir / "s.gpkg")
    fill(full_dir)
    res = satdelta("--store", full_dir / "s.gpkg", "report", "list")
    assert res.returncode == 0, res.stderr
    line = assert_one_line_error(
        satdelta("--store", full_dir / "s.gpkg", "report", "add", "--title", "t"), "full"
    )
    assert "corrupt" not in line


def test_cog_running_out_of_space_mid_write_is_one_message(full_dir: Path) -> None:
    code = (
        "import numpy as np\n"
        "from affine import Affine\n"
        "from satdelta.imagery.cog import write_cog\n"
        "from satdelta.imagery.errors import OutputError\n"
        "a = np.random.default_rng(0).random((1, 1024, 1024)).astype('float32')\n"
        "try:\n"
        f"    write_cog({str(full_dir / 'x.tif')!r}, a, transform=Affine.identity(), crs=None)\n"
        "except OutputError as exc:\n"
        "    print(exc)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stderr == "", res.stderr  # libtiff's lines are in the message, not above it
    assert "No space left on device" in res.stdout, res.stdout
