"""The sample sites: where each synthetic scene sits, its dates and its radiometric setup.

Kept apart from :mod:`satdelta.sample_data.generate` (which renders pixels) so that the
accessors in :mod:`satdelta.sample_data` know the file names without importing the renderer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from satdelta.imagery.errors import InvalidParameterError

__all__ = [
    "BAND_NAMES",
    "CRS",
    "PIXEL_SIZE_M",
    "SCENE_SIZE_PX",
    "SITE_SPECS",
    "SiteSpec",
    "site_grid",
    "site_spec",
]

CRS = "EPSG:32651"  # WGS 84 / UTM zone 51N
PIXEL_SIZE_M = 0.5
SCENE_SIZE_PX = 512
BAND_NAMES = ("red", "green", "blue", "nir")


@dataclass(frozen=True)
class SiteSpec:
    """What to generate for one site.

    Parameters
    ----------
    name : str
        Site identifier used in file names (``sunan-airport``).
    title : str
        Human-readable place name.
    lon, lat : float
        WGS84 centre of the scene (degrees).
    before, after : str
        ISO acquisition dates of the two images.
    seed : int
        Seed of the site's random generator.
    shift_after_px : tuple of float
        ``(dy, dx)``: a ground feature at ``(row, col)`` in the before image is at
        ``(row + dy, col + dx)`` in the after image (both files share one grid).
    gain, offset : tuple of float
        Per band (red, green, blue, nir): ``after = gain * before_radiance + offset`` (DN).
    noise_sigma : tuple of float
        Per-band standard deviation of the sensor noise added to each date (DN).
    """

    name: str
    title: str
    lon: float
    lat: float
    before: str
    after: str
    seed: int
    shift_after_px: tuple[float, float]
    gain: tuple[float, float, float, float]
    offset: tuple[float, float, float, float]
    noise_sigma: tuple[float, float, float, float] = (1.5, 1.5, 1.5, 2.0)

    def __post_init__(self) -> None:
        for name in ("gain", "offset", "noise_sigma"):
            if len(getattr(self, name)) != len(BAND_NAMES):
                raise InvalidParameterError(
                    f"SiteSpec.{name} needs {len(BAND_NAMES)} values ({', '.join(BAND_NAMES)}), "
                    f"got {getattr(self, name)!r}."
                )

    def file_names(self) -> tuple[str, str, str]:
        """Names of the before, after and truth files."""
        return (
            f"{self.name}_{self.before}.tif",
            f"{self.name}_{self.after}.tif",
            f"{self.name}_truth.geojson",
        )


SITE_SPECS: tuple[SiteSpec, ...] = (
    SiteSpec(
        name="sunan-airport",
        title="Pyongyang Sunan International Airport, main apron",
        lon=125.6700,
        lat=39.2240,
        before="2024-05-20",
        after="2024-06-14",
        seed=20240520,
        shift_after_px=(0.4, -0.3),
        gain=(1.07, 1.05, 1.02, 0.94),
        offset=(4.0, 2.0, -3.0, 6.0),
    ),
    SiteSpec(
        name="kim-il-sung-square",
        title="Kim Il Sung Square, Pyongyang",
        lon=125.7528,
        lat=39.0193,
        before="2024-05-18",
        after="2024-06-13",
        seed=20240518,
        shift_after_px=(-0.25, 0.4),
        gain=(0.95, 0.97, 1.03, 1.06),
        offset=(-3.0, 2.0, 5.0, -4.0),
    ),
)


def site_grid(spec: SiteSpec) -> Affine:
    """Geotransform of a site: centred on its coordinates, origin snapped to the 0.5 m grid."""
    from pyproj import Transformer

    to_utm = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    e, n = to_utm.transform(spec.lon, spec.lat)
    half = SCENE_SIZE_PX * PIXEL_SIZE_M / 2
    x0 = math.floor((e - half) / PIXEL_SIZE_M) * PIXEL_SIZE_M
    y0 = math.ceil((n + half) / PIXEL_SIZE_M) * PIXEL_SIZE_M
    return Affine(PIXEL_SIZE_M, 0.0, x0, 0.0, -PIXEL_SIZE_M, y0)


def site_spec(site: str) -> SiteSpec:
    """The :class:`SiteSpec` called ``site``.

    Raises
    ------
    satdelta.imagery.errors.InvalidParameterError
        When ``site`` is not one of the sample sites.
    """
    for spec in SITE_SPECS:
        if spec.name == site:
            return spec
    raise InvalidParameterError(
        f"unknown sample site {site!r}: expected one of "
        f"{', '.join(s.name for s in SITE_SPECS)}. Use satdelta.sample_data.SITES for the list."
    )
