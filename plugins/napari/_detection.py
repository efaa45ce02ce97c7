"""Alignment and change detection as a generator of steps (no napari, no Qt).

:func:`detection_steps` yields ``(step, total, message)`` between the library
calls (open, coregister, detect, vectorise), so the widget's
``thread_worker`` can report progress and stop at the next step when the
analyst presses Cancel; its return value is a :class:`DetectionResult`.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from affine import Affine
from satdelta.imagery.align import coregister
from satdelta.imagery.detect import ChangeMaps, detect_change
from satdelta.imagery.errors import InvalidParameterError, SatdeltaError
from satdelta.imagery.scene import Scene, open_scene
from satdelta.imagery.vectorize import ChangePolygon, vectorize

__all__ = [
    "DetectionParams",
    "DetectionResult",
    "Failed",
    "detect_and_save",
    "detection_steps",
    "guarded_steps",
    "run_detection_sync",
]

Step = tuple[int, int, str]
TOTAL_STEPS = 5


@dataclass(frozen=True)
class DetectionParams:
    """What the analyst chose in the widget."""

    method: str = "auto"
    threshold: str = "auto"
    threshold_value: float | None = None
    min_area_m2: float = 0.0

    def __post_init__(self) -> None:
        if self.min_area_m2 < 0 or not np.isfinite(self.min_area_m2):
            raise InvalidParameterError(
                f"minimum area must be a finite number of m² >= 0, got {self.min_area_m2}."
            )
        if self.threshold in ("value", "percentile") and self.threshold_value is None:
            raise InvalidParameterError(
                f"threshold {self.threshold!r} needs a threshold value, got none; "
                "enter one or choose another threshold method."
            )


@dataclass(frozen=True)
class DetectionResult:
    """Everything the widget shows after a run.

    Attributes
    ----------
    maps : ChangeMaps
        Score (NaN where not valid) and mask (True = changed) on the grid below.
    transform : affine.Affine
        Grid of ``maps`` (the before scene's).
    crs : rasterio CRS or None
        CRS of that grid.
    polygons : list of ChangePolygon
        Candidate polygons (scene CRS and WGS84).
    provenance : dict
        The run's provenance, as in ``changes.geojson``'s ``satdelta.run``.
    shift_px : (float, float)
        Residual (dy, dx) measured between the scenes before correction.
    """

    maps: ChangeMaps
    transform: Affine
    crs: Any
    polygons: list[ChangePolygon]
    provenance: dict[str, Any] = field(default_factory=dict)
    shift_px: tuple[float, float] = (0.0, 0.0)


def _scene_info(scene: Scene) -> dict[str, Any]:
    return {
        "source": scene.source,
        "scene_id": scene.scene_id,
        "sha256": scene.sha256,
        "acquired": scene.acquired.isoformat() if scene.acquired else None,
    }


def detection_steps(
    before: str | os.PathLike[str], after: str | os.PathLike[str], params: DetectionParams
) -> Generator[Step, None, DetectionResult]:
    """Run alignment and detection, yielding between steps.

    Raises
    ------
    SatdeltaError
        Whatever the library raises (unreadable scene, no overlap, bad option);
        the widget shows its message as a notification.
    """
    yield (0, TOTAL_STEPS, "opening scenes")
    b = open_scene(before)
    a = open_scene(after)
    yield (1, TOTAL_STEPS, "aligning after onto before")
    pair = coregister(b, a)
    yield (2, TOTAL_STEPS, "scoring change")
    maps = detect_change(
        pair.before,
        pair.after,
        valid=pair.valid,
        pixel_size_m=pair.pixel_size_m,
        band_names=pair.band_names,
        method=params.method,
        threshold=params.threshold,
        threshold_value=params.threshold_value,
        min_area_m2=params.min_area_m2 or None,
    )
    yield (3, TOTAL_STEPS, "outlining changed regions")
    polygons = vectorize(
        maps.changed,
        maps.score,
        pair.transform,
        pair.crs,
        valid=maps.valid,
        min_area_m2=params.min_area_m2,
        pixel_size_m=pair.pixel_size_m,
    )
    yield (4, TOTAL_STEPS, f"{len(polygons)} candidate regions")
    provenance = {
        "before": _scene_info(b),
        "after": _scene_info(a),
        "method": maps.method,
        "threshold_method": maps.threshold_method,
        "threshold": float(maps.threshold),
        "parameters": maps.parameters,
        "shift_px": [float(v) for v in pair.shift_before_px],
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return DetectionResult(
        maps, pair.transform, pair.crs, polygons, provenance, tuple(pair.shift_before_px)
    )


def run_detection_sync(
    before: str | os.PathLike[str], after: str | os.PathLike[str], params: DetectionParams
) -> DetectionResult:
    """Run :func:`detection_steps` to the end in this thread (tests, benchmarks)."""
    gen = detection_steps(before, after, params)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def detect_and_save(steps: Any, session: Any, *args: Any) -> Any:
    """Detection steps, then the candidates saved to the store, all in the worker thread."""
    result = yield from steps(*args)
    yield (5, 6, f"saving {len(result.polygons)} candidates")
    session.add_candidates(result.polygons, result.provenance)
    yield (6, 6, "showing layers")
    return result


def guarded_steps(steps: Any, *args: Any) -> Any:
    """Run a step generator; return a SatdeltaError instead of raising it.

    Bad input is then reported once, as our own notification, while a real bug
    still propagates to napari's error handling with its traceback.
    """
    try:
        return (yield from steps(*args))
    except SatdeltaError as exc:
        return Failed(exc)  # superqt re-raises a *returned* exception: wrap it


class Failed:
    """A bad-input error returned by the worker, shown once as a notification."""

    def __init__(self, error: SatdeltaError) -> None:
        self.error = error
