"""Click options shared by the commands that run change detection (``detect``, ``batch``).

One definition per option, as rasterio's ``rio/options.py`` does; :func:`detection_options`
applies them all and :func:`detection_kwargs` turns their values into the keyword options of
:func:`satdelta.imagery.pipeline.run_detection`.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click
from satdelta.imagery.align import RESAMPLING_METHODS
from satdelta.imagery.detect import NORMALISE_METHODS, SCORE_METHODS, THRESHOLD_METHODS
from satdelta.imagery.errors import InvalidParameterError

__all__ = ["detection_options", "detection_kwargs", "parse_bands"]

F = TypeVar("F", bound=Callable[..., Any])


def parse_bands(text: str | None) -> list[int | str] | None:
    """``"1,2,3"`` -> ``[1, 2, 3]``; names are kept (``"red,nir"``); None/empty -> None."""
    if text is None or not text.strip():
        return None
    out: list[int | str] = []
    for part in text.split(","):
        p = part.strip()
        if not p:
            raise InvalidParameterError(
                f"--bands expects a comma-separated list such as 1,2,3 or red,nir; got {text!r}."
            )
        out.append(int(p) if p.isdigit() else p)
    return out


class FiniteFloat(click.ParamType):
    """A finite float (no inf/nan), optionally with a lower bound; bad values are usage errors."""

    name = "float"

    def __init__(self, *, min: float | None = None, min_open: bool = False) -> None:
        self.min = min
        self.min_open = min_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            x = value
        else:
            try:
                x = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number.", param, ctx)
        if not math.isfinite(x):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        if self.min is not None and (x <= self.min if self.min_open else x < self.min):
            bound = ">" if self.min_open else ">="
            self.fail(f"{value!r} is not {bound} {self.min:g}.", param, ctx)
        return x


_OPTIONS = [
    click.option(
        "--method",
        type=click.Choice(SCORE_METHODS),
        default="auto",
        show_default=True,
        help="Change score.",
    ),
    click.option(
        "--threshold",
        "threshold_method",
        type=click.Choice(THRESHOLD_METHODS),
        default="auto",
        show_default=True,
        help="Threshold method.",
    ),
    click.option(
        "--threshold-value",
        type=FiniteFloat(),
        default=None,
        help="Score value for --threshold value; percentile for --threshold percentile.",
    ),
    click.option(
        "--min-area",
        "min_area",
        type=FiniteFloat(min=0.0),
        default=None,
        help="Drop changed regions smaller than this many m².",
    ),
    click.option(
        "--bands",
        default=None,
        help="Bands picked from each scene, 1-based: 1,2,3 (or band names: red,nir).",
    ),
    click.option(
        "--normalise",
        type=click.Choice(NORMALISE_METHODS),
        default="auto",
        show_default=True,
        help="Radiometric normalisation of after onto before.",
    ),
    click.option(
        "--pixel-size",
        type=FiniteFloat(min=0.0, min_open=True),
        default=None,
        help="Pixel size in metres, for images that are not georeferenced.",
    ),
    click.option(
        "--max-shift",
        type=FiniteFloat(min=0.0, min_open=True),
        default=5.0,
        show_default=True,
        help="Largest residual misregistration accepted, in pixels.",
    ),
    click.option(
        "--resampling",
        type=click.Choice(RESAMPLING_METHODS),
        default="cubic",
        show_default=True,
        help="Resampling of the after scene onto the before grid.",
    ),
]


def detection_options(func: F) -> F:
    """Add --method, --threshold, --threshold-value, --min-area, --bands, --normalise,
    --pixel-size, --max-shift and --resampling to a click command.

    The command's function receives them as one keyword argument, ``options``: the dict of
    :func:`detection_kwargs` (so a bad --bands fails before the function body runs).
    """
    names = tuple(inspect.signature(detection_kwargs).parameters)

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in names}
        return func(*args, options=detection_kwargs(**values), **kwargs)

    wrapped: Callable[..., Any] = command
    for option in reversed(_OPTIONS):
        wrapped = option(wrapped)
    return cast(F, wrapped)


def detection_kwargs(
    *,
    method: str,
    threshold_method: str,
    threshold_value: float | None,
    min_area: float | None,
    bands: str | None,
    normalise: str,
    pixel_size: float | None,
    max_shift: float,
    resampling: str,
) -> dict[str, Any]:
    """The values of :func:`detection_options` as keyword options of ``run_detection``."""
    return {
        "method": method,
        "threshold": threshold_method,
        "threshold_value": threshold_value,
        "normalise": normalise,
        "min_area_m2": min_area,
        "bands": parse_bands(bands),
        "pixel_size_m": pixel_size,
        "max_shift_px": max_shift,
        "resampling": resampling,
    }
