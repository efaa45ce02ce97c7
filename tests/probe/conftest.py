"""Shared helpers of the probe corpus: run ``satdelta`` as a real subprocess and check
that a bad input ends in one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin


def satdelta(
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    user: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``satdelta ARGS`` in a fresh interpreter (as *user* when given, via runuser)."""
    cmd = [sys.executable, "-m", "satdelta.plugins.cli.main", *map(str, args)]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=full_env
    )


def assert_one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 1, exactly one line on stderr, a diagnosis (not an internal error) naming *needles*."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("satdelta: error: "), line
    assert "internal error" not in line and "Traceback" not in res.stderr
    for needle in needles:
        assert needle.lower() in line.lower(), (needle, line)
    return line


def assert_clean_outcome(res: subprocess.CompletedProcess[str]) -> None:
    """Exit 0, or exit 1 with one diagnosed line; never a traceback or an internal error."""
    assert res.returncode in (0, 1), (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    if res.returncode == 1:
        assert_one_line_error(res)


def write_tif(path: Path, data: np.ndarray, **profile: object) -> Path:
    """Write ``(band, row, col)`` *data* as a GeoTIFF (EPSG:32651, 10 m pixels by default)."""
    prof: dict[str, object] = dict(
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs="EPSG:32651",
        transform=from_origin(500000, 4000000, 10, 10),
    )
    prof.update(profile)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data)
    return path


@pytest.fixture
def texture() -> np.ndarray:
    """A (3, 64, 64) uint8 random texture (deterministic)."""
    return (np.random.default_rng(0).random((3, 64, 64)) * 200).astype("uint8")


def _mount(args: list[str], target: Path) -> None:
    res = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a test filesystem here (needs root): {res.stderr.strip()}")


def _umount(target: Path) -> None:
    subprocess.run(["umount", str(target)], capture_output=True, check=False)


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 2 MiB tmpfs filled to the last block (needs root; skips otherwise)."""
    target = tmp_path / "full"
    target.mkdir()
    _mount(["-t", "tmpfs", "-o", "size=2m", "tmpfs"], target)
    try:
        yield target
    finally:
        _umount(target)


def fill(folder: Path) -> None:
    """Fill the filesystem of *folder* until a write of even one byte fails (ENOSPC)."""
    fd = os.open(folder / "fill", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 16, 1 << 10, 1):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError:
                continue
    finally:
        os.close(fd)


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder turned into a read-only bind mount (root ignores chmod; skips without root).

    Put files in it first through ``readonly_dir.parent / "rw"``, which is the same folder.
    """
    source = tmp_path / "rw"
    source.mkdir()
    target = tmp_path / "ro"
    target.mkdir()
    _mount(["--bind", str(source)], target)
    res = subprocess.run(
        ["mount", "-o", "remount,ro,bind", str(target)], capture_output=True, text=True
    )
    if res.returncode != 0:
        _umount(target)
        pytest.skip(f"cannot remount read-only here: {res.stderr.strip()}")
    try:
        yield target
    finally:
        _umount(target)
