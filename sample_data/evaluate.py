"""Score detected change polygons against the sample sites' true change polygons.

Area-based scores of the union of detections against the union of truth, both in one
projected (metre) CRS, plus object counts:

* precision = area(D ∩ T) / area(D), recall = area(D ∩ T) / area(T),
  IoU = area(D ∩ T) / area(D ∪ T) (the Jaccard index of the two areas);
* a truth object is *found* when detections cover at least ``found_fraction`` of its area;
* a detection is a *false alarm* when it does not touch any truth object.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from satdelta.imagery.errors import InvalidParameterError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

__all__ = ["MatchScores", "match_truth", "read_polygons"]


@dataclass(frozen=True)
class MatchScores:
    """How well detected polygons match the truth (areas in m²)."""

    precision: float
    recall: float
    iou: float
    detected_area_m2: float
    truth_area_m2: float
    overlap_area_m2: float
    objects_found: int
    objects_total: int
    detections: int
    false_alarms: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return asdict(self)


def match_truth(
    detected: Sequence[BaseGeometry],
    truth: Sequence[BaseGeometry],
    *,
    found_fraction: float = 0.25,
) -> MatchScores:
    """Compare detected polygons with true change polygons.

    Parameters
    ----------
    detected, truth : sequence of shapely (Multi)Polygon
        In the same projected CRS with metre units.
    found_fraction : float, default 0.25
        Share of a truth object's area that detections must cover for it to count as found.

    Returns
    -------
    MatchScores
        Precision/recall/IoU are 0.0 when their denominator is empty.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> s = match_truth([box(0, 0, 2, 1)], [box(1, 0, 3, 1), box(10, 10, 11, 11)])
    >>> s.precision, s.recall, round(s.iou, 3), s.objects_found, s.false_alarms
    (0.5, 0.3333333333333333, 0.25, 1, 0)
    """
    if not 0.0 < found_fraction <= 1.0:
        raise InvalidParameterError(
            f"found_fraction: expected a share in (0, 1], got {found_fraction!r}."
        )
    d = unary_union(list(detected)) if detected else shapely.Polygon()
    t = unary_union(list(truth)) if truth else shapely.Polygon()
    inter = d.intersection(t).area
    union = d.union(t).area
    found = sum(
        1 for g in truth if g.area > 0 and g.intersection(d).area >= found_fraction * g.area
    )
    false_alarms = sum(1 for g in detected if not g.intersects(t))
    return MatchScores(
        precision=float(inter / d.area) if d.area > 0 else 0.0,
        recall=float(inter / t.area) if t.area > 0 else 0.0,
        iou=float(inter / union) if union > 0 else 0.0,
        detected_area_m2=float(d.area),
        truth_area_m2=float(t.area),
        overlap_area_m2=float(inter),
        objects_found=int(found),
        objects_total=len(truth),
        detections=len(detected),
        false_alarms=int(false_alarms),
    )


def read_polygons(path: str | Path, crs: str = "EPSG:32651") -> list[BaseGeometry]:
    """Read an RFC 7946 FeatureCollection (lon/lat) and project its polygons to ``crs``."""
    from pyproj import Transformer

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    out = []
    for feat in data.get("features", []):
        geom = shape(feat["geometry"])
        out.append(
            shapely.transform(
                geom, lambda x, y: np.stack(to_crs.transform(x, y)), interleaved=False
            )
        )
    return out
