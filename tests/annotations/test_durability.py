"""Durability: SIGKILL mid-burst, concurrent writer processes, migration of an old schema."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from satdelta.annotations import SCHEMA_VERSION, Store
from satdelta.annotations.gpkg import create_core_tables, encode_geometry, register_features

from .conftest import validate_gpkg

WRITER = textwrap.dedent(
    """
    import sys, time
    from satdelta.annotations import Store
    path, claim, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    n, batch = int(sys.argv[4]), int(sys.argv[5])
    go = sys.argv[6] if len(sys.argv) > 6 else None
    def sq(i):
        x, y = (i % 100) * 0.002, (i // 100) * 0.002
        return {"type": "Polygon", "coordinates": [[[x, y], [x + 0.001, y], [x + 0.001, y + 0.001],
                                                   [x, y + 0.001], [x, y]]]}
    with Store.open(path, analyst=tag, timeout=60) as store:
        if go:  # say "ready", then wait for the common start signal
            print("ready", flush=True)
            while not __import__("os").path.exists(go):
                time.sleep(0.002)
        i = 0
        while i < n:
            if batch > 1 and (i // batch) % 2 == 1:
                items = [dict(geometry=sq(i + k), claim_id=claim, label="other",
                              notes=f"{tag} {i + k}") for k in range(batch)]
                anns = store.add_annotations(items)
                i += batch
            else:
                anns = [store.add_annotation(sq(i), claim_id=claim, label="other",
                                             notes=f"{tag} {i}")]
                i += 1
            for a in anns:  # printed only after the commit returned
                print(a.id, flush=True)
    """
)


def start_writer(
    store_path: Path, claim_id: int, tag: str, n: int, batch: int, go: Path | None = None
) -> subprocess.Popen:
    args = [sys.executable, "-c", WRITER, str(store_path), str(claim_id), tag, str(n), str(batch)]
    if go is not None:
        args.append(str(go))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_after(proc: subprocess.Popen, n: int) -> list[str]:
    """Wait until the child has printed ``n`` lines, SIGKILL it, return every line it printed."""
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while len(lines) < n and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
    assert len(lines) >= n, proc.stderr.read() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    lines += [ln.strip() for ln in rest.splitlines() if ln.strip()]
    assert proc.returncode == -signal.SIGKILL
    return lines


@pytest.fixture
def prepared(store_path: Path) -> int:
    with Store.open(store_path) as s:
        rep = s.add_report(title="burst")
        return s.add_claim(report_id=rep.id, text="burst claim").id


def test_sigkill_mid_burst_keeps_every_committed_annotation(
    store_path: Path, prepared: int
) -> None:
    batch = 25
    proc = start_writer(store_path, prepared, "killed", 100_000, batch)
    committed = kill_after(proc, 120)  # mid-burst: the writer never stops on its own

    con = sqlite3.connect(store_path)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()
    with Store.open(store_path) as s:
        stored = {a.id for a in s.list_annotations()}
        missing = [i for i in committed if i not in stored]
        assert missing == []
        # a transaction is whole or absent: at most one committed-but-unprinted step remains
        extra = len(stored) - len(committed)
        assert 0 <= extra <= batch
        assert all(len(s.history(i)) == 1 for i in committed[:5])
    res = validate_gpkg(store_path, strict=False)
    assert res.returncode == 0, res.stderr


def test_two_concurrent_writers_both_land_everything(
    store_path: Path, prepared: int, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    n = 150
    procs = [start_writer(store_path, prepared, tag, n, 5, go) for tag in ("alpha", "beta")]
    for p in procs:  # both have imported and opened the store before either writes
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    go.touch()
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err and "busy" not in err.lower()
    ids = [ln for out, _ in outs for ln in out.split()]
    assert len(ids) == 2 * n and len(set(ids)) == 2 * n
    with Store.open(store_path) as s:
        anns = s.list_annotations()
        assert {a.id for a in anns} == set(ids)
        assert sorted(a.analyst for a in anns).count("alpha") == n
        # the writes really interleaved (both ran at the same time)
        order = [a.analyst for a in anns]
        switches = sum(1 for a, b in zip(order, order[1:], strict=False) if a != b)
        assert switches >= 2, "writers ran one after the other; the test did not test concurrency"


V1_DDL = [
    "CREATE TABLE satdelta_meta (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,"
    " value TEXT)",
    "CREATE TABLE reports (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, outlet TEXT,"
    " url TEXT, published DATE, language TEXT, notes TEXT, created DATETIME NOT NULL)",
    "CREATE TABLE claims (id INTEGER PRIMARY KEY AUTOINCREMENT, report_id INTEGER NOT NULL"
    " REFERENCES reports(id), text TEXT NOT NULL, place TEXT, location TEXT, time_start DATE,"
    " time_end DATE, created DATETIME NOT NULL)",
    "CREATE TABLE annotations (fid INTEGER PRIMARY KEY AUTOINCREMENT, geom MULTIPOLYGON,"
    " uuid TEXT NOT NULL UNIQUE, report_id INTEGER NOT NULL, claim_id INTEGER NOT NULL"
    " REFERENCES claims(id), label TEXT NOT NULL, verdict TEXT NOT NULL, confidence DOUBLE,"
    " status TEXT NOT NULL, origin TEXT NOT NULL, notes TEXT, analyst TEXT,"
    " created DATETIME NOT NULL, updated DATETIME NOT NULL, revision INTEGER NOT NULL,"
    " before_scene_id TEXT, before_acquired DATE, before_source TEXT, before_sha256 TEXT,"
    " after_scene_id TEXT, after_acquired DATE, after_source TEXT, after_sha256 TEXT,"
    " change_method TEXT, change_threshold_method TEXT, change_threshold DOUBLE,"
    " change_parameters TEXT, provenance TEXT)",
    "CREATE TABLE annotation_revisions (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " annotation_uuid TEXT NOT NULL, revision INTEGER NOT NULL, action TEXT NOT NULL,"
    " deleted BOOLEAN NOT NULL, created DATETIME NOT NULL, analyst TEXT, snapshot TEXT NOT NULL,"
    " UNIQUE (annotation_uuid, revision))",
]

T0 = "2025-01-02T03:04:05.000Z"


def write_v1_store(path: Path) -> tuple[str, str]:
    """A store as satdelta schema 1 wrote it: no labels/changes tables, location as JSON."""
    from shapely.geometry import MultiPolygon, box, mapping

    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    create_core_tables(con)
    for ddl in V1_DDL:
        con.execute(ddl)
    register_features(con, "annotations")
    for t in ("satdelta_meta", "reports", "claims", "annotation_revisions"):
        con.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, last_change)"
            " VALUES (?, 'attributes', ?, ?)",
            (t, t, T0),
        )
    con.executemany(
        "INSERT INTO satdelta_meta (key, value) VALUES (?, ?)",
        [("application", "satdelta"), ("schema_version", "1")],
    )
    con.execute(
        "INSERT INTO reports (title, published, created) VALUES ('Old report 옛', '2024-06-15', ?)",
        (T0,),
    )
    con.execute(
        "INSERT INTO claims (report_id, text, location, created) VALUES (1, 'old claim', ?, ?)",
        (json.dumps({"bbox": [125.6, 39.1, 125.7, 39.3]}), T0),
    )
    live, gone = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    geom = box(125.65, 39.2, 125.66, 39.21)
    snap = {
        "id": live,
        "geometry": mapping(geom),
        "claim_id": 1,
        "report_id": 1,
        "label": "checkpoint",
        "verdict": "supports",
        "confidence": 0.5,
        "status": "accepted",
        "origin": "drawn",
        "notes": "v1",
        "analyst": "old",
        "created": T0,
        "updated": T0,
        "revision": 1,
        "provenance": {},
    }
    con.execute(
        "INSERT INTO annotations (geom, uuid, report_id, claim_id, label, verdict, confidence,"
        " status, origin, notes, analyst, created, updated, revision, provenance)"
        " VALUES (?, ?, 1, 1, 'checkpoint', 'supports', 0.5, 'accepted', 'drawn', 'v1', 'old', ?,"
        " ?, 1, '{}')",
        (encode_geometry(MultiPolygon([geom])), live, T0, T0),
    )
    for uid, rev, action, deleted in (
        (live, 1, "add", 0),
        (gone, 1, "add", 0),
        (gone, 2, "delete", 1),
    ):
        s = {**snap, "id": uid, "revision": rev}
        con.execute(
            "INSERT INTO annotation_revisions (annotation_uuid, revision, action, deleted,"
            " created, analyst, snapshot) VALUES (?, ?, ?, ?, ?, 'old', ?)",
            (uid, rev, action, deleted, T0, json.dumps(s)),
        )
    con.execute("COMMIT")
    con.close()
    return live, gone


def test_v1_store_is_migrated(store_path: Path) -> None:
    live, gone = write_v1_store(store_path)
    with Store.open(store_path) as s:
        assert s.schema_version == SCHEMA_VERSION
        (a,) = s.list_annotations()
        assert (a.id, a.label, a.notes, a.source_crs) == (live, "checkpoint", "v1", "EPSG:4326")
        assert a.area_m2 == pytest.approx(1110 * 862, rel=0.01)  # 0.01 deg box at 39.2 N
        assert "checkpoint" in s.labels() and "aircraft" in s.labels()
        assert s.get_claim(1).bbox == (125.6, 39.1, 125.7, 39.3)
        # the R-tree index (schema 3) was built from the existing rows
        assert [x.id for x in s.list_annotations(bbox=(125.6, 39.1, 125.7, 39.3))] == [live]
        assert [r.action for r in s.history(gone)] == ["add", "delete"]
        assert s.restore(gone, 1).notes == "v1"  # pre-migration history is restorable
        s.update_annotation(live, status="rejected")
        s.undo()
        assert s.get_annotation(live).status == "accepted"
    with Store.open(store_path) as s:  # second open: nothing left to migrate
        assert s.schema_version == SCHEMA_VERSION
    con = sqlite3.connect(store_path)
    assert con.execute(
        "SELECT count(*) FROM satdelta_meta WHERE key LIKE 'migrated_from_%'"
    ).fetchone() == (1,)
    con.close()
    res = validate_gpkg(store_path)
    assert res.returncode == 0, res.stdout + res.stderr


FIXTURE_V3 = Path(__file__).parent / "data" / "store_v3.gpkg"


def test_v3_store_written_by_schema_3_code_is_migrated(tmp_path: Path) -> None:
    """store_v3.gpkg was written by the schema-3 code (data/make_store_v3.py)."""
    path = tmp_path / "old.gpkg"
    shutil.copyfile(FIXTURE_V3, path)
    con = sqlite3.connect(path)
    assert (
        con.execute("SELECT value FROM satdelta_meta WHERE key = 'schema_version'").fetchone()[0]
        == "3"
    )
    assert not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'record_revisions'").fetchone()
    con.close()
    keep, gone = "33333333-3333-4333-8333-333333333333", "55555555-5555-4555-8555-555555555555"
    with Store.open(path, analyst="v4") as s:
        assert s.schema_version == SCHEMA_VERSION == 5
        assert [r.title for r in s.list_reports()] == ["Sunan cleared 순안", "Second report"]
        assert [c.text for c in s.list_claims(1)] == ["Aircraft gone", "Apron repainted"]
        assert s.get_annotation(keep).notes == "checked"
        # the new operations work on the migrated file and undo exactly
        before = ([r.to_dict() for r in s.list_reports()], [c.to_dict() for c in s.list_claims()])
        s.update_claim(1, text="Aircraft gone from the apron", report_id=2)
        assert s.get_annotation(keep).report_id == 2
        s.undo()
        assert s.get_annotation(keep).report_id == 1
        s.delete_report(1, force=True)
        assert [a.id for a in s.list_annotations()] == []
        s.undo()
        assert (
            [r.to_dict() for r in s.list_reports()],
            [c.to_dict() for c in s.list_claims()],
        ) == (before)
        assert len(s.list_annotations()) == 2
        # the next undo reaches the schema-3 change log: the v3 deletion of 5555...
        assert s.undo().description == f"undo #5: delete {gone}"
        assert s.get_annotation(gone).label == "other"
    con = sqlite3.connect(path)
    assert con.execute(
        "SELECT key FROM satdelta_meta WHERE key LIKE 'migrated_from_%'"
    ).fetchall() == [("migrated_from_3",)]
    con.close()
    res = validate_gpkg(path)
    assert res.returncode == 0, res.stdout + res.stderr


def test_v4_store_written_by_schema_4_code_gets_rank_and_change(tmp_path: Path) -> None:
    """store_v4.gpkg was written by the schema-4 code (data/make_store_v4.py)."""
    path = tmp_path / "old.gpkg"
    shutil.copyfile(FIXTURE_V3.with_name("store_v4.gpkg"), path)
    con = sqlite3.connect(path)
    columns = [r[1] for r in con.execute("PRAGMA table_info(annotations)")]
    assert "rank" not in columns and "change" not in columns
    con.close()
    with Store.open(path, analyst="v5") as s:
        assert s.schema_version == SCHEMA_VERSION == 5
        old = s.list_annotations()
        assert [a.origin for a in old] == ["detected", "detected", "drawn"]
        assert all(a.rank is None and a.change is None for a in old)
        fc = {
            "type": "FeatureCollection",
            "satdelta": {"kind": "change-candidates", "run": {"method": "cva"}},
            "features": [
                {
                    "type": "Feature",
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [
                            [
                                [125.6 + i / 1000, 39.2],
                                [125.6 + i / 1000, 39.201],
                                [125.6005 + i / 1000, 39.2],
                                [125.6 + i / 1000, 39.2],
                            ]
                        ],
                    },
                    "properties": {"rank": rank, "change": change, "score": 1.0},
                }
                for i, (rank, change) in enumerate([(2, "altered"), (1, "appeared")])
            ],
        }
        s.import_geojson(fc, report_id=1, claim_id=1)
        ranked = s.list_annotations(sort="rank")
        assert [(a.rank, a.change) for a in ranked] == [
            (1, "appeared"),
            (2, "altered"),
            (None, None),
            (None, None),
            (None, None),
        ]
        assert [a.rank for a in s.list_annotations(change="appeared")] == [1]
    con = sqlite3.connect(path)
    assert con.execute(
        "SELECT key FROM satdelta_meta WHERE key LIKE 'migrated_from_%'"
    ).fetchall() == [("migrated_from_4",)]
    con.close()
    res = validate_gpkg(path)
    assert res.returncode == 0, res.stdout + res.stderr


def test_lock_held_too_long_gives_busy_error(store_path: Path, prepared: int) -> None:
    from satdelta.annotations import StoreBusyError

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
            import sqlite3, sys, time
            con = sqlite3.connect(sys.argv[1], isolation_level=None)
            con.execute("BEGIN IMMEDIATE")
            print("locked", flush=True)
            time.sleep(30)
            """
            ),
            str(store_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with Store.open(store_path, timeout=0.5) as s:
            t0 = time.monotonic()
            with pytest.raises(
                StoreBusyError,
                match="stayed locked by another process for more "
                "than 0.5 s; close the other program or retry later",
            ):
                s.add_report(title="blocked")
            assert 0.4 < time.monotonic() - t0 < 5
            assert len(s.list_reports()) == 1  # reads still work while another process writes
    finally:
        holder.kill()
        holder.wait()
    with Store.open(store_path) as s:  # the lock is gone with the process: writes work again
        assert s.add_report(title="after").id == 2


def test_two_processes_creating_the_same_new_store(tmp_path: Path) -> None:
    path = tmp_path / "new.gpkg"
    go = tmp_path / "go"
    script = textwrap.dedent(
        """
        import os, sys, time
        from satdelta.annotations import Store
        print("ready", flush=True)
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.001)
        with Store.open(sys.argv[1], timeout=60) as s:
            print(s.add_report(title=sys.argv[3]).id, flush=True)
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path), str(go), tag],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("first", "second")
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert sorted(int(out) for out, _ in outs) == [1, 2]
    with Store.open(path) as s:
        assert sorted(r.title for r in s.list_reports()) == ["first", "second"]


def test_empty_database_file_becomes_a_store(tmp_path: Path) -> None:
    """What a second process sees while the first is creating the store: header, no tables."""
    path = tmp_path / "racing.gpkg"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = WAL")  # writes page 1, creates no table
    con.close()
    assert path.stat().st_size > 0
    with Store.open(path) as s:
        assert s.schema_version == SCHEMA_VERSION


EDITOR = textwrap.dedent(
    """
    import os, sys, time
    from satdelta.annotations import Store
    path, claim, spare, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    go = sys.argv[5] if len(sys.argv) > 5 else None
    spare = [int(x) for x in spare.split(",") if x]
    with Store.open(path, analyst="editor", timeout=60) as store:
        if go:
            print("ready", flush=True)
            while not os.path.exists(go):
                time.sleep(0.002)
        for i in range(n):
            if i % 10 == 7 and spare:
                store.delete_claim(spare.pop(), force=True)
            elif i % 10 == 9 and not go:  # alone on the store: delete + undo as a pair
                store.delete_claim(claim, force=True)
                store.undo()
                store.update_claim(claim, text=f"edit {i}")
            elif i % 2 == 1:  # move the claim (and its annotations) to the other report
                report = 2 if store.get_claim(claim).report_id == 1 else 1
                store.update_claim(claim, report_id=report, text=f"edit {i}")
            else:
                store.update_claim(claim, text=f"edit {i}")
            print(i, flush=True)  # only after the commit returned
            if go:  # an analyst pauses between edits: the other writer gets the lock
                time.sleep(0.015)
    """
)


def start_editor(
    store_path: Path, claim_id: int, spare: list[int], n: int, go: Path | None = None
) -> subprocess.Popen:
    args = [sys.executable, "-c", EDITOR, str(store_path), str(claim_id)]
    args += [",".join(map(str, spare)), str(n)]
    if go is not None:
        args.append(str(go))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def check_consistent(store_path: Path) -> None:
    """SQLite integrity, foreign keys, and every annotation in its claim's report."""
    con = sqlite3.connect(store_path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        assert (
            con.execute(
                "SELECT count(*) FROM annotations AS a JOIN claims AS c ON c.id = a.claim_id "
                "WHERE a.report_id != c.report_id"
            ).fetchone()[0]
            == 0
        )
        assert (
            con.execute(
                "SELECT count(*) FROM record_revisions WHERE change_id NOT IN "
                "(SELECT id FROM changes)"
            ).fetchone()[0]
            == 0
        )
    finally:
        con.close()


@pytest.fixture
def two_reports(store_path: Path) -> tuple[int, int, list[int]]:
    """Reports 1 and 2; the edited claim and the annotated claim in report 1; spare claims."""
    with Store.open(store_path) as s:
        s.add_report(title="first")
        s.add_report(title="second")
        edited = s.add_claim(report_id=1, text="edited claim").id
        spare = [s.add_claim(report_id=2, text=f"spare {i}").id for i in range(5)]
        return edited, spare[0], spare


def test_claim_editor_and_annotation_writer_lose_nothing(
    store_path: Path, two_reports: tuple[int, int, list[int]], tmp_path: Path
) -> None:
    """One process edits and moves a claim while another adds annotations to that claim."""
    claim, _, spare = two_reports
    go = tmp_path / "go"
    n_edits, n_anns = 120, 150
    editor = start_editor(store_path, claim, spare[1:], n_edits, go)
    writer = start_writer(store_path, claim, "writer", n_anns, 5, go)
    for p in (editor, writer):
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    go.touch()
    outs = [p.communicate(timeout=240) for p in (editor, writer)]
    for p, (_, err) in zip((editor, writer), outs, strict=True):
        assert p.returncode == 0, err
    edits = outs[0][0].split()
    added = outs[1][0].split()
    assert edits == [str(i) for i in range(n_edits)]
    assert len(set(added)) == n_anns
    check_consistent(store_path)
    with Store.open(store_path) as s:
        final = s.get_claim(claim)
        assert final.text == f"edit {n_edits - 1}"
        anns = s.list_annotations(claim_id=claim)
        assert {a.id for a in anns} == set(added)  # every annotation landed, none lost
        assert {a.report_id for a in anns} == {final.report_id}
        log = s.changes()
        assert sum(c.action == "edit" for c in log) == n_edits - 4  # 4 spare claims deleted
        assert sum(c.action == "delete" for c in log) == 4
        in_second = [spare[0]] + ([claim] if final.report_id == 2 else [])
        assert sorted(c.id for c in s.list_claims(2)) == sorted(in_second)
        # the edits really interleaved with the annotation adds: some adds landed between
        # two edits (the editor pauses 15 ms after each edit, longer than a waiting writer's
        # 1-10 ms polling; without the pause a loaded CI machine ran one writer's whole
        # burst after the other's)
        kinds = [c.action for c in log]
        switches = sum(
            1 for a, b in zip(kinds, kinds[1:], strict=False) if (a == "add") != (b == "add")
        )
        assert switches >= 2, "the two writers ran one after the other"


def test_sigkill_mid_edit_keeps_every_committed_edit_whole(
    store_path: Path, two_reports: tuple[int, int, list[int]]
) -> None:
    claim, _, _ = two_reports
    with Store.open(store_path) as s:  # evidence that the delete + undo cycles carry along
        s.add_annotations(
            [
                dict(
                    geometry={
                        "type": "Polygon",
                        "coordinates": [[[i, 0], [i + 0.5, 0], [i + 0.5, 0.5], [i, 0.5], [i, 0]]],
                    },
                    claim_id=claim,
                    label="other",
                )
                for i in range(40)
            ]
        )
    proc = start_editor(store_path, claim, [], 1_000_000)
    done = kill_after(proc, 60)  # mid-loop: the editor never stops on its own
    last = int(done[-1])
    check_consistent(store_path)
    with Store.open(store_path) as s:
        # the last printed edit is there, or the one after it committed before the kill
        claims = {c.id: c for c in s.list_claims()}
        anns = s.list_annotations(claim_id=claim)
        if claim in claims:
            assert claims[claim].text in (f"edit {last}", f"edit {last + 1}")
            assert len(anns) == 40  # a delete that was undone, or never happened
        else:  # killed between a committed delete and its undo: the delete is whole
            assert anns == [] and last % 10 == 8
            assert s.undo().records == (f"claim {claim}",)
            assert len(s.list_annotations(claim_id=claim)) == 40
    res = validate_gpkg(store_path, strict=False)
    assert res.returncode == 0, res.stderr
