"""Editing and deleting reports and claims, undoing that, and superseding candidates."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from satdelta.annotations import (
    AnnotationValueError,
    InUseError,
    NotFoundError,
    Store,
)

from .conftest import check_store_valid, raw_rows, square, validate_gpkg


def state(store: Store) -> tuple[list, list, list]:
    """Everything an analyst sees: reports, claims and current annotations.

    An annotation's ``revision``/``updated`` count how often it was written, so an
    undo (a new revision) changes them by design; every other field must come back.
    """
    anns = []
    for a in store.list_annotations():
        d = a.to_dict()
        del d["revision"], d["updated"]
        anns.append(d)
    return (
        [r.to_dict() for r in store.list_reports()],
        [c.to_dict() for c in store.list_claims()],
        sorted(anns, key=lambda d: d["id"]),
    )


@pytest.fixture
def project(store: Store) -> dict[str, Any]:
    """Two reports; report 1 has claims a (2 annotations) and b (none); report 2 has claim c."""
    r1 = store.add_report(
        title="Sunan cleared", outlet="Wire", url="https://example.org/a", published="2024-06-14"
    )
    r2 = store.add_report(title="Parade rehearsal")
    a = store.add_claim(
        report_id=r1.id, text="Aircraft gone", place="Sunan", bbox=(125.66, 39.22, 125.68, 39.23)
    )
    b = store.add_claim(report_id=r1.id, text="Apron repainted", point=(125.67, 39.225))
    c = store.add_claim(report_id=r2.id, text="Formations on the square")
    kept = store.add_annotation(
        square(125.670, 39.224), claim_id=a.id, label="aircraft", status="accepted"
    )
    cand = store.add_annotation(square(125.672, 39.224), claim_id=a.id, label="other")
    other = store.add_annotation(square(125.75, 39.01), claim_id=c.id, label="vehicles")
    return dict(r1=r1, r2=r2, a=a, b=b, c=c, kept=kept, cand=cand, other=other)


def test_update_report_and_undo_restores_the_row_exactly(store: Store, project: dict) -> None:
    before_rows = raw_rows(store, "reports")
    before = state(store)
    new = store.update_report(project["r1"].id, title="Sunan cleared (corrected)", outlet=None)
    assert (new.title, new.outlet, new.url) == (
        "Sunan cleared (corrected)",
        None,
        project["r1"].url,
    )
    assert store.get_report(project["r1"].id) == new
    assert store.changes()[-1].description == "edit title, outlet of report 1"
    # the export of the report carries the corrected title
    fc = store.to_feature_collection(report_id=project["r1"].id)
    assert {f["properties"]["report_title"] for f in fc["features"]} == {new.title}
    change = store.undo()
    assert change.records == ("report 1",) and change.annotation_ids == ()
    assert raw_rows(store, "reports") == before_rows
    assert state(store) == before


def test_update_with_same_values_logs_nothing(store: Store, project: dict) -> None:
    n = len(store.changes())
    assert store.update_report(project["r1"].id, published="2024-06-14") == project["r1"]
    assert store.update_claim(project["b"].id, point=[125.67, 39.225]) == project["b"]
    assert len(store.changes()) == n


def test_update_claim_fields_and_undo(store: Store, project: dict) -> None:
    before_rows = raw_rows(store, "claims")
    before = state(store)
    b = project["b"]
    new = store.update_claim(
        b.id,
        text="Apron repainted white",
        point=None,
        bbox=(125.66, 39.22, 125.67, 39.23),
        time_start="2024-06-01",
    )
    assert new.point is None and new.bbox == (125.66, 39.22, 125.67, 39.23)
    assert str(new.time_start) == "2024-06-01" and new.created == b.created
    assert store.get_claim(b.id) == new
    store.undo()
    assert raw_rows(store, "claims") == before_rows
    assert state(store) == before


def test_moving_a_claim_moves_its_annotations_and_undo_moves_them_back(
    store: Store, tmp_path: Path, project: dict
) -> None:
    a, r2 = project["a"], project["r2"]
    before = state(store)
    moved = store.update_claim(a.id, report_id=r2.id)
    assert moved.report_id == r2.id
    assert store.changes()[-1].description == "move claim 1 from report 1 to report 2"
    # the annotations follow (a new revision each), so a report's export is consistent
    anns = store.list_annotations(claim_id=a.id)
    assert {x.report_id for x in anns} == {r2.id}
    assert [h.action for h in store.history(project["kept"].id)] == ["add", "update"]
    assert store.list_annotations(report_id=project["r1"].id) == []
    out = tmp_path / "r2.geojson"
    assert store.export(out, report_id=r2.id) == 3
    props = [f["properties"] for f in json.loads(out.read_text())["features"]]
    assert {p["report_title"] for p in props} == {"Parade rehearsal"}
    change = store.undo()
    assert change.records == ("claim 1",)
    assert sorted(change.annotation_ids) == sorted([project["kept"].id, project["cand"].id])
    assert state(store) == before
    with pytest.raises(NotFoundError, match="no report with id 9"):
        store.update_claim(a.id, report_id=9)
    assert state(store) == before


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, p: s.update_report(p["r1"].id, colour="red"), "cannot edit colour of a report"),
        (lambda s, p: s.update_report(p["r1"].id), "nothing to edit: give at least one of title"),
        (lambda s, p: s.update_report(p["r1"].id, title="  "), "report title: expected non-empty"),
        (
            lambda s, p: s.update_report(p["r1"].id, published="June"),
            "report published: expected a date as YYYY-MM-DD, got 'June'",
        ),
        (lambda s, p: s.update_claim(p["a"].id, text=""), "claim text: expected non-empty text"),
        (lambda s, p: s.update_claim(p["a"].id, bbox=(3, 1, 2, 2)), "claim bbox: expected west"),
        (lambda s, p: s.update_claim(p["a"].id, report_id=None), "every claim belongs to a report"),
        (
            lambda s, p: s.update_claim(p["a"].id, time_start="2024-07-01", time_end="2024-06-01"),
            "expected start <= end",
        ),
        (lambda s, p: s.update_claim(p["a"].id, id=5), "cannot edit id of a claim"),
        (lambda s, p: s.update_report(42, title="x"), "no report with id 42"),
        (lambda s, p: s.update_claim(42, text="x"), "no claim with id 42"),
        (lambda s, p: s.delete_report(42), "no report with id 42"),
        (lambda s, p: s.delete_claim(42), "no claim with id 42"),
    ],
)
def test_bad_edits_are_refused_and_change_nothing(
    store: Store, project: dict, call: Any, message: str
) -> None:
    before, n = state(store), len(store.changes())
    with pytest.raises((AnnotationValueError, NotFoundError), match=message):
        call(store, project)
    assert state(store) == before and len(store.changes()) == n


def test_delete_claim_without_evidence(store: Store, project: dict) -> None:
    before_rows = raw_rows(store, "claims")
    before = state(store)
    change = store.delete_claim(project["b"].id)
    assert change.records == ("claim 2",) and change.annotation_ids == ()
    assert [c.id for c in store.list_claims()] == [project["a"].id, project["c"].id]
    with pytest.raises(NotFoundError, match="no claim with id 2"):
        store.get_claim(project["b"].id)
    # a new claim never takes the deleted claim's id (so undo can put it back)
    assert store.add_claim(report_id=project["r1"].id, text="new").id == 4
    store.undo()  # the add is not a change: undo reverses the deletion
    assert raw_rows(store, "claims")[:3] == before_rows
    assert state(store)[0] == before[0] and state(store)[2] == before[2]


def test_delete_claim_with_evidence_needs_force_and_one_undo_restores_all(
    store: Store, tmp_path: Path, project: dict
) -> None:
    a = project["a"]
    before = state(store)
    with pytest.raises(InUseError) as err:
        store.delete_claim(a.id)
    msg = str(err.value)
    assert "claim 1 still has 2 annotations pointing at it (1 accepted, 1 candidate)" in msg
    assert "--force" in msg and "\n" not in msg
    assert state(store) == before
    change = store.delete_claim(a.id, force=True)
    assert change.description == "delete claim 1 and its 2 annotations"
    assert sorted(change.annotation_ids) == sorted([project["kept"].id, project["cand"].id])
    assert [x.id for x in store.list_annotations()] == [project["other"].id]
    assert store.history(project["kept"].id)[-1].deleted
    # exports of the report no longer show the claim nor its evidence, and still validate
    assert store.export(tmp_path / "r1.geojson", report_id=project["r1"].id) == 0
    assert store.export(tmp_path / "all.gpkg") == 1
    assert validate_gpkg(tmp_path / "all.gpkg").returncode == 0
    check_store_valid(store)
    # a tombstoned annotation of the deleted claim cannot come back on its own
    with pytest.raises(NotFoundError, match="is evidence for claim 1, which is deleted"):
        store.restore(project["kept"].id, 1)
    undo = store.undo()
    assert undo.records == ("claim 1",) and len(undo.annotation_ids) == 2
    assert state(store) == before
    assert store.get_annotation(project["kept"].id).status == "accepted"


def test_delete_report_takes_its_claims_and_undo_brings_everything_back(
    store: Store, tmp_path: Path, project: dict
) -> None:
    r1 = project["r1"]
    before = state(store)
    before_claims = raw_rows(store, "claims")
    with pytest.raises(InUseError, match="report 1 still has 2 annotations pointing at it"):
        store.delete_report(r1.id)
    assert state(store) == before
    change = store.delete_report(r1.id, force=True)
    assert change.description == "delete report 1 with 2 claims and 2 annotations"
    assert change.records == ("report 1", "claim 1", "claim 2")
    assert [r.id for r in store.list_reports()] == [project["r2"].id]
    assert [c.id for c in store.list_claims()] == [project["c"].id]
    out = tmp_path / "after.csv"
    assert store.export(out) == 1
    with out.open(newline="", encoding="utf-8") as f:
        assert [row["claim_id"] for row in csv.DictReader(f)] == [str(project["c"].id)]
    check_store_valid(store)
    store.undo()
    assert state(store) == before
    assert raw_rows(store, "claims") == before_claims
    # a report whose claims have no evidence goes without force (a report loaded twice)
    dup = store.add_report(title="Parade rehearsal (loaded twice)")
    store.add_claim(report_id=dup.id, text="Formations on the square")
    assert store.delete_report(dup.id).records == (f"report {dup.id}", "claim 4")
    assert state(store) == before


def test_undo_walks_back_edits_and_annotation_changes_in_order(store: Store, project: dict) -> None:
    s0 = state(store)
    store.update_claim(project["a"].id, text="Aircraft gone (per satellite)")
    s1 = state(store)
    store.update_annotation(project["cand"].id, status="rejected")
    s2 = state(store)
    store.delete_claim(project["b"].id)
    store.undo()
    assert state(store) == s2
    store.undo()
    assert state(store) == s1
    store.undo()
    assert state(store) == s0


def test_supersede_replaces_candidates_in_one_change(store: Store, project: dict) -> None:
    a = project["a"]
    first = store.add_annotations(
        [
            dict(geometry=square(125.66 + i * 0.002, 39.221), claim_id=a.id, label="other")
            for i in range(3)
        ],
        action="import",
        description="detected 3 candidates",
    )
    before = state(store)
    n = len(store.changes())
    second = store.add_annotations(
        [
            dict(
                geometry=square(125.661 + i * 0.002, 39.221),
                claim_id=a.id,
                label="other",
                origin="detected",
            )
            for i in range(2)
        ],
        action="import",
        supersede=[x.id for x in first],
    )
    assert len(store.changes()) == n + 1
    assert store.changes()[-1].description == "add 2 annotations, superseding 3 candidates"
    current = {x.id for x in store.list_annotations(claim_id=a.id)}
    assert current == {project["kept"].id, project["cand"].id} | {x.id for x in second}
    assert [(h.action, h.deleted) for h in store.history(first[0].id)] == [
        ("import", False),
        ("supersede", True),
    ]
    assert store.history(first[0].id)[-1].snapshot["geometry"] == first[0].to_dict()["geometry"]
    undo = store.undo()
    assert len(undo.annotation_ids) == 5
    assert state(store) == before


def test_supersede_refuses_decided_and_deleted_annotations(store: Store, project: dict) -> None:
    a = project["a"]
    before, n = state(store), len(store.changes())
    item = dict(geometry=square(125.661, 39.221), claim_id=a.id, label="other")
    with pytest.raises(
        AnnotationValueError,
        match=f"cannot supersede annotation {project['kept'].id}: expected status candidate, "
        "got accepted; accepted and rejected annotations are kept",
    ):
        store.add_annotations([item], supersede=[project["cand"].id, project["kept"].id])
    store.delete_annotation(project["other"].id)
    with pytest.raises(NotFoundError, match="it is deleted; supersede only current candidates"):
        store.add_annotations([item], supersede=[project["other"].id])
    with pytest.raises(NotFoundError, match="no annotation abcd1234"):
        store.add_annotations([item], supersede=["abcd1234"])
    store.undo()  # the delete of "other"
    assert state(store) == before and len(store.changes()) == n + 2


def test_supersede_with_nothing_new_and_by_prefix(store: Store, project: dict) -> None:
    before = state(store)
    store.add_annotations([], supersede=[project["cand"].id[:8]])
    assert store.changes()[-1].description == "supersede 1 candidate"
    assert project["cand"].id not in {x.id for x in store.list_annotations()}
    store.undo()
    assert state(store) == before
