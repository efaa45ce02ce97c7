"""The team store on a real PostgreSQL/PostGIS server: many writers, stale edits, failures.

The server comes from the session fixture ``pg_server`` (tests/pg_server.py); each test gets
an empty database.  The behaviour shared with the GeoPackage store is tested on both
backends by the other store tests (their ``store`` fixture is parametrised).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from satdelta.annotations import (
    NotAStoreError,
    StaleRevisionError,
    Store,
    StoreBusyError,
    StoreError,
    StoreVersionError,
)
from satdelta.plugins.cli.main import main

from tests.pg_server import PASSWORD

from .conftest import square
from .test_durability import kill_after, start_writer


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def claim_in(pg_url: str) -> int:
    with Store.open(pg_url, analyst="lead") as s:
        report = s.add_report(title="Team check")
        return s.add_claim(report_id=report.id, text="Trucks at the depot").id


def test_ten_concurrent_writer_processes_lose_nothing(pg_url: str, claim_in: int) -> None:
    procs = [start_writer(pg_url, claim_in, f"writer{i}", 20, 5) for i in range(10)]
    printed = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        printed += out.split()
    assert len(printed) == 200
    with Store.open(pg_url) as s:
        anns = s.list_annotations()
        assert sorted(a.id for a in anns) == sorted(printed)
        by_writer = {f"writer{i}": 0 for i in range(10)}
        for a in anns:
            by_writer[a.analyst] += 1
        assert set(by_writer.values()) == {20}
        assert len(s._db.read("SELECT 1 FROM annotation_revisions")) == 200


HOLDER = textwrap.dedent(
    """
    import sys, time
    from satdelta.annotations import Store
    with Store.open(sys.argv[1], timeout=60) as store:
        with store._db.write() as tx:   # the write lock, and a row not yet committed
            tx.execute("INSERT INTO reports (title, created) VALUES ('half done', 'now')")
            print("inside", flush=True)
            time.sleep(120)
    """
)


def test_kill_9_of_a_writer_mid_transaction_loses_only_its_change(
    pg_url: str, claim_in: int
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, pg_url], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "inside"
    with Store.open(pg_url, timeout=0.5) as impatient:
        with pytest.raises(StoreBusyError) as busy:
            impatient.add_report(title="waits")
        assert "stayed locked by another writer (user postgres from 127.0.0.1" in str(busy.value)
        assert "\n" not in str(busy.value) and PASSWORD not in str(busy.value)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    # a writer killed while importing: what it printed (committed) is all there
    writer = start_writer(pg_url, claim_in, "killed", 100_000, 7)
    lines = kill_after(writer, 30)
    with Store.open(pg_url, timeout=30) as s:
        assert [r.title for r in s.list_reports()] == ["Team check"]  # no half-done report
        ids = {a.id for a in s.list_annotations()}
        assert set(lines) <= ids
        # the server released the killed writers' lock: writes go on
        s.add_annotation(square(0, 0), claim_id=claim_in, label="other")
        assert len(s.list_annotations()) == len(ids) + 1


@pytest.mark.parametrize("backend", ["geopackage", "postgresql"])
def test_edit_of_a_stale_revision_is_refused_naming_who_and_when(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    where = request.getfixturevalue("pg_url") if backend == "postgresql" else tmp_path / "t.gpkg"
    with Store.open(where, analyst="alice") as alice, Store.open(where, analyst="bob") as bob:
        rep = alice.add_report(title="r")
        cl = alice.add_claim(report_id=rep.id, text="c")
        seen = alice.add_annotation(square(0, 0), claim_id=cl.id, label="other")
        changed = bob.update_annotation(seen.id, verdict="supports", expected_revision=1)
        with pytest.raises(StaleRevisionError) as err:
            alice.update_annotation(seen.id, status="rejected", expected_revision=seen.revision)
        message = str(err.value)
        assert "changed by bob at " + changed.updated in message
        assert "based on revision 1" in message and "\n" not in message
        with pytest.raises(StaleRevisionError, match="changed by bob"):
            alice.delete_annotation(seen.id, expected_revision=1)
        assert [r.revision for r in alice.history(seen.id)] == [1, 2]  # nothing written
        assert (
            alice.update_annotation(seen.id, status="rejected", expected_revision=2).revision == 3
        )
    code, out, err = cli(
        capsys,
        "--store",
        str(where),
        "--analyst",
        "carol",
        "annotation",
        "set",
        seen.id,
        "--notes",
        "late",
        "--revision",
        "2",
    )
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "was changed by alice at" in err


def test_cli_on_a_postgres_url_and_analyst_defaults(
    pg_server, pg_url: str, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    code, out, err = cli(capsys, "--store", pg_url, "report", "add", "--title", "Depot")
    assert code == 0, err
    rid = out.strip()
    code, out, err = cli(capsys, "--store", pg_url, "claim", "add", "--report", rid, "--text", "x")
    cid = out.strip()
    src = tmp_path / "one.geojson"
    src.write_text(json.dumps({"type": "Feature", "geometry": square(1, 1), "properties": {}}))
    env_analyst = os.environ.pop("SATDELTA_ANALYST", None)
    try:
        code, out, err = cli(
            capsys, "--store", pg_url, "import", str(src), "--report", rid, "--claim", cid
        )
    finally:
        if env_analyst is not None:
            os.environ["SATDELTA_ANALYST"] = env_analyst
    assert code == 0, err
    with Store.open(pg_url) as s:
        (ann,) = s.list_annotations()
        assert ann.analyst == "postgres"  # no --analyst, no SATDELTA_ANALYST: the database user
        assert s.changes()[-1].analyst == "postgres"
        assert PASSWORD not in repr(s) and PASSWORD not in str(s.path)


def test_unreachable_server_wrong_password_and_missing_postgis_are_one_line(
    pg_server, pg_url: str, capsys: pytest.CaptureFixture
) -> None:
    from tests.pg_server import free_port

    down = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/x"
    with pytest.raises(StoreError, match="no PostgreSQL server answers there") as err:
        Store.open(down)
    assert PASSWORD not in str(err.value)
    wrong = pg_url.replace(PASSWORD, "not-the-password")
    code, out, err_text = cli(capsys, "--store", wrong, "report", "list")
    assert code == 1 and err_text.count("\n") == 1
    assert "refused the password" in err_text and "not-the-password" not in err_text
    pg_server.add_user("outsider", "outsider-pw")
    bare = pg_server.new_database(postgis=False)
    with pytest.raises(StoreError, match="lacks the PostGIS extension.*CREATE EXTENSION postgis"):
        Store.open(pg_server.url(bare, user="outsider", password="outsider-pw"))
    with pytest.raises(StoreError, match="no store in"):
        Store.open(pg_url, create=False)


def test_foreign_database_and_newer_schema_are_refused(pg_server, pg_url: str) -> None:
    other = pg_server.new_database()
    pg_server.admin("CREATE TABLE reports (id int)", database=other)
    with pytest.raises(NotAStoreError, match="already has tables named reports"):
        Store.open(pg_server.url(other))
    with Store.open(pg_url) as s:
        s._db.read("UPDATE satdelta_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreVersionError, match="schema version 99, newer"):
        Store.open(pg_url)


def test_gdal_opens_the_annotations_layer_directly(pg_server, pg_url: str, claim_in: int) -> None:
    """What QGIS does: GDAL's PostgreSQL driver lists a MultiPolygon layer in EPSG:4326."""
    with Store.open(pg_url) as s:
        s.add_annotation(square(125.0, 39.0), claim_id=claim_in, label="vehicles")
    dbname = pg_url.rsplit("/", 1)[1]
    conn = (
        f"PG:host=127.0.0.1 port={pg_server.port} dbname={dbname} user=postgres password={PASSWORD}"
    )
    done = subprocess.run(
        ["ogrinfo", "-ro", "-so", conn, "annotations"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Geometry: Multi Polygon" in done.stdout and "Feature Count: 1" in done.stdout
    assert 'ID["EPSG",4326]' in done.stdout
    assert "Extent: (125.000000, 39.000000) - (125.001000, 39.001000)" in done.stdout


def test_roles_reader_reviewer_editor(
    pg_server, pg_url: str, claim_in: int, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    with Store.open(pg_url) as s:
        ann = s.add_annotation(square(0, 0), claim_id=claim_in, label="other")
    for user, access in (("rita", "read"), ("rene", "review"), ("eddy", "edit")):
        pg_server.add_user(user, f"{user}-pw")
        code, out, err = cli(capsys, "--store", pg_url, "store", "grant", user, f"--{access}")
        assert code == 0, err
        assert PASSWORD not in out

    def as_user(user: str, *args: str) -> tuple[int, str, str]:
        url = pg_server.url(pg_url.rsplit("/", 1)[1], user=user, password=f"{user}-pw")
        return cli(capsys, "--store", url, *args)

    code, out, _ = as_user("rita", "annotation", "list")
    assert code == 0 and ann.id in out
    code, out, err = as_user("rita", "report", "add", "--title", "nope")
    assert code == 1 and err.count("\n") == 1 and "database user rita may not" in err
    code, out, err = as_user("rita", "annotation", "set", ann.id, "--status", "accepted")
    assert code == 1 and "rita may not" in err
    code, out, err = as_user("rene", "annotation", "set", ann.id, "--status", "accepted")
    assert code == 0, err
    code, out, err = as_user("rene", "annotation", "set", ann.id, "--verdict", "supports")
    assert code == 0, err
    code, out, err = as_user("rene", "annotation", "set", ann.id, "--notes", "mine now")
    assert code == 1 and err.count("\n") == 1
    assert "may change only the status and verdict" in err
    code, out, err = as_user("rene", "report", "add", "--title", "nope")
    assert code == 1 and "rene may not" in err
    code, out, err = as_user("eddy", "annotation", "set", ann.id, "--notes", "checked")
    assert code == 0, err
    with Store.open(pg_url) as s:
        now = s.get_annotation(ann.id)
        assert (now.status, now.verdict, now.notes) == ("accepted", "supports", "checked")
        assert [r.analyst for r in s.history(ann.id)] == ["postgres", "rene", "rene", "eddy"]
        assert [r.title for r in s.list_reports()] == ["Team check"]
    # a re-grant moves a user between groups: rene can no longer review
    assert cli(capsys, "--store", pg_url, "store", "grant", "rene", "--read")[0] == 0
    code, out, err = as_user("rene", "annotation", "set", ann.id, "--status", "rejected")
    assert code == 1 and "rene may not" in err
    code, out, err = as_user("rita", "store", "grant", "rita", "--edit")
    assert code == 1 and err.count("\n") == 1 and "may not grant roles" in err
    code, out, err = cli(capsys, "--store", pg_url, "store", "grant", "nobody", "--read")
    assert code == 1 and "no user 'nobody'; create it first" in err
    desk = tmp_path / "desk.gpkg"
    Store.open(desk).close()
    code, out, err = cli(capsys, "--store", str(desk), "store", "grant", "rita", "--read")
    assert code == 1 and "roles are for a PostgreSQL store" in err


def exported(path: Path) -> str:
    """An export's text less the time it was written (the only field allowed to differ)."""
    data = json.loads(path.read_text())
    del data["satdelta"]["exported"]
    return json.dumps(data)


def test_copy_both_directions_keeps_history_and_exports(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    gpkg = tmp_path / "desk.gpkg"
    with Store.open(gpkg, analyst="desk") as s:
        rep = s.add_report(title="Depot", published="2024-06-14")
        gone = s.add_report(title="Deleted later")
        cl = s.add_claim(report_id=rep.id, text="Trucks", bbox=(10, 10, 11, 11))
        a = s.add_annotation(square(10, 10), claim_id=cl.id, label="vehicles", notes="é")
        b = s.add_annotation(square(10.5, 10.5), claim_id=cl.id, label="other")
        s.update_annotation(a.id, status="accepted", verdict="supports")
        s.delete_annotation(b.id)
        s.delete_report(gone.id)
        s.export(tmp_path / "desk.geojson")
    code, out, err = cli(capsys, "store", "copy", str(gpkg), pg_url)
    assert code == 0, err
    assert (
        "1 reports, 1 claims, 1 annotations, 4 revisions, 5 changes" in out and PASSWORD not in out
    )
    back = tmp_path / "back.gpkg"
    assert cli(capsys, "store", "copy", pg_url, str(back))[0] == 0
    for where, name in ((pg_url, "pg.geojson"), (back, "back.geojson")):
        with Store.open(where) as s:
            s.export(tmp_path / name)
            assert [r.revision for r in s.history(b.id)] == [1, 2]
            assert [c.action for c in s.changes()] == ["delete", "delete", "update", "add", "add"][
                ::-1
            ]
            s.undo()  # the deleted report comes back under its id
            assert [r.id for r in s.list_reports()] == [rep.id, gone.id]
            assert s.add_report(title="new").id == 3  # ids of the source are never reused
        assert exported(tmp_path / name) == exported(tmp_path / "desk.geojson")
    code, out, err = cli(capsys, "store", "copy", str(gpkg), pg_url)
    assert code == 1 and "is not empty" in err


OPENER = textwrap.dedent(
    """
    import sys
    from satdelta.annotations import Store
    with Store.open(sys.argv[1], analyst=sys.argv[2]) as store:
        print(store.add_report(title=sys.argv[2]).id, flush=True)
    """
)


def test_processes_creating_the_same_new_store_at_once_make_one_schema(pg_server) -> None:
    bare = pg_server.url(pg_server.new_database(postgis=False))  # PostGIS added on creation
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, bare, f"p{i}"], stdout=subprocess.PIPE, text=True
        )
        for i in range(4)
    ]
    ids = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        ids.append(int(out))
    assert sorted(ids) == [1, 2, 3, 4]
    with Store.open(bare) as s:
        assert s.schema_version == 5 and s.labels()[:2] == ("aircraft", "vehicles")


def test_schema_migrations_run_once_and_an_unknown_step_is_refused(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from satdelta.annotations import pg_schema

    with Store.open(pg_url) as s:
        s._db.read("UPDATE satdelta_meta SET value = '4' WHERE key = 'schema_version'")
    refused = "no migration of the PostgreSQL store from schema 4 to 5"
    with pytest.raises(StoreVersionError, match=refused):
        Store.open(pg_url)

    def add_column(conn) -> None:  # a step as a later version would register it
        conn.execute("ALTER TABLE annotations ADD COLUMN reviewed_by TEXT", returning=False)

    monkeypatch.setitem(pg_schema.MIGRATIONS, 4, add_column)
    with Store.open(pg_url) as s:
        assert s.schema_version == 5
        meta = dict(s._db.read("SELECT key, value FROM satdelta_meta"))
        assert "migrated_from_4" in meta
        assert s._db.read("SELECT count(reviewed_by) FROM annotations") == [(0,)]
    with Store.open(pg_url) as s:  # nothing left to migrate: the step does not run twice
        assert s.schema_version == 5
