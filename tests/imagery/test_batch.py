"""satdelta.imagery.batch: pairs lists, the per-pair task (skip / recompute), real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from satdelta.imagery.batch import (
    BATCH_FILE,
    Pair,
    PairsFileError,
    read_pairs,
    run_batch,
    run_pair,
)
from satdelta.imagery.errors import InvalidParameterError, OutputError
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.outputs import write_outputs
from satdelta.imagery.pipeline import run_detection

from tests.conftest import make_pair


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_paths_are_relative_to_the_csv_folder_and_urls_are_kept(tmp_path):
    sub = tmp_path / "lists"
    sub.mkdir()
    csv = write(
        sub / "pairs.csv",
        "\ufeffname,before,after,notes\n"
        "# a comment line\n"
        "sunan,img/b.tif,../a.tif,runway\n"
        "square,/abs/b.tif,https://example.org/a.tif,\n",
    )
    pairs = read_pairs(csv)
    assert pairs == [
        Pair("sunan", str(sub / "img" / "b.tif"), str(sub / ".." / "a.tif")),
        Pair("square", "/abs/b.tif", "https://example.org/a.tif"),
    ]


def test_json_list_is_accepted(tmp_path):
    js = write(
        tmp_path / "pairs.json",
        json.dumps([{"name": "a-1", "before": "b.tif", "after": "http://h/a.tif"}]),
    )
    assert read_pairs(js) == [Pair("a-1", str(tmp_path / "b.tif"), "http://h/a.tif")]


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("missing.csv", None, "missing"),
        ("header.csv", "id,first,second\nx,a.tif,b.tif\n", "expected the columns"),
        ("empty.csv", "", "empty"),
        ("norows.csv", "name,before,after\n", "no pairs"),
        ("dup.csv", "name,before,after\nA,a,b\na,c,d\n", "repeats row 2"),
        ("up.csv", "name,before,after\n../x,a,b\n", "cannot be a folder name"),
        ("slash.csv", "name,before,after\na/b,a,b\n", "cannot be a folder name"),
        ("dot.csv", "name,before,after\n.hidden,a,b\n", "cannot be a folder name"),
        ("report.csv", "name,before,after\nbatch.json,a,b\n", "cannot be a folder name"),
        ("blank.csv", "name,before,after\nx,,b\n", "must all be given"),
        ("short.csv", "name,before,after\nx,a\n", "2 values for 3 columns"),
        ("obj.json", '{"name": "x"}', "expected a list"),
        ("bad.json", "[{", "not valid JSON"),
        ("item.json", '[{"name": "x", "before": "a"}]', "item 0"),
    ],
)
def test_bad_pairs_lists_say_what_is_wrong(tmp_path, name, text, needle):
    path = tmp_path / name
    if text is not None:
        write(path, text)
    with pytest.raises(PairsFileError, match=None) as info:
        read_pairs(path)
    msg = str(info.value)
    assert needle.lower() in msg.lower(), msg
    assert "\n" not in msg


def test_run_pair_skips_up_to_date_outputs_and_recomputes_on_change(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    before, after, truth = make_pair(folder)
    pair = Pair("p", str(before), str(after))
    out = tmp_path / "out"
    opts = DetectionOptions(min_area_m2=300.0)

    first = run_pair(pair, out, opts)
    assert first.status == "done", first.error
    assert first.polygons and first.polygons > 0
    # the outputs are exactly those of run_detection + write_outputs on the same pair
    write_outputs(run_detection(before, after, opts), tmp_path / "direct")
    for name in ("mask.tif", "score.tif"):
        with rasterio.open(out / "p" / name) as a, rasterio.open(tmp_path / "direct" / name) as b:
            np.testing.assert_array_equal(a.read(), b.read())
            assert (a.crs, a.transform) == (b.crs, b.transform)
    with rasterio.open(out / "p" / "mask.tif") as src:
        assert ((src.read(1) == 1) & truth).sum() > 0  # the planted change is (partly) found
    run_json = json.loads((out / "p" / "run.json").read_text())
    assert run_json["polygons"]["count"] == first.polygons
    assert first.changed_area_m2 == pytest.approx(run_json["detection"]["changed_area_m2"])
    stamp = (out / "p" / "mask.tif").stat().st_mtime_ns

    again = run_pair(pair, out, opts)
    assert again.status == "skipped"
    assert (again.polygons, again.changed_area_m2) == (first.polygons, first.changed_area_m2)
    assert (out / "p" / "mask.tif").stat().st_mtime_ns == stamp

    assert (
        run_pair(pair, out, DetectionOptions(min_area_m2=900.0)).status == "done"
    )  # options changed
    assert run_pair(pair, out, DetectionOptions(min_area_m2=900.0)).status == "skipped"
    assert run_pair(pair, out, DetectionOptions(min_area_m2=900.0), force=True).status == "done"

    with rasterio.open(after, "r+") as dst:  # same file name, new content: new sha256
        data = dst.read()
        data[:, :10, :10] = 200
        dst.write(data)
    assert run_pair(pair, out, DetectionOptions(min_area_m2=900.0)).status == "done"

    (out / "p" / "score.tif").unlink()  # incomplete outputs are recomputed
    assert run_pair(pair, out, DetectionOptions(min_area_m2=900.0)).status == "done"
    assert (out / "p" / "score.tif").is_file()


def test_run_pair_records_the_error_instead_of_raising(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    before, _, _ = make_pair(folder)
    far = tmp_path / "far.tif"
    with rasterio.open(before) as src:  # same image 100 km away: no overlap
        prof = src.profile
        data = src.read()
        t = src.transform
    prof["transform"] = rasterio.Affine(t.a, t.b, t.c + 100_000, t.d, t.e, t.f)
    with rasterio.open(far, "w", **prof) as dst:
        dst.write(data)
    res = run_pair(Pair("far", str(before), str(far)), tmp_path / "out", DetectionOptions())
    assert res.status == "failed"
    assert "overlap" in res.error.lower() and "\n" not in res.error
    assert not (tmp_path / "out" / "far").exists()
    assert res.worker["pid"] > 0 and res.polygons is None
    assert BATCH_FILE == "batch.json"
    assert np.isfinite(res.seconds)


def test_url_inputs_are_skipped_only_while_the_server_says_unchanged(tmp_path):
    import os
    import subprocess
    import sys

    server = Path(__file__).resolve().parents[1] / "range_server.py"
    www = tmp_path / "www"
    www.mkdir()
    before, after, _ = make_pair(www)
    proc = subprocess.Popen(
        [sys.executable, str(server), str(www), str(tmp_path / "log.jsonl")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        url = f"http://127.0.0.1:{int(line.split()[1])}/{after.name}"
        pair = Pair("remote", str(before), url)
        out = tmp_path / "out"
        assert run_pair(pair, out, DetectionOptions()).status == "done"
        rec = json.loads((out / "remote" / "run.json").read_text())
        assert rec["inputs"]["after"]["source"] == url
        assert rec["inputs"]["after"]["remote"]["etag"]
        # skipped because the recorded options are the same full options (the defaults)
        assert rec["options"] == DetectionOptions().to_dict()
        assert run_pair(pair, out, DetectionOptions()).status == "skipped"
        st = after.stat()  # same bytes, new modification time: new ETag/Last-Modified
        os.utime(after, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
        assert run_pair(pair, out, DetectionOptions()).status == "done"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_skip_needs_the_same_full_options_not_just_the_given_ones(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    before, after, _ = make_pair(folder, shape=(96, 128))
    pair = Pair("p", str(before), str(after))
    out = tmp_path / "out"
    assert (
        run_pair(pair, out, DetectionOptions(method="absdiff", threshold="otsu")).status == "done"
    )
    # DetectionOptions() means the defaults (auto/auto), not "whatever ran before"
    assert run_pair(pair, out, DetectionOptions()).status == "done"
    rec = json.loads((out / "p" / "run.json").read_text())
    assert rec["options"] == DetectionOptions().to_dict()
    assert (rec["options"]["method"], rec["options"]["threshold"]) == ("auto", "auto")
    assert run_pair(pair, out, DetectionOptions()).status == "skipped"
    # the same full options spelled out (tuple bands, int shift) are the same options
    assert run_pair(pair, out, DetectionOptions(method="auto", max_shift_px=5)).status == "skipped"
    # a recorded option the current run_detection does not have: not the same run
    rec["options"]["future_option"] = 1
    (out / "p" / "run.json").write_text(json.dumps(rec))
    assert run_pair(pair, out, DetectionOptions()).status == "done"
    assert run_pair(pair, out, DetectionOptions(bands=(1, 2, 3))).status == "done"
    assert run_pair(pair, out, DetectionOptions(bands=[1, 2, 3])).status == "skipped"


def test_internal_error_in_a_fresh_worker_process_prints_no_traceback(tmp_path):
    """A spawned worker has no logging config: the error goes to the result, not stderr."""
    import subprocess
    import sys

    before, after, _ = make_pair(tmp_path, shape=(96, 128))
    code = (
        "import sys\n"
        "import satdelta.imagery.pipeline as pipeline\n"
        "from satdelta.imagery.batch import Pair, run_pair\n"
        "def bug(*args, **kwargs):\n"
        "    raise ValueError('a bug in the detection')\n"
        "pipeline.detect_change = bug\n"
        "r = run_pair(Pair('p', sys.argv[1], sys.argv[2]), sys.argv[3])\n"
        "print(r.status); print(r.error)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(before), str(after), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    status, error = res.stdout.strip().splitlines()
    assert status == "failed"
    assert error.startswith("internal error: ValueError"), error
    assert res.stderr == ""


def test_internal_error_traceback_only_with_debug_logging(tmp_path, caplog, monkeypatch):
    import satdelta.imagery.pipeline as pipeline

    def bug(*args, **kwargs):
        raise ValueError("a bug in the detection")

    monkeypatch.setattr(pipeline, "detect_change", bug)
    before, after, _ = make_pair(tmp_path, shape=(96, 128))
    pair = Pair("p", str(before), str(after))
    with caplog.at_level("INFO", logger="satdelta.imagery.batch"):
        assert run_pair(pair, tmp_path / "out").status == "failed"
    recs = [r for r in caplog.records if r.name == "satdelta.imagery.batch"]
    assert recs and all(r.levelname == "INFO" and not r.exc_info for r in recs)
    caplog.clear()
    with caplog.at_level("DEBUG", logger="satdelta.imagery.batch"):
        assert run_pair(pair, tmp_path / "out").status == "failed"
    recs = [r for r in caplog.records if r.name == "satdelta.imagery.batch"]
    assert any(r.exc_info and r.exc_info[0] is ValueError for r in recs)


def test_batch_report_has_the_usual_file_mode(tmp_path):
    import os

    gone = str(tmp_path / "gone.tif")
    old = os.umask(0o022)
    try:
        res = run_batch([Pair("x", gone, gone)], tmp_path / "out", workers=1)
    finally:
        os.umask(old)
    assert [r.status for r in res.results] == ["failed"]
    assert "no such file" in res.results[0].error.lower()
    assert (res.report.stat().st_mode & 0o777) == 0o644


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"threshold": "value"}, "needs a finite threshold value"),
        ({"threshold": "value", "threshold_value": "x"}, "needs a finite threshold value"),
        ({"threshold": "percentile", "threshold_value": 100}, "between 0 and 100"),
        ({"threshold": "otsu", "threshold_value": 2.0}, "only used with threshold method"),
        ({"max_shift_px": float("inf")}, "max_shift_px (--max-shift) must be a finite"),
        ({"max_shift_px": 0}, "max_shift_px (--max-shift)"),
        ({"pixel_size_m": float("nan")}, "pixel_size_m (--pixel-size)"),
        ({"min_area_m2": -1.0}, "min_area_m2 (--min-area) must be a finite number >= 0"),
        ({"method": "magic"}, "method (--method) must be one of"),
        ({"resampling": "sinc"}, "resampling (--resampling)"),
        ({"bands": [0, 1]}, "bands (--bands)"),
        ({"colour": "red"}, "unknown detection options ['colour']"),
    ],
)
def test_bad_options_fail_once_before_any_work(tmp_path, options, needle):
    before, after = str(tmp_path / "b.tif"), str(tmp_path / "a.tif")  # never opened
    out = tmp_path / "out"
    with pytest.raises(InvalidParameterError) as info:
        opts = DetectionOptions.from_dict(options)
        run_batch([Pair("x", before, after)], out, options=opts, workers=1)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg, msg
    assert not out.exists()


def test_good_options_are_completed_with_the_defaults():
    full = DetectionOptions.from_dict(
        {"min_area_m2": 300, "bands": (1, 2), "threshold": "percentile"}
    ).to_dict()
    assert full["min_area_m2"] == 300 and full["bands"] == [1, 2]
    assert full["threshold_value"] is None and full["max_shift_px"] == 5.0
    assert full["method"] == "auto" and full["resampling"] == "cubic"


def test_dask_client_is_closed_when_the_first_report_fails(tmp_path, dask_cluster):
    import distributed

    out = tmp_path / "out"
    (out / BATCH_FILE).mkdir(parents=True)  # batch.json cannot be written
    gone = str(tmp_path / "gone.tif")
    with pytest.raises(OutputError, match="cannot write"):
        run_batch([Pair("x", gone, gone)], out, scheduler=dask_cluster.scheduler_address)
    with pytest.raises(ValueError):  # no client left open (and set as default)
        distributed.default_client()


def test_run_pair_reports_its_stages_and_blocks(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    before, after, _ = make_pair(folder, shape=(300, 1400))  # 1 x 2 blocks (1024 + 376)
    pair = Pair("p", str(before), str(after))
    opts = DetectionOptions(min_area_m2=300.0)
    calls: dict[str, list[tuple[str, int, int]]] = {"whole": [], "blocks": []}
    for runner, seen in calls.items():
        res = run_pair(
            pair, tmp_path / runner, opts, runner=runner,
            progress=lambda stage, done, total, seen=seen: seen.append((stage, done, total)),
        )  # fmt: skip
        assert res.status == "done", res.error
    assert [s for s, _d, _t in calls["whole"]] == ["open", "align", "detect", "vectorize", "write"]
    stages = [s for s, _d, _t in calls["blocks"]]
    assert stages[:3] == ["open", "align", "fit"] and stages[-1] == "write"
    assert [(d, t) for s, d, t in calls["blocks"] if s == "blocks"] == [(0, 2), (1, 2), (2, 2)]
    with pytest.raises(InvalidParameterError, match="runner must be"):
        run_batch([pair], tmp_path / "bad", runner="tiles")
