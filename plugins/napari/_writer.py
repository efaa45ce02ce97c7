"""napari writer: a Shapes layer as RFC 7946 GeoJSON in lon/lat, with its properties.

The layer's vertices are napari data coordinates; the layer's own transform
(scale, translate, rotate, shear, affine) takes them to world, and the map frame
stored in ``metadata["satdelta"]["frame"]`` (or the current viewer's) takes
world to map x/y, then WGS84.  Pixel coordinates are never written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from satdelta.imagery.errors import OutputError
from satdelta.plugins.napari._features import ExportError, feature_collection, shape_to_geometry
from satdelta.plugins.napari._frame import MapFrame

__all__ = ["write_shapes", "shapes_state_to_collection"]


def _frame_from(meta: dict[str, Any]) -> MapFrame:
    sd = (meta.get("metadata") or {}).get("satdelta") or {}
    if sd.get("frame"):
        return MapFrame.from_dict(sd["frame"])
    from satdelta.plugins.napari._reader import _current_frame

    frame = _current_frame()
    if frame is None:
        raise ExportError(
            "this Shapes layer has no map frame and no georeferenced raster is open; "
            "open the before/after rasters first, then draw and save."
        )
    return frame


def _data_to_world(meta: dict[str, Any]) -> np.ndarray:
    """The layer's 3 x 3 data-to-world matrix: ``affine @ (translate, scale, rotate, shear)``."""
    from napari.utils.transforms import Affine

    physical = Affine(
        scale=meta.get("scale", (1.0, 1.0)),
        translate=meta.get("translate", (0.0, 0.0)),
        rotate=meta.get("rotate", np.eye(2)),
        shear=meta.get("shear", (0.0,)),
    ).affine_matrix
    world = np.asarray(meta.get("affine", np.eye(3)), dtype=np.float64)
    return world[-3:, -3:] @ physical[-3:, -3:]


def _columns(meta: dict[str, Any], n: int) -> dict[str, list[Any]]:
    feats = meta.get("features")
    if feats is not None and hasattr(feats, "to_dict") and len(feats.columns):
        return {str(c): list(feats[c]) for c in feats.columns}
    props = meta.get("properties") or {}
    return {str(k): list(v) for k, v in props.items() if len(v) == n}


def shapes_state_to_collection(data: list[np.ndarray], meta: dict[str, Any]) -> dict[str, Any]:
    """A Shapes layer's data and state (``layer._get_state()``) as a FeatureCollection."""
    frame = _frame_from(meta)
    to_world = _data_to_world(meta)
    types = meta.get("shape_type") or ["polygon"] * len(data)
    if isinstance(types, str):
        types = [types] * len(data)
    geoms = []
    for verts, kind in zip(data, types, strict=True):
        v = np.asarray(verts, dtype=np.float64)[:, -2:]
        w = v @ to_world[:2, :2].T + to_world[:2, 2]
        geoms.append(shape_to_geometry(w, kind, frame))
    columns = _columns(meta, len(data))
    sd = (meta.get("metadata") or {}).get("satdelta") or {}
    foreign = {"satdelta": sd["provenance"]} if sd.get("provenance") else None
    return feature_collection(geoms, columns, frame, foreign=foreign)


def write_shapes(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer for Shapes layers (``.geojson``/``.json``).

    Raises
    ------
    ExportError
        When the layer has no georeferenced frame.
    OutputError
        When the file cannot be written.
    """
    fc = shapes_state_to_collection(list(data), meta)
    target = Path(path)
    if target.suffix.lower() not in (".geojson", ".json"):
        target = target.with_suffix(".geojson")
    tmp = target.with_name(target.name + ".part")
    try:
        tmp.write_text(json.dumps(fc, allow_nan=False), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(
            f"could not write {target}: {exc.strerror or exc}; choose a writable folder."
        ) from exc
    return [str(target)]
