"""satdelta.imagery.objects / object_change: objects found per date and matched across dates."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.object_change import ObjectChanges, detect_objects
from satdelta.imagery.objects import ObjectOptions, find_objects, objects_apply

PX = 0.5  # metres


def scene(seed: int = 0, size: int = 300) -> np.ndarray:
    """A noisy grey pavement, (3, size, size) float32."""
    rng = np.random.default_rng(seed)
    return (110.0 + rng.normal(0, 3, (1, size, size)).repeat(3, axis=0)).astype(np.float32)


def aircraft(img: np.ndarray, r: int, c: int, value: float = 210.0) -> None:
    """A bright cross (fuselage 60 px = 30 m, wings 50 px = 25 m) with its centre at (r, c)."""
    img[:, r - 30 : r + 30, c - 4 : c + 4] = value
    img[:, r - 6 : r + 4, c - 25 : c + 25] = value


def kinds(found: ObjectChanges) -> list[tuple[str, str]]:
    return sorted((o.change, o.size_class) for o in found.objects)


def test_an_aircraft_that_leaves_disappears_and_one_that_arrives_appears():
    before, after = scene(1), scene(2)
    aircraft(before, 100, 100)
    aircraft(after, 200, 200)
    found = detect_objects(before, after, PX)
    assert kinds(found) == [("appeared", "aircraft-sized"), ("disappeared", "aircraft-sized")]
    gone = next(o for o in found.objects if o.change == "disappeared")
    assert gone.found.bbox == pytest.approx((70, 75, 130, 125), abs=2)
    assert 24 <= gone.found.length_m <= 31  # a cross: the extent-based length (see docs)
    assert 0.5 < gone.confidence <= 1
    counts = found.counts()
    assert counts["disappeared"]["aircraft-sized"] == 1 and counts["appeared"]["total"] == 1
    assert counts["unchanged"]["total"] == 0


def test_a_vehicle_is_its_own_size_class():
    before, after = scene(3), scene(4)
    before[:, 150:158, 140:156] = 220.0  # 4 m x 8 m
    found = detect_objects(before, after, PX)
    assert kinds(found) == [("disappeared", "vehicle")]
    (car,) = found.objects
    assert car.found.length_m == pytest.approx(8, abs=1.5)
    assert car.found.orientation_deg == pytest.approx(90, abs=5)  # long axis along the columns


def test_a_standing_aircraft_whose_shadow_moved_is_unchanged():
    before, after = scene(5), scene(6)
    aircraft(before, 150, 160, value=40.0)  # morning shadow, cast east
    aircraft(after, 150, 140, value=40.0)  # afternoon shadow, cast west
    for img in (before, after):
        aircraft(img, 150, 150)
    found = detect_objects(before, after, PX)
    assert kinds(found) == [("unchanged", "aircraft-sized")]
    assert found.objects[0].date == "before"


def test_a_black_band_does_not_make_an_aircraft_disappear():
    before, after = scene(7), scene(8)
    aircraft(before, 150, 150)
    aircraft(before, 150, 60)
    after[:, :, 110:] = 0.0  # no-data band over the first aircraft (55 m x 150 m)
    found = detect_objects(before, after, PX)
    # the aircraft under the band is not observable after: no change is claimed for it
    assert [o.found.bbox[1] for o in found.objects] == [pytest.approx(35, abs=2)]
    assert kinds(found) == [("disappeared", "aircraft-sized")]


def test_invalid_pixels_count_as_nodata():
    before, after = scene(9), scene(10)
    aircraft(before, 150, 150)
    valid = np.ones(before.shape[1:], bool)
    valid[100:200, 100:200] = False
    assert detect_objects(before, after, PX, valid=valid).objects == ()


def test_find_objects_keeps_a_shadow_as_context_not_an_object():
    img = scene(11)
    aircraft(img, 150, 160, value=40.0)
    aircraft(img, 150, 150)
    found = find_objects(img, PX)
    assert [o.polarity for o in found.objects] == ["bright"]
    assert found.labels.max() == 1 and found.foreground[150, 183]  # the shadow's wing tip


def test_footprints_are_polygons_in_grid_coordinates():
    before, after = scene(12), scene(13)
    aircraft(before, 100, 100)
    found = detect_objects(before, after, PX)
    (obj,) = found.objects
    assert obj.geometry is not None and obj.geometry_wgs84 is None
    assert obj.geometry.area == pytest.approx(obj.found.area_m2 / PX**2)
    row = obj.csv_row()
    assert row["lon"] == "" and row["row_min"] == pytest.approx(70, abs=2)


def test_options_are_checked_and_recorded():
    assert ObjectOptions().shadow_reach_m == 10.0
    assert ObjectOptions(shadow_reach_m=None).shadow_reach_m is None
    assert json.loads(json.dumps(ObjectOptions().to_dict()))["seed_z"] == 4.0
    with pytest.raises(InvalidParameterError, match="seed_z"):
        ObjectOptions(seed_z=float("nan"))
    with pytest.raises(InvalidParameterError, match="grow_z <= seed_z"):
        ObjectOptions(grow_z=5.0)
    with pytest.raises(InvalidParameterError, match="one grid"):
        detect_objects(scene(0, 100), scene(0, 120), PX)


@pytest.mark.parametrize(
    ("pixel", "requested", "expected"),
    [
        (0.5, None, True),
        (1.0, None, True),
        (3.0, None, False),
        (None, None, False),
        (3.0, True, True),
        (0.5, False, False),
    ],
)
def test_objects_run_at_about_one_metre_or_finer(pixel, requested, expected):
    assert objects_apply(pixel, requested) is expected


def test_counts_within_an_area_of_interest_in_lonlat():
    from affine import Affine
    from rasterio.crs import CRS
    from shapely.geometry import box

    before, after = scene(14), scene(15)
    aircraft(before, 100, 100)
    aircraft(before, 200, 220)
    transform = Affine(0.5, 0, 500000.0, 0, -0.5, 4300000.0)
    found = detect_objects(before, after, PX, transform=transform, crs=CRS.from_epsg(32651))
    assert found.counts()["disappeared"]["total"] == 2
    lon, lat = found.objects[0].centre_lonlat()
    aoi = box(lon - 1e-4, lat - 1e-4, lon + 1e-4, lat + 1e-4)
    summary = found.summary(aoi)
    assert summary["counts"]["aoi"]["disappeared"]["total"] == 1
    assert summary["counts"]["scene"]["disappeared"]["aircraft-sized"] == 2


def test_a_detect_run_without_objects_does_not_load_their_skimage_modules():
    # skimage's measure, morphology and transform (and scipy.spatial) are imported where
    # objects are looked for: the CLI and the detection modules load none of them
    heavy = ("skimage.measure", "skimage.morphology", "scipy.spatial")
    code = (
        "import sys, satdelta.plugins.cli.detect, satdelta.imagery.block_run\n"
        "import satdelta.imagery.pipeline, satdelta.imagery.objects\n"
        f"print(' '.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []
    # and looking for objects still finds them (the deferred imports run)
    image = np.full((3, 80, 80), 60.0, np.float32)
    image[:, 30:36, 30:40] = 220.0  # a bright 6 x 10 m vehicle-sized object at 1 m
    found = find_objects(image, 1.0)
    assert len(found.objects) >= 1
