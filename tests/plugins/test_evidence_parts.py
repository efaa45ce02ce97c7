"""The evidence package's parts on small synthetic input: gathering, chip grids and chips,
the drawing helpers, the manifest check."""

from __future__ import annotations

import json

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from satdelta.annotations import Store
from satdelta.imagery import open_scene
from satdelta.plugins.evidence import EvidenceError, gather_report, make_package, verify_package
from satdelta.plugins.evidence.chips import (
    MIN_PX,
    ChipGrid,
    chip_grid,
    read_chip,
    scene_attribution,
)
from satdelta.plugins.evidence.drawing import north_angle_deg, scale_bar_m, stretch
from shapely.geometry import box, mapping, shape


def to_wgs84(geom, crs="EPSG:32651"):
    return shape(transform_geom(crs, "EPSG:4326", mapping(geom)))


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "s.gpkg") as s:
        yield s


def test_gather_counts_accepted_verdicts_and_reviewed_objects(store) -> None:
    report = store.add_report(title="r")
    c1 = store.add_claim(report_id=report.id, text="one")
    c2 = store.add_claim(report_id=report.id, text="two")
    poly = box(125.0, 39.0, 125.001, 39.001)
    obj = {"object": {"change": "disappeared"}}
    for verdict, status, prov in (
        ("supports", "accepted", obj),
        ("supports", "accepted", {"object": {"change": "unchanged"}}),
        ("contradicts", "accepted", {}),
        ("supports", "rejected", obj),
        ("inconclusive", "candidate", {}),
    ):
        store.add_annotation(
            poly, claim_id=c1.id, label="aircraft", verdict=verdict, status=status,
            provenance=prov,
        )  # fmt: skip
    ev = gather_report(store, report.id)
    first, second = ev.claims
    assert first.verdicts == {"supports": 2, "contradicts": 1, "inconclusive": 0}
    assert (first.undecided, first.rejected) == (1, 1)
    assert (first.objects.before, first.objects.after) == (2, 1)  # rejected one left out
    assert second.claim.id == c2.id and second.accepted == () and second.objects is None
    assert len(ev.accepted) == 3


def test_drawn_annotation_is_named_without_chips(store, tmp_path) -> None:
    report = store.add_report(title="drawn <b>only</b>")
    claim = store.add_claim(report_id=report.id, text="c")
    ann = store.add_annotation(
        box(125.0, 39.0, 125.001, 39.001), claim_id=claim.id, label="other", status="accepted"
    )
    package = make_package(store, report.id, tmp_path / "out", pdf=False)
    assert package.problems == (
        f"annotation {ann.id}: its provenance names no before/after scenes (drawn or imported)",
    )
    page = (tmp_path / "out" / "index.html").read_text()
    assert "drawn &lt;b&gt;only&lt;/b&gt;" in page and "names no before/after scenes" in page
    assert verify_package(tmp_path / "out").ok


def test_chip_grid_square_around_polygon_with_margin_and_limits(write_raster) -> None:
    scene = open_scene(write_raster("a_2024-01-01.tif", np.zeros((1, 400, 400), "uint8")))
    # scene: 10 m pixels from (500000, 4000000); a 200 m x 100 m polygon inside it
    poly = box(501000, 3998000, 501200, 3998100)
    grid = chip_grid(to_wgs84(poly), scene, margin=0.5)
    assert grid.crs == scene.crs and grid.transform.a == pytest.approx(10.0)
    assert grid.shape == (MIN_PX, MIN_PX)  # 400 m across is fewer than MIN_PX pixels
    left, right, bottom, top = grid.extent
    assert (left + right) / 2 == pytest.approx(501100, abs=0.5)
    assert (bottom + top) / 2 == pytest.approx(3998050, abs=0.5)
    big = box(500100, 3996100, 503900, 3999900)  # 3.8 km: coarser pixels, at most max_px
    grid = chip_grid(to_wgs84(big), scene, margin=0.1, max_px=200)
    assert grid.shape[0] <= 200 and grid.pixel_size_m == pytest.approx(3800 * 1.2 / 200, rel=0.01)


def test_chip_grid_on_a_geographic_scene_is_in_the_utm_zone(write_raster) -> None:
    data = np.zeros((1, 100, 100), "uint8")
    transform = Affine(1e-4, 0, 125.66, 0, -1e-4, 39.23)
    scene = open_scene(write_raster("g.tif", data, crs="EPSG:4326", transform=transform))
    grid = chip_grid(box(125.665, 39.225, 125.666, 39.226), scene)
    assert grid.crs == CRS.from_epsg(32651)
    assert grid.metres_per_unit == 1.0


def test_read_chip_uses_the_run_statistics_and_outlines_the_polygon(write_raster, store) -> None:
    rng = np.random.default_rng(0)
    before = rng.integers(90, 110, (3, 200, 200)).astype("uint8")
    after = before.copy()
    after[:, 90:110, 90:110] = 250  # a bright square appears
    names = dict(descriptions=["red", "green", "blue"])
    b = write_raster("x_2024-01-01.tif", before, **names)
    a = write_raster("x_2024-02-01.tif", after, **names)
    poly = box(500900, 3998900, 501100, 3999100)  # the square's footprint
    report = store.add_report(title="t")
    claim = store.add_claim(report_id=report.id, text="c")
    prov = {
        "before": {"source": str(b)},
        "after": {"source": str(a)},
        "parameters": {
            "method": "cva",
            "score": {"difference_median": [0, 0, 0], "difference_scale": [5, 5, 5]},
        },
    }
    ann = store.add_annotation(
        poly, crs="EPSG:32651", claim_id=claim.id, label="other", provenance=prov
    )
    chip = read_chip(ann, open_scene(b), open_scene(a))
    assert chip.score_method == "cva, the run's statistics"
    assert chip.before.shape == (3, *chip.grid.shape) and chip.after.shape == chip.before.shape
    inside = chip.score[chip.grid.shape[0] // 2, chip.grid.shape[1] // 2]
    assert inside == pytest.approx(np.sqrt(3) * 150 / 5, rel=0.1)
    assert np.nanmedian(chip.score) < 6
    assert chip.outline.area == pytest.approx(200 * 200, rel=1e-3)


def test_attribution_given_from_metadata_or_said_missing(write_raster) -> None:
    tagged = open_scene(write_raster("t.tif", np.zeros((1, 4, 4), "uint8"),
                                     tags={"COPYRIGHT": "© Vendor 2024"}))  # fmt: skip
    plain = open_scene(write_raster("p.tif", np.zeros((1, 4, 4), "uint8")))
    assert scene_attribution(tagged) == "© Vendor 2024"
    assert scene_attribution(tagged, "Given") == "Given"
    assert "not recorded" in scene_attribution(plain)


@pytest.mark.parametrize(
    ("width", "bar"), [(48, 10), (100, 20), (240, 50), (1000, 200), (4180, 1000), (3, 0.5)]
)
def test_scale_bar_is_a_round_length_under_a_quarter(width, bar) -> None:
    assert scale_bar_m(width) == pytest.approx(bar)


def test_north_arrow_follows_grid_convergence() -> None:
    def grid(x: float) -> ChipGrid:
        return ChipGrid(CRS.from_epsg(32651), Affine(1, 0, x, 0, -1, 4_345_000), (100, 100))

    assert north_angle_deg(grid(500_000 - 50)) == pytest.approx(0, abs=0.01)  # on the meridian
    east = north_angle_deg(grid(730_000))  # east of the central meridian, northern hemisphere
    assert -2.5 < east < -1.0  # true north is counter-clockwise of grid north


def test_stretch_percentiles_grey_and_nodata() -> None:
    band = np.arange(100, dtype=np.float32).reshape(1, 10, 10)
    band[0, 0, 0] = np.nan
    rgb = stretch(band)
    assert rgb.shape == (10, 10, 3) and np.all(rgb[..., 0] == rgb[..., 2])
    assert rgb[0, 0, 0] == 0 and rgb.max() == 1 and rgb.min() == 0


def test_verify_refuses_a_folder_without_manifest(tmp_path) -> None:
    with pytest.raises(EvidenceError, match="manifest.json"):
        verify_package(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other", "files": {}}))
    with pytest.raises(EvidenceError, match="satdelta-evidence/1"):
        verify_package(tmp_path)
