"""End to end: a real detect run on the sample pair, imported as candidates, then exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from satdelta.annotations import Store

from .conftest import validate_gpkg


@pytest.mark.slow
def test_detect_run_imports_with_provenance_and_exports_valid(tmp_path: Path) -> None:
    from satdelta.imagery.outputs import write_outputs
    from satdelta.imagery.pipeline import run_detection
    from satdelta.sample_data import load_report, site_paths

    paths = site_paths("sunan-airport")
    run = run_detection(paths.before, paths.after)
    written = write_outputs(run, tmp_path / "out")
    changes = json.loads(Path(written["changes.geojson"]).read_text(encoding="utf-8"))
    n = len(changes["features"])
    assert n > 0

    with Store.open(tmp_path / "evidence.gpkg") as store:
        report, claims = store.load_report(load_report())
        anns = store.import_geojson(
            written["changes.geojson"], report_id=report.id, claim_id=claims[0].id, label="aircraft"
        )
        assert len(anns) == n
        prov = anns[0].provenance
        assert prov["before"]["sha256"] == changes["satdelta"]["run"]["before"]["sha256"]
        assert prov["after"]["acquired"] == "2024-06-14"
        assert prov["method"] == changes["satdelta"]["run"]["method"]
        assert prov["detection"]["id"] == changes["features"][0]["properties"]["id"]
        # the detector's area (scene CRS) and ours (geodesic, WGS84) agree
        total_detected = sum(f["properties"]["area_m2"] for f in changes["features"])
        assert sum(a.area_m2 for a in anns) == pytest.approx(total_detected, rel=0.01)
        out = tmp_path / "evidence.geojson"
        assert store.export(out, claim_id=claims[0].id) == n

    import geojson_validator as gv

    fc = json.loads(out.read_text(encoding="utf-8"))
    assert gv.validate_structure(fc) == {}
    assert gv.validate_geometries(fc)["invalid"] == {}
    res = validate_gpkg(tmp_path / "evidence.gpkg")
    assert res.returncode == 0, res.stdout + res.stderr
