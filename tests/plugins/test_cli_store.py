"""The store's command line, run as real subprocesses (stdout ids, one-line errors, exit 1)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SQUARE = "POLYGON ((125.67 39.224, 125.671 39.224, 125.671 39.225, 125.67 39.225, 125.67 39.224))"


def run(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SATDELTA_STORE": ""}
    env.pop("SATDELTA_STORE")
    res = subprocess.run(
        [sys.executable, "-m", "satdelta.plugins.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if ok:
        assert res.returncode == 0, res.stderr
    return res


def one_line_error(res: subprocess.CompletedProcess, *fragments: str) -> None:
    assert res.returncode == 1, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("satdelta: error: ")
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in res.stderr


@pytest.fixture
def ids(tmp_path: Path) -> dict[str, str]:
    rid = run(
        tmp_path,
        "report",
        "add",
        "--title",
        "Визит 訪問 visit",
        "--outlet",
        "Wire",
        "--url",
        "https://example.org/r",
        "--published",
        "2024-06-15",
    ).stdout
    assert rid.strip() == "1" and rid.count("\n") == 1  # the id alone on stdout
    cid = run(
        tmp_path,
        "claim",
        "add",
        "--report",
        "1",
        "--text",
        "Aircraft cleared",
        "--place",
        "Sunan",
        "--bbox",
        "125.66,39.22,125.68,39.23",
    ).stdout.strip()
    aid = run(
        tmp_path,
        "annotation",
        "add",
        "--claim",
        cid,
        "--label",
        "aircraft",
        "--geometry",
        SQUARE,
        "--verdict",
        "supports",
        "--confidence",
        "0.8",
    ).stdout.strip()
    return {"report": "1", "claim": cid, "annotation": aid}


def test_default_store_in_working_directory(tmp_path: Path, ids: dict[str, str]) -> None:
    assert (tmp_path / "satdelta.gpkg").exists()
    listed = json.loads(run(tmp_path, "annotation", "list", "--json").stdout)
    assert [a["id"] for a in listed] == [ids["annotation"]]
    assert listed[0]["confidence"] == 0.8
    table = run(tmp_path, "report", "list").stdout
    assert "Визит 訪問 visit" in table
    shown = json.loads(run(tmp_path, "report", "show", "1").stdout)
    assert shown["claims"][0]["bbox"] == [125.66, 39.22, 125.68, 39.23]
    assert shown["claims"][0]["annotations"] == 1


def test_store_option_and_env(tmp_path: Path) -> None:
    other = tmp_path / "proj" / "evidence.gpkg"
    other.parent.mkdir()
    assert run(tmp_path, "--store", str(other), "report", "add", "--title", "t").stdout == "1\n"
    assert other.exists() and not (tmp_path / "satdelta.gpkg").exists()


def test_set_delete_history_restore_undo(tmp_path: Path, ids: dict[str, str]) -> None:
    aid = ids["annotation"]
    assert (
        run(
            tmp_path,
            "annotation",
            "set",
            aid[:8],
            "--status",
            "accepted",
            "--notes",
            "seen on 06-14",
        ).stdout
        == "2\n"
    )
    run(tmp_path, "annotation", "delete", aid)
    assert json.loads(run(tmp_path, "annotation", "list", "--json").stdout) == []
    shown = json.loads(run(tmp_path, "annotation", "show", aid).stdout)
    assert shown["deleted"] is True and shown["status"] == "accepted"
    assert "undo #" in run(tmp_path, "undo").stdout
    assert json.loads(run(tmp_path, "annotation", "show", aid).stdout)["deleted"] is False
    assert run(tmp_path, "annotation", "restore", aid, "1").stdout == "5\n"
    hist = json.loads(run(tmp_path, "annotation", "history", aid, "--json").stdout)
    assert [h["action"] for h in hist] == ["add", "update", "delete", "undo", "restore"]
    assert hist[-1]["snapshot"]["status"] == "candidate"
    assert "restore" in run(tmp_path, "annotation", "history", aid).stdout


def test_import_export_round_trip_and_formats(tmp_path: Path, ids: dict[str, str]) -> None:
    out = tmp_path / "e.geojson"
    res = run(tmp_path, "export", "-o", str(out), "--report", "1")
    assert "wrote 1 annotations" in res.stderr
    fc = json.loads(out.read_text(encoding="utf-8"))
    assert fc["features"][0]["properties"]["report_title"] == "Визит 訪問 visit"
    run(
        tmp_path,
        "--store",
        "b.gpkg",
        "report",
        "add",
        "--title",
        "Визит 訪問 visit",
        "--outlet",
        "Wire",
        "--url",
        "https://example.org/r",
    )
    run(
        tmp_path, "--store", "b.gpkg", "claim", "add", "--report", "1", "--text", "Aircraft cleared"
    )
    new = run(tmp_path, "--store", "b.gpkg", "import", str(out), "--report", "1", "--claim", "1")
    assert new.stdout.split() == [ids["annotation"]]
    out2 = tmp_path / "e2.geojson"
    run(tmp_path, "--store", "b.gpkg", "export", "-o", str(out2))
    fc2 = json.loads(out2.read_text(encoding="utf-8"))
    for f in (fc, fc2):
        f["satdelta"].pop("exported")
        f["satdelta"].pop("filters")
    assert fc == fc2
    run(tmp_path, "export", "-o", str(tmp_path / "e.gpkg"), "--status", "candidate")
    run(tmp_path, "export", "-o", str(tmp_path / "e.csv"), "--label", "aircraft")
    assert "wkt" in (tmp_path / "e.csv").read_text(encoding="utf-8-sig").splitlines()[0]


def test_report_load_sample_format(tmp_path: Path) -> None:
    sample = REPO / "sample_data" / "report.json"
    data = json.loads(sample.read_text(encoding="utf-8"))
    res = run(tmp_path, "report", "load", str(sample))
    lines = res.stdout.split()
    assert lines[0] == "1" and len(lines) == 1 + len(data["claims"])
    listed = json.loads(run(tmp_path, "claim", "list", "--report", "1", "--json").stdout)
    assert [c["text"] for c in listed] == [c["text"] for c in data["claims"]]


def test_errors_are_one_line_exit_1(tmp_path: Path, ids: dict[str, str]) -> None:
    one_line_error(
        run(tmp_path, "claim", "add", "--report", "9", "--text", "x", ok=False),
        "no report with id 9",
    )
    one_line_error(
        run(
            tmp_path,
            "annotation",
            "add",
            "--claim",
            ids["claim"],
            "--label",
            "tank",
            "--geometry",
            SQUARE,
            ok=False,
        ),
        "label: expected one of aircraft",
        "'tank'",
    )
    one_line_error(
        run(
            tmp_path,
            "annotation",
            "add",
            "--claim",
            ids["claim"],
            "--label",
            "other",
            "--geometry",
            "POLYGON ((0 0, 1 1, 0 0))",
            ok=False,
        ),
        "too few points",
    )
    one_line_error(
        run(tmp_path, "annotation", "show", "deadbeef", ok=False), "no annotation deadbeef"
    )
    one_line_error(
        run(tmp_path, "annotation", "restore", ids["annotation"], "7", ok=False),
        "has no revision 7",
    )
    bad = tmp_path / "bad.geojson"
    bad.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '
        '{"type": "Polygon", "coordinates": [[[0, 0], [NaN, 0], [1, 1], [0, 0]]]}, '
        '"properties": {}}]}'
    )
    one_line_error(
        run(tmp_path, "import", str(bad), "--report", "1", "--claim", ids["claim"], ok=False),
        "feature 0",
        "NaN",
        "nothing was imported",
    )
    one_line_error(
        run(tmp_path, "export", "-o", str(tmp_path / "x.shp"), ok=False),
        "expected a .geojson, .gpkg or .csv",
    )
    one_line_error(
        run(tmp_path, "claim", "add", "--report", "1", "--text", "t", "--bbox", "1,2,3", ok=False),
        "--bbox: expected W,S,E,N",
    )
    one_line_error(
        run(tmp_path, "annotation", "set", ids["annotation"], ok=False), "nothing to set"
    )
    one_line_error(
        run(
            tmp_path,
            "annotation",
            "add",
            "--claim",
            "1",
            "--label",
            "other",
            "--geometry",
            "@missing.wkt",
            ok=False,
        ),
        "cannot read the file",
    )
    one_line_error(
        run(tmp_path, "--store", "none.gpkg", "annotation", "list", ok=False),
        "no store at none.gpkg",
    )


def test_not_a_store_is_left_untouched(tmp_path: Path) -> None:
    notes = tmp_path / "notes.gpkg"
    notes.write_bytes("évidence\n".encode() * 50)
    before = hashlib.sha256(notes.read_bytes()).hexdigest()
    one_line_error(
        run(tmp_path, "--store", str(notes), "report", "add", "--title", "t", ok=False),
        "is not a satdelta store",
    )
    assert hashlib.sha256(notes.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.gpkg"]


def test_import_detect_changes_geojson(tmp_path: Path, ids: dict[str, str]) -> None:
    run_meta = {
        "before": {
            "source": "a.tif",
            "scene_id": "a",
            "sha256": "0" * 64,
            "acquired": "2024-05-20",
        },
        "after": {"source": "b.tif", "scene_id": "b", "sha256": "1" * 64, "acquired": "2024-06-14"},
        "method": "irmad",
        "threshold_method": "mixture",
        "threshold": 2.5,
        "parameters": {"min_area_m2": 50},
        "created": "2026-11-29T20:00:00Z",
    }
    fc = {
        "type": "FeatureCollection",
        "satdelta": {"kind": "change-candidates", "run": run_meta},
        "features": [
            {
                "type": "Feature",
                "properties": {"id": 1, "area_m2": 120.0, "score": 4.1, "origin": "detected"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[125.0, 39.0], [125.001, 39.0], [125.001, 39.001], [125.0, 39.0]]
                    ],
                },
            }
        ],
    }
    path = tmp_path / "changes.geojson"
    path.write_text(json.dumps(fc))
    res = run(
        tmp_path,
        "import",
        str(path),
        "--report",
        "1",
        "--claim",
        ids["claim"],
        "--label",
        "aircraft",
    )
    (new_id,) = res.stdout.split()
    shown = json.loads(run(tmp_path, "annotation", "show", new_id).stdout)
    assert shown["origin"] == "detected" and shown["status"] == "candidate"
    assert shown["provenance"]["after"]["sha256"] == "1" * 64
    assert shown["provenance"]["detection"] == {"id": 1, "area_m2": 120.0, "score": 4.1}


def test_label_schema_is_editable(tmp_path: Path, ids: dict[str, str]) -> None:
    labels = run(tmp_path, "annotation", "labels").stdout.splitlines()
    assert labels[:2] == ["aircraft", "vehicles"] and "personnel formation" in labels
    assert "tent" in run(tmp_path, "annotation", "labels", "--add", "tent").stdout.splitlines()
    run(tmp_path, "annotation", "set", ids["annotation"], "--label", "tent")
    assert "tent" not in run(tmp_path, "annotation", "labels", "--retire", "tent").stdout.split()
    one_line_error(
        run(tmp_path, "annotation", "set", ids["annotation"], "--label", "tent", ok=False),
        "label: expected one of",
    )


def listing(cwd: Path) -> tuple[list, list, list]:
    """Reports, claims and annotations as the CLI prints them (JSON)."""
    return (
        json.loads(run(cwd, "report", "list", "--json").stdout),
        json.loads(run(cwd, "claim", "list", "--json").stdout),
        [
            {k: v for k, v in a.items() if k not in ("revision", "updated")}
            for a in json.loads(run(cwd, "annotation", "list", "--json").stdout)
        ],
    )


def test_report_and_claim_edit_delete_and_undo(tmp_path: Path, ids: dict[str, str]) -> None:
    cid, aid = ids["claim"], ids["annotation"]
    start = listing(tmp_path)
    res = run(tmp_path, "report", "edit", "1", "--title", "Visit confirmed", "--outlet", "")
    assert json.loads(res.stdout)["title"] == "Visit confirmed"
    assert json.loads(res.stdout)["outlet"] is None
    assert res.stderr.strip() == "report 1: edited title, outlet (`satdelta undo` reverses it)"
    assert run(tmp_path, "report", "add", "--title", "Second").stdout == "2\n"
    res = run(
        tmp_path, "claim", "edit", cid, "--text", "Aircraft gone", "--bbox", "", "--report", "2"
    )
    assert json.loads(res.stdout)["bbox"] is None
    assert "edited report_id, text, bbox" in res.stderr
    # the claim's annotation followed it to report 2 (and an export by report says so)
    assert [
        a["id"]
        for a in json.loads(run(tmp_path, "annotation", "list", "--report", "2", "--json").stdout)
    ] == [aid]
    one_line_error(
        run(tmp_path, "claim", "delete", cid, ok=False),
        f"claim {cid} still has 1 annotation pointing at it (1 candidate)",
        "--force",
    )
    # --store after the subcommand's name works like the global option
    store = str(tmp_path / "satdelta.gpkg")
    assert run(tmp_path, "claim", "delete", cid, "--force", "--store", store).stdout == (
        f"delete claim {cid} and its 1 annotation\n"
    )
    assert json.loads(run(tmp_path, "claim", "list", "--json").stdout) == []
    out = tmp_path / "r2.geojson"
    run(tmp_path, "export", "-o", str(out), "--report", "2")
    assert json.loads(out.read_text())["features"] == []
    assert run(tmp_path, "report", "delete", "2").stdout == "delete report 2 with 0 claims\n"
    undone = [run(tmp_path, "undo").stdout.strip() for _ in range(4)]
    assert undone == [
        "undo #5: delete report 2 with 0 claims (0 annotations; report 2)",
        f"undo #4: delete claim {cid} and its 1 annotation (1 annotations; claim {cid})",
        f"undo #3: move claim {cid} from report 1 to report 2 and edit text, bbox "
        f"(1 annotations; claim {cid})",
        "undo #2: edit title, outlet of report 1 (0 annotations; report 1)",
    ]
    reports, claims, anns = listing(tmp_path)
    assert (reports[:1], claims, anns) == start  # report 2 was added, not edited: it stays
    # the last undo reaches the annotation's add
    assert run(tmp_path, "undo", "--store", store).stdout.startswith("undo #")
    assert json.loads(run(tmp_path, "annotation", "list", "--json").stdout) == []


def test_edit_and_delete_bad_input_is_one_line_exit_1(tmp_path: Path, ids: dict[str, str]) -> None:
    cid = ids["claim"]
    store = tmp_path / "satdelta.gpkg"
    digest = hashlib.sha256(store.read_bytes()).hexdigest()
    one_line_error(
        run(tmp_path, "report", "delete", "1", ok=False),
        "report 1 still has 1 annotation pointing at it",
        "--force",
    )
    one_line_error(
        run(tmp_path, "report", "edit", "7", "--title", "x", ok=False), "no report with id 7"
    )
    one_line_error(run(tmp_path, "claim", "delete", "7", ok=False), "no claim with id 7")
    one_line_error(
        run(tmp_path, "report", "edit", "1", "--published", "June", ok=False),
        "report published: expected a date as YYYY-MM-DD, got 'June'",
    )
    one_line_error(
        run(tmp_path, "report", "edit", "1", "--title", "", ok=False),
        "report title: expected non-empty text",
    )
    one_line_error(run(tmp_path, "report", "edit", "1", ok=False), "nothing to edit")
    one_line_error(
        run(tmp_path, "claim", "edit", cid, "--bbox", "1,2", ok=False), "--bbox: expected W,S,E,N"
    )
    one_line_error(
        run(tmp_path, "claim", "edit", cid, "--report", "5", ok=False), "no report with id 5"
    )
    one_line_error(
        run(tmp_path, "claim", "edit", cid, "--from", "2024-07-01", "--to", "2024-06-01", ok=False),
        "expected start <= end",
    )
    one_line_error(run(tmp_path, "claim", "edit", "one", "--text", "x", ok=False), "'one'")
    one_line_error(
        run(tmp_path, "report", "delete", "1", "--store", "none.gpkg", ok=False),
        "no store at none.gpkg",
    )
    assert not (tmp_path / "none.gpkg").exists()
    # nothing was written by any refused command
    assert hashlib.sha256(store.read_bytes()).hexdigest() == digest


def test_filters_naming_an_unknown_or_deleted_report_or_claim_fail(
    tmp_path: Path, ids: dict[str, str]
) -> None:
    """An export or listing filtered on an id that does not exist (any more) is an error, not
    an empty file with exit 0 that reads as 'no evidence'."""
    out = tmp_path / "e.geojson"
    one_line_error(run(tmp_path, "export", "-o", str(out), "--report", "99", ok=False), "99")
    one_line_error(run(tmp_path, "annotation", "list", "--claim", "99", ok=False), "99")
    assert not out.exists()
    run(tmp_path, "report", "delete", "1", "--force")
    res = run(tmp_path, "export", "-o", str(out), "--report", "1", ok=False)
    one_line_error(res, "no report with id 1")
    assert not out.exists()
    run(tmp_path, "undo")
    run(tmp_path, "export", "-o", str(out), "--report", "1")
    assert len(json.loads(out.read_text())["features"]) == 1
