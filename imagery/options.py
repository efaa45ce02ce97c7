"""The options of a change-detection run, as one frozen object checked on construction.

A front-end (the command line, the batch job, the napari form) builds one
:class:`DetectionOptions`; the pipeline, the batch workers and the napari child process pass
it on unchanged, and ``run.json`` records it (:meth:`~DetectionOptions.to_dict`,
:meth:`~DetectionOptions.from_dict`). Facts about the scenes (pixel size, band names, the
valid mask) are not options: they come with the arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from satdelta.imagery.align import RESAMPLING_METHODS, ResamplingName
from satdelta.imagery.aoi import AreaOfInterest
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.morphology import MIN_REGION_PX
from satdelta.imagery.objects import ObjectOptions
from satdelta.imagery.radiometry import NORMALISE_METHODS, NormaliseMethod
from satdelta.imagery.scores import SCORE_METHODS, ScoreMethod
from satdelta.imagery.threshold import THRESHOLD_METHODS, ThresholdMethod

__all__ = ["CLI_FLAGS", "DetectionOptions"]

#: The ``satdelta detect``/``batch`` flag that sets each option (options without one are
#: set from Python only).
CLI_FLAGS: dict[str, str] = {
    "method": "--method",
    "threshold": "--threshold",
    "threshold_value": "--threshold-value",
    "normalise": "--normalise",
    "min_area_m2": "--min-area",
    "min_pixels": "--min-pixels",
    "aoi": "--aoi",
    "bands": "--bands",
    "pixel_size_m": "--pixel-size",
    "max_shift_px": "--max-shift",
    "resampling": "--resampling",
    "objects": "--objects/--no-objects",
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "method": SCORE_METHODS,
    "threshold": THRESHOLD_METHODS,
    "normalise": NORMALISE_METHODS,
    "resampling": RESAMPLING_METHODS,
}

#: Numeric options: (unit, lower bound, bound excluded, None allowed).
_NUMBERS: dict[str, tuple[str, float, bool, bool]] = {
    "max_shift_px": ("pixels", 0.0, True, False),
    "pixel_size_m": ("metres", 0.0, True, True),
    "min_area_m2": ("m²", 0.0, False, True),
}


@dataclass(frozen=True)
class DetectionOptions:
    """What a change-detection run was asked to do (every field has a default).

    Attributes
    ----------
    method : {"auto", "cva", "irmad", "absdiff", "logratio", "ndvi", "ndwi", "builtup", "cues"}
        Change score (:mod:`satdelta.imagery.scores`); ``"auto"`` is resolved from the kinds of
        bands (:func:`satdelta.imagery.detect.resolve_auto`).
    threshold : {"auto", "mixture", "otsu", "kmeans", "value", "percentile"}
        Threshold method (:mod:`satdelta.imagery.threshold`).
    threshold_value : float or None
        The score value for ``"value"`` (required), the percentile (0-100, exclusive) for
        ``"percentile"``; None for the other methods.
    null_quantile : float or None, default 0.99
        Floor of the automatic thresholds (``mixture``, ``otsu``, ``kmeans``): this quantile,
        in [0.5, 1), of the score of a simulated no-change pair
        (:func:`satdelta.imagery.no_change.no_change_quantile`); None turns the floor off.
    normalise : {"auto", "none", "histogram", "irmad", "local"}
        Radiometric normalisation of after onto before (:mod:`satdelta.imagery.radiometry`).
    min_area_m2 : float or None
        Candidates smaller than this many square metres are dropped (None: 4 m²); read as
        pixels when the imagery has no pixel size.
    min_pixels : int, default 4
        Floor of the minimum area in pixels: the smallest candidate kept is
        ``max(min_area_m2 or 4 m², min_pixels pixels)``.
    aoi : AreaOfInterest or None
        Analyse only this lon/lat area (:mod:`satdelta.imagery.aoi`); None: the whole
        overlap. Given as an :class:`~satdelta.imagery.aoi.AreaOfInterest`, a ``W,S,E,N``
        box (degrees) or a GeoJSON geometry mapping.
    bands : tuple of int or str, or None
        1-based band numbers or band names picked from each scene (None: all, matched).
    pixel_size_m : float or None
        Pixel edge in metres, used when the imagery does not say (no CRS).
    max_shift_px : float, default 5.0
        Largest residual shift between the scenes the alignment accepts, in pixels.
    resampling : {"nearest", "bilinear", "cubic", "lanczos"}, default "cubic"
        Resampling of the after scene onto the before grid.
    objects : bool or None, default None
        Look for discrete objects and their change (:mod:`satdelta.imagery.object_change`):
        True or False forces it, None decides from the pixel size (about 1 m or finer).
    object_options : ObjectOptions
        Constants of object finding and matching (a mapping of its fields is accepted).

    Raises
    ------
    InvalidParameterError
        An unknown method, a threshold value missing, out of range or given to a method that
        ignores it, a number that is not finite or out of range, or malformed bands.

    Examples
    --------
    >>> opts = DetectionOptions(threshold="percentile", threshold_value=98, bands=[1, 2])
    >>> opts.threshold_value, opts.bands
    (98.0, (1, 2))
    >>> DetectionOptions.from_dict(opts.to_dict()) == opts
    True
    >>> DetectionOptions(method="sobel")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    satdelta.imagery.errors.InvalidParameterError: method must be one of auto, ...; got 'sobel'.
    """

    method: ScoreMethod = "auto"
    threshold: ThresholdMethod = "auto"
    threshold_value: float | None = None
    null_quantile: float | None = 0.99
    normalise: NormaliseMethod = "auto"
    min_area_m2: float | None = None
    min_pixels: int = MIN_REGION_PX
    aoi: AreaOfInterest | None = None
    bands: tuple[int | str, ...] | None = None
    pixel_size_m: float | None = None
    max_shift_px: float = 5.0
    resampling: ResamplingName = "cubic"
    objects: bool | None = None
    object_options: ObjectOptions = ObjectOptions()

    def __post_init__(self) -> None:
        for name, value in _checked(self._values(), _plain).items():
            object.__setattr__(self, name, value)

    def _values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_dict(self) -> dict[str, Any]:
        """Every option, JSON-ready (``bands`` as a list): what ``run.json`` records."""
        out = self._values()
        if self.bands is not None:
            out["bands"] = list(self.bands)
        if self.aoi is not None:
            out["aoi"] = self.aoi.to_dict()
        out["object_options"] = self.object_options.to_dict()
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DetectionOptions:
        """Options from a mapping such as :meth:`to_dict` gives; missing keys keep their defaults.

        Meant for options written down (``run.json``, the command line, a script's dict): its
        messages also name each option's command-line flag.

        Raises
        ------
        InvalidParameterError
            Keys that are not options, or values the constructor refuses.
        """
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise InvalidParameterError(
                f"unknown detection options {unknown}; expected some of {sorted(names)}."
            )
        return cls(**_checked({**cls()._values(), **values}, _flagged))


def _plain(name: str) -> str:
    return name


def _flagged(name: str) -> str:
    flag = CLI_FLAGS.get(name)
    return f"{name} ({flag})" if flag else name


def _checked(values: dict[str, Any], label: Callable[[str], str]) -> dict[str, Any]:
    """``values`` checked, numbers as floats and bands as a tuple; ``label`` names an option."""
    out = dict(values)
    for name, choices in _CHOICES.items():
        if out[name] not in choices:
            raise InvalidParameterError(
                f"{label(name)} must be one of {', '.join(choices)}; got {out[name]!r}."
            )
    out["threshold_value"] = _threshold_value(out["threshold"], out["threshold_value"], label)
    for name, (unit, low, strict, optional) in _NUMBERS.items():
        v = out[name]
        if v is None and optional:
            continue
        x = _number(v)
        if not (math.isfinite(x) and (x > low if strict else x >= low)):
            bound = ">" if strict else ">="
            raise InvalidParameterError(
                f"{label(name)} must be a finite number {bound} {low:g} {unit}; got {v!r}."
            )
        out[name] = x
    q = out["null_quantile"]
    if q is not None:
        if not 0.5 <= _number(q) < 1.0:
            raise InvalidParameterError(
                f"{label('null_quantile')} must be in [0.5, 1) or None, got {q!r}."
            )
        out["null_quantile"] = _number(q)
    out["bands"] = _bands(out["bands"], label)
    m = out["min_pixels"]
    whole = (isinstance(m, int) and not isinstance(m, bool)) or (
        isinstance(m, float) and m.is_integer()
    )
    if not whole or m < 1:
        raise InvalidParameterError(
            f"{label('min_pixels')} must be a whole number of pixels >= 1; got {m!r}."
        )
    out["min_pixels"] = int(m)
    if out["aoi"] is not None:
        out["aoi"] = AreaOfInterest.from_dict(out["aoi"])
    if out["objects"] is not None and not isinstance(out["objects"], bool):
        raise InvalidParameterError(
            f"{label('objects')} must be True, False or None (decide from the pixel size); "
            f"got {out['objects']!r}."
        )
    if isinstance(out["object_options"], Mapping):
        known = {f.name for f in fields(ObjectOptions)}
        unknown = sorted(set(out["object_options"]) - known)
        if unknown:
            raise InvalidParameterError(
                f"unknown object options {unknown}; expected some of {sorted(known)}."
            )
        out["object_options"] = ObjectOptions(**out["object_options"])
    elif not isinstance(out["object_options"], ObjectOptions):
        raise InvalidParameterError(
            f"object_options must be an ObjectOptions or a mapping of its fields; got "
            f"{out['object_options']!r}."
        )
    return out


def _threshold_value(method: str, value: Any, label: Callable[[str], str]) -> float | None:
    """The threshold value as a float, after checking it suits the threshold ``method``."""
    if method == "value":
        if value is None or not math.isfinite(_number(value)):
            raise InvalidParameterError(
                f'threshold method "value" needs a finite threshold value; got {value!r}. '
                "Pass threshold_value (CLI: --threshold-value)."
            )
        return _number(value)
    if method == "percentile":
        if value is None:
            return None
        if not 0.0 < _number(value) < 100.0:
            raise InvalidParameterError(
                'threshold method "percentile" needs a percentile between 0 and 100 '
                f"(exclusive) as threshold_value (--threshold-value); got {value!r}."
            )
        return _number(value)
    if value is not None:
        raise InvalidParameterError(
            f"{label('threshold_value')} {value!r} is only used with threshold method "
            f"'value' or 'percentile', not {method!r}; drop it or change the method."
        )
    return None


def _bands(bands: Any, label: Callable[[str], str]) -> tuple[int | str, ...] | None:
    if bands is None:
        return None
    ok = isinstance(bands, Sequence) and not isinstance(bands, str) and len(bands) > 0
    if not ok or not all(
        (isinstance(b, int) and not isinstance(b, bool) and b >= 1)
        or (isinstance(b, str) and b.strip())
        for b in bands
    ):
        raise InvalidParameterError(
            f"{label('bands')} must be 1-based band numbers or band names; got {bands!r}."
        )
    return tuple(bands)


def _number(value: Any) -> float:
    """``value`` as a float; NaN for what is not a number (booleans included)."""
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
