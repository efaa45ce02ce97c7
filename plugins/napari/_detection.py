"""Alignment and change detection as a generator of steps (no napari, no Qt).

:func:`detection_steps` yields ``(step, total, message)`` between the library
calls (open, coregister, detect, vectorise); its return value is a
:class:`DetectionResult`.  The step announcing the vectorise stage carries the
score and mask as a fourth item (:class:`ChangeLayers`), so the widget shows
them while the candidates are still outlined and saved.  The widget runs these
steps in a child process (:mod:`._process`), which also saves the candidates
and reads the evidence rows back; :func:`run_detection_sync` runs them in the
calling thread (tests, benchmarks).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from affine import Affine
from satdelta.imagery.detect import ChangeMaps
from satdelta.imagery.errors import SatdeltaError
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.pipeline import DetectionRun, detection_stages
from satdelta.imagery.vectorize import ChangePolygon
from satdelta.plugins.napari._block_detection import ChangeFiles
from satdelta.plugins.napari._session import EvidenceRows

__all__ = [
    "ChangeLayers",
    "DetectionResult",
    "Failed",
    "detection_steps",
    "guarded_steps",
    "run_detection_sync",
]

#: ``(step, total, message)``, with a :class:`ChangeLayers` fourth when the maps exist.
Step = tuple[Any, ...]
TOTAL_STEPS = 5


@dataclass(frozen=True)
class ChangeLayers:
    """What the widget's score and mask layers show: the maps and their grid.

    Attributes
    ----------
    maps : ChangeMaps or ChangeFiles
        Score (NaN where not valid) and mask (True = changed) on the grid below; for a pair
        run block by block, the files they were written to (:mod:`._block_detection`).
    transform : affine.Affine
        Grid of ``maps`` (the before scene's).
    crs : rasterio CRS or None
        CRS of that grid.
    """

    maps: ChangeMaps | ChangeFiles
    transform: Affine
    crs: Any


@dataclass(frozen=True)
class DetectionResult(ChangeLayers):
    """Everything the widget shows after a run.

    Attributes
    ----------
    maps, transform, crs
        As in :class:`ChangeLayers`.
    polygons : list of ChangePolygon
        Candidate polygons (scene CRS and WGS84).
    provenance : dict
        The run's provenance, as in ``changes.geojson``'s ``satdelta.run``.
    shift_px : (float, float)
        Residual (dy, dx) measured between the scenes before correction.
    evidence : EvidenceRows or None
        The report's evidence rows read back after the candidates were saved (in the
        detection child, so the widget only sets layer data), marked with the session's
        mark from when the run began; None when nothing was saved or the session has no
        map frame yet.
    objects : dict or None
        The run's objects as an ``objects.geojson`` FeatureCollection (georeferenced runs that
        looked for objects), imported as candidates by the detection child.
    """

    polygons: list[ChangePolygon] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    shift_px: tuple[float, float] = (0.0, 0.0)
    evidence: EvidenceRows | None = None
    objects: dict[str, Any] | None = None


#: What the progress bar says while each library stage runs.
STAGE_MESSAGES = {
    "open": "opening scenes",
    "align": "aligning after onto before",
    "detect": "scoring change",
    "vectorize": "outlining changed regions",
    "objects": "finding objects",
}


def detection_steps(
    before: str | os.PathLike[str], after: str | os.PathLike[str], options: DetectionOptions
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
    stages = detection_stages(before, after, options)
    step = 0
    while True:
        try:
            stage = next(stages)
        except StopIteration as done:
            run: DetectionRun = done.value
            break
        if stage.maps is None or stage.aligned is None:
            yield (step, TOTAL_STEPS, STAGE_MESSAGES[stage.name])
        else:  # the widget shows score and mask while the polygons are outlined
            layers = ChangeLayers(stage.maps, stage.aligned.transform, stage.aligned.crs)
            yield (step, TOTAL_STEPS, STAGE_MESSAGES[stage.name], layers)
        step += stage.name != "objects"  # the optional objects stage shares the last step
    yield (step, TOTAL_STEPS, f"{len(run.polygons)} candidate regions")
    return DetectionResult(
        run.maps,
        run.aligned.transform,
        run.aligned.crs,
        polygons=list(run.polygons),
        provenance=run.provenance(),
        shift_px=tuple(run.aligned.shift_before_px),
        objects=(
            run.objects_feature_collection()
            if run.objects is not None and run.georeferenced and run.objects.objects
            else None
        ),
    )


def run_detection_sync(
    before: str | os.PathLike[str], after: str | os.PathLike[str], options: DetectionOptions
) -> DetectionResult:
    """Run :func:`detection_steps` to the end in this thread (tests, benchmarks)."""
    gen = detection_steps(before, after, options)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


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
