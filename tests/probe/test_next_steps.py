"""``detect`` (on a terminal) and ``demo`` end with where the outputs are and what to try next."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.probe.conftest import satdelta, write_tif


def test_detect_on_a_terminal_says_where_and_what_next(tmp_path: Path, texture: np.ndarray) -> None:
    tif = write_tif(tmp_path / "a.tif", texture)
    leader, follower = pty.openpty()
    cmd = [
        sys.executable,
        "-m",
        "satdelta.plugins.cli.main",
        "detect",
        "a.tif",
        "a.tif",
        "-o",
        "out",
    ]
    proc = subprocess.run(cmd, stdout=follower, stderr=subprocess.PIPE, cwd=tmp_path, timeout=120)
    os.close(follower)
    text = os.read(leader, 1 << 16).decode()
    os.close(leader)
    assert proc.returncode == 0, proc.stderr
    assert f"to {tmp_path / 'out'}" in text
    assert "import out/changes.geojson --report ID --claim ID" in text
    assert f"view {tif.name} {tif.name}" in text


def test_demo_names_its_store_in_the_next_commands(tmp_path: Path) -> None:
    res = satdelta("demo", "-o", "sample_output", "--site", "sunan-airport", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "--store sample_output/satdelta.gpkg annotation list" in res.stdout
    listed = subprocess.run(
        res.stdout.split("next:", 1)[1].split("#")[0].split(),
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0 and listed.stdout.count("\n") > 1, listed.stderr
