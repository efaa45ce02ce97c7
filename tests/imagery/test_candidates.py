"""satdelta.imagery.candidates: rank and kind of change of every candidate, and one area
definition for the mask, the GeoJSON and run.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize
from satdelta.imagery.candidates import describe_candidates
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.morphology import MERGE_GAP_PX
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.outputs import write_outputs
from satdelta.imagery.pipeline import run_detection
from satdelta.imagery.vectorize import vectorize
from shapely.geometry import shape

from tests.conftest import make_pair

T10 = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
UTM = CRS.from_epsg(32651)


def _scene(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (100 + rng.normal(0, 5, size=(3, 60, 60))).astype("float32")


def _describe(before, after, changed, score=None):
    valid = np.ones(changed.shape, bool)
    score = changed.astype("float32") * 2 if score is None else score
    polys = vectorize(changed, score, T10, UTM, merge_gap_px=MERGE_GAP_PX)
    return describe_candidates(polys, changed, before, after, valid, threshold=1.0)


@pytest.mark.parametrize(
    "before_colour, after_colour, kind",
    [
        (None, (180, 180, 180), "appeared"),  # an object added on bare ground
        ((180, 180, 180), None, "disappeared"),  # an object removed
        ((180, 100, 100), (100, 100, 180), "altered"),  # a red roof painted blue
    ],
)
def test_change_kind_on_synthetic_pairs(before_colour, after_colour, kind):
    before, after = _scene(1), _scene(2)
    changed = np.zeros((60, 60), bool)
    changed[20:32, 24:36] = True
    for image, colour in ((before, before_colour), (after, after_colour)):
        if colour is not None:
            image[:, changed] = np.asarray(colour, "float32")[:, None]
    (p,) = _describe(before, after, changed)
    assert p.change == kind and p.rank == 1


def test_ranks_are_unique_and_follow_strength_size_and_compactness():
    before, after = _scene(3), _scene(4)
    changed = np.zeros((60, 60), bool)
    score = np.zeros((60, 60), "float32")
    changed[5:15, 5:15] = True  # compact, strong
    score[5:15, 5:15] = 3.0
    changed[30:40, 5:15] = True  # compact, weaker
    score[30:40, 5:15] = 1.5
    changed[50, 5:55] = True  # a 1-px strip of the same area as the weak square: ragged
    changed[52, 5:55] = True
    score[50:53, 5:55] = 1.5
    changed[30:32, 40:42] = True  # small and weak
    score[30:32, 40:42] = 1.2
    polys = _describe(before, after, changed, score)
    assert [p.rank for p in polys] == [1, 2, 3, 4]
    # strong square, weak square, the small square, and last the ragged strips (a seam's
    # shape) though they are as large and as strong as the weak square
    assert [(p.pixel_count, round(p.score, 3)) for p in polys] == [
        (100, 3),
        (100, 1.5),
        (4, 1.2),
        (100, 1.5),
    ]
    assert polys[3].geometry.geom_type == "MultiPolygon"  # two strips 1 px apart: one candidate
    assert all(p.change in ("appeared", "disappeared", "altered") for p in polys)


def test_polygons_of_another_mask_are_refused():
    before, after = _scene(5), _scene(6)
    changed = np.zeros((60, 60), bool)
    changed[5:15, 5:15] = True
    polys = vectorize(changed, changed.astype("float32"), T10, UTM)
    changed[40:50, 40:50] = True
    with pytest.raises(InvalidParameterError, match="polygons given"):
        describe_candidates(polys, changed, before, after, np.ones_like(changed), threshold=1.0)


def test_one_area_definition_mask_geojson_run_json(tmp_path):
    before, after, _ = make_pair(tmp_path)
    run = run_detection(before, after, DetectionOptions(method="cva", threshold="otsu"))
    out = write_outputs(run, tmp_path / "out")
    fc = json.loads(out["changes.geojson"].read_text())
    record = json.loads(out["run.json"].read_text())
    props = [f["properties"] for f in fc["features"]]
    assert props and [p["rank"] for p in props] == list(range(1, len(props) + 1))
    assert all(p["change"] in ("appeared", "disappeared", "altered") for p in props)
    assert all(p["pixel_count"] >= 4 for p in props)
    total = sum(p["area_m2"] for p in props)
    assert record["detection"]["changed_area_m2"] == pytest.approx(total, abs=1e-3)
    assert record["polygons"]["area_m2"] == pytest.approx(total, abs=1e-3)
    assert sum(record["polygons"]["change"].values()) == len(props)
    # ellipsoidal, not planar: the planar total has its own name
    planar = record["detection"]["changed_planar_area_m2"]
    assert planar == pytest.approx(sum(p["planar_area_m2"] for p in props))
    assert total != pytest.approx(planar, rel=1e-6)
    with rasterio.open(out["mask.tif"]) as src:
        mask = src.read(1)
        burned = rasterize(
            [(p.geometry, 1) for p in run.polygons],
            out_shape=mask.shape,
            transform=src.transform,
            dtype="uint8",
        )
    assert ((mask == 1) == (burned == 1)).all()  # the mask's pixels are the polygons' pixels
    assert sum(p["pixel_count"] for p in props) == int((mask == 1).sum())
    assert shape(fc["features"][0]["geometry"]).is_valid
