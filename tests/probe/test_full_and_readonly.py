"""Read-only and full filesystems (real mounts, root only): exports and detect runs say
so in one line; a healthy store there is never called corrupt."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.probe.conftest import _mount, _umount, assert_one_line_error, fill, satdelta, write_tif


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


@pytest.fixture
def tight_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on a tmpfs just larger than what ``check_output_space`` asks of a 600 x 600
    grid (so the run starts), smaller than what the block runner writes (needs root)."""
    target = tmp_path / "tight"
    target.mkdir()
    need = int(600 * 600 * 5 * 4 / 3) + (1 << 16)  # outputs.check_output_space's bound
    _mount(["-t", "tmpfs", "-o", f"size={need // 1024 + 64}k", "tmpfs"], target)
    try:
        yield target
    finally:
        _umount(target)


def test_block_run_filling_the_disk_mid_run_is_one_message(tmp_path: Path, tight_dir: Path) -> None:
    rng = np.random.default_rng(4)
    before = (rng.random((3, 600, 600)) * 200).astype("uint8")
    after = before.copy()
    for r, c in rng.integers(0, 560, (60, 2)).tolist():  # candidates to spill and write
        after[:, r : r + 30, c : c + 30] = 250
    a = write_tif(tmp_path / "a.tif", before)
    b = write_tif(tmp_path / "b.tif", after)
    res = satdelta("detect", a, b, "-o", tight_dir / "out", "--runner", "blocks")
    line = assert_one_line_error(res, "the disk is full")
    assert f"{tight_dir / 'out'}/" in line and ".tmp-" not in line  # the folder asked for
    assert list(tight_dir.iterdir()) == []  # staging folder, spills and COGs removed


def test_a_block_runs_temporary_file_on_a_full_disk_is_one_error(full_dir: Path) -> None:
    from satdelta.imagery.errors import OutputError
    from satdelta.imagery.spill import RecordSpill

    fill(full_dir)
    with pytest.raises(OutputError, match="the disk is full") as caught:
        with RecordSpill(full_dir / ".blocks.spill") as spill:
            spill.put((0, 0), np.zeros(100_000))
    assert len(str(caught.value).splitlines()) == 1
    assert sorted(p.name for p in full_dir.iterdir()) == ["fill"]  # removed on the way out
