"""Drawing primitives of the sample scenes: materials, sun shadows, a supersampled canvas.

Objects are shapely polygons in map metres painted at ``SUPERSAMPLE`` x the output resolution
and averaged down (area-weighted anti-aliasing); see ``docs/sample-data.md`` for how the
sample is made.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from affine import Affine
from rasterio.features import rasterize
from satdelta.sample_data.sites import (
    BAND_NAMES,
)
from scipy import ndimage
from shapely import affinity
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

__all__ = [
    "AIRCRAFT_BLUE",
    "AIRCRAFT_RED",
    "AIRCRAFT_WHITE",
    "ASPHALT",
    "CONCRETE",
    "Canvas",
    "ENGINE_GREY",
    "GRANITE",
    "GRASS",
    "GRASS_DRY",
    "JOINT",
    "PAINT_RED",
    "PAINT_WHITE",
    "PAINT_YELLOW",
    "PSF_SIGMA_PX",
    "ROOF_EDGE",
    "ROOF_GREEN",
    "ROOF_GREY",
    "SHADOW",
    "SUN_AZIMUTH_DEG",
    "SUN_ELEVATION_DEG",
    "SUPERSAMPLE",
    "TREE",
    "UNIFORM_NAVY",
    "UNIFORM_OLIVE",
    "UNIFORM_WHITE",
    "VEHICLE_OLIVE",
    "VEHICLE_YELLOW",
    "cast_shadow",
    "fractal",
    "shadow_vector",
]

SUPERSAMPLE = 4
PSF_SIGMA_PX = 0.5
#: Sun for both dates (late-morning pass, late spring at 39 N): shadows point away from it.
SUN_AZIMUTH_DEG = 150.0
SUN_ELEVATION_DEG = 60.0


# ---------------------------------------------------------------------------------------------
# Materials: mean DN (red, green, blue, nir) before any gain/offset.
GRASS = (72.0, 96.0, 58.0, 165.0)
GRASS_DRY = (98.0, 104.0, 70.0, 140.0)
ASPHALT = (78.0, 80.0, 84.0, 82.0)
CONCRETE = (158.0, 156.0, 150.0, 150.0)
GRANITE = (182.0, 176.0, 166.0, 170.0)
JOINT = (118.0, 116.0, 112.0, 112.0)
PAINT_WHITE = (232.0, 232.0, 228.0, 215.0)
PAINT_YELLOW = (215.0, 182.0, 62.0, 195.0)
PAINT_RED = (188.0, 52.0, 46.0, 150.0)
TREE = (38.0, 66.0, 34.0, 185.0)
ROOF_GREY = (124.0, 120.0, 116.0, 118.0)
ROOF_GREEN = (64.0, 108.0, 92.0, 98.0)
ROOF_EDGE = (96.0, 94.0, 92.0, 92.0)
AIRCRAFT_WHITE = (226.0, 229.0, 231.0, 214.0)
AIRCRAFT_BLUE = (42.0, 64.0, 128.0, 70.0)
AIRCRAFT_RED = (170.0, 48.0, 44.0, 120.0)
ENGINE_GREY = (140.0, 142.0, 146.0, 132.0)
VEHICLE_OLIVE = (74.0, 82.0, 54.0, 96.0)
VEHICLE_YELLOW = (205.0, 170.0, 40.0, 170.0)
UNIFORM_OLIVE = (58.0, 66.0, 46.0, 84.0)
UNIFORM_NAVY = (40.0, 46.0, 74.0, 60.0)
UNIFORM_WHITE = (214.0, 214.0, 210.0, 196.0)
SHADOW = (0.38, 0.42, 0.52, 0.32)  # multiplicative, bluish (sky light)


def shadow_vector(height_m: float) -> tuple[float, float]:
    """Map displacement (dx east, dy north) of a shadow cast from ``height_m``."""
    length = height_m / math.tan(math.radians(SUN_ELEVATION_DEG))
    away = math.radians(SUN_AZIMUTH_DEG + 180.0)
    return length * math.sin(away), length * math.cos(away)


def cast_shadow(footprint: BaseGeometry, bottom_m: float, top_m: float) -> BaseGeometry:
    """Shadow of a vertical prism ``footprint`` x [bottom, top] on flat ground."""
    parts = []
    for h in np.linspace(bottom_m, top_m, 7):
        dx, dy = shadow_vector(float(h))
        parts.append(affinity.translate(footprint, dx, dy))
    shadow = unary_union(parts)
    if bottom_m == 0.0:
        shadow = unary_union([shadow, footprint])
    # close the gaps between the translated copies (at most a few cm wide)
    return shadow.buffer(0.15, join_style="mitre").buffer(-0.15, join_style="mitre")


# ---------------------------------------------------------------------------------------------
class Canvas:
    """A (band, row, col) float32 canvas at SUPERSAMPLE x the output resolution."""

    def __init__(self, transform: Affine, size: int) -> None:
        self.size = size * SUPERSAMPLE
        self.transform = transform @ Affine.scale(1.0 / SUPERSAMPLE)
        self.data = np.zeros((len(BAND_NAMES), self.size, self.size), np.float32)

    def window(self, geom: BaseGeometry) -> tuple[slice, slice] | None:
        minx, miny, maxx, maxy = geom.bounds
        inv = ~self.transform
        c0, r0 = inv @ (minx, maxy)
        c1, r1 = inv @ (maxx, miny)
        r0, c0 = max(int(math.floor(r0)) - 1, 0), max(int(math.floor(c0)) - 1, 0)
        r1, c1 = min(int(math.ceil(r1)) + 1, self.size), min(int(math.ceil(c1)) + 1, self.size)
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def mask(self, geom: BaseGeometry) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """Window and boolean mask (True = pixel centre inside ``geom``)."""
        if geom.is_empty:
            return None
        win = self.window(geom)
        if win is None:
            return None
        rs, cs = win
        wt = self.transform @ Affine.translation(cs.start, rs.start)
        m = rasterize(
            [(geom, 1)],
            out_shape=(rs.stop - rs.start, cs.stop - cs.start),
            transform=wt,
            fill=0,
            dtype="uint8",
        ).astype(bool)
        return win, m

    def xy(self, win: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
        """Map x, y of the pixel centres inside a window."""
        rs, cs = win
        cols = np.arange(cs.start, cs.stop) + 0.5
        rows = np.arange(rs.start, rs.stop) + 0.5
        x = self.transform.c + cols * self.transform.a
        y = self.transform.f + rows * self.transform.e
        return np.meshgrid(x, y)

    def paint(
        self,
        geom: BaseGeometry,
        colour: Iterable[float],
        *,
        texture: np.ndarray | None = None,
        amplitude: float = 0.0,
    ) -> None:
        """Fill ``geom`` with ``colour`` (optionally modulated by ``1 + amplitude * texture``)."""
        got = self.mask(geom)
        if got is None:
            return
        (rs, cs), m = got
        self.paint_mask((rs, cs), m, colour, texture=texture, amplitude=amplitude)

    def paint_mask(
        self,
        win: tuple[slice, slice],
        m: np.ndarray,
        colour: Iterable[float],
        *,
        texture: np.ndarray | None = None,
        amplitude: float = 0.0,
    ) -> None:
        rs, cs = win
        col = np.asarray(tuple(colour), np.float32)[:, None]
        sub = self.data[:, rs, cs]
        if texture is None:
            sub[:, m] = col
        else:
            sub[:, m] = col * (1.0 + amplitude * texture[rs, cs][m])[None, :]

    def shade(self, geom: BaseGeometry, factors: Iterable[float] = SHADOW) -> None:
        """Multiply the canvas inside ``geom`` by per-band ``factors``."""
        got = self.mask(geom)
        if got is None:
            return
        (rs, cs), m = got
        sub = self.data[:, rs, cs]
        sub[:, m] *= np.asarray(tuple(factors), np.float32)[:, None]

    def downsample(self) -> np.ndarray:
        n = self.size // SUPERSAMPLE
        b = self.data.shape[0]
        return self.data.reshape(b, n, SUPERSAMPLE, n, SUPERSAMPLE).mean(axis=(2, 4))


def fractal(
    rng: np.random.Generator, size: int, scales: Iterable[tuple[float, float]]
) -> np.ndarray:
    """Zero-mean, unit-std texture: a weighted sum of Gaussian-filtered white noise.

    Generated at the output resolution and repeated onto the supersampled canvas.
    """
    acc = np.zeros((size, size), np.float64)
    for sigma, weight in scales:
        n = rng.standard_normal((size, size))
        if sigma > 0:
            n = ndimage.gaussian_filter(n, sigma, mode="wrap")
        acc += weight * n / max(n.std(), 1e-12)
    acc = (acc - acc.mean()) / acc.std()
    return np.repeat(np.repeat(acc.astype(np.float32), SUPERSAMPLE, 0), SUPERSAMPLE, 1)
