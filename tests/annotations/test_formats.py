"""GeoPackage validity (GDAL's validator, pyogrio), RFC 7946 export, imports and round trips."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from satdelta.annotations import GeoJSONImportError, Store
from shapely.geometry import Polygon, shape

from .conftest import square, validate_gpkg

BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[0, 0], [0.001, 0.001], [0.001, 0], [0, 0.001], [0, 0]]],
}
HOLED = {
    "type": "Polygon",
    "coordinates": [
        [[125.0, 39.0], [125.01, 39.0], [125.01, 39.01], [125.0, 39.01], [125.0, 39.0]],
        [
            [125.002, 39.002],
            [125.002, 39.004],
            [125.004, 39.004],
            [125.004, 39.002],
            [125.002, 39.002],
        ],
    ],
}
DETECT_RUN = {
    "before": {
        "source": "/data/sunan_2024-05-20.tif",
        "scene_id": "sunan_2024-05-20",
        "sha256": "ab" * 32,
        "acquired": "2024-05-20",
    },
    "after": {
        "source": "https://example.org/sunan_2024-06-14.tif",
        "scene_id": "sunan_2024-06-14",
        "sha256": "cd" * 32,
        "acquired": "2024-06-14",
    },
    "method": "cva",
    "threshold_method": "otsu",
    "threshold": 0.4213,
    "parameters": {"bands": [1, 2, 3], "normalise": "histogram", "gains": [1.02, 0.98, 1.0]},
    "created": "2026-11-29T20:00:00Z",
}


def populate(store: Store) -> tuple[int, int]:
    rep = store.add_report(title="Визит в Пхеньян", outlet="Wire", url="https://example.org/r")
    c1 = store.add_claim(report_id=rep.id, text="Aircraft cleared", place="Sunan")
    c2 = store.add_claim(report_id=rep.id, text="광장 parade blocks")
    store.add_annotation(
        square(125.67, 39.224),
        claim_id=c1.id,
        label="aircraft",
        verdict="supports",
        confidence=0.9,
        status="accepted",
        notes="Ил-62 gone",
        provenance=DETECT_RUN,
    )
    store.add_annotation(BOWTIE, claim_id=c1.id, label="other")  # repaired -> MultiPolygon
    store.add_annotation(
        HOLED, claim_id=c2.id, label="personnel formation", verdict="contradicts", confidence=0.3
    )
    cw = {
        "type": "Polygon",
        "coordinates": [[[1, 1], [1, 1.001], [1.001, 1.001], [1.001, 1], [1, 1]]],
    }
    a = store.add_annotation(cw, claim_id=c2.id, label="vehicles")
    store.update_annotation(a.id, status="rejected")
    gone = store.add_annotation(square(2, 2), claim_id=c2.id, label="water")
    store.delete_annotation(gone.id)
    return rep.id, c1.id


def test_store_passes_gdal_validator_and_pyogrio(gpkg_store: Store, store_path: Path) -> None:
    store = gpkg_store
    populate(store)
    res = validate_gpkg(store_path)
    assert res.returncode == 0, res.stdout + res.stderr
    import pyogrio

    layers = {name: geom for name, geom in pyogrio.list_layers(store_path)}
    assert layers["annotations"] == "MultiPolygon"
    for table in ("reports", "claims", "annotation_revisions", "changes", "labels"):
        assert table in layers
    info = pyogrio.read_info(store_path, layer="annotations")
    assert info["crs"] == "EPSG:4326" and info["features"] == 4
    for field in (
        "uuid",
        "claim_id",
        "label",
        "verdict",
        "confidence",
        "status",
        "origin",
        "notes",
        "analyst",
        "created",
        "updated",
        "revision",
        "area_m2",
        "source_crs",
        "repaired",
        "repair_notes",
        "before_scene_id",
        "before_acquired",
        "before_sha256",
        "after_source",
        "change_method",
        "change_threshold",
        "change_parameters",
        "provenance",
    ):
        assert field in info["fields"], field
    meta, _, geoms, fields = pyogrio.raw.read(store_path, layer="annotations")
    labels = list(fields[list(meta["fields"]).index("label")])
    assert sorted(labels) == ["aircraft", "other", "personnel formation", "vehicles"]
    first = shapely.from_wkb(geoms[labels.index("aircraft")])
    assert first.equals(shapely.MultiPolygon([shape(square(125.67, 39.224))]))
    revs = pyogrio.read_info(store_path, layer="annotation_revisions")["features"]
    assert revs == 7  # 5 adds, 1 update, 1 delete tombstone


def test_geojson_export_is_rfc7946(store: Store, tmp_path: Path) -> None:
    populate(store)
    out = tmp_path / "evidence.geojson"
    assert store.export(out) == 4
    fc = json.loads(out.read_text(encoding="utf-8"))
    assert "crs" not in fc and fc["type"] == "FeatureCollection"
    import geojson_validator as gv

    assert gv.validate_structure(fc) == {}
    geo = gv.validate_geometries(fc)
    assert geo["invalid"] == {}, geo
    assert set(geo["problematic"]) <= {"holes"}, geo  # holes are allowed by the issue
    for feat in fc["features"]:
        geom = shape(feat["geometry"])
        polys = getattr(geom, "geoms", [geom])
        for p in polys:
            assert shapely.is_ccw(p.exterior)
            assert all(not shapely.is_ccw(i) for i in p.interiors)
        for x, y in shapely.get_coordinates(geom):
            assert round(x, 7) == x and round(y, 7) == y
    by_label = {f["properties"]["label"]: f["properties"] for f in fc["features"]}
    p = by_label["aircraft"]
    assert p["report_title"] == "Визит в Пхеньян" and p["report_url"] == "https://example.org/r"
    assert p["claim_text"] == "Aircraft cleared" and p["notes"] == "Ил-62 gone"
    assert (p["verdict"], p["confidence"], p["status"], p["origin"]) == (
        "supports",
        0.9,
        "accepted",
        "drawn",
    )
    assert p["provenance"] == DETECT_RUN
    assert by_label["other"]["repaired"] is True
    assert by_label["vehicles"]["repairs"] == [
        "rings had the wrong winding (RFC 7946: exterior counter-clockwise); re-oriented"
    ]
    assert set(p) >= {"id", "report_id", "claim_id", "analyst", "created", "updated"}


def test_export_filters(store: Store, tmp_path: Path) -> None:
    rep, c1 = populate(store)
    out = tmp_path / "f.geojson"
    assert store.export(out, claim_id=c1) == 2
    assert store.export(out, status="rejected") == 1
    assert store.export(out, label="aircraft", report_id=rep) == 1
    assert store.export(out, report_id=rep + 1) == 0
    assert json.loads(out.read_text())["features"] == []


def test_round_trip_export_import_export(store: Store, tmp_path: Path) -> None:
    populate(store)
    # irregular polygons with full-precision coordinates (rounded to 7 decimals on export),
    # from a few metres to kilometres across, one with a hole
    rng = np.random.default_rng(7)
    for size in (5e-5, 2e-3, 3e-2):
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radii = size * rng.uniform(0.5, 1.0, 9)
        shell = np.column_stack([125.7 + radii * np.cos(angles), 39.0 + radii * np.sin(angles)])
        hole = np.column_stack(
            [125.7 + 0.1 * size * np.cos(angles), 39.0 + 0.1 * size * np.sin(angles)]
        )
        store.add_annotation(
            Polygon(shell, [hole]), claim_id=1, label="structure", confidence=float(rng.uniform())
        )
    first = tmp_path / "first.geojson"
    store.export(first)
    with Store.open(tmp_path / "other.gpkg", analyst="tester") as other:
        populate_reports_only(other)
        other.import_geojson(first, report_id=1, claim_id=1)
        second = tmp_path / "second.geojson"
        other.export(second)
    a, b = (json.loads(p.read_text()) for p in (first, second))
    for fc in (a, b):
        fc["satdelta"].pop("exported")
        for f in fc["features"]:  # claim moves to the import's claim; everything else is kept
            for k in ("claim_id", "claim_text", "report_id", "revision"):
                f["properties"].pop(k)
    assert a == b


def populate_reports_only(store: Store) -> None:
    rep = store.add_report(title="Визит в Пхеньян", outlet="Wire", url="https://example.org/r")
    store.add_claim(report_id=rep.id, text="Aircraft cleared", place="Sunan")


def test_reimport_into_same_store_gets_new_ids(store: Store, tmp_path: Path) -> None:
    rep, c1 = populate(store)
    out = tmp_path / "e.geojson"
    store.export(out)
    new = store.import_geojson(out, report_id=rep, claim_id=c1, allow_duplicates=True)
    old_ids = {a["id"] for a in json.loads(out.read_text())["features"]}
    assert len(new) == 4 and not ({a.id for a in new} & old_ids)
    assert {a.provenance["imported_from_id"] for a in new} == old_ids


def test_import_detect_changes_keeps_run_provenance(
    store: Store, store_path: Path, tmp_path: Path
) -> None:
    rep = store.add_report(title="r")
    cl = store.add_claim(report_id=rep.id, text="c")
    changes = {
        "type": "FeatureCollection",
        "satdelta": {"kind": "change-candidates", "run": DETECT_RUN},
        "features": [
            {
                "type": "Feature",
                "geometry": square(125.67 + i * 0.01, 39.2),
                "properties": {"id": i, "area_m2": 950.5 + i, "score": 3.2, "origin": "detected"},
            }
            for i in range(3)
        ],
    }
    path = tmp_path / "changes.geojson"
    path.write_text(json.dumps(changes))
    anns = store.import_geojson(path, report_id=rep.id, claim_id=cl.id)
    assert [(a.origin, a.status, a.label) for a in anns] == [("detected", "candidate", "other")] * 3
    assert anns[1].provenance == {
        **DETECT_RUN,
        "detection": {"id": 1, "area_m2": 951.5, "score": 3.2},
    }
    assert store.history(anns[0].id)[0].action == "import"
    if store.backend == "postgresql":  # the flat columns a GIS user sees, read with SQL
        rows = store._db.read(
            "SELECT before_sha256, after_acquired, change_method FROM annotations ORDER BY fid"
        )
        assert rows == [("ab" * 32, "2024-06-14", "cva")] * 3
        return
    import pyogrio

    meta, _, _, fields = pyogrio.raw.read(store_path, layer="annotations")
    cols = dict(zip(meta["fields"], fields, strict=True))
    assert list(cols["before_sha256"]) == ["ab" * 32] * 3
    assert list(cols["after_acquired"].astype(str)) == ["2024-06-14"] * 3
    assert list(cols["change_method"]) == ["cva"] * 3


def test_import_is_atomic(store: Store, claim, tmp_path: Path) -> None:
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": square(0, 0), "properties": {}},
            {
                "type": "Feature",
                "id": "bad-one",
                "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]},
                "properties": {},
            },
        ],
    }
    path = tmp_path / "mixed.geojson"
    path.write_text(json.dumps(fc))
    with pytest.raises(
        GeoJSONImportError,
        match=r"feature 1 \(id bad-one\): ring 0 of polygon 0 has too few points",
    ):
        store.import_geojson(path, report_id=claim.report_id, claim_id=claim.id)
    assert store.list_annotations() == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON (line 1"),
        ("[1, 2]", "expected a GeoJSON object, got a JSON list"),
        ('{"type": "FeatureCollection", "features": []}', "has no features"),
        ('{"type": "Point", "coordinates": [0, 0]}', "expected a GeoJSON FeatureCollection"),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": null,'
            ' "properties": {}}]}',
            "feature 0 has no geometry",
        ),
    ],
)
def test_import_bad_files(store: Store, claim, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(content)
    with pytest.raises(GeoJSONImportError, match=message.replace("(", r"\(")):
        store.import_geojson(path, report_id=claim.report_id, claim_id=claim.id)


def test_import_foreign_geojson_keeps_properties(store: Store, claim) -> None:
    fc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32651"}},
        "features": [
            {
                "type": "Feature",
                "id": 7,
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [500000, 4000000],
                            [500100, 4000000],
                            [500100, 4000100],
                            [500000, 4000100],
                            [500000, 4000000],
                        ]
                    ],
                },
                "properties": {"label": "structure", "name": "hangar", "n": 3},
            }
        ],
    }
    (a,) = store.import_geojson(fc, report_id=claim.report_id, claim_id=claim.id)
    assert (a.origin, a.label, a.source_crs) == ("imported", "structure", "EPSG:32651")
    assert a.provenance["import"]["properties"] == {"label": "structure", "name": "hangar", "n": 3}
    assert a.area_m2 == pytest.approx(10_000, rel=2e-3)


def test_import_claim_must_belong_to_report(store: Store, claim) -> None:
    other = store.add_report(title="other")
    with pytest.raises(Exception, match=f"claim {claim.id} belongs to report {claim.report_id}"):
        store.import_geojson(
            {"type": "Polygon", "coordinates": square(0, 0)["coordinates"]},
            report_id=other.id,
            claim_id=claim.id,
        )


def test_gpkg_export_passes_validator(store: Store, tmp_path: Path) -> None:
    populate(store)
    out = tmp_path / "evidence.gpkg"
    assert store.export(out, status="candidate") == 2
    res = validate_gpkg(out)
    assert res.returncode == 0, res.stdout + res.stderr
    import pyogrio

    info = pyogrio.read_info(out, layer="annotations")
    assert info["features"] == 2 and info["crs"] == "EPSG:4326"
    assert {"id", "claim_text", "report_title", "provenance", "confidence"} <= set(info["fields"])


def test_csv_export_has_wkt_and_every_property(store: Store, tmp_path: Path) -> None:
    populate(store)
    out = tmp_path / "evidence.csv"
    store.export(out)
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    row = next(r for r in rows if r["label"] == "aircraft")
    assert shapely.from_wkt(row["wkt"]).equals_exact(shape(square(125.67, 39.224)), 1e-7)
    assert row["notes"] == "Ил-62 gone" and row["report_title"] == "Визит в Пхеньян"
    assert json.loads(row["provenance"]) == DETECT_RUN
    holed = next(r for r in rows if r["label"] == "personnel formation")
    assert len(shapely.from_wkt(holed["wkt"]).interiors) == 1


def test_export_refuses_unknown_suffix_and_self(
    gpkg_store: Store, store_path: Path, tmp_path: Path
) -> None:
    store = gpkg_store
    from satdelta.annotations import AnnotationValueError, ExportError

    with pytest.raises(ExportError, match="expected a .geojson, .gpkg or .csv"):
        store.export(tmp_path / "x.shp")
    with pytest.raises(AnnotationValueError, match="is the store itself"):
        store.export(store_path)
    assert sys.platform  # export target folder must exist:
    with pytest.raises(ExportError, match="does not exist"):
        store.export(tmp_path / "missing" / "x.geojson")
