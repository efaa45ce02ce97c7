"""Temporary folders of killed ``detect`` runs are cleared by the next run beside them,
whatever output folder they were for; folders that are not only ours are kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.probe.conftest import satdelta, write_tif


def test_next_run_clears_dead_runs_temp_folders_of_any_outdir(
    tmp_path: Path, texture: np.ndarray
) -> None:
    tif = write_tif(tmp_path / "a.tif", texture)
    dead = tmp_path / ".other.tmp-999999999-abc12345"  # a killed run into ./other
    dead.mkdir()
    (dead / "mask.tif").write_bytes(b"half written")
    foreign = tmp_path / ".cache.tmp-999999999-xyz"  # someone else's: kept
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    res = satdelta("detect", tif, tif, "-o", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert not dead.exists() and foreign.exists()
