"""objects.geojson of a detect run imported as candidates, and the counts per claim."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from satdelta.annotations import Store
from satdelta.annotations.object_counts import ObjectCounts, object_counts, object_counts_by_claim


@pytest.mark.slow
def test_objects_import_as_candidates_and_counts_skip_rejected(tmp_path: Path) -> None:
    from satdelta.imagery.outputs import write_outputs
    from satdelta.imagery.pipeline import run_detection
    from satdelta.sample_data import load_report, site_paths

    paths = site_paths("sunan-airport")
    written = write_outputs(run_detection(paths.before, paths.after), tmp_path / "out")
    fc = json.loads(Path(written["objects.geojson"]).read_text(encoding="utf-8"))
    assert fc["satdelta"]["kind"] == "object-candidates"
    props = [f["properties"] for f in fc["features"]]

    with Store.open(tmp_path / "evidence.gpkg") as store:
        report, claims = store.load_report(load_report())
        anns = store.import_geojson(
            written["objects.geojson"], report_id=report.id, claim_id=claims[0].id
        )
        assert len(anns) == len(props)
        for a, p in zip(anns, props, strict=True):
            assert (a.origin, a.status) == ("detected", "candidate")
            assert a.label == {"aircraft-sized": "aircraft", "vehicle": "vehicles"}[p["size_class"]]
            assert a.confidence == pytest.approx(p["confidence"])
            obj = a.provenance["object"]
            assert obj["change"] == p["change"] and obj["length_m"] == p["length_m"]
            assert set(obj) >= {"size_class", "width_m", "orientation_deg", "area_m2"}
            assert a.provenance["before"]["sha256"] == fc["satdelta"]["run"]["before"]["sha256"]
        n = {k: sum(p["change"] == k for p in props) for k in ("disappeared", "appeared")}
        counts = object_counts(anns)
        assert counts == ObjectCounts(n["disappeared"], n["appeared"], counts.unchanged)
        gone = next(a for a in anns if a.provenance["object"]["change"] == "disappeared")
        store.update_annotation(gone.id, status="rejected")
        after = object_counts_by_claim(store.list_annotations())[claims[0].id]
        assert after.disappeared == counts.disappeared - 1
        assert after.before == counts.before - 1 and after.after == counts.after


def test_list_annotations_objects_only(store: Store, claim) -> None:
    from satdelta.annotations.object_counts import object_change

    from .conftest import square

    plain = store.add_annotation(square(1, 1), claim_id=claim.id, label="vehicles")
    obj = store.add_annotation(
        square(1.01, 1),
        claim_id=claim.id,
        label="aircraft",
        provenance={"object": {"change": "disappeared", "size_class": "aircraft-sized"}},
    )
    other = store.add_annotation(
        square(1.02, 1), claim_id=claim.id, label="other", provenance={"rank": 1}
    )
    everything = store.list_annotations()
    assert [a.id for a in everything] == [plain.id, obj.id, other.id]
    only = store.list_annotations(objects=True, report_id=claim.report_id)
    assert [a.id for a in only] == [a.id for a in everything if object_change(a)] == [obj.id]
    store.delete_annotation(obj.id)
    assert store.list_annotations(objects=True) == []
