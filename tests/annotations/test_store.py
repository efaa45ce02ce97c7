"""Store behaviour: CRUD, revisions, tombstones, restore, undo, labels, Unicode, bad files."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest
from satdelta.annotations import (
    AnnotationValueError,
    GeometryError,
    NotAStoreError,
    NotFoundError,
    Store,
    StoreCorruptError,
    StoreVersionError,
)
from satdelta.annotations.errors import StoreError
from shapely.geometry import Polygon, shape

from .conftest import square


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_add_update_delete_history(store: Store, claim) -> None:
    a = store.add_annotation(
        square(125.67, 39.224),
        claim_id=claim.id,
        label="aircraft",
        verdict="supports",
        confidence=0.8,
    )
    assert a.revision == 1 and a.report_id == claim.report_id and a.analyst == "tester"
    assert a.area_m2 == pytest.approx(111.0 * 86.3, rel=0.01)  # 0.001 deg at 39.2 N: 111 m x 86 m
    b = store.update_annotation(a.id, status="accepted", notes="confirmed on 06-14 image")
    assert (b.revision, b.status, b.confidence) == (2, "accepted", 0.8)
    store.delete_annotation(a.id)
    assert store.list_annotations() == []
    with pytest.raises(NotFoundError, match="is deleted"):
        store.get_annotation(a.id)
    hist = store.history(a.id)
    assert [(r.revision, r.action, r.deleted) for r in hist] == [
        (1, "add", False),
        (2, "update", False),
        (3, "delete", True),
    ]
    assert hist[1].annotation.notes == "confirmed on 06-14 image"
    assert store.get_annotation(a.id, include_deleted=True).status == "accepted"


def test_restore_any_revision_including_after_delete(store: Store, claim) -> None:
    a = store.add_annotation(square(1, 1), claim_id=claim.id, label="vehicles")
    store.update_annotation(a.id, label="structure")
    store.update_annotation(a.id, geometry=square(2, 2))
    store.delete_annotation(a.id)
    restored = store.restore(a.id, 1)
    assert restored is not None and restored.revision == 5
    assert restored.label == "vehicles"
    assert restored.geometry.equals(shape(square(1, 1)))
    assert store.get_annotation(a.id).label == "vehicles"
    assert len(store.history(a.id)) == 5  # nothing was overwritten
    assert store.restore(a.id, 4) is None  # restoring the tombstone deletes again
    assert store.list_annotations() == []
    with pytest.raises(NotFoundError, match="has no revision 9; it has revisions 1..6"):
        store.restore(a.id, 9)


def test_undo_walks_back_and_is_itself_a_revision(store: Store, claim) -> None:
    a = store.add_annotation(square(1, 1), claim_id=claim.id, label="vehicles")
    store.update_annotation(a.id, status="rejected")
    store.delete_annotation(a.id)
    store.undo()  # undo delete
    assert store.get_annotation(a.id).status == "rejected"
    store.undo()  # undo update
    assert store.get_annotation(a.id).status == "candidate"
    store.undo()  # undo add -> tombstone
    assert store.list_annotations() == []
    with pytest.raises(NotFoundError, match="nothing to undo"):
        store.undo()
    actions = [r.action for r in store.history(a.id)]
    assert actions == ["add", "update", "delete", "undo", "undo", "undo"]
    # every past state is still there: bring the rejected state back
    assert store.restore(a.id, 2).status == "rejected"


def test_undo_reverses_a_whole_import(store: Store, claim) -> None:
    keep = store.add_annotation(square(5, 5), claim_id=claim.id, label="other")
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": square(i, 0), "properties": {"n": i}} for i in range(3)
        ],
    }
    store.import_geojson(fc, report_id=claim.report_id, claim_id=claim.id)
    assert len(store.list_annotations()) == 4
    change = store.undo()
    assert len(change.annotation_ids) == 3
    assert [a.id for a in store.list_annotations()] == [keep.id]


def test_filters(store: Store, claim) -> None:
    other_report = store.add_report(title="Square parade")
    other_claim = store.add_claim(report_id=other_report.id, text="Formations on the square")
    store.add_annotation(square(0, 0), claim_id=claim.id, label="aircraft", status="accepted")
    store.add_annotation(square(1, 0), claim_id=claim.id, label="vehicles")
    store.add_annotation(square(2, 0), claim_id=other_claim.id, label="personnel formation")
    assert len(store.list_annotations(report_id=claim.report_id)) == 2
    assert len(store.list_annotations(claim_id=other_claim.id)) == 1
    assert [a.label for a in store.list_annotations(status="accepted")] == ["aircraft"]
    assert len(store.list_annotations(label="vehicles", report_id=other_report.id)) == 0


def test_unicode_and_sql_text_are_stored_verbatim(store: Store) -> None:
    title = "Путин в Пхеньяне 🇰🇵 — 김일성광장'; DROP TABLE reports; --"
    if store.backend == "postgresql":  # PostgreSQL text holds no NUL: refused, nothing written
        with pytest.raises(AnnotationValueError, match=r"cannot hold NUL characters"):
            store.add_report(title=title, notes="\u202eRTL\u202c \x00 nul")
        assert store.list_reports() == [] and store.changes() == []
        rep = store.add_report(title=title, notes="\u202eRTL\u202c nul")
        assert store.get_report(rep.id).notes == "\u202eRTL\u202c nul"
        rep = store.get_report(rep.id)
    else:
        rep = store.add_report(title=title, notes="\u202eRTL\u202c \x00 nul")
        assert store.get_report(rep.id).notes == "\u202eRTL\u202c \x00 nul"
    cl = store.add_claim(report_id=rep.id, text='« 조선 » "quoted" %_ wildcard', place="평양")
    a = store.add_annotation(square(0, 0), claim_id=cl.id, label="other", notes="é\n中文\t🙂")
    assert store.get_report(rep.id).title == title
    assert store.get_claim(cl.id).place == "평양"
    assert store.get_annotation(a.id).notes == "é\n中文\t🙂"
    assert len(store.list_reports()) == 1


def test_labels_schema_is_editable(store: Store, claim) -> None:
    with pytest.raises(AnnotationValueError, match="expected one of aircraft, vehicles"):
        store.add_annotation(square(0, 0), claim_id=claim.id, label="tank")
    store.add_label("tank")
    assert store.add_annotation(square(0, 0), claim_id=claim.id, label="tank").label == "tank"
    store.retire_label("tank")
    assert "tank" not in store.labels()
    with pytest.raises(AnnotationValueError, match="got 'tank'"):
        store.add_annotation(square(0, 0), claim_id=claim.id, label="tank")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("verdict", "maybe", "verdict: expected one of supports, contradicts, inconclusive"),
        ("status", "done", "status: expected one of candidate, accepted, rejected"),
        ("confidence", 1.5, "confidence: expected a number from 0 to 1, got 1.5"),
        ("confidence", float("nan"), "confidence: expected a number from 0 to 1"),
    ],
)
def test_bad_field_values_are_refused(
    store: Store, claim, field: str, value: object, message: str
) -> None:
    with pytest.raises(AnnotationValueError, match=message.replace("(", r"\(")):
        store.add_annotation(square(0, 0), claim_id=claim.id, label="other", **{field: value})
    assert store.list_annotations() == []


def test_invalid_polygon_is_repaired_and_flagged_in_store(store: Store, claim) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    a = store.add_annotation(bowtie, claim_id=claim.id, label="other")
    assert a.repaired and store.get_annotation(a.id).repairs == a.repairs
    with pytest.raises(GeometryError, match="too few points"):
        store.add_annotation(
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]},
            claim_id=claim.id,
            label="other",
        )
    assert len(store.list_annotations()) == 1


def test_projected_geometry_recorded_with_source_crs(store: Store, claim) -> None:
    utm = Polygon([(500000, 4000000), (500100, 4000000), (500100, 4000100), (500000, 4000100)])
    a = store.add_annotation(utm, crs="EPSG:32651", claim_id=claim.id, label="structure")
    assert store.get_annotation(a.id).source_crs == "EPSG:32651"
    assert a.area_m2 == pytest.approx(10_000, rel=2e-3)


def test_claim_location_and_report_validation(store: Store) -> None:
    rep = store.add_report(title="t", published="2024-06-15")
    with pytest.raises(AnnotationValueError, match="west < east"):
        store.add_claim(report_id=rep.id, text="x", bbox=(10, 0, 5, 1))
    with pytest.raises(
        AnnotationValueError, match="expected a date as YYYY-MM-DD, got '15/06/2024'"
    ):
        store.add_report(title="t", published="15/06/2024")
    with pytest.raises(NotFoundError, match="no report with id 42"):
        store.add_claim(report_id=42, text="x")
    c = store.add_claim(
        report_id=rep.id,
        text="x",
        point=(125.7, 39.0),
        time_start="2024-05-20",
        time_end="2024-06-14",
    )
    assert store.get_claim(c.id).point == (125.7, 39.0)
    assert str(store.get_claim(c.id).time_end) == "2024-06-14"


def test_load_sample_report_format(store: Store) -> None:
    data = {
        "report": {"title": "Sample", "published": "2024-06-15"},
        "claims": [
            {
                "site": "sunan-airport",
                "text": "apron cleared",
                "point": [125.67, 39.224],
                "bbox": [125.668, 39.222, 125.671, 39.225],
                "time_start": "2024-05-20",
                "time_end": "2024-06-14",
            },
            {"text": "parade blocks", "place": "Kim Il Sung Square"},
        ],
    }
    rep, claims = store.load_report(data)
    assert [c.report_id for c in claims] == [rep.id, rep.id]
    assert store.get_claim(claims[0].id).bbox == (125.668, 39.222, 125.671, 39.225)
    with pytest.raises(AnnotationValueError, match="claim 0: claim text"):
        store.load_report({"report": {"title": "x"}, "claims": [{"text": ""}]})
    assert len(store.list_reports()) == 1  # the bad file added nothing


def test_id_prefix_and_ambiguity(store: Store, claim) -> None:
    a = store.add_annotation(square(0, 0), claim_id=claim.id, label="other")
    assert store.get_annotation(a.id[:8]).id == a.id
    with pytest.raises(NotFoundError, match="expected an annotation id"):
        store.get_annotation("x'; --")
    with pytest.raises(NotFoundError, match="no annotation 0000"):
        store.get_annotation("0000" if not a.id.startswith("0000") else "ffff")


def test_not_a_store_is_refused_untouched(tmp_path: Path) -> None:
    text = tmp_path / "notes.gpkg"
    text.write_text("hello, not a database\n")
    plain = tmp_path / "other.gpkg"
    con = sqlite3.connect(plain)
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    for path, message in (
        (text, "expected a GeoPackage (SQLite) file, got a file starting with"),
        (plain, "is an SQLite database but not a satdelta store"),
    ):
        before = sha(path)
        with pytest.raises(NotAStoreError, match=re.escape(message)):
            Store.open(path)
        assert sha(path) == before
        assert not Path(str(path) + "-wal").exists()


def test_foreign_geopackage_is_refused_untouched(tmp_path: Path) -> None:
    import numpy as np
    import shapely

    path = tmp_path / "qgis_layer.gpkg"
    from pyogrio.raw import write

    write(
        path,
        np.array([shapely.to_wkb(shapely.box(0, 0, 1, 1))], dtype=object),
        [],
        fields=[],
        layer="parcels",
        driver="GPKG",
        crs="EPSG:4326",
        geometry_type="Polygon",
    )
    before = sha(path)
    with pytest.raises(NotAStoreError, match="is a GeoPackage but not a satdelta store"):
        Store.open(path)
    assert sha(path) == before


def test_corrupt_store_is_refused_untouched(store_path: Path) -> None:
    with Store.open(store_path) as s:
        rep = s.add_report(title="x")
        for i in range(200):
            s.add_claim(report_id=rep.id, text=f"claim {i} " + "padding " * 40)
    data = bytearray(store_path.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[3 * page : 5 * page] = b"\xa5" * (2 * page)  # smash two b-tree pages
    store_path.write_bytes(bytes(data))
    before = sha(store_path)
    with pytest.raises(StoreCorruptError, match="is corrupt .*it was not modified: restore it"):
        Store.open(store_path)
    assert sha(store_path) == before


def test_truncated_header_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "cut.gpkg"
    path.write_bytes(b"SQLite format 3\x00\x10\x00")
    with pytest.raises(StoreCorruptError, match="header is truncated"):
        Store.open(path)
    assert path.read_bytes() == b"SQLite format 3\x00\x10\x00"


def test_newer_schema_is_refused(store_path: Path) -> None:
    with Store.open(store_path):
        pass
    con = sqlite3.connect(store_path)
    con.execute("UPDATE satdelta_meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreVersionError, match="schema version 99, newer than this satdelta"):
        Store.open(store_path)


def test_missing_folder_and_create_false(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="folder .* does not exist"):
        Store.open(tmp_path / "nope" / "s.gpkg")
    with pytest.raises(StoreError, match="no store at"):
        Store.open(tmp_path / "s.gpkg", create=False)
    assert not (tmp_path / "s.gpkg").exists()


def test_reopen_keeps_everything(store_path: Path) -> None:
    with Store.open(store_path) as s:
        rep = s.add_report(title="t")
        cl = s.add_claim(report_id=rep.id, text="c")
        a = s.add_annotation(
            square(0, 0),
            claim_id=cl.id,
            label="water",
            confidence=0.25,
            provenance={"before": {"scene_id": "b", "acquired": "2024-05-20"}},
        )
    with Store.open(store_path) as s:
        got = s.get_annotation(a.id)
    assert got.to_dict() == a.to_dict()


def test_update_geometry_claim_and_analyst(store: Store, claim) -> None:
    a = store.add_annotation(square(0, 0), claim_id=claim.id, label="other")
    other = store.add_claim(report_id=claim.report_id, text="second claim")
    utm = Polygon([(500000, 4000000), (500050, 4000000), (500050, 4000050), (500000, 4000050)])
    b = store.update_annotation(
        a.id, geometry=utm, crs="EPSG:32651", claim_id=str(other.id), analyst="reviewer"
    )
    assert (b.claim_id, b.analyst, b.source_crs) == (other.id, "reviewer", "EPSG:32651")
    assert b.area_m2 == pytest.approx(2_500, rel=2e-3)
    assert "analyst, claim_id, geometry" in store.changes()[-1].description
    with pytest.raises(AnnotationValueError, match="cannot update id; allowed fields are"):
        store.update_annotation(a.id, id="x")
    with pytest.raises(AnnotationValueError, match="status: expected one of"):
        store.update_annotation(a.id, status="final")
    assert len(store.history(a.id)) == 2  # the refused updates wrote nothing


def test_rtree_index_follows_every_change_and_serves_bbox(store: Store, claim) -> None:
    a = store.add_annotation(square(125.0, 39.0), claim_id=claim.id, label="other")
    b = store.add_annotation(square(126.0, 40.0), claim_id=claim.id, label="other")
    assert [x.id for x in store.list_annotations(bbox=(124.9, 38.9, 125.5, 39.5))] == [a.id]
    store.update_annotation(b.id, geometry=square(125.2, 39.2))
    assert {x.id for x in store.list_annotations(bbox=(124.9, 38.9, 125.5, 39.5))} == {a.id, b.id}
    store.delete_annotation(a.id)
    store.undo()  # back, as a new row (new fid) that the trigger indexes again
    store.delete_annotation(b.id)
    assert [x.id for x in store.list_annotations(bbox=(124.9, 38.9, 125.5, 39.5))] == [a.id]
    assert store.list_annotations(bbox=(0, 0, 1, 1)) == []
    with pytest.raises(AnnotationValueError, match="bbox: expected"):
        store.list_annotations(bbox=(2, 0, 1, 1))
    if store.backend == "postgresql":  # PostGIS: the GiST index serves the box query
        plan = store._db.read(
            "EXPLAIN SELECT fid FROM annotations WHERE geom && ST_MakeEnvelope(0, 0, 1, 1, 4326)"
        )
        assert "idx_annotations_geom" in str(plan) or "Seq Scan" in str(plan)  # tiny table
        index = store._db.read("SELECT indexdef FROM pg_indexes WHERE tablename = 'annotations'")
        assert any("gist (geom)" in row[0] for row in index)
        return
    con = sqlite3.connect(Path(store.path))
    index = con.execute("SELECT id, minx, maxx, miny, maxy FROM rtree_annotations_geom").fetchall()
    fids = con.execute("SELECT fid FROM annotations").fetchall()
    con.close()
    assert [r[0] for r in index] == [f[0] for f in fids]  # exactly the live rows
    fid, minx, maxx, miny, maxy = index[0]
    assert minx <= 125.0 and maxx >= 125.001 and miny <= 39.0 and maxy >= 39.001


def test_bulk_add_is_all_or_nothing(store: Store, claim) -> None:
    good = dict(geometry=square(0, 0), claim_id=claim.id, label="other")
    fixed = "33333333-3333-4333-8333-333333333333"
    with pytest.raises(AnnotationValueError, match="appears twice in one batch"):
        store.add_annotations([{**good, "id": fixed}, {**good, "id": fixed}])
    with pytest.raises(GeometryError, match="too few points"):
        store.add_annotations(
            [good, {**good, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}}]
        )
    with pytest.raises(AnnotationValueError, match="expected one of aircraft"):
        store.add_annotations([good, {**good, "label": "no such label"}])
    assert store.list_annotations() == [] and store.changes() == []
    (a,) = store.add_annotations([{**good, "id": fixed}])
    with pytest.raises(
        AnnotationValueError, match=f"annotation id {fixed} is already in the store"
    ):
        store.add_annotations([good, {**good, "id": fixed}])
    assert [x.id for x in store.list_annotations()] == [a.id]
