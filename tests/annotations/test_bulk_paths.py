"""The array (bulk) paths give exactly what the one-at-a-time functions give."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from satdelta.annotations.errors import GeometryError
from satdelta.annotations.export import _shapes
from satdelta.annotations.geojson import geometry_to_geojson
from satdelta.annotations.geometry import (
    clean_polygon,
    clean_polygons,
    geodesic_area_perimeter_m,
    geodesic_areas_perimeters_m,
)
from satdelta.annotations.gpkg import encode_geometry, encode_multipolygons
from satdelta.annotations.model import _exact_geojson, _geojson_many
from shapely.geometry import MultiPolygon, Polygon, box, shape


def _inputs() -> list[tuple[object, object]]:
    rng = np.random.default_rng(3)
    out: list[tuple[object, object]] = []
    for _ in range(40):  # random valid octagons, some with a hole, some clockwise
        x, y = rng.uniform(125.6, 125.9), rng.uniform(38.9, 39.2)
        a = np.linspace(0, 2 * np.pi, 9)[:-1]
        r = rng.uniform(0.0002, 0.001, 8)
        shell = np.column_stack([x + r * np.cos(a), y + r * np.sin(a)])
        hole = np.column_stack([x + 0.2 * r.min() * np.cos(a), y + 0.2 * r.min() * np.sin(a)])
        poly = Polygon(
            shell[::-1] if rng.random() < 0.3 else shell, [hole] if rng.random() < 0.3 else []
        )
        out.append((poly, None))
    bowtie = [(0, 0), (1, 1), (1, 0), (0, 1)]
    out += [
        (MultiPolygon([box(10, 10, 11, 11), box(12, 10, 13, 11, ccw=False)]), None),
        (MultiPolygon([box(10, 10, 11, 11)]), None),
        (Polygon(bowtie), None),  # repaired
        (Polygon([(0, 0, 1), (1, 0, 1), (1, 1, 1)]), None),  # Z dropped
        (box(300, 0, 301, 1), None),  # outside lon/lat: refused
        (Polygon([(0, 0), (math.nan, 0), (1, 1)]), None),  # NaN: refused
        (Polygon([(0, 0), (1, 1), (2, 2)]), None),  # no area: refused
        (shapely.Point(0, 0), None),  # not a polygon: refused
        (Polygon(), None),  # empty: refused
        (box(345000, 4320000, 345100, 4320100), "EPSG:32651"),  # reprojected
        (box(1, 1, 2, 2), "EPSG:4326"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0]]]}, None),
        ("POLYGON ((0 0, 1 0, 1 1, 0 0))", None),
        ("not wkt", None),
    ]
    return out


def test_clean_polygons_matches_clean_polygon_item_by_item() -> None:
    inputs = _inputs()
    bulk = clean_polygons([o for o, _ in inputs], crs=[c for _, c in inputs])
    refused = 0
    for (obj, crs), got in zip(inputs, bulk, strict=True):
        try:
            want = clean_polygon(obj, crs=crs)
        except GeometryError as exc:
            assert isinstance(got, GeometryError), obj
            assert str(got) == str(exc)
            refused += 1
            continue
        assert not isinstance(got, GeometryError), (obj, got)
        assert shapely.to_wkb(got.geometry) == shapely.to_wkb(want.geometry)
        assert (got.repairs, got.source_crs) == (want.repairs, want.source_crs)
    assert refused == 6


def test_array_geometry_functions_match_scalar_ones_bit_for_bit() -> None:
    geoms = [c.geometry for c in clean_polygons([o for o, _ in _inputs()[:42]])]
    assert any(isinstance(g, MultiPolygon) for g in geoms)
    assert any(len(g.interiors) for g in geoms if isinstance(g, Polygon))
    areas, perimeters = geodesic_areas_perimeters_m(geoms)
    assert [geodesic_area_perimeter_m(g) for g in geoms] == list(
        zip(areas.tolist(), perimeters.tolist(), strict=True)
    )
    multis = [g if isinstance(g, MultiPolygon) else MultiPolygon([g]) for g in geoms]
    assert encode_multipolygons(geoms) == [encode_geometry(m) for m in multis]
    assert _geojson_many(geoms) == [_exact_geojson(g) for g in geoms]
    oriented = list(shapely.orient_polygons(geoms, exterior_cw=False))
    exported = _geojson_many(oriented, precision=7)
    assert exported == [geometry_to_geojson(g) for g in geoms]
    # the geometries the GeoPackage export hands to GDAL, built in array calls
    assert [g.wkb for g in _shapes(exported)] == [shape(e).wkb for e in exported]


def test_encode_multipolygons_refuses_other_types() -> None:
    with pytest.raises(ValueError, match="Polygons or MultiPolygons"):
        encode_multipolygons([shapely.Point(0, 0)])
