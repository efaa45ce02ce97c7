"""A fitted change detector and its result: :class:`ChangeDetector` and :class:`ChangeMaps`.

:meth:`ChangeDetector.apply` scores, thresholds, cleans and delineates one window (with
:attr:`ChangeDetector.halo_px` pixels of context) from the global statistics fitted once by
:func:`satdelta.imagery.detect.fit_detector`, so a block runner can apply it window by window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.cues import max_segment_pixels, segment_labels, segment_vote
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.local_gain import LocalGain
from satdelta.imagery.morphology import (
    MERGE_GAP_PX,
    clean_mask,
    cleanup_halo_px,
    majority3,
    remove_small,
)
from satdelta.imagery.parallel import map_row_blocks
from satdelta.imagery.radiometry import HistogramMatching, LinearNormalisation
from satdelta.imagery.scores import ScoreModel
from satdelta.imagery.threshold import ThresholdFit

__all__ = [
    "CLEANUP_M",
    "CLEANUP_MODE",
    "ChangeDetector",
    "ChangeMaps",
    "cleanup_radius_px",
    "score_block",
    "score_both",
]

#: Ground scale (metres) of the morphological clean-up: changed regions narrower than about
#: twice this are removed by an opening (sub-metre slivers at very high resolution are
#: registration residue on edges, not objects).
CLEANUP_M = 1.0
#: "Opening" removes thin structures; "open-close" also fills small gaps afterwards.
CLEANUP_MODE = "open"


def cleanup_radius_px(pixel_size_m: float | None, *, scale_m: float = CLEANUP_M) -> int:
    """Disk radius (pixels) of the clean-up opening: ``round(scale_m / pixel)``, 0 below 1 px.

    With an unknown pixel size no morphology is applied.

    Examples
    --------
    >>> cleanup_radius_px(0.5), cleanup_radius_px(30.0), cleanup_radius_px(None)
    (2, 0, 0)
    """
    if pixel_size_m is None:
        return 0
    return int(round(scale_m / pixel_size_m))


@dataclass(frozen=True)
class ChangeMaps:
    """Result of change detection on one grid.

    Attributes
    ----------
    score : (M, N) float32 ndarray
        Change score, larger = more change; NaN where not valid.
    changed : (M, N) bool ndarray
        True = changed; always False where not valid.
    valid : (M, N) bool ndarray
        True = both dates have data.
    threshold : float
        Score value above which a pixel was called changed (before clean-up). Where the
        score is smoothed, a changed pixel has both its smoothed score (``score``) and its
        own unsmoothed score above it (see :meth:`ChangeDetector.apply`).
    method, threshold_method : str
        Concrete methods used (never ``"auto"``).
    parameters : dict
        Every parameter actually used, JSON-serialisable.
    """

    score: NDArray[np.float32]
    changed: NDArray[np.bool_]
    valid: NDArray[np.bool_]
    threshold: float
    method: str
    threshold_method: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shp = self.valid.shape
        if self.valid.ndim != 2 or self.score.shape != shp or self.changed.shape != shp:
            raise InvalidParameterError(
                f"score, changed and valid must be (row, col) arrays of one shape, got "
                f"{self.score.shape}, {self.changed.shape}, {self.valid.shape}."
            )
        if self.valid.dtype != np.bool_ or self.changed.dtype != np.bool_:
            raise InvalidParameterError("changed and valid must be bool arrays.")
        if self.score.dtype != np.float32:
            raise InvalidParameterError(f"score must be float32, got {self.score.dtype}.")
        if np.any(self.changed & ~self.valid):
            raise InvalidParameterError("changed must be False wherever valid is False.")
        if not math.isfinite(self.threshold):
            raise InvalidParameterError(f"threshold must be finite, got {self.threshold!r}.")

    @property
    def changed_fraction(self) -> float:
        """Fraction of valid pixels called changed."""
        n = int(self.valid.sum())
        return float(self.changed.sum()) / n if n else 0.0


@dataclass(frozen=True)
class ChangeDetector:
    """Fitted global state of a change detector; :meth:`apply` works per window.

    Attributes
    ----------
    normalisation : LinearNormalisation or HistogramMatching or LocalGain or None
        A :class:`~satdelta.imagery.local_gain.LocalGain` is a field on the fitted scene's
        grid: :meth:`apply` then takes whole scenes only.
    score : ScoreModel
    threshold : ThresholdFit
    cleanup_radius_px, min_pixels : int
        Morphological clean-up radius and minimum region size in pixels (a region being a
        candidate: 4-connected pixels, fragments up to
        :data:`~satdelta.imagery.morphology.MERGE_GAP_PX` apart joined, as the vectoriser
        groups them).
    parameters : dict
        JSON-serialisable record of everything used.
    """

    normalisation: LinearNormalisation | HistogramMatching | LocalGain | None
    score: ScoreModel
    threshold: ThresholdFit
    cleanup_radius_px: int
    min_pixels: int
    parameters: dict[str, Any]

    @property
    def halo_px(self) -> int:
        """Context a window needs on each side for :meth:`apply` to match the whole-array result.

        Score smoothing + clean-up opening. The delineation needs less (the unsmoothed
        score's edge term plus one pixel), so it adds nothing. The minimum-area filter is
        exact only for candidates (fragments joined) that fit in the window plus halo
        (:mod:`satdelta.imagery.morphology`).
        """
        return self.score.halo_px + cleanup_halo_px(self.cleanup_radius_px)

    def score_window(
        self, before: NDArray, after: NDArray, valid: NDArray[np.bool_]
    ) -> NDArray[np.float32]:
        """Normalise and score one window; NaN where not valid."""
        return self._score_scales(before, after, valid)[1]

    def _score_scales(
        self, before: NDArray, after: NDArray, valid: NDArray[np.bool_]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Unsmoothed and smoothed score of the normalised pair, NaN where not valid."""
        a = after if self.normalisation is None else self.normalisation.apply(after)
        return score_both(self.score, before, a, valid)

    def apply(
        self, before: NDArray, after: NDArray, valid: NDArray[np.bool_]
    ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Score, threshold, clean and delineate one window (include :attr:`halo_px` of context).

        1. *Which* places changed: the (smoothed) score above the threshold, opened with the
           1 m disk (:func:`~satdelta.imagery.morphology.clean_mask`).
        2. *Where exactly* (only when the score is smoothed, i.e. pixels of 2 m or finer):
           inside those regions, a pixel stays changed when the 3 x 3 majority
           (:func:`~satdelta.imagery.morphology.majority3`) of "its own unsmoothed score
           exceeds the threshold" holds. Regions never grow; their outline follows the
           change rather than the smoothing kernel (why: ``docs/design-detection.md``).
        3. Candidates smaller than :attr:`min_pixels` are dropped, a candidate being what
           the vectoriser outlines as one (4-connected, fragments up to
           :data:`~satdelta.imagery.morphology.MERGE_GAP_PX` pixels apart joined), so the
           mask and the polygons hold the same pixels.

        Without smoothing (coarse pixels) step 2 changes nothing and is skipped.

        Returns
        -------
        score : (M, N) float32 ndarray
            NaN where not valid.
        changed : (M, N) bool ndarray
            True = changed, False where not valid.
        """
        a = after if self.normalisation is None else self.normalisation.apply(after)
        fine, s = score_both(self.score, before, a, valid)
        return s, self.decide(fine, s, valid, self.segments(before, a))

    def segments(self, before: NDArray, after_n: NDArray) -> NDArray | None:
        """Superpixel labels of the ``"cues"`` score's vote (None for the other scores).

        Not window-local: SLIC places its seeds over the whole array it is given, so a
        window's segments differ near its edges from the whole scene's
        (``docs/design-detection.md``).
        """
        if self.score.method != "cues":
            return None
        return segment_labels(before, after_n, self.score.parameters)

    def decide(
        self,
        fine: NDArray[np.float32],
        s: NDArray[np.float32],
        valid: NDArray[np.bool_],
        segments: NDArray | None = None,
    ) -> NDArray[np.bool_]:
        """Steps 1 and 2 of :meth:`apply` on scores already computed (NaN where not valid).

        With ``segments`` (:meth:`segments`), step 1 first votes the thresholded map per
        segment (:func:`~satdelta.imagery.cues.segment_vote`).
        """
        ok = valid & np.isfinite(s)
        changed = self.local_mask(fine, s, valid, segments)
        changed = remove_small(changed, self.min_pixels, gap_px=MERGE_GAP_PX, connectivity=4)
        changed &= ok
        return changed

    def local_mask(
        self,
        fine: NDArray[np.float32],
        s: NDArray[np.float32],
        valid: NDArray[np.bool_],
        segments: NDArray | None = None,
    ) -> NDArray[np.bool_]:
        """Steps 1 and 2 of :meth:`apply`: the mask before the minimum-size filter.

        Window-local (within :attr:`halo_px`, except the ``"cues"`` segment vote); the
        minimum-size filter, which is not, is left to the caller (:meth:`decide` on a whole
        array, :mod:`satdelta.imagery.blocks` across blocks).
        """
        ok = valid & np.isfinite(s)
        t = self.threshold.threshold
        with np.errstate(invalid="ignore"):
            raw = s > t
        if segments is not None:
            raw = segment_vote(raw, segments, ok, max_segment_pixels(self.score.parameters))
        changed = clean_mask(
            raw,
            valid=ok,
            radius_px=self.cleanup_radius_px,
            mode=CLEANUP_MODE,  # type: ignore[arg-type]
        )
        if self.score.smooth_px > 0:
            with np.errstate(invalid="ignore"):
                changed &= majority3(fine > t)
        return changed


def score_both(
    score: ScoreModel, before: NDArray, after_n: NDArray, valid: NDArray[np.bool_]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``score.apply_scales`` with NaN wherever not valid or not finite (fresh arrays).

    Computed by row blocks in threads (:func:`~satdelta.imagery.parallel.map_row_blocks`,
    each block with the score's halo), which gives the same values as the whole array at
    once. Without smoothing both scores are one array, as :meth:`ScoreModel.apply_scales`
    returns them.
    """
    band = slice(None)

    def block(rows: slice) -> tuple[NDArray[np.float32], ...]:
        fine, s = score_block(score, before[band, rows], after_n[band, rows], valid[rows])
        return (fine,) if s is fine else (fine, s)

    parts = map_row_blocks(block, valid.shape[0], score.halo_px)
    return (parts[0], parts[-1])


def score_block(
    score: ScoreModel, before: NDArray, after_n: NDArray, valid: NDArray[np.bool_]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """:func:`score_both` on one block, in the calling thread."""
    fine, s = score.apply_scales(before, after_n, valid)
    nan = np.float32(np.nan)
    fine = np.asarray(fine, dtype=np.float32)
    fine[~(valid & np.isfinite(fine))] = nan
    if s is not fine:
        s = np.asarray(s, dtype=np.float32)
        s[~(valid & np.isfinite(s))] = nan
    return fine, s
