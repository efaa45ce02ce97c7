"""Rank the change candidates of a run and say what each one shows.

:func:`describe_candidates` gives every candidate a ``rank`` (1 = strongest evidence, from
:func:`evidence`) and a ``change`` (``appeared``, ``disappeared`` or ``altered``, from
:func:`change_kind`). Pure: arrays in, :class:`~satdelta.imagery.vectorize.ChangePolygon`
out. The formulas and their reasons: ``docs/detection.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.morphology import MERGE_GAP_PX, group_labels
from satdelta.imagery.vectorize import ChangeKind, ChangePolygon
from scipy import ndimage

__all__ = [
    "CHANGE_RATIO",
    "RING_PX",
    "change_kind",
    "describe_candidates",
    "evidence",
    "rank_candidates",
    "rank_key",
]

#: Width (pixels) of the ring of surroundings a candidate is compared with on each date.
RING_PX = 3
#: How much more a candidate must stand out from its surroundings on one date than on the
#: other to be ``appeared`` (stands out after) or ``disappeared`` (stood out before).
CHANGE_RATIO = 1.5


def evidence(score: float, threshold: float, pixel_count: int, compactness: float) -> float:
    """Strength of a candidate as evidence: ``(score / threshold) * ln(1 + pixels) * sqrt(c)``.

    * ``score / threshold``: how far the candidate's mean change score is above the
      threshold that made it (>= about 1; the threshold is floored at 1e-12);
    * ``ln(1 + pixels)``: its size, on a log scale so a large faint region does not bury a
      small strong one;
    * ``sqrt(c)``: its compactness (Polsby-Popper, 1 for a disk): a compact object counts
      more than a ragged strip of the same area, which is more often a misregistered edge
      or a seam.

    Returns NaN when the score is not finite (such a candidate ranks last).

    Examples
    --------
    >>> round(evidence(2.0, 1.0, 99, 0.785), 2)
    8.16
    >>> evidence(2.0, 1.0, 99, 0.785) > evidence(2.0, 1.0, 99, 0.2)
    True
    """
    if not math.isfinite(score):
        return math.nan
    c = compactness if math.isfinite(compactness) else 0.0
    return score / max(threshold, 1e-12) * math.log1p(pixel_count) * math.sqrt(max(c, 0.0))


def band_scales(image: NDArray, valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Standard deviation of each band over the valid pixels (1 where it is 0 or NaN)."""
    step = max(1, int(valid.sum()) // 200_000)
    s = np.array([np.nanstd(band[valid][::step].astype("float64")) for band in image])
    return np.where(np.isfinite(s) & (s > 0), s, 1.0)


def _distinctness(
    image: NDArray, inside: NDArray[np.bool_], ring: NDArray[np.bool_], scales: NDArray
) -> float:
    """RMS over bands and inside pixels of (pixel - ring mean) / band scale."""
    x = image[:, inside].astype("float64")
    ref = np.nanmean(image[:, ring].astype("float64"), axis=1)
    d = (x - ref[:, None]) / scales[:, None]
    return float(np.sqrt(np.nanmean(d * d)))


def change_kind(
    distinct_before: float, distinct_after: float, *, ratio: float = CHANGE_RATIO
) -> ChangeKind:
    """``appeared``, ``disappeared`` or ``altered`` from how much a candidate stands out.

    ``distinct_*`` is the candidate's distinctness from the ring of unchanged pixels around
    it on each date: the root mean square, over its pixels and the bands, of (pixel - the
    ring's mean) / the band's spread on that date. It is high when the candidate differs in
    brightness, colour or texture from its surroundings. Standing out ``ratio`` times more
    after than before means something appeared; before than after, something disappeared;
    otherwise the place changed but stands out about as much on both dates (a recolour, a
    rebuilt roof): altered.

    Examples
    --------
    >>> change_kind(0.5, 4.0), change_kind(4.0, 0.5), change_kind(3.0, 3.5)
    ('appeared', 'disappeared', 'altered')
    """
    if not (math.isfinite(distinct_before) and math.isfinite(distinct_after)):
        return "altered"
    if distinct_after > ratio * distinct_before:
        return "appeared"
    if distinct_before > ratio * distinct_after:
        return "disappeared"
    return "altered"


def describe_candidates(
    polygons: Sequence[ChangePolygon],
    changed: NDArray[np.bool_],
    before: NDArray,
    after: NDArray,
    valid: NDArray[np.bool_],
    *,
    threshold: float,
) -> list[ChangePolygon]:
    """The candidates with ``rank`` and ``change`` set, strongest evidence first.

    Parameters
    ----------
    polygons : sequence of ChangePolygon
        What :func:`~satdelta.imagery.vectorize.vectorize` made of ``changed`` with
        ``merge_gap_px=MERGE_GAP_PX`` and 4-connectivity, in its order.
    changed, valid : (M, N) bool ndarray
        True = changed; True = both dates have data.
    before, after : (B, M, N) ndarray
        The aligned dates (not normalised: each date is compared with itself).
    threshold : float
        The score threshold of the run (the strength's unit, see :func:`evidence`).

    Returns
    -------
    list of ChangePolygon
        Sorted by rank (1..N, unique; ties broken by size, then raster order).

    Raises
    ------
    InvalidParameterError
        When ``polygons`` are not the candidates of ``changed``.
    """
    labels, n = group_labels(changed & valid, gap_px=MERGE_GAP_PX, connectivity=4)
    counts = [p.pixel_count for p in polygons]
    if n != len(polygons) or counts != np.bincount(labels.ravel())[1:].tolist():
        raise InvalidParameterError(
            f"{len(polygons)} polygons given for the {n} candidates of the mask; pass the "
            "polygons vectorize made of this mask (merge_gap_px=MERGE_GAP_PX, connectivity 4)."
        )
    sb, sa = band_scales(before, valid), band_scales(after, valid)
    described = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        box = tuple(
            slice(max(s.start - RING_PX, 0), s.stop + RING_PX)
            for s in sl  # type: ignore[union-attr]
        )
        inside = labels[box] == k
        ring = ndimage.maximum_filter(inside, size=2 * RING_PX + 1) & ~changed[box] & valid[box]
        kind: ChangeKind = "altered"
        if ring.any():
            kind = change_kind(
                _distinctness(before[(slice(None), *box)], inside, ring, sb),
                _distinctness(after[(slice(None), *box)], inside, ring, sa),
            )
        described.append(dataclasses.replace(polygons[k - 1], change=kind))
    return rank_candidates(described, threshold=threshold)


def rank_candidates(described: Sequence[ChangePolygon], *, threshold: float) -> list[ChangePolygon]:
    """``described`` with ``rank`` set by :func:`evidence`, strongest first.

    Ties are broken by size, then by the given order (raster order of the first pixel).
    """
    keys = [rank_key(p, threshold=threshold) for p in described]
    order = sorted(range(len(described)), key=lambda i: (*keys[i], i))
    return [dataclasses.replace(described[i], rank=r) for r, i in enumerate(order, start=1)]


def rank_key(p: ChangePolygon, *, threshold: float) -> tuple[float, int]:
    """Where ``p`` goes in :func:`rank_candidates`' order, before the tie on given order:
    stronger :func:`evidence` first (none last), then larger."""
    strength = evidence(p.score, threshold, p.pixel_count, p.compactness)
    return (-strength if math.isfinite(strength) else math.inf, -p.pixel_count)
