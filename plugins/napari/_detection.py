"""Alignment and change detection as a generator of steps (no napari, no Qt).

:func:`detection_steps` yields ``(step, total, message)`` between the library
calls (open, coregister, detect, vectorise), so the widget's
``thread_worker`` can report progress and stop at the next step when the
analyst presses Cancel; its return value is a :class:`DetectionResult`.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from affine import Affine
from satdelta.imagery.detect import ChangeMaps
from satdelta.imagery.errors import InvalidParameterError, SatdeltaError
from satdelta.imagery.pipeline import DetectionRun, detection_stages
from satdelta.imagery.vectorize import ChangePolygon

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


#: What the progress bar says while each library stage runs.
STAGE_MESSAGES = {
    "open": "opening scenes",
    "align": "aligning after onto before",
    "detect": "scoring change",
    "vectorize": "outlining changed regions",
}


def detection_steps(
    before: str | os.PathLike[str], after: str | os.PathLike[str], params: DetectionParams
) -> Generator[Step, None, DetectionResult]:
    """Run alignment and detection, yielding between steps.

    The library's :func:`~satdelta.imagery.pipeline.detection_stages` does the work (the
    same path as ``satdelta detect``); this only turns its stages into progress steps.

    Raises
    ------
    SatdeltaError
        Whatever the library raises (unreadable scene, no overlap, bad option);
        the widget shows its message as a notification.
    """
    stages = detection_stages(
        before,
        after,
        method=params.method,
        threshold=params.threshold,
        threshold_value=params.threshold_value,
        min_area_m2=params.min_area_m2 or None,
    )
    step = 0
    while True:
        try:
            stage = next(stages)
        except StopIteration as done:
            run: DetectionRun = done.value
            break
        yield (step, TOTAL_STEPS, STAGE_MESSAGES[stage])
        step += 1
    yield (step, TOTAL_STEPS, f"{len(run.polygons)} candidate regions")
    return DetectionResult(
        run.maps,
        run.aligned.transform,
        run.aligned.crs,
        list(run.polygons),
        run.provenance(),
        tuple(run.aligned.shift_before_px),
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
    """Detection steps, then the candidates saved to the store, all in the worker thread.

    The step announcing the save carries the :class:`DetectionResult` as a fourth item, so
    the widget can show the score and mask layers while this thread saves the candidates.
    """
    result = yield from steps(*args)
    yield (5, 6, f"saving {len(result.polygons)} candidates", result)
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
