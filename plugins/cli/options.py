"""Click options shared by the commands that run change detection (``detect``, ``batch``).

One definition per option, as rasterio's ``rio/options.py`` does; :func:`detection_options`
applies them all and hands the command one
:class:`~satdelta.imagery.options.DetectionOptions`.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from satdelta.imagery.align import RESAMPLING_METHODS
from satdelta.imagery.aoi import AreaOfInterest
from satdelta.imagery.errors import AreaOfInterestError, InvalidParameterError, one_line
from satdelta.imagery.options import CLI_FLAGS, DetectionOptions
from satdelta.imagery.radiometry import NORMALISE_METHODS
from satdelta.imagery.scores import SCORE_METHODS
from satdelta.imagery.threshold import THRESHOLD_METHODS

__all__ = ["detection_options", "parse_aoi", "parse_bands", "runner_option"]

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


def parse_aoi(text: str | None) -> AreaOfInterest | None:
    """``--aoi``: ``W,S,E,N`` in degrees, or the path of a GeoJSON file; None/empty -> None.

    Raises
    ------
    AreaOfInterestError
        A file that cannot be read or is not GeoJSON, or a malformed or empty area.
    """
    if text is None or not text.strip():
        return None
    path = Path(text).expanduser()
    if not (path.suffix.lower() in (".geojson", ".json") or path.exists()):
        return AreaOfInterest.parse(text)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise AreaOfInterestError(
            f"--aoi: no file {path}; expected W,S,E,N in degrees or a GeoJSON file."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AreaOfInterestError(
            f"--aoi: cannot read {path} as GeoJSON ({one_line(exc)}); expected a GeoJSON polygon."
        ) from None
    return AreaOfInterest.from_geojson(data)


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


_DEFAULTS = DetectionOptions()


def _option(name: str, kind: Any, text: str) -> Callable[[F], F]:
    """The click option of type ``kind`` that sets ``DetectionOptions.<name>``, with its default."""
    default = getattr(_DEFAULTS, name)
    return click.option(
        CLI_FLAGS[name],
        name,
        type=kind,
        default=default,
        show_default=default is not None,
        help=text,
    )


_OPTIONS = [
    _option("method", click.Choice(SCORE_METHODS), "Change score."),
    _option("threshold", click.Choice(THRESHOLD_METHODS), "Threshold method."),
    _option(
        "threshold_value",
        FiniteFloat(),
        "Score value for --threshold value; percentile for --threshold percentile.",
    ),
    _option(
        "min_area_m2",
        FiniteFloat(min=0.0),
        "Drop candidates smaller than this many m² [default: 4].",
    ),
    _option(
        "min_pixels",
        click.IntRange(min=1),
        "Drop candidates smaller than this many pixels, whatever --min-area says.",
    ),
    _option(
        "aoi",
        None,
        "Analyse only this area: W,S,E,N in degrees (lon/lat), or a GeoJSON polygon file.",
    ),
    _option(
        "bands", None, "Bands picked from each scene, 1-based: 1,2,3 (or band names: red,nir)."
    ),
    _option(
        "normalise",
        click.Choice(NORMALISE_METHODS),
        "Radiometric normalisation of after onto before.",
    ),
    _option(
        "pixel_size_m",
        FiniteFloat(min=0.0, min_open=True),
        "Pixel size in metres, for images that are not georeferenced.",
    ),
    _option(
        "max_shift_px",
        FiniteFloat(min=0.0, min_open=True),
        "Largest residual misregistration accepted, in pixels.",
    ),
    _option(
        "resampling",
        click.Choice(RESAMPLING_METHODS),
        "Resampling of the after scene onto the before grid.",
    ),
    _option(
        "objects",
        None,
        "Look for discrete objects (vehicles, aircraft) and their change; writes objects.csv "
        "and objects.geojson [default: when pixels are about 1 m or finer].",
    ),
]


def detection_options(func: F) -> F:
    """Add --method, --threshold, --threshold-value, --min-area, --min-pixels, --aoi, --bands,
    --normalise, --pixel-size, --max-shift, --resampling and --objects/--no-objects to a click
    command.

    The command's function receives them as one keyword argument, ``options``: a
    :class:`~satdelta.imagery.options.DetectionOptions` (so bad options fail before the
    function body runs).
    """

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in CLI_FLAGS}
        values["bands"] = parse_bands(values["bands"])
        values["aoi"] = parse_aoi(values["aoi"])
        return func(*args, options=DetectionOptions.from_dict(values), **kwargs)

    wrapped: Callable[..., Any] = command
    for option in reversed(_OPTIONS):
        wrapped = option(wrapped)
    return cast(F, wrapped)


#: ``--runner`` of detect and batch (:func:`satdelta.imagery.block_run.uses_blocks`).
runner_option = click.option(
    "--runner",
    type=click.Choice(["auto", "whole", "blocks"]),
    default="auto",
    show_default=True,
    help="whole: both scenes in memory; blocks: block by block in bounded memory; auto: "
    "blocks for grids of 4096 x 4096 pixels or more (docs/design-blocks.md).",
)
