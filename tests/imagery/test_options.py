"""satdelta.imagery.options: the frozen, validated options of a detection run."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest
from satdelta.imagery import DetectionOptions
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.objects import ObjectOptions


def test_defaults_round_trip_through_json():
    opts = DetectionOptions()
    record = json.loads(json.dumps(opts.to_dict()))
    assert record == {
        "method": "auto",
        "threshold": "auto",
        "threshold_value": None,
        "null_quantile": 0.99,
        "normalise": "auto",
        "min_area_m2": None,
        "min_pixels": 4,
        "aoi": None,
        "bands": None,
        "pixel_size_m": None,
        "max_shift_px": 5.0,
        "resampling": "cubic",
        "objects": None,
        "object_options": ObjectOptions().to_dict(),
    }
    assert DetectionOptions.from_dict(record) == opts
    assert DetectionOptions.from_dict({}) == opts


def test_values_are_normalised_so_equal_options_compare_equal():
    a = DetectionOptions(bands=[1, "nir"], max_shift_px=5, min_area_m2=300)
    b = DetectionOptions(bands=(1, "nir"), max_shift_px=5.0, min_area_m2=300.0)
    assert a == b and hash(a) == hash(b)
    assert a.bands == (1, "nir") and a.to_dict()["bands"] == [1, "nir"]
    assert isinstance(a.max_shift_px, float) and isinstance(a.min_area_m2, float)
    assert DetectionOptions.from_dict(a.to_dict()) == a
    assert pickle.loads(pickle.dumps(a)) == a  # how it travels to workers and the napari child


def test_frozen_and_checked_again_on_replace():
    opts = DetectionOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.method = "cva"  # type: ignore[misc]
    with pytest.raises(InvalidParameterError, match="null_quantile must be in"):
        dataclasses.replace(opts, null_quantile=0.2)


@pytest.mark.parametrize(
    ("values", "plain", "flagged"),
    [
        ({"method": "sobel"}, "method must be one of", "method (--method) must be one of"),
        ({"resampling": "sinc"}, "resampling must be one of", "resampling (--resampling)"),
        ({"min_area_m2": -1}, "min_area_m2 must be a finite", "min_area_m2 (--min-area) must"),
        ({"bands": []}, "bands must be 1-based", "bands (--bands) must be 1-based"),
        ({"threshold_value": 2.0}, "threshold_value 2.0 is only used", "(--threshold-value) 2.0"),
    ],
)
def test_messages_name_the_option_and_from_dict_also_its_flag(values, plain, flagged):
    with pytest.raises(InvalidParameterError) as info:
        DetectionOptions(**values)
    assert plain in str(info.value) and "--" not in str(info.value).split(";")[0]
    with pytest.raises(InvalidParameterError) as info:
        DetectionOptions.from_dict(values)
    assert flagged in str(info.value) and "\n" not in str(info.value)


def test_from_dict_refuses_unknown_options():
    with pytest.raises(InvalidParameterError, match=r"unknown detection options \['colour'\]"):
        DetectionOptions.from_dict({"colour": "red", "method": "cva"})


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"threshold": "value"}, 'threshold method "value" needs a finite threshold value'),
        ({"threshold": "value", "threshold_value": True}, "needs a finite threshold value"),
        ({"threshold": "percentile", "threshold_value": 0}, "between 0 and 100"),
        ({"max_shift_px": float("inf")}, "max_shift_px must be a finite number > 0 pixels"),
        ({"max_shift_px": None}, "max_shift_px must be a finite number"),
        ({"pixel_size_m": 0}, "pixel_size_m must be a finite number > 0 metres"),
        ({"null_quantile": 1.0}, "null_quantile must be in [0.5, 1)"),
        ({"bands": "1,2"}, "bands must be 1-based band numbers or band names"),
        ({"bands": [True]}, "bands must be 1-based band numbers or band names"),
    ],
)
def test_bad_values_are_refused_on_construction(values, needle):
    with pytest.raises(InvalidParameterError) as info:
        DetectionOptions(**values)
    assert needle in str(info.value), str(info.value)


def test_good_threshold_values():
    assert DetectionOptions(threshold="value", threshold_value="2.5").threshold_value == 2.5
    assert DetectionOptions(threshold="percentile").threshold_value is None
    assert DetectionOptions(threshold="percentile", threshold_value=98).threshold_value == 98.0
    assert DetectionOptions(null_quantile=None).null_quantile is None


def test_area_of_interest_and_pixel_floor_round_trip_and_are_checked():
    from satdelta.imagery.aoi import AreaOfInterest
    from satdelta.imagery.errors import AreaOfInterestError

    opts = DetectionOptions(aoi=(10.0, 45.0, 10.01, 45.01), min_pixels=9)
    assert isinstance(opts.aoi, AreaOfInterest) and opts.aoi.bbox == (10.0, 45.0, 10.01, 45.01)
    record = json.loads(json.dumps(opts.to_dict()))
    assert record["aoi"]["type"] == "Polygon" and record["min_pixels"] == 9
    assert DetectionOptions.from_dict(record) == opts
    assert pickle.loads(pickle.dumps(opts)) == opts
    with pytest.raises(AreaOfInterestError, match="longitude/latitude"):
        DetectionOptions(aoi="500000,4000000,500100,4000100")
    with pytest.raises(AreaOfInterestError, match="empty"):
        DetectionOptions(aoi=(10.0, 45.0, 9.0, 46.0))
    for bad in (0, 2.5, True, "4"):
        with pytest.raises(InvalidParameterError, match="min_pixels"):
            DetectionOptions(min_pixels=bad)
