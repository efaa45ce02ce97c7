"""The run.json of a block run (:mod:`satdelta.imagery.block_run`): what was read, how it
was aligned and fitted, what was found, in the whole runner's layout
(:mod:`satdelta.imagery.outputs`) with the block plan under ``runner``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from satdelta.imagery.block_sample import RegionShift
from satdelta.imagery.detector import ChangeDetector
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.scene import Scene

__all__ = ["block_run_summary"]


def block_run_summary(
    before: Scene,
    after: Scene,
    options: DetectionOptions,
    shift: RegionShift,
    det: ChangeDetector,
    polygons: tuple[int, float, dict[str, int]],
    n_changed: int,
    n_valid: int,
    px: float | None,
    created: str,
    runner: dict[str, Any],
    scene_summary: Callable[[Scene], dict[str, Any]],
    software_versions: Callable[[], dict[str, str | None]],
) -> dict[str, Any]:
    """The run.json content of a block run (``outputs`` and ``timings_s`` are added by the
    runner).

    ``polygons`` is (count, sum of ``area_m2`` in rank order, count of each change kind):
    :meth:`~satdelta.imagery.spill.RankedCandidates.summary`. ``runner``: the block plan's
    figures; ``scene_summary`` and ``software_versions`` are the pipeline's.
    """
    s = shift
    count, area_sum, kinds = polygons
    area = area_sum if px else None
    return {
        "satdelta": {"kind": "change-detection-run", "created": created},
        "inputs": {"before": scene_summary(before), "after": scene_summary(after)},
        "options": options.to_dict(),
        "runner": {"kind": "blocks", **runner},
        "grid": {
            "crs": before.crs.to_string() if before.crs else None,
            "transform": list(before.transform)[:6],
            "width": before.width,
            "height": before.height,
            "pixel_size_m": px,
            "band_names": list(s.band_names),
        },
        "alignment": {
            "shift_before_px": [float(v) for v in s.shift_before_px],
            "shift_after_px": [None if math.isnan(v) else float(v) for v in s.shift_after_px],
            "shift_order": "dy, dx (after content relative to before, before-grid pixels)",
            "shift_measured": s.shift_measured,
            "shift_note": s.shift_note or None,
            "measured_in": "the central square of the grid (block runner)",
            "resampling": options.resampling,
            "valid_fraction": round(n_valid / max(before.width * before.height, 1), 6),
        },
        "detection": {
            "method": det.score.method,
            "threshold_method": det.threshold.method,
            "threshold": float(det.threshold.threshold),
            "parameters": det.parameters,
            "changed_pixels": n_changed,
            "changed_fraction_of_valid": round(n_changed / max(n_valid, 1), 6),
            "changed_area_m2": area,
            "changed_planar_area_m2": n_changed * px * px if px else None,
            "area_of_interest": None,
        },
        "polygons": {
            "count": count,
            "area_m2": area,
            "change": kinds,
        },
        "objects": None,
        "versions": software_versions(),
    }
