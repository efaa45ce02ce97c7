"""Tests of the synthetic sample data: reproducible, georeferenced, small, and really containing
the changes, misregistration and radiometric difference that it claims to contain."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Geod, Transformer
from rasterio.features import rasterize
from satdelta.imagery.errors import InvalidParameterError
from satdelta.sample_data import (
    SITES,
    SitePaths,
    load_report,
    load_truth,
    report_path,
    site_paths,
)
from satdelta.sample_data.evaluate import match_truth, read_polygons
from satdelta.sample_data.generate import generate
from satdelta.sample_data.sites import SITE_SPECS
from scipy import ndimage, optimize
from shapely.geometry import Point, box, shape

PACKAGE_DIR = Path(site_paths(SITES[0]).before).parent

# Independently stated reference coordinates of the real places (lat, lon), from the issue.
REAL_SITES = {
    "sunan-airport": (39.2240, 125.6700),
    "kim-il-sung-square": (39.0193, 125.7528),
}


def _read(path: Path) -> tuple[np.ndarray, rasterio.Affine]:
    with rasterio.open(path) as src:
        return src.read().astype(np.float64), src.transform


def _truth_mask(site: str, shape: tuple[int, int], transform) -> np.ndarray:
    """True = pixel centre inside a true change polygon."""
    polys = read_polygons(site_paths(site).truth)
    return rasterize([(g, 1) for g in polys], out_shape=shape, transform=transform).astype(bool)


def _unchanged(site: str, shape: tuple[int, int], transform) -> np.ndarray:
    """True = pixel at least 8 px away from every true change and 16 px from the border."""
    ok = ~ndimage.binary_dilation(_truth_mask(site, shape, transform), iterations=8)
    ok[:16] = ok[-16:] = False
    ok[:, :16] = ok[:, -16:] = False
    return ok


# --------------------------------------------------------------------------- reproducibility
@pytest.fixture(scope="module")
def generated_twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    a = generate(tmp_path_factory.mktemp("gen_a"))
    b = generate(tmp_path_factory.mktemp("gen_b"))
    return a, b


@pytest.mark.slow
def test_generator_is_byte_identical_across_runs(generated_twice) -> None:
    a, b = generated_twice
    assert [p.name for p in a] == [p.name for p in b]
    assert len(a) == 3 * len(SITES)
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    # GDAL wrote no sidecars (.aux.xml) that would carry state outside the files
    assert sorted(p.name for p in a[0].parent.iterdir()) == sorted(p.name for p in a)


@pytest.mark.slow
def test_committed_files_are_what_the_generator_makes(generated_twice) -> None:
    """The files shipped in the package come from the code in the package (decoded pixels,
    georeferencing, tags and truth compared; compressed bytes may differ with zlib builds)."""
    fresh, _ = generated_twice
    for path in fresh:
        shipped = PACKAGE_DIR / path.name
        assert shipped.is_file(), f"{path.name} missing from the package: run the generator"
        if path.suffix == ".tif":
            with rasterio.open(path) as new, rasterio.open(shipped) as old:
                assert new.profile == old.profile
                assert new.tags() == old.tags()
                assert new.descriptions == old.descriptions
                np.testing.assert_array_equal(new.read(), old.read())
        else:
            assert json.loads(path.read_text()) == json.loads(shipped.read_text())


def test_generator_runs_as_a_module(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "satdelta.sample_data.generate", "--outdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    expected = sorted(n for s in SITE_SPECS for n in s.file_names())
    assert names == expected
    assert all(str(tmp_path / n) in out.stdout for n in names)


# --------------------------------------------------------------------------- files and sizes
def test_all_sample_files_are_under_5_mb() -> None:
    files = [p for p in PACKAGE_DIR.iterdir() if p.suffix in (".tif", ".json", ".geojson")]
    assert len(files) == 3 * len(SITES) + 1  # + report.json
    total = sum(p.stat().st_size for p in files)
    assert total < 5 * 1024 * 1024, f"sample files total {total} bytes"


def test_accessors_return_existing_files() -> None:
    assert SITES == ("sunan-airport", "kim-il-sung-square")
    for site in SITES:
        paths = site_paths(site)
        assert isinstance(paths, SitePaths)
        for p in (paths.before, paths.after, paths.truth):
            assert p.is_file()
        assert paths.before.name.startswith(site + "_")
        with pytest.raises(dataclasses.FrozenInstanceError):
            paths.before = paths.after  # type: ignore[misc]
    assert report_path().name == "report.json"


def test_unknown_site_says_what_is_expected() -> None:
    with pytest.raises(
        InvalidParameterError, match=r"'nowhere'.*sunan-airport, kim-il-sung-square"
    ):
        site_paths("nowhere")


@pytest.mark.parametrize("site", SITES)
def test_scenes_are_georeferenced_at_the_real_site(site: str) -> None:
    paths = site_paths(site)
    spec = next(s for s in SITE_SPECS if s.name == site)
    geod = Geod(ellps="WGS84")
    to_wgs = Transformer.from_crs("EPSG:32651", "EPSG:4326", always_xy=True)
    with rasterio.open(paths.before) as b, rasterio.open(paths.after) as a:
        for src, when in ((b, spec.before), (a, spec.after)):
            assert src.crs.to_epsg() == 32651
            assert src.res == (0.5, 0.5)
            assert (src.count, src.dtypes[0]) == (4, "uint8")
            assert 400 <= src.width <= 600 and 400 <= src.height <= 600
            assert src.descriptions == ("red", "green", "blue", "nir")
            # origin snapped to the pixel grid
            assert src.transform.c % 0.5 == 0 and src.transform.f % 0.5 == 0
            # acquisition date in the file name and in TIFFTAG_DATETIME
            assert when in Path(src.name).name
            assert src.tags()["TIFFTAG_DATETIME"].startswith(when.replace("-", ":"))
            assert src.profile["tiled"] and src.profile["compress"] == "deflate"
            x = (src.bounds.left + src.bounds.right) / 2
            y = (src.bounds.bottom + src.bounds.top) / 2
            lon, lat = to_wgs.transform(x, y)
            ref_lat, ref_lon = REAL_SITES[site]
            _, _, dist = geod.inv(lon, lat, ref_lon, ref_lat)
            assert dist < 2000.0, f"{site} scene centre is {dist:.0f} m from the real site"
        assert a.transform == b.transform and a.shape == b.shape


@pytest.mark.parametrize("site", SITES)
def test_open_scene_reads_the_dates_and_bands(site: str) -> None:
    from satdelta.imagery.scene import open_scene

    spec = next(s for s in SITE_SPECS if s.name == site)
    before = open_scene(site_paths(site).before)
    after = open_scene(site_paths(site).after)
    assert before.acquired == date.fromisoformat(spec.before)
    assert after.acquired == date.fromisoformat(spec.after)
    assert before.band_names == ("red", "green", "blue", "nir")
    assert before.pixel_size_m == pytest.approx(0.5)


# --------------------------------------------------------------------------- truth
@pytest.mark.parametrize("site", SITES)
def test_truth_is_rfc7946_and_inside_the_footprint(site: str) -> None:
    import geojson_validator

    truth = load_truth(site)
    assert truth["type"] == "FeatureCollection" and "crs" not in truth
    assert truth["satdelta"]["kind"] == "sample-truth" and truth["satdelta"]["synthetic"]
    assert geojson_validator.validate_structure(truth) == {}
    invalid = geojson_validator.validate_geometries(truth)
    assert not invalid.get("invalid"), invalid
    assert len(truth["features"]) >= 5
    with rasterio.open(site_paths(site).before) as src:
        footprint = box(*src.bounds)
    for feat, poly in zip(truth["features"], read_polygons(site_paths(site).truth), strict=True):
        g = shape(feat["geometry"])
        rings = [g] if g.geom_type == "Polygon" else list(g.geoms)
        for ring in rings:
            assert ring.exterior.is_ccw, "RFC 7946: exterior rings counter-clockwise"
        flat = np.concatenate([np.asarray(r.exterior.coords).ravel() for r in rings])
        assert np.array_equal(flat, np.round(flat, 7)), "coordinates to 7 decimals"
        assert footprint.contains(poly), feat["properties"]["name"]
        assert feat["properties"]["area_m2"] == pytest.approx(poly.area, rel=0.01)
        assert feat["properties"]["change"] in ("appeared", "disappeared")


def test_truth_content_follows_the_story() -> None:
    sunan = load_truth("sunan-airport")["features"]
    square = load_truth("kim-il-sung-square")["features"]
    aircraft = [f for f in sunan if f["properties"]["label"] == "aircraft"]
    assert len(aircraft) == 4 and all(f["properties"]["change"] == "disappeared" for f in aircraft)
    # airliner footprints: ~200 m² (An-148, 29 m long) to ~600 m² (Il-76, 47 m x 50 m)
    assert all(150 < f["properties"]["footprint_area_m2"] < 1500 for f in aircraft)
    labels = {f["properties"]["label"] for f in square}
    assert {"personnel formation", "vehicles", "ground marking"} <= labels
    assert all(f["properties"]["change"] == "appeared" for f in square)


# --------------------------------------------------------------------------- measured effects
@pytest.mark.parametrize("site", SITES)
def test_changes_are_in_the_pixels_where_truth_says(site: str) -> None:
    """After undoing the declared gain/offset, the dates differ strongly inside the truth
    polygons and only by noise/misregistration elsewhere."""
    gen = load_truth(site)["satdelta"]["generator"]
    before, transform = _read(site_paths(site).before)
    after, _ = _read(site_paths(site).after)
    gain = np.asarray(gen["gain"])[:, None, None]
    offset = np.asarray(gen["offset"])[:, None, None]
    diff = np.abs((after - offset) / gain - before).mean(axis=0)
    inside = _truth_mask(site, diff.shape, transform)
    outside = _unchanged(site, diff.shape, transform)
    assert diff[inside].mean() > 30.0
    assert diff[outside].mean() < 4.0
    assert np.median(diff[inside]) > 5 * np.median(diff[outside])


@pytest.mark.parametrize("site", SITES)
def test_misregistration_and_gain_offset_are_measurable(site: str) -> None:
    """Fit ``after = g * shift(before, d) + o`` by least squares on unchanged pixels; the fitted
    sub-pixel shift and per-band gain/offset must match what the truth file declares."""
    gen = load_truth(site)["satdelta"]["generator"]
    before, transform = _read(site_paths(site).before)
    after, _ = _read(site_paths(site).after)
    ok = _unchanged(site, before.shape[1:], transform)
    b_mean, a_mean = before.mean(axis=0), after.mean(axis=0)

    def residual(d: np.ndarray) -> np.ndarray:
        moved = ndimage.shift(b_mean, d, order=3, mode="nearest")[ok]
        design = np.column_stack([moved, np.ones_like(moved)])
        coef, *_ = np.linalg.lstsq(design, a_mean[ok], rcond=None)
        return a_mean[ok] - design @ coef

    fit = optimize.least_squares(residual, x0=[0.0, 0.0], diff_step=1e-3)
    dy, dx = fit.x
    want_dy, want_dx = gen["shift_after_px"]
    assert abs(dy - want_dy) < 0.05 and abs(dx - want_dx) < 0.05, (fit.x, gen["shift_after_px"])
    assert np.hypot(dy, dx) > 0.25  # a real sub-pixel misregistration, not zero

    for k in range(before.shape[0]):
        moved = ndimage.shift(before[k], fit.x, order=3, mode="nearest")[ok]
        g, o = np.polyfit(moved, after[k][ok], 1)
        assert g == pytest.approx(gen["gain"][k], abs=0.015), f"band {k} gain"
        assert o == pytest.approx(gen["offset"][k], abs=2.0), f"band {k} offset"
    assert max(abs(g - 1.0) for g in gen["gain"]) >= 0.05


@pytest.mark.parametrize("site", SITES)
def test_sensor_noise_has_the_declared_level(site: str) -> None:
    """Undo the declared shift and gain/offset: on unchanged ground what is left is the two
    dates' independent noise plus rounding, sqrt(s² + (s/g)² + 2/12) DN per band."""
    gen = load_truth(site)["satdelta"]["generator"]
    before, transform = _read(site_paths(site).before)
    after, _ = _read(site_paths(site).after)
    ok = _unchanged(site, before.shape[1:], transform)
    dy, dx = gen["shift_after_px"]
    for k in range(before.shape[0]):
        back = ndimage.shift(after[k], (-dy, -dx), order=3, mode="nearest")
        d = ((back - gen["offset"][k]) / gen["gain"][k] - before[k])[ok]
        robust_sd = 1.4826 * np.median(np.abs(d - np.median(d)))
        s, g = gen["noise_sigma"][k], gen["gain"][k]
        expected = np.sqrt(s**2 + (s / g) ** 2 + 2 / 12)
        assert robust_sd == pytest.approx(expected, rel=0.15), f"band {k}"
        assert abs(np.median(d)) < 0.5  # no residual bias once gain/offset are undone


# --------------------------------------------------------------------------- report
def test_sample_report_is_marked_and_points_at_the_sites() -> None:
    data = load_report()
    assert set(data) == {"report", "claims"}
    report = data["report"]
    assert "SAMPLE" in report["title"]
    assert report["url"].startswith("https://example.org/")
    assert "fictional" in report["outlet"].lower()
    assert {"title", "outlet", "url", "published", "language", "notes"} <= set(report)
    assert [c["site"] for c in data["claims"]] == list(SITES)
    for claim in data["claims"]:
        spec = next(s for s in SITE_SPECS if s.name == claim["site"])
        w, s, e, n = claim["bbox"]
        lon, lat = claim["point"]
        assert w < lon < e and s < lat < n
        assert claim["time_start"] <= spec.before < spec.after <= claim["time_end"]
        assert claim["text"] and claim["place"]
        # the claim's box covers the scene footprint (lon/lat)
        with rasterio.open(site_paths(claim["site"]).before) as src:
            to_wgs = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True)
            fw, fs, fe, fn = to_wgs.transform_bounds(*src.bounds)
        assert (
            box(w, s, e, n).intersection(box(fw, fs, fe, fn)).area > 0.9 * box(fw, fs, fe, fn).area
        )


def test_claims_load_into_the_annotation_model() -> None:
    """The JSON fields are the ones the annotation store's Report/Claim take."""
    from satdelta.annotations import Claim, Report

    data = load_report()
    fields = {k: v for k, v in data["report"].items()}
    report = Report(id=1, **fields)
    assert report.published == date(2024, 6, 15)
    for i, c in enumerate(data["claims"], start=1):
        claim = Claim(id=i, report_id=1, **{k: v for k, v in c.items() if k != "site"})
        assert claim.time_start <= claim.time_end


# --------------------------------------------------------------------------- evaluation
def test_match_truth_scores() -> None:
    truth = [box(0, 0, 10, 10), box(20, 0, 30, 10)]
    detected = [box(5, 0, 15, 10), box(100, 100, 101, 101)]
    s = match_truth(detected, truth)
    assert s.overlap_area_m2 == pytest.approx(50.0)
    assert s.precision == pytest.approx(50.0 / 101.0)
    assert s.recall == pytest.approx(50.0 / 200.0)
    assert s.iou == pytest.approx(50.0 / (200.0 + 101.0 - 50.0))
    assert (s.objects_found, s.objects_total, s.detections, s.false_alarms) == (1, 2, 2, 1)
    empty = match_truth([], truth)
    assert (empty.precision, empty.recall, empty.iou, empty.objects_found) == (0.0, 0.0, 0.0, 0)
    with pytest.raises(InvalidParameterError, match="found_fraction"):
        match_truth(detected, truth, found_fraction=0.0)
    assert match_truth([Point(5, 5).buffer(5)], truth).objects_found == 1
