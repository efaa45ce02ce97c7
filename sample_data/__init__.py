"""satdelta.sample_data: the synthetic offline demo (two sites, before/after, a sample report).

The scenes are **synthetic**: :mod:`satdelta.sample_data.generate` renders them (no real
imagery is used) at the real coordinates of Pyongyang Sunan airport's apron and Kim Il Sung
Square, in EPSG:32651 at 0.5 m.  Each site has a before and an after 4-band GeoTIFF and the
true change polygons (RFC 7946 GeoJSON); ``report.json`` is a sample news report whose two
claims point at the sites.

Examples
--------
>>> from satdelta.sample_data import SITES, site_paths, load_report
>>> SITES
('sunan-airport', 'kim-il-sung-square')
>>> site_paths("sunan-airport").before.name
'sunan-airport_2024-05-20.tif'
>>> [c["site"] for c in load_report()["claims"]]
['sunan-airport', 'kim-il-sung-square']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from satdelta.imagery.errors import SatdeltaError
from satdelta.sample_data.sites import SITE_SPECS, site_spec

__all__ = [
    "SITES",
    "SampleDataMissingError",
    "SitePaths",
    "load_report",
    "load_truth",
    "report_path",
    "site_paths",
]

#: Names of the sample sites, in demo order.
SITES: tuple[str, ...] = tuple(spec.name for spec in SITE_SPECS)

_REGENERATE = "regenerate them with `python -m satdelta.sample_data.generate`"


class SampleDataMissingError(SatdeltaError, FileNotFoundError):
    """A sample file is not where the package expects it."""


@dataclass(frozen=True)
class SitePaths:
    """Files of one sample site.

    Attributes
    ----------
    before, after : Path
        4-band (red, green, blue, nir) uint8 GeoTIFFs on one EPSG:32651 0.5 m grid.
    truth : Path
        RFC 7946 FeatureCollection (lon/lat) of the true change polygons (object + shadow).
    """

    before: Path
    after: Path
    truth: Path


def _package_file(name: str) -> Path:
    path = Path(str(resources.files(__name__).joinpath(name)))
    if not path.is_file():
        raise SampleDataMissingError(
            f"sample file not found: expected {path} in the installed satdelta.sample_data "
            f"package, found nothing; {_REGENERATE} or reinstall satdelta."
        )
    return path


def site_paths(site: str) -> SitePaths:
    """Paths of a sample site's before/after GeoTIFFs and truth GeoJSON.

    Parameters
    ----------
    site : str
        One of :data:`SITES`.

    Returns
    -------
    SitePaths

    Raises
    ------
    satdelta.imagery.errors.InvalidParameterError
        ``site`` is not a sample site.
    SampleDataMissingError
        A file is missing from the installed package.
    """
    before, after, truth = site_spec(site).file_names()
    return SitePaths(_package_file(before), _package_file(after), _package_file(truth))


def report_path() -> Path:
    """Path of ``report.json``: ``{"report": {...}, "claims": [...]}``.

    The report has ``title, outlet, url, published, language, notes``; each claim has
    ``site`` (one of :data:`SITES`), ``text, place``, ``point`` ``[lon, lat]``, ``bbox``
    ``[west, south, east, north]`` (WGS84) and ``time_start``/``time_end`` (ISO dates).
    """
    return _package_file("report.json")


def load_report() -> dict[str, Any]:
    """The sample report and its claims, as parsed JSON (see :func:`report_path`)."""
    return json.loads(report_path().read_text(encoding="utf-8"))


def load_truth(site: str) -> dict[str, Any]:
    """The true change polygons of ``site`` as a parsed GeoJSON FeatureCollection.

    Its ``"satdelta"`` member records how the scenes were generated (seed, the after image's
    sub-pixel shift, per-band gain/offset and noise).
    """
    return json.loads(site_paths(site).truth.read_text(encoding="utf-8"))
