"""Bad polygons are repaired and flagged, or refused with a reason; never dropped silently."""

from __future__ import annotations

import math

import pytest
import shapely
from satdelta.annotations import GeometryError, clean_polygon
from satdelta.annotations.geometry import geodesic_area_m2
from shapely.geometry import Polygon

from .conftest import square


def test_valid_square_passes_unchanged() -> None:
    c = clean_polygon(square(125.6, 39.2))
    assert not c.repaired and c.repairs == ()
    assert c.geometry.equals(shapely.geometry.shape(square(125.6, 39.2)))
    assert c.source_crs == "EPSG:4326"


def test_self_intersection_is_repaired_and_flagged() -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    c = clean_polygon(bowtie)
    assert c.repaired
    assert "Self-intersection" in c.repairs[0]
    assert c.geometry.is_valid
    assert c.geometry.area == pytest.approx(0.5)  # two triangles of 0.25 each


def test_unclosed_ring_is_closed_and_flagged() -> None:
    ring = [[0, 0], [1, 0], [1, 1], [0, 1]]
    c = clean_polygon({"type": "Polygon", "coordinates": [ring]})
    assert c.repairs == ("ring 0 of polygon 0 was not closed; closed it",)
    assert c.geometry.area == pytest.approx(1.0)


def test_clockwise_geojson_is_reoriented_and_flagged() -> None:
    cw = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}
    c = clean_polygon(cw)
    assert c.repaired and "winding" in c.repairs[0]
    assert shapely.is_ccw(c.geometry.exterior)


def test_hole_winding_is_clockwise_after_cleaning() -> None:
    shell = [(0, 0), (4, 0), (4, 4), (0, 4)]
    hole = [(1, 1), (2, 1), (2, 2), (1, 2)]  # counter-clockwise hole: wrong for RFC 7946
    c = clean_polygon(Polygon(shell, [hole]))
    assert not c.repaired  # shapely input carries no winding convention
    assert shapely.is_ccw(c.geometry.exterior) and not shapely.is_ccw(c.geometry.interiors[0])
    assert c.geometry.area == pytest.approx(15.0)


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [math.nan, 0], [1, 1], [0, 0]]]},
            "ring 0 of polygon 0 has NaN or infinite coordinates",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]},
            "too few points (2 distinct)",
        ),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "too few points"),
        ({"type": "Point", "coordinates": [0, 0]}, "expected a GeoJSON Polygon or MultiPolygon"),
        ("LINESTRING (0 0, 1 1)", "expected a Polygon or MultiPolygon, got LineString"),
        ("POLYGON ((0 0, 1 0", "does not parse"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [2, 0], [0, 0]]]},
            "has no area left after repair",
        ),
        (
            "POLYGON ((500000 4000000, 500100 4000000, 500100 4000100, 500000 4000000))",
            "pass the polygon's CRS",
        ),
        (
            {"type": "Polygon", "coordinates": [[["a", 0], [1, 0], [1, 1], [0, 0]]]},
            "not a list of [x, y] positions of numbers",
        ),
        (42, "expected a shapely geometry"),
    ],
)
def test_refused_with_reason(geometry: object, message: str) -> None:
    with pytest.raises(GeometryError) as err:
        clean_polygon(geometry)
    assert message in str(err.value)


def test_projected_input_is_reprojected_and_crs_recorded() -> None:
    utm = Polygon([(500000, 4000000), (500100, 4000000), (500100, 4000100), (500000, 4000100)])
    c = clean_polygon(utm, crs="EPSG:32651")
    assert c.source_crs == "EPSG:32651"
    lon, lat = c.geometry.exterior.coords[0]
    assert 122.9 < lon < 123.1 and 36.1 < lat < 36.2  # UTM 51N, central meridian 123 E
    assert geodesic_area_m2(c.geometry) == pytest.approx(10_000, rel=2e-3)  # 100 m x 100 m


def test_rasterio_crs_object_is_accepted() -> None:
    from rasterio.crs import CRS

    utm = Polygon([(500000, 4000000), (500100, 4000000), (500100, 4000100), (500000, 4000100)])
    assert clean_polygon(utm, crs=CRS.from_epsg(32651)).source_crs == "EPSG:32651"


def test_bad_crs_message() -> None:
    with pytest.raises(GeometryError, match="expected a CRS"):
        clean_polygon(square(0, 0), crs="EPSG:99999999")


def test_multipolygon_with_hole_is_kept() -> None:
    mp = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[0, 0], [3, 0], [3, 3], [0, 3], [0, 0]], [[1, 1], [1, 2], [2, 2], [2, 1], [1, 1]]],
            [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]],
        ],
    }
    c = clean_polygon(mp)
    assert not c.repaired
    assert c.geometry.geom_type == "MultiPolygon" and c.geometry.area == pytest.approx(9.0)
