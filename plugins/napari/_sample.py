"""napari File > Open Sample: the project's sample pairs with the sample report.

Each sample opens the before and after rasters of one site in one map frame,
the site's true change polygons as a (hidden) Shapes layer, and carries the
sample report in the before layer's ``metadata["satdelta"]["report"]``; the
Change annotator picks the report up from there and imports it into the store.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import shapely
from satdelta.plugins.napari._features import geometry_to_shapes
from satdelta.plugins.napari._frame import MapFrame
from satdelta.plugins.napari._reader import LayerData, _current_frame, raster_layer_data
from shapely.geometry import shape

__all__ = ["site_layers", "sunan_airport", "kim_il_sung_square"]


def _truth_layer(path: Any, frame: MapFrame, site: str) -> LayerData | None:
    try:
        fc = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError):
        return None
    shapes: list[np.ndarray] = []
    for feat in fc.get("features", []):
        geom = shape(feat["geometry"])
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            continue
        geom_map = shapely.transform(geom, frame.lonlat_to_map)
        shapes.extend(geometry_to_shapes(geom_map, frame))
    if not shapes:
        return None
    kwargs = {
        "name": f"{site} truth",
        "shape_type": "polygon",
        "edge_color": "magenta",
        "face_color": "transparent",
        "edge_width": 2,
        "visible": False,
        "metadata": {"satdelta": {"frame": frame.to_dict(), "role": "truth"}},
    }
    return (shapes, kwargs, "shapes")


def site_layers(site: str) -> list[LayerData]:
    """Layer data for one sample site: before, after, truth (with the report attached)."""
    from satdelta.sample_data import load_report, site_paths

    paths = site_paths(site)
    frame = _current_frame()
    before = raster_layer_data(paths.before, frame=frame, name=f"{site} before", role="before")
    frame = MapFrame.from_dict(before[1]["metadata"]["satdelta"]["frame"])
    after = raster_layer_data(paths.after, frame=frame, name=f"{site} after", role="after")
    before[1]["metadata"]["satdelta"]["report"] = load_report()
    before[1]["metadata"]["satdelta"]["site"] = site
    layers = [before, after]
    truth = _truth_layer(paths.truth, frame, site)
    if truth is not None:
        layers.append(truth)
    return layers


def sunan_airport() -> list[LayerData]:
    """Sample: Pyongyang Sunan airport, before/after and the report."""
    return site_layers("sunan-airport")


def kim_il_sung_square() -> list[LayerData]:
    """Sample: Kim Il Sung Square, before/after and the report."""
    return site_layers("kim-il-sung-square")
