"""GeoJSON text of many polygons at once, the same text ``json.dumps`` writes.

``json.dumps`` spells each coordinate with ``repr(float)``, one Python call per number;
for coordinates rounded to a few decimals that text is the rounded decimal itself, which
numpy can spell for every coordinate of many geometries in a few array operations
(:func:`pair_texts`). :func:`polygon_texts` uses it for the geometries of
``changes.geojson``; numbers it cannot spell that way are left to ``json.dumps``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely

__all__ = ["pair_texts", "polygon_texts"]

_POLYGON, _MULTIPOLYGON = shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON


def _spelled(values: np.ndarray, ndigits: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Characters and kept-character mask of ``repr`` of each value, or None when one of
    them does not have the form below.

    ``values`` were rounded to ``ndigits`` decimals, so each is the double nearest to
    ``k / 10**ndigits`` for an integer k. When ``10**(ndigits-4) <= |k| < 10**15``, that decimal
    (trailing zeros dropped, one kept after the point) is ``repr`` of the value: it reads
    back as the value (checked below), any other decimal of at most ``ndigits`` decimals is
    at least ``10**-ndigits`` away, more than the value's spacing to its neighbours, so
    none is shorter, and ``repr`` writes such magnitudes (1e-4 up to 1e16) without an
    exponent.
    """
    scale = 10.0**ndigits
    k = np.rint(values * scale)
    whole = np.abs(k)
    if not (
        np.all(k / scale == values)
        and np.all(whole >= 10 ** (ndigits - 4))
        and np.all(whole < 1e15)
    ):
        return None
    whole = whole.astype(np.int64)
    n_int = len(str(int(whole.max()) // 10**ndigits)) if len(values) else 1
    width = n_int + ndigits + 2  # sign, integer digits, point, decimals
    chars = np.empty((len(values), width), np.uint8)
    keep = np.empty((len(values), width), bool)
    chars[:, 0], keep[:, 0] = ord("-"), k < 0
    chars[:, n_int + 1], keep[:, n_int + 1] = ord("."), True
    digit_columns = [*range(1, n_int + 1), *range(n_int + 2, width)]
    # int32 digits are about twice as fast to divide out (lon/lat at 7 decimals fit)
    rest = whole.astype(np.int32) if whole.max(initial=0) < 2**31 else whole
    nonzero_from_here = np.zeros(len(values), bool)
    for place, column in enumerate(reversed(digit_columns)):  # last digit first
        rest, digit = np.divmod(rest, 10)
        chars[:, column] = digit + ord("0")
        if place < ndigits:  # a decimal: no trailing zeros
            nonzero_from_here |= digit != 0
            keep[:, column] = nonzero_from_here
        else:  # an integer digit: no leading zeros
            keep[:, column] = whole >= 10**place
    keep[:, n_int] = keep[:, n_int + 2] = True  # "0.5", "3.0"
    return chars, keep


def pair_texts(xy: np.ndarray, ndigits: int) -> tuple[str, np.ndarray] | None:
    """``"[x, y], "`` of each row of ``xy`` (coordinates rounded to ``ndigits`` decimals) as
    one string, and where each row's text starts ((N + 1,) array, the last entry: the end).

    The numbers are spelled as ``json.dumps`` spells them; None when a number is not of the
    form :func:`_spelled` handles (then use ``json.dumps``).

    Examples
    --------
    >>> text, starts = pair_texts(np.array([[120.5, -12.25], [3.0, 0.1234567]]), 7)
    >>> text, starts.tolist()
    ('[120.5, -12.25], [3.0, 0.1234567], ', [0, 17, 35])
    """
    if not 0 < ndigits <= 10 or xy.ndim != 2 or xy.shape[1] != 2:
        return None
    spelled = _spelled(np.ascontiguousarray(xy, dtype=np.float64).ravel(), ndigits)
    if spelled is None:
        return None
    chars, keep = (a.reshape(len(xy), -1) for a in spelled)  # x then y on each row
    width = chars.shape[1] // 2
    pair_chars = np.empty((len(xy), 2 * width + 6), np.uint8)
    pair_keep = np.ones((len(xy), 2 * width + 6), bool)
    for column, text in ((0, "["), (width + 1, ", "), (2 * width + 3, "], ")):
        pair_chars[:, column : column + len(text)] = np.frombuffer(text.encode(), np.uint8)
    for column, half in ((1, slice(0, width)), (width + 3, slice(width, 2 * width))):
        pair_chars[:, column : column + width] = chars[:, half]
        pair_keep[:, column : column + width] = keep[:, half]
    chars, keep = pair_chars, pair_keep
    starts = np.concatenate([[0], np.cumsum(np.count_nonzero(keep, axis=1))])
    return chars[keep].tobytes().decode("ascii"), starts


def polygon_texts(geoms: Sequence[Any], ndigits: int) -> list[str]:
    """``json.dumps(shapely.geometry.mapping(g))`` of each Polygon or MultiPolygon whose
    coordinates were rounded to ``ndigits`` decimals (any other geometry: ``json.dumps``).
    A NaN coordinate raises ValueError, as ``json.dumps(..., allow_nan=False)`` does.

    Examples
    --------
    >>> sq = shapely.Polygon([(0.5, 0.5), (1.5, 0.5), (1.5, 1.5), (0.5, 1.5)])
    >>> polygon_texts([sq], 7) == [json.dumps(shapely.geometry.mapping(sq))]
    True
    """
    arr = np.asarray(geoms, dtype=object)
    types = shapely.get_type_id(arr)
    fast = np.isin(types, (_POLYGON, _MULTIPOLYGON)) & ~shapely.is_empty(arr)
    parts, part_geom = shapely.get_parts(arr[fast], return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    spelled = pair_texts(shapely.get_coordinates(rings), ndigits)
    if spelled is None:
        return [json.dumps(shapely.geometry.mapping(g), allow_nan=False) for g in arr]
    text, starts = spelled
    ends = starts[np.cumsum(shapely.get_num_coordinates(rings))].tolist()  # in the text
    part_rings: list[list[str]] = [[] for _ in range(len(parts))]
    for start, end, part in zip([0, *ends[:-1]], ends, ring_part.tolist(), strict=True):
        part_rings[part].append("[" + text[start : end - 2] + "]")
    geom_parts: list[list[str]] = [[] for _ in range(int(fast.sum()))]
    for part, g in enumerate(part_geom.tolist()):
        geom_parts[g].append("[" + ", ".join(part_rings[part]) + "]")
    spelled_geoms = iter(geom_parts)
    out = []
    for g, kind, is_fast in zip(arr, types.tolist(), fast.tolist(), strict=True):
        if not is_fast:
            out.append(json.dumps(shapely.geometry.mapping(g), allow_nan=False))
        elif kind == _POLYGON:
            out.append('{"type": "Polygon", "coordinates": ' + next(spelled_geoms)[0] + "}")
        else:
            coords = "[" + ", ".join(next(spelled_geoms)) + "]"
            out.append('{"type": "MultiPolygon", "coordinates": ' + coords + "}")
    return out
