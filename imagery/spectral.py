"""Band roles from band names, and the spectral and colour indices computed from them.

:func:`find_band` tells which band is red, green, blue or near-infrared from its name;
:func:`visible_band_indices` recognises visible-only (RGB) imagery; the indices
(:func:`normalised_difference`, :func:`builtup_likelihood`) are what the change scores of
:mod:`satdelta.imagery.scores` compare between dates. Sources in
``docs/design-detection-methods.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ACHROMATIC_SATURATION",
    "ACHROMATIC_WIDTH",
    "EXG_GREEN",
    "EXG_WIDTH",
    "builtup_likelihood",
    "find_band",
    "normalised_difference",
    "visible_band_indices",
]

#: HSV saturation below which a colour counts as near-grey (soft step of width 0.03).
ACHROMATIC_SATURATION = 0.15
ACHROMATIC_WIDTH = 0.03
#: Excess green above which a colour counts as vegetation (soft step of width EXG_WIDTH).
#: Neutral grey has ExG = 0; the step sits above it so that sensor noise on a grey
#: surface does not flip it between "built" and "vegetation".
EXG_GREEN = 0.05
EXG_WIDTH = 0.02

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


def visible_band_indices(
    band_names: Sequence[str] | None, nbands: int
) -> tuple[int, int, int] | None:
    """Indices of red, green and blue, or None when the bands are not visible-only RGB.

    Three unnamed bands (``None`` or generic ``b1, b2, b3``) are read as red,
    green, blue - the order of PNG, JPEG and most 3-band GeoTIFFs. Any band
    named nir/swir means the imagery is multispectral.

    Examples
    --------
    >>> visible_band_indices(("blue", "green", "red"), 3)
    (2, 1, 0)
    >>> visible_band_indices(None, 3)
    (0, 1, 2)
    >>> visible_band_indices(("B1_blue", "B2_green", "B3_red", "B4_nir"), 4) is None
    True
    """
    idx = [find_band(band_names, role) for role in ("red", "green", "blue")]
    if None not in idx:
        if find_band(band_names, "nir") is not None:
            return None
        return (int(idx[0]), int(idx[1]), int(idx[2]))  # type: ignore[arg-type]
    if nbands == 3 and (
        band_names is None
        or all(n.lower() in ("b1", "b2", "b3", "1", "2", "3", "") for n in band_names)
    ):
        return (0, 1, 2)
    return None


def normalised_difference(x: NDArray, y: NDArray) -> NDArray[np.float32]:
    """Normalised difference ``(x - y) / (x + y)``, 0 where the sum is 0.

    Examples
    --------
    >>> normalised_difference(np.array([3.0, 0.0]), np.array([1.0, 0.0])).tolist()
    [0.5, 0.0]
    """
    s = x + y
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(s != 0, (x - y) / np.where(s != 0, s, 1), 0.0)
    return out.astype(np.float32)


def _logistic(x: NDArray, width: float) -> NDArray:
    """``0.5 (1 + tanh(x / 2w))`` = ``1 / (1 + exp(-x / w))``, computed in place in ``x``."""
    x *= x.dtype.type(0.5 / width)
    np.tanh(x, out=x)
    x += 1
    x *= 0.5
    return x


def builtup_likelihood(red: NDArray, green: NDArray, blue: NDArray) -> NDArray[np.float32]:
    """Soft built-surface likelihood in [0, 1] from visible colour alone.

    ``achromatic * (1 - green)`` with ``achromatic`` a logistic step of HSV
    saturation below :data:`ACHROMATIC_SATURATION` and ``green`` a logistic
    step of excess green ``2g - r - b`` above 0 (Woebbecke et al. 1995).
    Negative inputs are treated as 0.

    Examples
    --------
    >>> r = np.array([120.0, 60.0]); g = np.array([118.0, 140.0]); b = np.array([115.0, 50.0])
    >>> [round(float(v), 2) for v in builtup_likelihood(r, g, b)]  # grey roof, green lawn
    [0.89, 0.0]
    """
    r = np.maximum(np.asarray(red, dtype=np.float32), 0)
    g = np.maximum(np.asarray(green, dtype=np.float32), 0)
    b = np.maximum(np.asarray(blue, dtype=np.float32), 0)
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    zero = np.float32(0)
    # saturation (max - min) / max, 0 for black
    sat = np.subtract(mx, mn, out=mn)
    np.divide(sat, mx, out=sat, where=mx > 0)
    sat[mx <= 0] = zero
    # excess green on chromatic coordinates: 2g - r - b over the sum = (3g - sum) / sum
    total = r + g
    total += b
    exg = g * np.float32(3)
    exg -= total
    np.divide(exg, total, out=exg, where=total > 0)
    exg[total <= 0] = zero
    # achromatic = logistic(S0 - sat); not green = 1 - logistic(exg - E0) = logistic(E0 - exg)
    np.subtract(np.float32(ACHROMATIC_SATURATION), sat, out=sat)
    achromatic = _logistic(sat, ACHROMATIC_WIDTH)
    np.subtract(np.float32(EXG_GREEN), exg, out=exg)
    not_green = _logistic(exg, EXG_WIDTH)
    achromatic *= not_green
    return achromatic
