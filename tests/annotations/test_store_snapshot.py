"""Several reads that must agree see one state of the store while another writer works.

A second :class:`Store` on the same file stands in for the other process; it runs its write
exactly between two reads of the first (the interleaving a real race can produce).
"""

from __future__ import annotations

import json

import pytest
from satdelta.annotations import Store
from satdelta.annotations.errors import NotFoundError
from satdelta.imagery.errors import SatdeltaError

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}


def test_export_does_not_mix_states_with_a_concurrent_forced_claim_delete(tmp_path) -> None:
    path = tmp_path / "s.gpkg"
    with Store.open(path) as s:
        rep = s.add_report(title="R")
        claim = s.add_claim(report_id=rep.id, text="claim text", point=(0.5, 0.5))
        s.add_annotations([{"geometry": SQUARE, "claim_id": claim.id, "label": "other"}])
    exporter, other = Store.open(path), Store.open(path)
    list_reports = exporter.list_reports

    def reports_while_another_writer_deletes():  # noqa: ANN202
        other.delete_claim(claim.id, force=True)  # between the export's reads
        return list_reports()

    exporter.list_reports = reports_while_another_writer_deletes  # type: ignore[method-assign]
    out = tmp_path / "e.geojson"
    assert exporter.export(out) == 1  # the state before the delete, whole
    props = json.loads(out.read_text())["features"][0]["properties"]
    assert props["claim_id"] == claim.id and props["claim_text"] == "claim text"
    assert other.list_annotations() == [] and other.list_claims() == []  # the delete landed
    exporter.list_reports = list_reports  # type: ignore[method-assign]
    assert exporter.export(tmp_path / "after.geojson") == 0  # the next export sees it
    exporter.close()
    other.close()


def test_add_claim_to_a_report_deleted_meanwhile_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "s.gpkg"
    adder, other = Store.open(path), Store.open(path)
    rep = adder.add_report(title="R")
    get_report = adder.get_report

    def report_then_deleted(report_id):  # noqa: ANN001, ANN202
        found = get_report(report_id)
        other.delete_report(report_id)  # after the first check, before the insert
        return found

    adder.get_report = report_then_deleted  # type: ignore[method-assign]
    with pytest.raises(NotFoundError, match="no report with id") as err:
        adder.add_claim(report_id=rep.id, text="new claim")
    assert isinstance(err.value, SatdeltaError)
    assert adder.list_claims() == []
    adder.close()
    other.close()


def test_snapshot_nests_and_writes_work_after_it(tmp_path) -> None:
    with Store.open(tmp_path / "s.gpkg") as s:
        with s.snapshot(), s.snapshot():
            assert s.list_reports() == []
        rep = s.add_report(title="after the snapshot")
        assert [r.id for r in s.list_reports()] == [rep.id]
