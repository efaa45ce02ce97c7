"""satdelta.imagery: open before/after scenes, align them, score and threshold change, vectorise.

Pure computation lives in the modules that take arrays; opening and writing
rasters lives in :mod:`satdelta.imagery.scene` and :mod:`satdelta.imagery.cog`.
"""

from satdelta.imagery.align import AlignedPair, coregister
from satdelta.imagery.cog import write_cog
from satdelta.imagery.detect import ChangeMaps, detect_change
from satdelta.imagery.errors import (
    AlignmentError,
    BandMismatchError,
    InvalidParameterError,
    NoOverlapError,
    OutputError,
    SatdeltaError,
    SceneReadError,
)
from satdelta.imagery.pipeline import DetectionRun, run_detection, write_outputs
from satdelta.imagery.scene import Scene, open_scene
from satdelta.imagery.vectorize import ChangePolygon, to_feature_collection, vectorize

__all__ = [
    "AlignedPair",
    "ChangePolygon",
    "DetectionRun",
    "Scene",
    "coregister",
    "open_scene",
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
    "SceneReadError",
    "detect_change",
]
