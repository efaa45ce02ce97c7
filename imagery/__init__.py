"""satdelta.imagery: open before/after scenes, align them, score and threshold change, vectorise.

Pure computation lives in the modules that take arrays; opening and writing
rasters lives in :mod:`satdelta.imagery.scene` and :mod:`satdelta.imagery.cog`.
"""

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

__all__ = [
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
