"""geojson_text: coordinates and polygons spelled exactly as json.dumps spells them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from satdelta.imagery.geojson_text import pair_texts, polygon_texts


def _json_pairs(xy: np.ndarray) -> str:
    return "".join(json.dumps(pair) + ", " for pair in xy.tolist())


EDGES = [
    0.0001, -0.0001, 0.5, -0.5, 1.0, -1.0, 3.0, 10.0, 99.9999999, 100.0, 120.1, 179.9999999,
    180.0, -180.0, 90.0, -90.0, 0.1234567, -0.0010001, 12.3456, 0.0002, 45.0000001,
]  # fmt: skip


@pytest.mark.parametrize("ndigits", [1, 4, 7, 9])
def test_rounded_coordinates_are_spelled_as_json_dumps(ndigits):
    rng = np.random.default_rng(ndigits)
    lon = rng.uniform(-180, 180, 20000)
    lat = rng.uniform(-90, 90, 20000)
    xy = np.round(np.column_stack([lon, lat]), ndigits)
    if ndigits >= 4:
        edges = np.round(np.array(EDGES), ndigits)
        xy = np.concatenate([xy, np.column_stack([edges, edges[::-1]])])
    xy = xy[np.abs(xy).min(axis=1) >= 1e-4]  # below 1e-4 json writes an exponent
    spelled = pair_texts(xy, ndigits)
    assert spelled is not None  # the fast path ran: the comparison tests it
    text, starts = spelled
    assert text == _json_pairs(xy)
    assert starts[0] == 0 and starts[-1] == len(text) and len(starts) == len(xy) + 1
    # each row's text starts where the table says
    k = len(xy) // 2
    assert text[starts[k] : starts[k + 1]] == json.dumps(xy[k].tolist()) + ", "


@pytest.mark.parametrize(
    "value",
    [0.0, -0.0, 5e-05, -1e-7, 120.123456789, float("nan"), float("inf"), 1e15],
    ids=["zero", "minus-zero", "exponent", "tiny", "unrounded", "nan", "inf", "huge"],
)
def test_numbers_it_cannot_spell_are_left_to_json(value):
    xy = np.array([[120.5, 30.25], [value, 30.25]])
    assert pair_texts(xy, 7) is None


def _polygon(x: float, y: float, *, hole: bool = False) -> shapely.Polygon:
    shell = [(x, y), (x + 0.001, y), (x + 0.001, y + 0.0015), (x, y + 0.0015)]
    holes = [[(x + 0.0002, y + 0.0002), (x + 0.0002, y + 0.0005), (x + 0.0004, y + 0.0005),
              (x + 0.0004, y + 0.0002)]] if hole else []  # fmt: skip
    return shapely.orient_polygons(shapely.Polygon(shell, holes))


def _mapped(geoms: list) -> list[str]:
    return [json.dumps(shapely.geometry.mapping(g)) for g in geoms]


def test_polygons_holes_and_multipolygons_are_spelled_as_json_dumps():
    geoms = [
        _polygon(121.25, 31.5),
        _polygon(-73.9871234, 40.7484567, hole=True),
        shapely.MultiPolygon([_polygon(10.5, -33.25, hole=True), _polygon(10.6, -33.25)]),
        shapely.Polygon(),  # empty: left to json
        shapely.LineString([(1.5, 2.5), (3.5, 4.5)]),  # not a polygon: left to json
        _polygon(179.999, -89.99),
    ]
    geoms = list(shapely.transform(np.asarray(geoms, dtype=object), lambda c: np.round(c, 7)))
    assert polygon_texts(geoms, 7) == _mapped(geoms)


def test_polygons_near_zero_fall_back_to_json_and_nan_raises():
    near_zero = [_polygon(0.00001, 51.5), _polygon(12.5, 41.9)]  # a coordinate below 1e-4
    near_zero = list(shapely.transform(np.asarray(near_zero), lambda c: np.round(c, 7)))
    assert polygon_texts(near_zero, 7) == _mapped(near_zero)
    with np.errstate(invalid="ignore"):
        with_nan = shapely.Polygon([(0.5, 0.5), (np.nan, 0.5), (1.5, 1.5)])
    with pytest.raises(ValueError, match="JSON compliant"):
        polygon_texts([with_nan], 7)
