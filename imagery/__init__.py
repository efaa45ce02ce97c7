"""satdelta.imagery: open before/after scenes, align them, score and threshold change, vectorise.

Pure computation lives in the modules that take arrays; opening and writing
rasters lives in :mod:`satdelta.imagery.scene` and :mod:`satdelta.imagery.cog`.

Public names are loaded on first use (PEP 562), so ``from satdelta.imagery.errors import
SatdeltaError`` (what the annotation store and the CLI's error handling need) does not pull in
scipy, scikit-image and GDAL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from satdelta.imagery.errors import (
    AlignmentError,
    AreaOfInterestError,
    BandMismatchError,
    InvalidParameterError,
    NoOverlapError,
    OutputError,
    RasterTooLargeError,
    SatdeltaError,
    SceneReadError,
)

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "AlignedPair": "align",
    "coregister": "align",
    "AreaOfInterest": "aoi",
    "describe_candidates": "candidates",
    "read_pairs": "pairs",
    "run_batch": "batch",
    "write_cog": "cog",
    "ChangeMaps": "detect",
    "detect_change": "detect",
    "DetectionOptions": "options",
    "ObjectChanges": "object_change",
    "detect_objects": "object_change",
    "ObjectOptions": "objects",
    "find_objects": "objects",
    "DetectionRun": "pipeline",
    "run_detection": "pipeline",
    "write_outputs": "outputs",
    "Scene": "scene",
    "open_scene": "scene",
    "ChangePolygon": "vectorize",
    "to_feature_collection": "vectorize",
    "vectorize": "vectorize",
}

__all__ = [
    "AlignedPair",
    "AreaOfInterest",
    "AreaOfInterestError",
    "ChangePolygon",
    "DetectionOptions",
    "DetectionRun",
    "ObjectChanges",
    "ObjectOptions",
    "Scene",
    "coregister",
    "detect_objects",
    "find_objects",
    "open_scene",
    "read_pairs",
    "run_batch",
    "run_detection",
    "to_feature_collection",
    "vectorize",
    "write_cog",
    "write_outputs",
    "AlignmentError",
    "BandMismatchError",
    "ChangeMaps",
    "InvalidParameterError",
    "NoOverlapError",
    "OutputError",
    "SatdeltaError",
    "RasterTooLargeError",
    "SceneReadError",
    "describe_candidates",
    "detect_change",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs: the eager imports
    from satdelta.imagery.align import AlignedPair, coregister
    from satdelta.imagery.aoi import AreaOfInterest
    from satdelta.imagery.batch import run_batch
    from satdelta.imagery.candidates import describe_candidates
    from satdelta.imagery.cog import write_cog
    from satdelta.imagery.detect import ChangeMaps, detect_change
    from satdelta.imagery.options import DetectionOptions
    from satdelta.imagery.outputs import write_outputs
    from satdelta.imagery.pairs import read_pairs
    from satdelta.imagery.pipeline import DetectionRun, run_detection
    from satdelta.imagery.scene import Scene, open_scene
    from satdelta.imagery.vectorize import ChangePolygon, to_feature_collection, vectorize
