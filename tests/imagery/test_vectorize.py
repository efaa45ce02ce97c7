"""vectorize / to_feature_collection: holes, ring orientation, areas in m², GeoJSON validity."""

from __future__ import annotations

import io
import json
import math

import geojson_validator
import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.crs import CRS
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.vectorize import (
    to_feature_collection,
    vectorize,
    write_feature_collection,
)

UTM = CRS.from_epsg(32651)
T10 = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)


def ring_mask() -> np.ndarray:
    m = np.zeros((12, 12), bool)
    m[2:10, 2:10] = True
    m[4:7, 4:8] = False  # a 3 x 4 hole
    return m


def test_ring_keeps_hole_and_rings_are_oriented():
    m = ring_mask()
    score = np.where(m, 2.0, 0.0).astype("float32")
    (p,) = vectorize(m, score, T10, UTM)
    assert isinstance(p.geometry, shapely.Polygon)
    assert len(p.geometry.interiors) == 1
    assert p.geometry.exterior.is_ccw and not p.geometry.interiors[0].is_ccw
    assert p.geometry_wgs84.exterior.is_ccw and not p.geometry_wgs84.interiors[0].is_ccw
    assert p.pixel_count == 64 - 12
    assert p.planar_area_m2 == pytest.approx((64 - 12) * 100.0)
    # the hole is where the unchanged pixels are, in map coordinates
    hole = shapely.Polygon(p.geometry.interiors[0])
    assert hole.bounds == (500040.0, 4000000.0 - 70, 500080.0, 4000000.0 - 40)
    assert p.score == pytest.approx(2.0)
    # WGS84 is near 32.5 N (UTM 51N, northing 4000 km), east of the central meridian 123 E
    lon, lat = p.geometry_wgs84.exterior.coords[0]
    assert 122.9 < lon < 123.1 and 36.0 < lat < 36.2


def test_mean_score_valid_and_min_area():
    m = np.zeros((10, 10), bool)
    m[0:2, 0:2] = True  # 4 px = 400 m²
    m[5:9, 5:9] = True  # 16 px = 1600 m²
    score = np.zeros((10, 10), "float32")
    score[5:9, 5:9] = np.arange(16).reshape(4, 4)
    polys = vectorize(m, score, T10, UTM)
    assert [p.pixel_count for p in polys] == [4, 16]
    assert polys[1].score == pytest.approx(7.5)
    assert [p.planar_area_m2 for p in vectorize(m, score, T10, UTM, min_area_m2=500)] == [1600.0]
    valid = np.ones((10, 10), bool)
    valid[5:9, 5:7] = False
    polys = vectorize(m, score, T10, UTM, valid=valid)
    assert [p.pixel_count for p in polys] == [4, 8]


def test_diagonal_pixels_split_with_4_joined_with_8():
    m = np.zeros((4, 4), bool)
    m[0, 0] = m[1, 1] = True
    s = m.astype("float32")
    assert len(vectorize(m, s, T10, UTM)) == 2
    (p,) = vectorize(m, s, T10, UTM, connectivity=8)
    assert p.geometry.is_valid and p.planar_area_m2 == pytest.approx(200.0)


def test_area_in_feet_crs():
    ft = CRS.from_epsg(2263)  # NAD83 / New York Long Island (ftUS)
    t = Affine(3.0, 0.0, 1000000.0, 0.0, -3.0, 200000.0)
    m = np.ones((2, 5), bool)
    (p,) = vectorize(m, m.astype("float32"), t, ft)
    assert p.planar_area_m2 == pytest.approx(10 * 9 * (1200 / 3937) ** 2, rel=1e-9)


def _ellipsoid_band_area(lat1: float, lat2: float, dlon_deg: float) -> float:
    """Exact area of a lat/lon cell on WGS84 (authalic-latitude formula)."""
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    e = math.sqrt(e2)

    def q(phi: float) -> float:
        s = math.sin(phi)
        return (1 - e2) * (s / (1 - e2 * s * s) - math.log((1 - e * s) / (1 + e * s)) / (2 * e))

    return a * a / 2 * abs(q(math.radians(lat2)) - q(math.radians(lat1))) * math.radians(dlon_deg)


def test_area_geographic_is_geodesic():
    t = Affine(0.01, 0.0, 10.0, 0.0, -0.01, 45.0)  # 0.01 degree pixels
    m = np.ones((3, 4), bool)
    (p,) = vectorize(m, m.astype("float32"), t, CRS.from_epsg(4326))
    expected = _ellipsoid_band_area(44.97, 45.0, 0.04)
    assert p.area_m2 == pytest.approx(expected, rel=1e-4)


def test_no_crs_uses_pixel_size():
    m = ring_mask()
    (p,) = vectorize(m, m.astype("float32"), Affine.identity(), None, pixel_size_m=0.5)
    assert p.geometry_wgs84 is None and p.area_m2 == pytest.approx(52 * 0.25)
    (q,) = vectorize(m, m.astype("float32"), Affine.identity(), None)
    assert math.isnan(q.area_m2)
    with pytest.raises(InvalidParameterError, match="pixel size"):
        vectorize(m, m.astype("float32"), Affine.identity(), None, min_area_m2=10)


def test_feature_collection_is_rfc7946():
    m = ring_mask()
    m[0, 11] = True
    polys = vectorize(m, m.astype("float32"), T10, UTM)
    fc = json.loads(json.dumps(to_feature_collection(polys, run={"method": "cva"})))
    assert "crs" not in fc and fc["satdelta"]["kind"] == "change-candidates"
    assert fc["satdelta"]["run"]["method"] == "cva"
    assert geojson_validator.validate_structure(fc, check_crs=True) == {}
    report = geojson_validator.validate_geometries(fc)
    assert report["invalid"] == {}
    # holes are kept on purpose; 7 decimals (1 cm) is what the design asks for
    assert set(report["problematic"]) <= {"holes", "excessive_coordinate_precision"}
    props = [f["properties"] for f in fc["features"]]
    assert [p["id"] for p in props] == [1, 2] and {p["origin"] for p in props} == {"detected"}
    assert [p["planar_area_m2"] for p in props] == pytest.approx([100.0, 5200.0])  # raster order
    for f in fc["features"]:
        for ring in f["geometry"]["coordinates"]:
            for x, y in ring:
                assert round(x, 7) == x and round(y, 7) == y
    ext = shapely.geometry.shape(fc["features"][1]["geometry"])
    assert ext.exterior.is_ccw and len(ext.interiors) == 1


def test_area_m2_is_ellipsoidal_and_planar_area_has_its_own_name():
    from pyproj import Geod

    m = ring_mask()
    (p,) = vectorize(m, m.astype("float32"), T10, UTM)
    expected = abs(Geod(ellps="WGS84").geometry_area_perimeter(p.geometry_wgs84)[0])
    assert p.area_m2 == pytest.approx(expected, rel=1e-12)
    assert p.planar_area_m2 == pytest.approx(5200.0)
    assert abs(p.area_m2 / p.planar_area_m2 - 1) < 2e-3  # UTM scale error, not zero


def test_fragments_within_the_gap_are_one_multipolygon():
    m = np.zeros((8, 12), bool)
    m[1:4, 1:4] = True
    m[1:4, 6:9] = True  # 2 px gap: joined with merge_gap_px=2
    m[6, 11] = True  # diagonal neighbours only at 1 px: joined too
    m[7, 10] = True
    s = m.astype("float32")
    assert len(vectorize(m, s, T10, UTM)) == 4
    polys = vectorize(m, s, T10, UTM, merge_gap_px=2)
    assert [p.pixel_count for p in polys] == [18, 2]
    assert polys[0].geometry.geom_type == "MultiPolygon" and polys[0].geometry.is_valid
    assert polys[1].geometry.is_valid
    assert all(0 < p.compactness <= 1 for p in polys)


def test_from_feature_collection_gives_the_polygons_back_in_the_scene_crs():
    from satdelta.imagery.vectorize import from_feature_collection

    m = ring_mask()
    m[0, 11] = True  # a second region, one pixel
    score = np.where(m, 2.0, 0.0).astype("float32")
    polys = vectorize(m, score, T10, UTM)
    back = from_feature_collection(json.loads(json.dumps(to_feature_collection(polys))), UTM)
    assert len(back) == len(polys) == 2
    for p, q in zip(polys, back, strict=True):
        # 7 decimals of a degree: within about a centimetre
        assert shapely.hausdorff_distance(p.geometry, q.geometry) < 0.02
        assert q.geometry.exterior.is_ccw and not any(r.is_ccw for r in q.geometry.interiors)
        assert shapely.hausdorff_distance(p.geometry_wgs84, q.geometry_wgs84) < 1e-6
        assert (q.pixel_count, q.rank, q.change) == (p.pixel_count, p.rank, p.change)
        assert q.area_m2 == pytest.approx(p.area_m2, rel=1e-5)
        assert q.score == pytest.approx(p.score)
    with pytest.raises(InvalidParameterError, match="changes.geojson"):
        from_feature_collection({"features": [{"geometry": None, "properties": {}}]}, UTM)


def test_streamed_feature_collection_is_the_same_text():
    # write_feature_collection (block runner, feature by feature) = json.dumps of the dict,
    # for a ring with a hole, a speck and two fragments joined into a multipolygon
    m = np.zeros((30, 30), bool)
    m[:12, :12] = ring_mask()
    m[0, 11] = True
    m[20:24, 20:23] = m[20:24, 24:27] = True  # one column apart: one candidate, two parts
    polys = vectorize(m, m.astype("float32"), T10, UTM, merge_gap_px=2)
    assert len(polys) == 2 and {p.geometry_wgs84.geom_type for p in polys} == {"MultiPolygon"}
    parts = [g for p in polys for g in p.geometry_wgs84.geoms]
    assert any(len(g.interiors) for g in parts)  # the ring's hole
    out = io.StringIO()
    write_feature_collection(out, polys, run={"method": "cva"})
    assert out.getvalue() == json.dumps(to_feature_collection(polys, run={"method": "cva"}))


def test_streamed_feature_collection_is_the_same_text_over_many_features():
    # more features than write_feature_collection spells at once, holes and multipolygons
    rng = np.random.default_rng(5)
    m = np.zeros((240, 240), bool)
    m[::4, ::4] = True  # 3600 specks
    m[100:110, 100:110] = True
    m[103:106, 103:106] = False  # a hole
    m[200:203, 20:23] = m[200:203, 24:27] = True  # two parts of one candidate
    score = rng.random(m.shape).astype("float32")
    polys = vectorize(m, score, T10, UTM, merge_gap_px=1)
    assert len(polys) > 2500
    assert any(p.geometry_wgs84.geom_type == "MultiPolygon" for p in polys)
    out = io.StringIO()
    write_feature_collection(out, polys, run={"method": "cva"})
    assert out.getvalue() == json.dumps(to_feature_collection(polys, run={"method": "cva"}))
    assert out.getvalue() == json.dumps(json.loads(out.getvalue()))  # one valid JSON text


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled-ring-area", "public-method"])
def test_ellipsoidal_areas_equal_pyproj_per_polygon_holes_and_parts(compiled, monkeypatch):
    import importlib

    from pyproj import Geod

    areas = importlib.import_module("satdelta.imagery.geodesic_areas")
    _ellipsoidal_areas_m2 = areas.ellipsoidal_areas_m2

    # pyproj's compiled ring method (read in place) and its public one give the same areas
    ring_area = areas._RING_AREA_PERIMETER
    calls: list[int] = []
    if compiled:
        if ring_area is None:
            pytest.skip("this pyproj has no compiled ring method")

        def counted(lons, lats, radians=False):  # noqa: ANN001, ANN202
            calls.append(len(lons))
            return ring_area(lons, lats, radians=radians)

        monkeypatch.setattr(areas, "_RING_AREA_PERIMETER", counted)
    else:
        monkeypatch.setattr(areas, "_RING_AREA_PERIMETER", None)

    square = shapely.box(121.0, 31.0, 121.01, 31.012)
    holed = shapely.Polygon(
        square.exterior, [shapely.box(121.002, 31.002, 121.004, 31.005).exterior]
    )
    multi = shapely.MultiPolygon([holed, shapely.box(121.02, 31.0, 121.03, 31.001)])
    south = shapely.box(-70.5, -45.2, -70.49, -45.1)  # clockwise ring (negative signed area)
    geoms = [shapely.orient_polygons(g) for g in (square, holed, multi)] + [south.reverse()]
    expected = [abs(Geod(ellps="WGS84").geometry_area_perimeter(g)[0]) for g in geoms]
    assert _ellipsoidal_areas_m2(geoms) == expected
    assert expected[1] < expected[0] < expected[2]  # the hole is subtracted, the part added
    assert len(calls) == (7 if compiled else 0)  # every ring (1 + 2 + 3 + 1) compiled


def test_ellipsoidal_areas_the_same_in_chunks_over_threads_and_for_polygons_only(monkeypatch):
    import importlib

    from pyproj import Geod
    from satdelta.imagery.parallel import threads

    areas = importlib.import_module("satdelta.imagery.geodesic_areas")
    rng = np.random.default_rng(7)
    # 60 small squares with holes in some, then the same with a MultiPolygon among them
    boxes = []
    for k in range(60):
        x, y = 10.0 + rng.uniform(0, 1), 50.0 + rng.uniform(0, 1)
        outer = shapely.box(x, y, x + 0.001 * (1 + k % 5), y + 0.0007)
        hole = shapely.box(x + 0.0002, y + 0.0002, x + 0.0004, y + 0.0004)
        boxes.append(shapely.Polygon(outer.exterior, [hole.exterior]) if k % 3 == 0 else outer)
    mixed = [*boxes[:30], shapely.MultiPolygon(boxes[30:33]), *boxes[33:]]
    geod = Geod(ellps="WGS84")
    for geoms in (boxes, mixed):
        geoms = [shapely.orient_polygons(g) for g in geoms]
        expected = [abs(geod.geometry_area_perimeter(g)[0]) for g in geoms]
        with threads(1):
            one = areas.ellipsoidal_areas_m2(geoms)
        monkeypatch.setattr(areas, "MIN_RINGS_PER_JOB", 7)  # a chunk for each thread
        with threads(2):
            two = areas.ellipsoidal_areas_m2(geoms)
        monkeypatch.undo()
        assert one == two == expected
    assert areas.ellipsoidal_areas_m2([]) == []
    # ring_areas: signed, counter-clockwise positive, one value a ring
    ccw = shapely.get_coordinates(shapely.orient_polygons(boxes[1]).exterior)
    lon, lat = np.r_[ccw[:, 0], ccw[::-1, 0]], np.r_[ccw[:, 1], ccw[::-1, 1]]
    signed = areas.ring_areas(lon, lat, np.array([len(ccw), 2 * len(ccw)]))
    assert signed[0] > 0 and signed[1] == -signed[0]


def test_the_wgs84_transformer_is_made_once_per_crs():
    import importlib

    from pyproj import Transformer

    vectorize_module = importlib.import_module("satdelta.imagery.vectorize")
    vectorize_module._transformer.cache_clear()
    polys = [vectorize(ring_mask(), np.ones((12, 12), np.float32), T10, UTM) for _ in range(3)]
    info = vectorize_module._transformer.cache_info()
    assert info.misses == 1 and info.hits == 2
    fresh = Transformer.from_crs(UTM.to_wkt(), "EPSG:4326", always_xy=True)
    x, y = fresh.transform(500020.0, 3999980.0)  # the mask's corner (col 2, row 2)
    ring = np.asarray(polys[2][0].geometry_wgs84.exterior.coords)
    assert np.isclose(ring, [x, y], atol=1e-12).all(axis=1).any()
