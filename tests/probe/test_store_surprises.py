"""Quiet surprises of the store's command line, through real subprocesses: re-imports add
nothing, far polygons are flagged, exports get the umask's mode, the analyst is recorded,
a wait on a locked store is announced, a new label points to the command that adds it."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.probe.conftest import assert_one_line_error, satdelta


def _square(x: float, y: float) -> dict:
    ring = [[x, y], [x + 1e-3, y], [x + 1e-3, y + 1e-3], [x, y + 1e-3], [x, y]]
    return {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.gpkg"
    assert satdelta("--store", path, "report", "add", "--title", "probe").returncode == 0
    made = satdelta("--store", path, "claim", "add", "--report", "1", "--text", "t",
                    "--bbox", "120,30,120.01,30.01")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return path


def _count(store: Path) -> int:
    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT count(*) FROM annotations").fetchone()[0]


def _import(store: Path, file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return satdelta("--store", store, "import", file, "--report", "1", "--claim", "1", *extra)


def test_reimport_adds_nothing_and_says_so(store: Path, tmp_path: Path) -> None:
    changes = tmp_path / "changes.geojson"
    feats = [_square(120.001, 30.001), _square(120.004, 30.004)]
    changes.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    assert _import(store, changes).returncode == 0
    assert _count(store) == 2
    again = _import(store, changes)
    assert again.returncode == 0 and "skipped 2 already in the store" in again.stderr
    export = tmp_path / "export.geojson"
    assert satdelta("--store", store, "export", "-o", export).returncode == 0
    assert "skipped 2" in _import(store, export).stderr
    assert _count(store) == 2
    assert _import(store, changes, "--allow-duplicates").returncode == 0
    assert _count(store) == 4


def test_polygon_far_from_claim_box_warns(store: Path, tmp_path: Path) -> None:
    far = tmp_path / "far.geojson"
    far.write_text(json.dumps(_square(10.0, 50.0)))
    res = _import(store, far)
    assert res.returncode == 0 and "far outside claim 1's box" in res.stderr


def test_export_has_the_umask_mode(store: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        for name in ("e.geojson", "e.csv", "e.gpkg"):
            assert satdelta("--store", store, "export", "-o", tmp_path / name).returncode == 0
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    finally:
        os.umask(old)


def test_analyst_is_recorded_in_every_revision(store: Path) -> None:
    wkt = "POLYGON((120 30, 120.001 30, 120.001 30.001, 120 30.001, 120 30))"
    added = satdelta("--store", store, "annotation", "add", "--claim", "1", "--label", "other",
                     "--geometry", wkt, env={"SATDELTA_ANALYST": "kim"})  # fmt: skip
    uid = added.stdout.strip()
    res = satdelta("--store", store, "--analyst", "lee", "annotation", "set", uid, "--status",
                   "accepted")  # fmt: skip
    assert res.returncode == 0, res.stderr
    history = satdelta("--store", store, "annotation", "history", uid).stdout.splitlines()
    assert " kim " in history[1] and " lee " in history[2]
    line = assert_one_line_error(
        satdelta("--store", store, "annotation", "set", uid, "--label", "crater"), "crater"
    )
    assert "satdelta annotation labels --add crater" in line


def test_waiting_for_a_locked_store_says_so(store: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(store)!r}, isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(3)\n"
         "c.execute('ROLLBACK')"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        res = satdelta("--store", store, "report", "add", "--title", "later")
        assert res.returncode == 0, res.stderr
        assert time.monotonic() - start > 1
        assert "waiting for the store" in res.stderr and f"pid {holder.pid}" in res.stderr
    finally:
        holder.wait(timeout=30)
