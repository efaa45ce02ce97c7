"""The no-change floor of the automatic thresholds: the score of a simulated unchanged pair.

Otsu, k-means and two-class mixtures always split the scores in two, so on a pair where
nothing changed they still call many pixels changed. :func:`no_change_quantile` gives the
score a pair without change would reach; :func:`satdelta.imagery.detect.fit_detector` raises
those thresholds to it (design notes: ``docs/design-detection.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.parallel import run_jobs
from satdelta.imagery.radiometry import Window, fit_windows, with_halo
from satdelta.imagery.scores import ScoreModel
from scipy import special

__all__ = ["MAX_NOISE_SAMPLES", "no_change_quantile"]

#: Most pixels on which :func:`no_change_quantile` measures the per-band noise spread.
MAX_NOISE_SAMPLES = 1 << 18


def no_change_quantile(
    score: ScoreModel,
    before: NDArray,
    after: NDArray,
    valid: NDArray[np.bool_],
    *,
    quantile: float = 0.99,
    seed: int = 0,
    windows: Sequence[Window] | None = None,
) -> float | None:
    """Score quantile of a simulated *no-change* pair: a floor for automatic thresholds.

    A parametric bootstrap of the no-change case: the after image is replaced by
    ``before + noise`` with Gaussian noise of each band's robust spread of
    ``after - before`` (1.4826 x MAD, which the changed minority does not inflate), the
    fitted score is applied to that pair, and its ``quantile`` is returned. For the IR-MAD
    score, whose transform is fitted to the real pair, the chi-square quantile with one
    degree of freedom per band is used instead. With smoothing on, white noise is attenuated
    more than real (spatially correlated) differences, so the floor is a lower bound.

    The spread is measured on at most :data:`MAX_NOISE_SAMPLES` pixels (evenly strided) of
    ``windows`` (default :func:`~satdelta.imagery.radiometry.fit_windows`), and the
    simulation runs on the same windows, each scored with the score's halo of context, so the
    cost is bounded. The windows are scored in threads while this thread draws the next
    window's noise from the one seeded generator, in window order, so the result does not
    depend on the thread count.

    Returns
    -------
    float or None
        None when there are no valid pixels.
    """
    if not valid.any():
        return None
    nb = before.shape[0]
    if score.method == "irmad":
        # its own null distribution: chi-square with one degree of freedom per band
        return float(special.chdtri(nb, 1.0 - quantile))
    wins = list(fit_windows(valid.shape, valid=valid) if windows is None else windows)
    spread = _noise_spread(before, after, valid, wins)
    if spread is None:
        return None
    s = _simulated_scores(score, before, valid, wins, spread, seed)
    return float(np.quantile(s, quantile)) if s.size else None


def _noise_spread(
    before: NDArray, after: NDArray, valid: NDArray[np.bool_], wins: list[Window]
) -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
    """Per-band median and robust spread of ``after - before``, as (B, 1, 1) float32 arrays."""
    band = slice(None)
    d = np.concatenate(
        run_jobs(lambda w: (after[(band, *w)] - before[(band, *w)])[:, valid[w]], wins), axis=1
    )
    if d.shape[1] == 0:
        return None
    step = -(-d.shape[1] // MAX_NOISE_SAMPLES)
    if step > 1:  # an evenly strided subsample measures the spread well enough
        d = d[:, ::step]
    med = np.median(d, axis=1)
    scale = 1.4826 * np.median(np.abs(d - med[:, None]), axis=1)
    if not (scale > 0).all():
        scale = np.where(scale > 0, scale, d.std(axis=1))
    nb = before.shape[0]
    return med.reshape(nb, 1, 1).astype(np.float32), scale.reshape(nb, 1, 1).astype(np.float32)


def _simulated_scores(
    score: ScoreModel,
    before: NDArray,
    valid: NDArray[np.bool_],
    wins: list[Window],
    spread: tuple[NDArray[np.float32], NDArray[np.float32]],
    seed: int,
) -> NDArray[np.float32]:
    """Finite scores of ``before`` against ``before + noise`` on the valid pixels of ``wins``."""
    med32, scale32 = spread
    nb, h, shape, band = before.shape[0], score.halo_px, valid.shape, slice(None)

    def draws() -> Iterator[tuple[Window, NDArray[np.float32]]]:
        # one generator, drawn from window by window in this thread: the same numbers in
        # the same order whatever the thread count
        rng = np.random.default_rng(seed)
        for w in wins:
            outer, _ = with_halo(w, h, shape)
            rows, cols = outer[0].stop - outer[0].start, outer[1].stop - outer[1].start
            yield w, rng.standard_normal((nb, rows, cols)).astype(np.float32)

    def simulate(job: tuple[Window, NDArray[np.float32]]) -> NDArray[np.float32]:
        w, noise = job
        outer, inner = with_halo(w, h, shape)
        b_w = before[(band, *outer)].astype(np.float32, copy=False)
        noise *= scale32
        noise += med32
        noise += b_w  # the null after image
        s = score.apply(b_w, noise, valid[outer])[inner]
        return s[valid[w] & np.isfinite(s)]

    # the windows are scored in threads while the next window's noise is drawn here
    return np.concatenate(run_jobs(simulate, draws()))
