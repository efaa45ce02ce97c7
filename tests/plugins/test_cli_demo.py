"""``satdelta demo`` run for real, as a subprocess, on the embedded sample pairs.

The bar for the detections: **IoU of the detected area with the true change area must be at
least what a detector gets when it is wrong by one pixel (0.5 m) all along every boundary**,
i.e. ``area(truth eroded by 0.5 m) / area(truth dilated by 0.5 m)``.  That is computed from the
truth polygons (about 0.67 for the apron, 0.62 for the square), not tuned to the detector's
result.  A control translates the same detections by 20 m and checks that the IoU collapses,
so a detector that marked large areas indiscriminately could not pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from satdelta.sample_data import SITES, load_report, load_truth, site_paths
from satdelta.sample_data.evaluate import match_truth, read_polygons
from shapely import affinity
from shapely.ops import unary_union

OUTPUTS = ("mask.tif", "score.tif", "changes.geojson", "run.json")


def _satdelta(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SATDELTA_STORE"}
    return subprocess.run(
        [sys.executable, "-m", "satdelta.plugins.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("satdelta: error: "), lines[0]
    return lines[0]


def _iou_floor(site: str) -> float:
    """IoU of a detection that is off by one pixel (0.5 m) along every truth boundary."""
    truth = unary_union(read_polygons(site_paths(site).truth))
    return truth.buffer(-0.5).area / truth.buffer(0.5).area


_RUNS: dict[str, tuple[Path, subprocess.CompletedProcess[str]]] = {}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    def run(site: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
        if site not in _RUNS:
            out = tmp_path_factory.mktemp(f"demo-{site}") / "out"
            _RUNS[site] = (out, _satdelta("demo", "-o", str(out), "--site", site))
        return _RUNS[site]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("site", SITES)
def test_demo_writes_outputs_and_matches_truth(demo_run, site: str) -> None:
    import geojson_validator

    out, proc = demo_run(site)
    assert proc.returncode == 0, proc.stderr
    assert "satdelta: error" not in proc.stderr
    for name in OUTPUTS:
        assert (out / site / name).is_file(), name
    changes = out / site / "changes.geojson"
    fc = json.loads(changes.read_text())
    assert geojson_validator.validate_structure(fc) == {}
    assert fc["satdelta"]["kind"] == "change-candidates"
    assert fc["satdelta"]["run"]["before"]["scene_id"] == site_paths(site).before.stem

    # stdout says where the GeoJSON is, how many polygons, and the match scores
    n = len(fc["features"])
    assert str(changes) in proc.stdout
    assert f"{n} change polygons" in proc.stdout
    assert "IoU" in proc.stdout and "synthetic" in proc.stdout

    summary = json.loads((out / "demo.json").read_text())
    (entry,) = summary["sites"]
    assert summary["failed"] == [] and entry["site"] == site and entry["polygons"] == n
    # the scores in demo.json are recomputed here from the files, independently
    detected = read_polygons(changes)
    scores = match_truth(detected, read_polygons(site_paths(site).truth))
    assert entry["scores"]["iou"] == pytest.approx(scores.iou, abs=1e-6)

    # the pipeline measured the misregistration the generator put in (same (dy, dx) convention)
    alignment = json.loads((out / site / "run.json").read_text())["alignment"]
    declared = load_truth(site)["satdelta"]["generator"]["shift_after_px"]
    assert alignment["shift_before_px"] == pytest.approx(declared, abs=0.1)
    assert max(abs(v) for v in alignment["shift_after_px"]) < 0.1

    floor = _iou_floor(site)
    assert 0.5 < floor < 0.8
    assert scores.iou >= floor, (scores, floor)
    assert scores.objects_found == scores.objects_total
    # control: the same detections 20 m away no longer match
    moved = [affinity.translate(g, 20.0, 20.0) for g in detected]
    assert match_truth(moved, read_polygons(site_paths(site).truth)).iou < 0.2


@pytest.mark.slow
def test_demo_loads_report_and_candidates_into_the_store(demo_run) -> None:
    from satdelta.annotations import Store

    site = "sunan-airport"
    out, proc = demo_run(site)
    assert proc.returncode == 0, proc.stderr
    store_path = out / "satdelta.gpkg"
    assert f"store:     {store_path}" in proc.stdout
    n = len(json.loads((out / site / "changes.geojson").read_text())["features"])
    sample = load_report()

    def check() -> None:
        with Store.open(store_path, create=False) as store:
            (report,) = store.list_reports()
            assert report.title == sample["report"]["title"]
            claims = store.list_claims(report.id)
            assert [c.text for c in claims] == [c["text"] for c in sample["claims"]]
            anns = store.list_annotations()
            assert len(anns) == n
            assert {a.claim_id for a in anns} == {claims[SITES.index(site)].id}
            assert {a.origin for a in anns} == {"detected"}
            assert {a.status for a in anns} == {"candidate"}

    check()
    # a second run into the same folder rebuilds the demo store instead of piling up copies
    again = _satdelta("demo", "-o", str(out), "--site", site)
    assert again.returncode == 0, again.stderr
    check()


@pytest.mark.slow
def test_demo_keeps_an_explicit_store_and_reports_a_bad_one(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gpkg"
    bad.write_text("this is not a GeoPackage\n")
    proc = _satdelta("--store", str(bad), "demo", "-o", str(tmp_path / "o"), "--site", SITES[0])
    assert proc.returncode == 1
    line = _one_error_line(proc)
    assert str(bad) in line or "notes.gpkg" in line
    assert bad.read_text() == "this is not a GeoPackage\n"  # never overwritten


def test_demo_refuses_a_file_as_outdir(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    proc = _satdelta("demo", "-o", str(target))
    assert proc.returncode == 1
    line = _one_error_line(proc)
    assert "is a file" in line and str(target) in line
    assert target.read_text() == "x"


def test_demo_rejects_a_negative_min_area(tmp_path: Path) -> None:
    proc = _satdelta("demo", "-o", str(tmp_path / "o"), "--min-area", "-1")
    assert proc.returncode == 1
    line = _one_error_line(proc)
    assert "--min-area" in line and "-1" in line
    assert not (tmp_path / "o").exists()


def test_demo_rejects_an_unknown_site(tmp_path: Path) -> None:
    proc = _satdelta("demo", "-o", str(tmp_path / "o"), "--site", "nowhere")
    assert proc.returncode == 1  # usage errors too: one line, exit 1
    line = _one_error_line(proc)
    assert "nowhere" in line and "sunan-airport" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_demo_killed_midway_then_rerun_completes(tmp_path: Path) -> None:
    """kill -9 after the first site is written: nothing half-written is left that a rerun
    trips over, and the rerun produces every output and a single copy of the report."""
    import signal
    import time

    from satdelta.annotations import Store

    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "SATDELTA_STORE"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "satdelta.plugins.cli.main", "demo", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 300
        while not (out / SITES[0] / "changes.geojson").exists():
            assert proc.poll() is None, "demo ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "demo.json").exists()  # written last, only when every site is done

    again = _satdelta("demo", "-o", str(out))
    assert again.returncode == 0, again.stderr
    summary = json.loads((out / "demo.json").read_text())
    assert [s["site"] for s in summary["sites"]] == list(SITES) and summary["failed"] == []
    for site in SITES:
        for name in OUTPUTS:
            assert (out / site / name).is_file(), (site, name)
    with Store.open(out / "satdelta.gpkg", create=False) as store:
        assert len(store.list_reports()) == 1
        assert len(store.list_annotations()) == sum(s["polygons"] for s in summary["sites"])
