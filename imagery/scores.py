"""Per-pixel change scores between two co-registered dates.

Each score is split into :func:`fit_score` (global statistics from the valid
pixels or a sample of them) and :meth:`ScoreModel.apply` (per pixel, or per
window with a halo of :attr:`ScoreModel.halo_px` pixels for spatial scores).
Larger scores mean more change; every score is >= 0.

Methods
-------
``"cva"``
    Change-vector magnitude on standardised band differences (Malila 1980,
    "Change vector analysis: an approach for detecting forest changes with
    Landsat"): ``sqrt(sum_b (d_b / s_b)^2)`` with ``s_b`` a robust standard
    deviation (1.4826 MAD) of band b's difference.
``"irmad"``
    Chi-square statistic of the IR-MAD variates (Nielsen 2007).
``"absdiff"``
    Mean absolute difference over bands, in the input's units.
``"logratio"``
    Mean over bands of ``|log((after + c) / (before + c))|`` with ``c`` 1 % of
    the median level (keeps dark pixels from dominating), suited to
    multiplicative (illumination, speckle) differences.
``"ndvi"``, ``"ndwi"``
    Absolute difference of NDVI ``(nir - red)/(nir + red)`` or NDWI
    ``(green - nir)/(green + nir)`` (McFeeters 1996); needs band names that say
    which band is red/green/nir.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from satdelta.imagery.errors import BandMismatchError, InvalidParameterError
from satdelta.imagery.radiometry import IRMADFit, fit_irmad, sample_pixels

__all__ = [
    "SCORE_METHODS",
    "ScoreMethod",
    "ScoreModel",
    "change_score",
    "find_band",
    "fit_score",
]

log = logging.getLogger(__name__)

ScoreMethod = Literal["auto", "cva", "irmad", "absdiff", "logratio", "ndvi", "ndwi"]
SCORE_METHODS: tuple[str, ...] = ("auto", "cva", "irmad", "absdiff", "logratio", "ndvi", "ndwi")

_ROBUST = 1.4826  # MAD -> standard deviation for a Gaussian

_BAND_ALIASES: dict[str, tuple[str, ...]] = {
    "red": ("red", "r"),
    "green": ("green", "g"),
    "blue": ("blue", "b"),
    "nir": ("nir", "nir08", "near-infrared", "nearinfrared", "near_infrared"),
}


def find_band(band_names: Sequence[str] | None, role: str) -> int | None:
    """Index of the band whose name says it is ``role`` (red, green, blue, nir).

    Names are split on ``_ - space .`` and matched token by token, so
    ``"B4_nir"`` is nir and ``"B3_red"`` is red (but ``"rededge"`` is not red).

    Examples
    --------
    >>> find_band(("B1_blue", "B2_green", "B3_red", "B4_nir"), "nir")
    3
    >>> find_band(("red", "green", "blue"), "nir") is None
    True
    """
    if not band_names:
        return None
    aliases = _BAND_ALIASES[role]
    for i, name in enumerate(band_names):
        tokens = name.lower().replace("-", "_").replace(" ", "_").replace(".", "_").split("_")
        if any(t in aliases for t in tokens) or name.lower() in aliases:
            return i
    return None


@dataclass(frozen=True)
class ScoreModel:
    """A fitted change score.

    Attributes
    ----------
    method : str
        Concrete score method.
    parameters : dict
        JSON-serialisable statistics used by :meth:`apply`.
    halo_px : int
        Pixels of context a window needs on each side (0 for per-pixel scores).
    irmad : IRMADFit or None
        The IR-MAD transform for ``method="irmad"``.
    """

    method: str
    parameters: dict[str, Any] = field(default_factory=dict)
    halo_px: int = 0
    irmad: IRMADFit | None = None

    def __post_init__(self) -> None:
        if self.method not in SCORE_METHODS or self.method == "auto":
            raise InvalidParameterError(
                f"score method must be one of {SCORE_METHODS[1:]}, got {self.method!r}."
            )
        if self.halo_px < 0:
            raise InvalidParameterError(f"halo_px must be >= 0, got {self.halo_px}.")
        if self.method == "irmad" and self.irmad is None:
            raise InvalidParameterError('score method "irmad" needs a fitted IR-MAD transform.')

    def apply(self, before: NDArray, after: NDArray) -> NDArray[np.float32]:
        """Score ``(band, row, col)`` arrays; returns ``(row, col)`` float32 >= 0."""
        p = self.parameters
        b = before.astype(np.float32, copy=False)
        a = after.astype(np.float32, copy=False)
        if self.method == "cva":
            s = np.asarray(p["scales"], dtype=np.float32)[:, None, None]
            out = np.sqrt(np.sum(((a - b) / s) ** 2, axis=0))
        elif self.method == "absdiff":
            out = np.mean(np.abs(a - b), axis=0)
        elif self.method == "logratio":
            c = np.float32(p["offset"])
            out = np.mean(np.abs(np.log(np.maximum(a + c, c) / np.maximum(b + c, c))), axis=0)
        elif self.method in ("ndvi", "ndwi"):
            i, j = p["band_index_1"], p["band_index_2"]
            out = np.abs(_nd(a[i], a[j]) - _nd(b[i], b[j]))
        else:  # irmad
            assert self.irmad is not None
            out = self.irmad.chi2(b, a)
        return np.asarray(out, dtype=np.float32)


def _nd(x: NDArray, y: NDArray) -> NDArray[np.float32]:
    """Normalised difference ``(x - y) / (x + y)``, 0 where the sum is 0."""
    s = x + y
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(s != 0, (x - y) / np.where(s != 0, s, 1), 0.0)
    return out.astype(np.float32)


def fit_score(
    before: NDArray,
    after: NDArray,
    *,
    method: ScoreMethod = "cva",
    valid: NDArray[np.bool_] | None = None,
    band_names: Sequence[str] | None = None,
    irmad: IRMADFit | None = None,
) -> ScoreModel:
    """Fit the global statistics of a change score.

    Parameters
    ----------
    before, after : (B, M, N) ndarray
        The two dates on one grid (after already normalised if wanted).
    method : {"cva", "irmad", "absdiff", "logratio", "ndvi", "ndwi"}
        See the module docstring. ``"auto"`` is resolved by
        :func:`satdelta.imagery.detect.detect_change`; here it means ``"cva"``.
    valid : (M, N) bool ndarray, optional
        True where both dates have data.
    band_names : sequence of str, optional
        Needed by ``"ndvi"``/``"ndwi"``.
    irmad : IRMADFit, optional
        Reuse an IR-MAD fit for ``"irmad"``.

    Returns
    -------
    ScoreModel

    Raises
    ------
    InvalidParameterError
        Unknown method.
    BandMismatchError
        ``"ndvi"``/``"ndwi"`` without the needed bands.
    """
    if method not in SCORE_METHODS:
        raise InvalidParameterError(f"method must be one of {SCORE_METHODS}, got {method!r}.")
    if method == "auto":
        method = "cva"
    if before.shape != after.shape or before.ndim != 3:
        raise BandMismatchError(
            f"before and after must be (band, row, col) arrays of one shape, got {before.shape} "
            f"and {after.shape}."
        )
    ok = np.isfinite(before).all(axis=0) & np.isfinite(after).all(axis=0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    if method in ("ndvi", "ndwi"):
        roles = ("nir", "red") if method == "ndvi" else ("green", "nir")
        idx = [find_band(band_names, r) for r in roles]
        if None in idx:
            raise BandMismatchError(
                f"score method {method!r} needs bands named {roles[0]} and {roles[1]}, got "
                f"band names {tuple(band_names) if band_names else None}; name the bands "
                "(e.g. 'red', 'nir') or use method 'cva'."
            )
        return ScoreModel(method, {"band_index_1": idx[0], "band_index_2": idx[1], "bands": roles})
    if method == "absdiff":
        return ScoreModel("absdiff", {})
    if method == "irmad":
        fit = irmad or fit_irmad(before, after, valid=ok)
        return ScoreModel("irmad", {"irmad": fit.to_dict()}, irmad=fit)
    x, y = sample_pixels(before, after, ok)
    if x.shape[1] == 0:
        raise InvalidParameterError("no valid pixels to fit the change score on.")
    if method == "logratio":
        level = float(np.median(np.concatenate([x.ravel(), y.ravel()])))
        offset = max(0.01 * abs(level), 1e-6)
        if min(x.min(), y.min()) < 0:
            offset += float(-min(x.min(), y.min()))
        return ScoreModel("logratio", {"offset": offset})
    # cva: robust per-band scale of the difference
    d = y - x
    med = np.median(d, axis=1, keepdims=True)
    scales = _ROBUST * np.median(np.abs(d - med), axis=1)
    sd = d.std(axis=1)
    scales = np.where(scales > 0, scales, np.where(sd > 0, sd, 1.0))
    return ScoreModel("cva", {"scales": [float(s) for s in scales]})


def change_score(
    before: NDArray,
    after: NDArray,
    *,
    method: ScoreMethod = "cva",
    valid: NDArray[np.bool_] | None = None,
    band_names: Sequence[str] | None = None,
) -> NDArray[np.float32]:
    """Fit and apply a change score on whole arrays; NaN where not valid.

    Examples
    --------
    >>> b = np.zeros((1, 2, 3), dtype=np.float32)
    >>> a = np.array([[[0, 1, 4], [0, 0, 2]]], dtype=np.float32)
    >>> change_score(b, a, method="absdiff").tolist()
    [[0.0, 1.0, 4.0], [0.0, 0.0, 2.0]]
    """
    model = fit_score(before, after, method=method, valid=valid, band_names=band_names)
    out = model.apply(before, after)
    ok = np.isfinite(out)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    return np.where(ok, out, np.float32(np.nan)).astype(np.float32)
