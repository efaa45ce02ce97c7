"""``satdelta batch`` as a real subprocess: process pool, rerun skip, bad lists, a Dask cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.conftest import make_pair
from tests.plugins.test_cli_detect import assert_one_line_error, satdelta

OUTPUTS = {"mask.tif", "score.tif", "changes.geojson", "run.json"}


@pytest.fixture
def pairs_csv(tmp_path: Path) -> Path:
    """3 good georeferenced pairs (different shifts) + 1 pair whose after file is missing."""
    data = tmp_path / "data"
    lines = ["name,before,after"]
    for i, shift in enumerate([(0.4, -0.3), (-0.6, 0.2), (0.0, 0.8)]):
        folder = data / f"site{i}"
        folder.mkdir(parents=True)
        before, after, _ = make_pair(folder, shift=shift, shape=(96, 128))
        lines.append(f"site{i},{before.relative_to(tmp_path)},{after.relative_to(tmp_path)}")
    lines.append("broken,data/site0/before_2020-01-05.tif,data/site0/gone.tif")
    csv = tmp_path / "pairs.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


def rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout.strip().splitlines()
    assert lines[0].split("\t") == ["name", "status", "polygons", "changed_m2", "seconds", "error"]
    return {ln.split("\t")[0]: ln.split("\t") for ln in lines[1:]}


def read_mask(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_batch_on_a_process_pool_then_rerun_skips(pairs_csv, tmp_path):
    out = tmp_path / "out"
    res = satdelta("batch", pairs_csv, "-o", out, "--workers", "2", "--min-area", "300")
    assert_one_line_error(res, "1 of 4 pairs failed (broken)", str(out / "batch.json"))
    table = rows(res.stdout)
    assert set(table) == {"site0", "site1", "site2", "broken"}
    assert table["broken"][1] == "failed" and "gone.tif" in table["broken"][5]

    report = json.loads((out / "batch.json").read_text())
    assert report["executor"] == {"kind": "process-pool", "workers": 2}
    assert report["counts"] == {"done": 3, "skipped": 0, "failed": 1, "pending": 0}
    assert report["satdelta"]["finished"] is not None
    assert report["options"]["min_area_m2"] == 300.0
    by_name = {p["name"]: p for p in report["pairs"]}
    client_pid = report["client"]["pid"]
    for i in range(3):
        p = by_name[f"site{i}"]
        assert p["status"] == "done" and p["error"] is None
        assert p["worker"]["pid"] != client_pid  # ran in a pool process
        assert set(os.listdir(out / f"site{i}")) == OUTPUTS
        run = json.loads((out / f"site{i}" / "run.json").read_text())
        assert p["polygons"] == run["polygons"]["count"] == int(table[f"site{i}"][2])
        assert p["changed_area_m2"] == pytest.approx(run["detection"]["changed_area_m2"])
        assert run["options"]["min_area_m2"] == 300.0
        assert run["inputs"]["before"]["source"] == str(
            tmp_path / "data" / f"site{i}" / "before_2020-01-05.tif"
        )
    assert "no such file" in by_name["broken"]["error"]
    assert not (out / "broken").exists()

    # the same pair through `satdelta detect` gives the same outputs
    det = satdelta(
        "detect",
        by_name["site1"]["before"],
        by_name["site1"]["after"],
        "-o",
        tmp_path / "detect1",
        "--min-area",
        "300",
    )
    assert det.returncode == 0, det.stderr
    assert set(os.listdir(tmp_path / "detect1")) == OUTPUTS
    np.testing.assert_array_equal(
        read_mask(out / "site1" / "mask.tif"), read_mask(tmp_path / "detect1" / "mask.tif")
    )
    a = json.loads((out / "site1" / "changes.geojson").read_text())
    b = json.loads((tmp_path / "detect1" / "changes.geojson").read_text())
    assert a["features"] == b["features"]

    # rerun: up-to-date pairs are skipped (files untouched), the broken one fails again
    stamps = {i: (out / f"site{i}" / "mask.tif").stat().st_mtime_ns for i in range(3)}
    again = satdelta("batch", pairs_csv, "-o", out, "--workers", "2", "--min-area", "300")
    assert_one_line_error(again, "1 of 4 pairs failed")
    assert [rows(again.stdout)[f"site{i}"][1] for i in range(3)] == ["skipped"] * 3
    assert all((out / f"site{i}" / "mask.tif").stat().st_mtime_ns == stamps[i] for i in range(3))

    # a fixed list (broken pair removed) and --force: everything recomputed, exit 0
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("".join(pairs_csv.read_text().splitlines(keepends=True)[:-1]))
    forced = satdelta("batch", fixed, "-o", out, "--workers", "2", "--min-area", "300", "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr == ""
    assert [rows(forced.stdout)[f"site{i}"][1] for i in range(3)] == ["done"] * 3
    assert json.loads((out / "batch.json").read_text())["counts"]["done"] == 3


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (None, "missing"),
        ("id,first,second\nx,a.tif,b.tif\n", "expected the columns name,before,after"),
        ("name,before,after\nsite,a.tif,b.tif\nSite,c.tif,d.tif\n", "repeats row 2"),
        ("name,before,after\n../x,a.tif,b.tif\n", "cannot be a folder name"),
    ],
)
def test_bad_pairs_list_fails_before_any_work(tmp_path, text, needle):
    csv = tmp_path / "pairs.csv"
    if text is not None:
        csv.write_text(text)
    out = tmp_path / "out"
    res = satdelta("batch", csv, "-o", out, timeout=60)
    assert_one_line_error(res, needle)
    assert res.stdout == ""
    assert not out.exists()


def test_batch_on_a_dask_cluster(pairs_csv, tmp_path, dask_cluster):
    # the same pairs as a JSON list, in another folder: paths stay relative to the list
    sub = tmp_path / "lists"
    sub.mkdir()
    import csv as _csv

    with open(pairs_csv) as fh:
        items = [
            {k: (v if k == "name" else f"../{v}") for k, v in row.items()}
            for row in _csv.DictReader(fh)
        ]
    pairs_json = sub / "pairs.json"
    pairs_json.write_text(json.dumps(items))
    # the scheduler and one single-threaded worker live in this (pytest) process; the CLI
    # subprocess is the client: a task that ran on the cluster reports this process's pid
    cluster = dask_cluster
    worker_addresses = set(cluster.scheduler_info["workers"])
    out = tmp_path / "dask-out"
    res = satdelta(
        "batch",
        pairs_json,
        "-o",
        out,
        "--scheduler",
        cluster.scheduler_address,
        "--min-area",
        "300",
        timeout=120,
    )
    assert_one_line_error(res, "1 of 4 pairs failed (broken)")
    report = json.loads((out / "batch.json").read_text())
    assert report["pairs_file"] == str(pairs_json)
    assert report["executor"] == {
        "kind": "dask",
        "scheduler": cluster.scheduler_address,
        "workers": 1,
    }
    assert report["client"]["pid"] != os.getpid()
    for p in report["pairs"]:
        assert p["worker"]["pid"] == os.getpid()  # ran on the cluster, not in the CLI process
        assert p["worker"]["address"] in worker_addresses
    by_name = {p["name"]: p for p in report["pairs"]}
    assert by_name["broken"]["status"] == "failed"
    for i in range(3):
        assert by_name[f"site{i}"]["status"] == "done"
        assert set(os.listdir(out / f"site{i}")) == OUTPUTS
    # same outputs as the local pool would write: compare with the in-process detection
    from satdelta.imagery.options import DetectionOptions
    from satdelta.imagery.pipeline import run_detection

    site2 = by_name["site2"]
    run = run_detection(site2["before"], site2["after"], DetectionOptions(min_area_m2=300.0))
    mask = read_mask(out / "site2" / "mask.tif")
    np.testing.assert_array_equal(mask == 1, run.maps.changed & run.maps.valid)
    assert by_name["site2"]["polygons"] == len(run.polygons)


def test_unreachable_scheduler_is_one_line_before_any_work(pairs_csv, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    res = satdelta("batch", pairs_csv, "-o", out, "--scheduler", f"tcp://127.0.0.1:{port}")
    assert_one_line_error(res, f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    assert res.stdout == ""
    assert not out.exists()


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def test_a_killed_worker_only_costs_a_rerun_of_its_pair(tmp_path):
    data = tmp_path / "data"
    lines = ["name,before,after"]
    for i in range(3):
        folder = data / f"s{i}"
        folder.mkdir(parents=True)
        before, after, _ = make_pair(folder, shape=(1024, 1024))
        lines.append(f"s{i},{before},{after}")
    csv = tmp_path / "pairs.csv"
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "satdelta.plugins.cli.main", "batch", str(csv), "-o", str(out)]
    proc = subprocess.Popen([*cmd, "--workers", "1"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("name\t")
        first = proc.stdout.readline().split("\t")
        assert first[1] == "done", first
        time.sleep(0.5)  # the worker is now busy with the next pair (about 1 s each)
        workers = [
            k
            for k in _children(proc.pid)
            if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()
        ]
        assert len(workers) == 1, workers
        os.kill(workers[0], signal.SIGKILL)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    report = json.loads((out / "batch.json").read_text())
    assert report["counts"]["done"] == 3
    attempts = {p["name"]: p["attempts"] for p in report["pairs"]}
    assert sorted(attempts.values()) == [1, 1, 2], attempts  # only the killed pair ran again
    again = next(p for p in report["pairs"] if p["attempts"] == 2)
    assert again["worker"]["pid"] != workers[0]
    for i in range(3):
        assert set(os.listdir(out / f"s{i}")) == OUTPUTS


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--threshold", "value"], 'threshold method "value" needs a finite threshold value'),
        (["--threshold", "otsu", "--threshold-value", "2"], "only used with threshold method"),
        (["--threshold", "percentile", "--threshold-value", "100"], "between 0 and 100"),
        (["--max-shift", "inf"], "'--max-shift': 'inf' is not a finite number"),
        (["--min-area", "-1"], "'--min-area': '-1' is not >= 0"),
        (["--pixel-size", "nan"], "'--pixel-size': 'nan' is not a finite number"),
    ],
)
def test_bad_detection_options_fail_once_before_any_work(pairs_csv, tmp_path, args, needle):
    out = tmp_path / "out"
    res = satdelta("batch", pairs_csv, "-o", out, *args, timeout=60)
    assert_one_line_error(res, needle)
    assert res.stdout == ""
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--max-shift", "inf"], "'--max-shift': 'inf' is not a finite number"),
        (["--max-shift", "0"], "'--max-shift': '0' is not > 0"),
        (["--pixel-size", "inf"], "'--pixel-size': 'inf' is not a finite number"),
        (["--min-area", "nan"], "'--min-area': 'nan' is not a finite number"),
        (["--threshold-value", "-inf"], "'--threshold-value': '-inf' is not a finite number"),
    ],
)
def test_detect_rejects_non_finite_options_before_any_work(tmp_path, args, needle):
    # the options are shared with `satdelta detect`: --max-shift inf used to run the whole
    # pipeline and then fail writing run.json with an "internal error"
    before, after, _ = make_pair(tmp_path, shape=(96, 128))
    out = tmp_path / "out"
    res = satdelta("detect", before, after, "-o", out, *args, timeout=120)
    assert_one_line_error(res, needle)
    assert not out.exists()


def test_rerun_with_other_default_options_is_not_skipped(pairs_csv, tmp_path):
    """A run with --method absdiff --threshold otsu is not reused by a run with the defaults."""
    from satdelta.imagery.batch import read_pairs, run_batch

    fixed = tmp_path / "fixed.csv"
    fixed.write_text("".join(pairs_csv.read_text().splitlines(keepends=True)[:2]))  # site0
    out = tmp_path / "b2"
    res = satdelta("batch", fixed, "-o", out, "--method", "absdiff", "--threshold", "otsu")
    assert res.returncode == 0, res.stderr
    run = json.loads((out / "site0" / "run.json").read_text())
    assert (run["options"]["method"], run["options"]["threshold"]) == ("absdiff", "otsu")
    again = run_batch(read_pairs(fixed), out, workers=1)
    assert [r.status for r in again.results] == ["done"]
    run = json.loads((out / "site0" / "run.json").read_text())
    assert (run["options"]["method"], run["options"]["threshold"]) == ("auto", "auto")
    report = json.loads((out / "batch.json").read_text())
    assert report["options"] == run["options"]  # batch.json records the full options
    assert [r.status for r in run_batch(read_pairs(fixed), out, workers=1).results] == ["skipped"]
