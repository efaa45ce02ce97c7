"""Generate the synthetic sample scenes, their true change polygons and nothing else.

Run ``python -m satdelta.sample_data.generate [--outdir DIR]`` to (re)write, for each site in
:data:`SITE_SPECS`::

    <site>_<before date>.tif   4-band (red, green, blue, nir) uint8 GeoTIFF, EPSG:32651, 0.5 m
    <site>_<after date>.tif    same grid; ground shifted by a sub-pixel amount, other gain/offset
    <site>_truth.geojson       RFC 7946 polygons (lon/lat) of every object that changed

The scenes are **synthetic**: no real imagery is used. They are placed at the real sites'
coordinates (Pyongyang Sunan airport apron and Kim Il Sung Square) so that the demo's outputs land
on the right spot of a map, and they imitate what the motivating news report describes: civilian
aircraft that leave an apron, and troop/vehicle blocks plus painted markings that appear on a
square.

How a scene is made
-------------------
1. Every object is a shapely polygon in map metres.  The ground (textured grass, asphalt,
   concrete slabs, granite paving, painted lines, tree rows, buildings) is painted onto a canvas
   at 4x the output resolution (0.125 m), then shadows (each object's footprint translated
   away from the sun by ``height / tan(sun elevation)``), then the objects themselves.
2. The canvas is averaged over 4x4 blocks (area-weighted anti-aliasing) and blurred with a
   Gaussian point-spread function (sigma 0.5 px).
3. The *after* image is shifted by ``shift_after_px`` with a cubic spline
   (:func:`scipy.ndimage.shift`), so its content is misregistered by a fraction of a pixel,
   and scaled per band by ``gain`` and ``offset`` (a different sensor/atmosphere on that date).
4. Independent Gaussian sensor noise is added to each date, and the result is rounded to uint8.

Everything random comes from one seeded :class:`numpy.random.Generator` per site
(:class:`numpy.random.SeedSequence` children for the ground and each date's noise), and the
files are written with fixed creation options and the fixed acquisition date as their only
timestamp, so two runs produce byte-identical files.

The truth polygons are the ground area whose pixels change: an object's footprint together
with the shadow it casts (both differ between the dates).  They are in ground coordinates, that
is on the *before* grid; a correct co-registration of the after image brings its changes there.
The generator's own parameters (seed, shift, gain, offset, noise) are recorded in the truth file's
``"satdelta"`` member so that tests can measure them back from the pixels.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.enums import ColorInterp
from rasterio.features import rasterize
from satdelta.sample_data.sites import (
    BAND_NAMES,
    CRS,
    PIXEL_SIZE_M,
    SCENE_SIZE_PX,
    SITE_SPECS,
    SiteSpec,
    site_grid,
)
from scipy import ndimage
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box, mapping
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient
from shapely.ops import unary_union

__all__ = [
    "generate",
    "generate_site",
    "main",
]

log = logging.getLogger(__name__)

SUPERSAMPLE = 4
PSF_SIGMA_PX = 0.5
#: Sun for both dates (late-morning pass, late spring at 39 N): shadows point away from it.
SUN_AZIMUTH_DEG = 150.0
SUN_ELEVATION_DEG = 60.0

#: Fixed GeoTIFF creation options (no software/time tags are added by GDAL with these).
CREATION_OPTIONS: dict[str, object] = {
    "driver": "GTiff",
    "tiled": True,
    "blockxsize": 256,
    "blockysize": 256,
    "compress": "DEFLATE",
    "predictor": 2,
    "zlevel": 9,
    "interleave": "pixel",
    "photometric": "RGB",
}


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


def _shadow_vector(height_m: float) -> tuple[float, float]:
    """Map displacement (dx east, dy north) of a shadow cast from ``height_m``."""
    length = height_m / math.tan(math.radians(SUN_ELEVATION_DEG))
    away = math.radians(SUN_AZIMUTH_DEG + 180.0)
    return length * math.sin(away), length * math.cos(away)


def _cast_shadow(footprint: BaseGeometry, bottom_m: float, top_m: float) -> BaseGeometry:
    """Shadow of a vertical prism ``footprint`` x [bottom, top] on flat ground."""
    parts = []
    for h in np.linspace(bottom_m, top_m, 7):
        dx, dy = _shadow_vector(float(h))
        parts.append(affinity.translate(footprint, dx, dy))
    shadow = unary_union(parts)
    if bottom_m == 0.0:
        shadow = unary_union([shadow, footprint])
    # close the gaps between the translated copies (at most a few cm wide)
    return shadow.buffer(0.15, join_style="mitre").buffer(-0.15, join_style="mitre")


# ---------------------------------------------------------------------------------------------
class _Canvas:
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


def _fractal(
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


@dataclass
class _Scene:
    """The objects of one site: ground painter plus change objects per date."""

    ground: Callable[[_Canvas], None]
    before_objects: list[_Object] = field(default_factory=list)
    after_objects: list[_Object] = field(default_factory=list)
    static_objects: list[_Object] = field(default_factory=list)


@dataclass
class _Object:
    """A thing standing on the ground: parts (geometry, colour, heights) and a label."""

    label: str
    name: str
    parts: list[tuple[BaseGeometry, tuple[float, ...], float, float]]
    # optional custom painter for textured objects (troop blocks)
    painter: Callable[[_Canvas], None] | None = None
    shadow_override: BaseGeometry | None = None
    footprint_override: BaseGeometry | None = None

    @property
    def footprint(self) -> BaseGeometry:
        if self.footprint_override is not None:
            return self.footprint_override
        return unary_union([p[0] for p in self.parts])

    @property
    def shadow(self) -> BaseGeometry:
        if self.shadow_override is not None:
            return self.shadow_override
        return unary_union([_cast_shadow(g, lo, hi) for g, _, lo, hi in self.parts if hi > 0])

    @property
    def changed_area(self) -> BaseGeometry:
        return unary_union([self.footprint, self.shadow])

    def paint_shadow(self, canvas: _Canvas) -> None:
        if self.painter is None:
            canvas.shade(self.shadow)

    def paint(self, canvas: _Canvas) -> None:
        if self.painter is not None:
            self.painter(canvas)
            return
        for geom, colour, _, _ in self.parts:
            canvas.paint(geom, colour)


def _place(geom: BaseGeometry, heading_deg: float, x: float, y: float) -> BaseGeometry:
    """Rotate a shape drawn nose-up (heading 0 = north) clockwise by ``heading_deg``, then move."""
    g = affinity.rotate(geom, -heading_deg, origin=(0.0, 0.0))
    return affinity.translate(g, x, y)


@dataclass(frozen=True)
class _AircraftType:
    name: str
    length: float
    span: float
    fuselage_width: float
    wing_root_y: float  # fraction of length from the nose to the wing root leading edge
    root_chord: float
    tip_chord: float
    sweep_deg: float
    tail_span: float
    t_tail: bool
    engines: tuple[tuple[float, float], ...]  # (x, y as fraction of length) of engine pods
    engine_size: tuple[float, float] = (1.8, 4.5)
    wing_height: float = 3.5
    fin_height: float = 12.0


AIRCRAFT_TYPES = {
    # dimensions in metres from public type data (rounded)
    "Il-62": _AircraftType(
        "Il-62",
        53.1,
        43.2,
        3.8,
        0.50,
        9.0,
        2.8,
        35.0,
        12.2,
        True,
        ((-3.0, 0.80), (3.0, 0.80), (-4.6, 0.80), (4.6, 0.80)),
        (1.6, 5.0),
        3.0,
        12.3,
    ),
    "Tu-204": _AircraftType(
        "Tu-204",
        46.2,
        42.0,
        3.8,
        0.40,
        8.5,
        2.2,
        28.0,
        15.0,
        False,
        ((-6.5, 0.40), (6.5, 0.40)),
        (2.4, 5.2),
        3.5,
        13.9,
    ),
    "An-148": _AircraftType(
        "An-148",
        29.1,
        28.9,
        3.4,
        0.38,
        4.5,
        1.8,
        15.0,
        10.5,
        True,
        ((-4.8, 0.36), (4.8, 0.36)),
        (1.8, 4.0),
        4.8,
        8.2,
    ),
    "Il-76": _AircraftType(
        "Il-76",
        46.6,
        50.5,
        4.8,
        0.35,
        9.5,
        3.0,
        25.0,
        17.4,
        True,
        ((-7.5, 0.34), (-12.5, 0.40), (7.5, 0.34), (12.5, 0.40)),
        (1.8, 5.2),
        6.0,
        14.8,
    ),
    "An-24": _AircraftType(
        "An-24",
        23.5,
        29.2,
        2.9,
        0.36,
        3.5,
        1.5,
        6.0,
        9.1,
        False,
        ((-3.9, 0.33), (3.9, 0.33)),
        (1.3, 4.6),
        3.5,
        8.3,
    ),
}


def _aircraft(kind: str, x: float, y: float, heading_deg: float, name: str) -> _Object:
    """A parked aircraft, nose at (x, y), pointing to ``heading_deg`` (0 = north)."""
    t = AIRCRAFT_TYPES[kind]
    L, w = t.length, t.fuselage_width
    # drawn with the nose at the origin, fuselage towards -y
    body = unary_union(
        [
            LineString([(0.0, -w / 2), (0.0, -0.78 * L)]).buffer(w / 2, quad_segs=8),
            Polygon([(-w / 2, -0.78 * L), (w / 2, -0.78 * L), (0.25 * w, -L), (-0.25 * w, -L)]),
        ]
    )

    def wing(span: float, root_y: float, c_root: float, c_tip: float, sweep: float) -> BaseGeometry:
        tan = math.tan(math.radians(sweep))
        half = span / 2
        right = Polygon(
            [
                (w / 2 * 0.9, root_y),
                (half, root_y - (half - w / 2) * tan),
                (half, root_y - (half - w / 2) * tan - c_tip),
                (w / 2 * 0.9, root_y - c_root),
            ]
        )
        return unary_union([right, affinity.scale(right, -1.0, 1.0, origin=(0, 0))])

    wings = wing(t.span, -t.wing_root_y * L, t.root_chord, t.tip_chord, t.sweep_deg)
    tail_y = -0.86 * L if not t.t_tail else -0.90 * L
    stab = wing(t.tail_span, tail_y, 0.34 * t.root_chord + 1.0, 1.3, t.sweep_deg + 5.0)
    fin = box(-0.35, -L + 0.5, 0.35, -0.80 * L)
    stripe = (
        box(-w / 2, -0.72 * L, w / 2, -0.08 * L)
        .intersection(body)
        .difference(box(-0.32 * w, -L, 0.32 * w, 0.0))
    )
    ew, el = t.engine_size
    engines = [
        box(ex - ew / 2, -ey * L - el / 2, ex + ew / 2, -ey * L + el / 2) for ex, ey in t.engines
    ]
    fus_top = w + 1.6
    parts: list[tuple[BaseGeometry, tuple[float, ...], float, float]] = [
        (wings, AIRCRAFT_WHITE, t.wing_height - 0.5, t.wing_height),
        (body, AIRCRAFT_WHITE, 1.6, fus_top),
        (stripe, AIRCRAFT_BLUE, 1.6, 1.6 + 0.5 * w),
        (
            stab,
            AIRCRAFT_WHITE,
            t.fin_height - 0.8 if t.t_tail else fus_top,
            t.fin_height if t.t_tail else fus_top + 0.5,
        ),
        (fin, AIRCRAFT_RED, fus_top, t.fin_height),
    ]
    for e in engines:
        parts.append((e, ENGINE_GREY, max(t.wing_height - 2.5, 0.8), t.wing_height))
    placed = [(_place(g, heading_deg, x, y), c, lo, hi) for g, c, lo, hi in parts]
    # paint order: wings, engines under them would be hidden; keep engines visible (under-wing
    # pods stick out ahead of the leading edge) by painting them after the wings
    order = [0, *range(5, len(placed)), 1, 2, 3, 4]
    return _Object("aircraft", name, [placed[i] for i in order])


def _vehicle(
    x: float,
    y: float,
    heading_deg: float,
    *,
    length: float,
    width: float,
    height: float,
    colour: tuple[float, ...],
) -> list[tuple[BaseGeometry, tuple, float, float]]:
    hull = box(-width / 2, -length, width / 2, 0.0)
    cab = box(-width / 2 + 0.2, -1.8, width / 2 - 0.2, -0.2)
    return [
        (_place(hull, heading_deg, x, y), colour, 0.5, height),
        (_place(cab, heading_deg, x, y), tuple(0.8 * c for c in colour), height, height + 0.3),
    ]


def _tree_row(
    canvas: _Canvas,
    rng: np.random.Generator,
    start: tuple[float, float],
    end: tuple[float, float],
    spacing: float,
) -> None:
    """Trees of 2.5-4 m crown radius along a line, shadows first, crowns lit from the sun."""
    (x0, y0), (x1, y1) = start, end
    n = int(math.hypot(x1 - x0, y1 - y0) // spacing) + 1
    trees = []
    for i in range(n):
        f = i / max(n - 1, 1)
        cx = x0 + f * (x1 - x0) + rng.normal(0, 0.6)
        cy = y0 + f * (y1 - y0) + rng.normal(0, 0.6)
        trees.append((cx, cy, float(rng.uniform(2.5, 4.0)), float(rng.uniform(8.0, 12.0))))
    for cx, cy, r, h in trees:
        crown = Point(cx, cy).buffer(r, quad_segs=12)
        canvas.shade(_cast_shadow(crown, h - 2 * r, h))
    sun = math.radians(SUN_AZIMUTH_DEG)
    sx, sy = math.sin(sun), math.cos(sun)
    for cx, cy, r, _ in trees:
        crown = Point(cx, cy).buffer(r, quad_segs=12)
        got = canvas.mask(crown)
        if got is None:
            continue
        win, m = got
        X, Y = canvas.xy(win)
        lit = ((X - cx) * sx + (Y - cy) * sy) / r  # -1 (shaded side) .. 1 (sunny side)
        rs, cs = win
        sub = canvas.data[:, rs, cs]
        col = np.asarray(TREE, np.float32)[:, None]
        sub[:, m] = col * (0.95 + 0.3 * lit[m])[None, :]


def _building(
    canvas: _Canvas, roof: BaseGeometry, height: float, colour: tuple[float, ...]
) -> None:
    canvas.shade(_cast_shadow(roof, 0.0, height))
    canvas.paint(roof, ROOF_EDGE)
    canvas.paint(roof.buffer(-1.0, join_style="mitre"), colour)


def _line(coords: list[tuple[float, float]], width: float) -> BaseGeometry:
    return LineString(coords).buffer(width / 2, cap_style="flat", join_style="mitre")


def _grass_ground(
    canvas: _Canvas, rng: np.random.Generator, cx: float, cy: float, half: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cover the site (and a 5 m margin) with textured grass; return the (fine, coarse)
    textures, drawn from ``rng`` in that order, for the rest of the ground to reuse."""
    size = canvas.size // SUPERSAMPLE
    tex_fine = _fractal(rng, size, [(0.0, 0.5), (1.0, 1.0), (4.0, 0.6)])
    tex_coarse = _fractal(rng, size, [(6.0, 0.5), (20.0, 1.0)])
    everything = box(cx - half - 5, cy - half - 5, cx + half + 5, cy + half + 5)
    canvas.paint(everything, GRASS, texture=tex_fine, amplitude=0.10)
    return tex_fine, tex_coarse


def _joint_grid(
    canvas: _Canvas,
    area: BaseGeometry,
    origin: tuple[float, float],
    *,
    spacing: float,
    width: float,
) -> tuple[tuple[slice, slice], np.ndarray]:
    """The joints of square slabs paving ``area``: ``(window, mask)`` with True = pixel on a
    joint line (``width`` m wide, every ``spacing`` m in x and y from ``origin``)."""
    got = canvas.mask(area)
    assert got is not None
    win, m = got
    X, Y = canvas.xy(win)
    ox, oy = origin
    return win, m & ((np.mod(X - ox, spacing) < width) | (np.mod(Y - oy, spacing) < width))


# ---------------------------------------------------------------------------------------------
def _sunan(cx: float, cy: float, half: float, rng: np.random.Generator) -> _Scene:
    """Apron in front of the terminal: four stands (aircraft leave) and a remote stand."""

    def P(x: float, y: float) -> tuple[float, float]:
        return cx + x, cy + y

    def ground(canvas: _Canvas) -> None:
        tex_fine, tex_coarse = _grass_ground(canvas, rng, cx, cy, half)
        # dry patches of grass
        dry = tex_coarse > 0.8
        canvas.paint_mask(
            (slice(None), slice(None)), dry, GRASS_DRY, texture=tex_fine, amplitude=0.08
        )
        # taxiway (asphalt) with a yellow centre line and its grass shoulders
        taxi = box(*P(-half - 5, -104), *P(half + 5, -74))
        canvas.paint(taxi, ASPHALT, texture=tex_fine, amplitude=0.05)
        canvas.paint(_line([P(-half - 5, -89), P(half + 5, -89)], 0.6), PAINT_YELLOW)
        canvas.paint(_line([P(-half - 5, -75.5), P(half + 5, -75.5)], 0.5), PAINT_WHITE)
        # connector from the apron to the taxiway
        canvas.paint(box(*P(-20, -75), *P(20, -62)), ASPHALT, texture=tex_fine, amplitude=0.05)
        # apron: concrete slabs 5 m x 5 m with darker joints and weathering
        apron = box(*P(-half - 5, -62), *P(half + 5, 92))
        canvas.paint(apron, CONCRETE, texture=tex_coarse, amplitude=0.05)
        win, joints = _joint_grid(canvas, apron, (cx, cy), spacing=5.0, width=0.18)
        canvas.paint_mask(win, joints, JOINT)
        # oil stains and tyre marks on the stands (same on both dates)
        for sx in (-90.0, -35.0, 20.0, 75.0):
            for _ in range(5):
                ox, oy = rng.normal(sx, 2.0), rng.uniform(40.0, 70.0)
                stain = Point(*P(ox, oy)).buffer(float(rng.uniform(0.6, 1.6)), quad_segs=8)
                canvas.shade(stain, (0.82, 0.82, 0.84, 0.85))
        # apron taxi lane and stand lead-in lines, stop bars, safety boxes
        canvas.paint(_line([P(-half - 5, -38), P(half + 5, -38)], 0.6), PAINT_YELLOW)
        for sx in (-90.0, -35.0, 20.0, 75.0):
            canvas.paint(_line([P(sx, -38), P(sx, 82)], 0.5), PAINT_YELLOW)
            canvas.paint(_line([P(sx - 3, 82), P(sx + 3, 82)], 0.8), PAINT_YELLOW)
            canvas.paint(
                _line([P(sx - 27, 86), P(sx - 27, 0), P(sx + 27, 0), P(sx + 27, 86)], 0.4),
                PAINT_RED,
            )
        canvas.paint(_line([P(70, -50), P(120, -50)], 0.5), PAINT_YELLOW)
        canvas.paint(_line([P(95, -38), P(95, 8)], 0.5), PAINT_YELLOW)
        # terminal building along the north edge (its shadow falls north, out of the scene)
        _building(canvas, box(*P(-half - 5, 92), *P(60, half + 5)), 18.0, ROOF_GREY)
        _building(canvas, box(*P(-70, 88), *P(-50, 92)), 10.0, ROOF_GREY)  # jet bridge head
        # service road, tree row and a fire station on the grass east of the terminal
        canvas.paint(box(*P(60, 96), *P(half + 5, 104)), ASPHALT, texture=tex_fine, amplitude=0.05)
        _tree_row(canvas, rng, P(66, 112), P(half, 112), 8.0)
        _tree_row(canvas, rng, P(-half, -118), P(half, -118), 9.0)
        _building(canvas, box(*P(90, -128), *P(120, -112)), 7.0, ROOF_GREEN)

    before = [
        _aircraft("Il-62", *P(-90, 80), 0.0, "stand 1: Il-62"),
        _aircraft("Tu-204", *P(-35, 80), 0.0, "stand 2: Tu-204"),
        _aircraft("An-148", *P(20, 80), 0.0, "stand 3: An-148"),
        _aircraft("Il-76", *P(75, 80), 0.0, "stand 4: Il-76"),
        _Object(
            "vehicles",
            "tug and stairs at stand 1",
            _vehicle(*P(-90, 86), 180.0, length=6.0, width=2.6, height=2.0, colour=VEHICLE_YELLOW)
            + _vehicle(*P(-98, 70), 90.0, length=7.0, width=2.4, height=3.2, colour=VEHICLE_YELLOW),
        ),
        _Object(
            "vehicles",
            "bus at stand 2",
            _vehicle(
                *P(-52, 40),
                0.0,
                length=12.0,
                width=2.6,
                height=3.0,
                colour=(190.0, 70.0, 60.0, 140.0),
            ),
        ),
    ]
    static = [_aircraft("An-24", *P(95, -6), 180.0, "remote stand: An-24 (stays)")]
    return _Scene(ground=ground, before_objects=before, static_objects=static)


def _troop_block(
    x0: float, y0: float, cols: int, rows: int, pitch: float, colour: tuple[float, ...], name: str
) -> _Object:
    """A rectangular formation: people as 0.6 m discs on a lattice, 1.7 m tall (shadows)."""
    w, h = (cols - 1) * pitch, (rows - 1) * pitch
    extent = box(x0 - 0.3, y0 - 0.3, x0 + w + 0.3, y0 + h + 0.3)
    sdx, sdy = _shadow_vector(1.7)
    shadow = unary_union([extent, affinity.translate(extent, sdx, sdy)]).convex_hull

    def painter(canvas: _Canvas) -> None:
        got = canvas.mask(shadow.buffer(0.5))
        if got is None:
            return
        win, _ = got
        X, Y = canvas.xy(win)
        # nearest lattice point
        i = np.clip(np.rint((X - x0) / pitch), 0, cols - 1)
        j = np.clip(np.rint((Y - y0) / pitch), 0, rows - 1)
        px, py = x0 + i * pitch, y0 + j * pitch
        person = np.hypot(X - px, Y - py) < 0.3
        # shadow: distance to the segment from the person's feet to the tip of the shadow,
        # checked against the lattice point "upwind" too
        shade = np.zeros_like(person)
        for di in (0, 1):
            for dj in (-1, 0):
                qx = x0 + np.clip(i + di, 0, cols - 1) * pitch
                qy = y0 + np.clip(j + dj, 0, rows - 1) * pitch
                t = np.clip(((X - qx) * sdx + (Y - qy) * sdy) / (sdx**2 + sdy**2), 0.0, 1.0)
                d = np.hypot(X - (qx + t * sdx), Y - (qy + t * sdy))
                shade |= d < 0.22
        rs, cs = win
        sub = canvas.data[:, rs, cs]
        sub[:, shade & ~person] *= np.asarray(SHADOW, np.float32)[:, None]
        canvas.paint_mask(win, person, colour)

    return _Object(
        "personnel formation",
        name,
        [],
        painter=painter,
        shadow_override=shadow,
        footprint_override=extent,
    )


def _kim_il_sung_square(cx: float, cy: float, half: float, rng: np.random.Generator) -> _Scene:
    """Granite square with roads and tree rows; troop/vehicle blocks and paint appear."""

    def P(x: float, y: float) -> tuple[float, float]:
        return cx + x, cy + y

    def ground(canvas: _Canvas) -> None:
        tex_fine, tex_coarse = _grass_ground(canvas, rng, cx, cy, half)
        # roads: north street, east riverside avenue, south street
        canvas.paint(
            box(*P(-half - 5, 108), *P(half + 5, half + 5)),
            ASPHALT,
            texture=tex_fine,
            amplitude=0.05,
        )
        canvas.paint(
            box(*P(100, -half - 5), *P(half + 5, half + 5)),
            ASPHALT,
            texture=tex_fine,
            amplitude=0.05,
        )
        canvas.paint(
            box(*P(-half - 5, -half - 5), *P(half + 5, -112)),
            ASPHALT,
            texture=tex_fine,
            amplitude=0.05,
        )
        for xl in (107.0, 114.0, 121.0):
            for y in np.arange(-half - 5, half + 5, 9.0):
                canvas.paint(_line([P(xl, float(y)), P(xl, float(y) + 4.5)], 0.3), PAINT_WHITE)
        for yl in (118.0, -120.0):
            canvas.paint(_line([P(-half - 5, yl), P(100, yl)], 0.3), PAINT_YELLOW)
        # the square: granite slabs (2 m) with a faint joint grid and weathering
        square = box(*P(-104, -104), *P(92, 102))
        canvas.paint(square, GRANITE, texture=tex_coarse, amplitude=0.04)
        win, joints = _joint_grid(canvas, square, (cx, cy), spacing=2.0, width=0.08)
        rs, cs = win
        sub = canvas.data[:, rs, cs]
        sub[:, joints] *= 0.9
        # permanent position markers (small white squares every 10 m), on both dates
        for x in np.arange(-95.0, 90.0, 10.0):
            for y in np.arange(-95.0, 100.0, 10.0):
                canvas.paint(
                    box(*P(float(x) - 0.35, float(y) - 0.35), *P(float(x) + 0.35, float(y) + 0.35)),
                    PAINT_WHITE,
                )
        # west: stepped terrace and the roof of the Grand People's Study House (green tiles)
        canvas.paint(
            box(*P(-half - 5, -half - 5), *P(-104, half + 5)),
            CONCRETE,
            texture=tex_coarse,
            amplitude=0.04,
        )
        _building(canvas, box(*P(-half - 5, -70), *P(-112, 70)), 30.0, ROOF_GREEN)
        # tree rows on the verges
        _tree_row(canvas, rng, P(96, -half), P(96, half - 22), 8.0)
        _tree_row(canvas, rng, P(-96, 105), P(88, 105), 8.0)
        _tree_row(canvas, rng, P(-96, -108), P(88, -108), 8.0)

    after: list[_Object] = []
    uniforms = (
        UNIFORM_OLIVE,
        UNIFORM_NAVY,
        UNIFORM_OLIVE,
        UNIFORM_WHITE,
        UNIFORM_OLIVE,
        UNIFORM_NAVY,
    )
    k = 0
    for by in (48.0, 14.0):
        for bx in (-78.0, -42.0, -6.0):
            x0, y0 = P(bx, by)
            after.append(_troop_block(x0, y0, 20, 16, 1.2, uniforms[k], f"formation {k + 1}"))
            k += 1
    # two columns of vehicles (trucks/launchers) heading north
    for col, vx in enumerate((46.0, 62.0)):
        parts: list[tuple[BaseGeometry, tuple, float, float]] = []
        for i in range(7):
            parts += _vehicle(
                *P(vx, 60.0 - i * 12.0),
                0.0,
                length=9.0,
                width=3.0,
                height=3.2,
                colour=VEHICLE_OLIVE,
            )
        after.append(_Object("vehicles", f"vehicle column {col + 1}", parts))
    # new paint: outlines of three more block positions, a march line, red guide marks
    for j, bx in enumerate((-78.0, -42.0, -6.0)):
        x0, y0 = P(bx - 1.0, -30.0)
        outline = box(x0, y0, x0 + 25.0, y0 + 20.0)
        ring = outline.difference(outline.buffer(-1.0, join_style="mitre"))
        after.append(
            _Object(
                "ground marking", f"painted block outline {j + 1}", [(ring, PAINT_WHITE, 0.0, 0.0)]
            )
        )
    after.append(
        _Object(
            "ground marking",
            "painted march line",
            [(_line([P(-95, -60), P(85, -60)], 1.2), PAINT_YELLOW, 0.0, 0.0)],
        )
    )
    marks = unary_union([box(*P(x, -78), *P(x + 4.0, -76)) for x in (-80.0, -50.0, -20.0, 10.0)])
    after.append(_Object("ground marking", "red guide marks", [(marks, PAINT_RED, 0.0, 0.0)]))
    return _Scene(ground=ground, after_objects=after)


_BUILDERS: dict[str, Callable[[float, float, float, np.random.Generator], _Scene]] = {
    "sunan-airport": _sunan,
    "kim-il-sung-square": _kim_il_sung_square,
}


# ---------------------------------------------------------------------------------------------
def _render(spec: SiteSpec) -> tuple[np.ndarray, np.ndarray, list[_Object], list[_Object]]:
    transform = site_grid(spec)
    half = SCENE_SIZE_PX * PIXEL_SIZE_M / 2
    cx, cy = transform.c + half, transform.f - half
    ground_seq, before_seq, after_seq = np.random.SeedSequence(spec.seed).spawn(3)
    scene = _BUILDERS[spec.name](cx, cy, half, np.random.default_rng(ground_seq))

    # the ground is painted once (its textures draw from the generator) and shared by both dates
    ground = _Canvas(transform, SCENE_SIZE_PX)
    scene.ground(ground)

    def draw(objects: list[_Object]) -> np.ndarray:
        canvas = _Canvas(transform, SCENE_SIZE_PX)
        canvas.data[...] = ground.data
        for obj in objects:
            obj.paint_shadow(canvas)
        for obj in objects:
            obj.paint(canvas)
        img = canvas.downsample().astype(np.float64)
        return ndimage.gaussian_filter(img, sigma=(0, PSF_SIGMA_PX, PSF_SIGMA_PX), mode="nearest")

    before = draw(scene.static_objects + scene.before_objects)
    after = draw(scene.static_objects + scene.after_objects)
    dy, dx = spec.shift_after_px
    after = ndimage.shift(after, (0.0, dy, dx), order=3, mode="nearest")
    after = after * np.asarray(spec.gain)[:, None, None] + np.asarray(spec.offset)[:, None, None]
    sigma = np.asarray(spec.noise_sigma)[:, None, None]
    before = before + sigma * np.random.default_rng(before_seq).standard_normal(before.shape)
    after = after + sigma * np.random.default_rng(after_seq).standard_normal(after.shape)
    to_u8 = lambda a: np.clip(np.rint(a), 0, 255).astype(np.uint8)  # noqa: E731
    return to_u8(before), to_u8(after), scene.before_objects, scene.after_objects


def _write_tif(
    path: Path, data: np.ndarray, transform: Affine, spec: SiteSpec, date: str, role: str
) -> None:
    profile = dict(CREATION_OPTIONS)
    profile.update(
        count=data.shape[0],
        height=data.shape[1],
        width=data.shape[2],
        dtype="uint8",
        crs=CRS,
        transform=transform,
    )
    # the only timestamp: the fixed acquisition date (late morning local time = 01:30 UTC)
    stamp = date.replace("-", ":") + " 01:30:00"
    with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(BAND_NAMES, start=1):
            dst.set_band_description(i, name)
        dst.colorinterp = [
            ColorInterp.red,
            ColorInterp.green,
            ColorInterp.blue,
            ColorInterp.undefined,
        ]
        dst.update_tags(
            TIFFTAG_DATETIME=stamp,
            TIFFTAG_IMAGEDESCRIPTION=(
                f"SYNTHETIC sample scene ({role}) of {spec.title}, generated by "
                "satdelta.sample_data.generate; not real imagery"
            ),
            ACQUISITION_DATE=date,
            SATDELTA_SAMPLE="synthetic",
            SATDELTA_SITE=spec.name,
        )


def _wgs84(geom: BaseGeometry, to_wgs: Transformer) -> dict:
    g = shapely.transform(geom, lambda x, y: np.stack(to_wgs.transform(x, y)), interleaved=False)
    if isinstance(g, Polygon):
        g = orient(g, sign=1.0)
    elif isinstance(g, MultiPolygon):
        g = MultiPolygon([orient(p, sign=1.0) for p in g.geoms])
    else:  # pragma: no cover - every changed area is polygonal
        raise TypeError(f"expected a polygonal change area, got {g.geom_type}")

    def rnd(obj: object) -> object:
        if isinstance(obj, (list, tuple)):
            if obj and isinstance(obj[0], float):
                return [round(v, 7) for v in obj]
            return [rnd(o) for o in obj]
        return obj

    m = mapping(g)
    return {"type": m["type"], "coordinates": rnd(m["coordinates"])}


def _truth(spec: SiteSpec, transform: Affine, gone: list[_Object], new: list[_Object]) -> dict:
    to_wgs = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    feats = []
    for i, (obj, change) in enumerate(
        [(o, "disappeared") for o in gone] + [(o, "appeared") for o in new], start=1
    ):
        area = obj.changed_area
        feats.append(
            {
                "type": "Feature",
                "id": i,
                "geometry": _wgs84(area, to_wgs),
                "properties": {
                    "id": i,
                    "site": spec.name,
                    "label": obj.label,
                    "name": obj.name,
                    "change": change,
                    "area_m2": round(float(area.area), 2),
                    "footprint_area_m2": round(float(obj.footprint.area), 2),
                    "includes_shadow": bool(not obj.shadow.is_empty),
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": feats,
        "satdelta": {
            "kind": "sample-truth",
            "synthetic": True,
            "site": spec.name,
            "title": spec.title,
            "before": {"file": spec.file_names()[0], "acquired": spec.before},
            "after": {"file": spec.file_names()[1], "acquired": spec.after},
            "area_crs": CRS,
            "generator": {
                "module": "satdelta.sample_data.generate",
                "seed": spec.seed,
                "pixel_size_m": PIXEL_SIZE_M,
                "size_px": SCENE_SIZE_PX,
                "shift_after_px": list(spec.shift_after_px),
                "gain": list(spec.gain),
                "offset": list(spec.offset),
                "noise_sigma": list(spec.noise_sigma),
                "psf_sigma_px": PSF_SIGMA_PX,
                "sun_azimuth_deg": SUN_AZIMUTH_DEG,
                "sun_elevation_deg": SUN_ELEVATION_DEG,
            },
        },
    }


def generate_site(spec: SiteSpec, outdir: str | Path) -> tuple[Path, Path, Path]:
    """Render and write one site's before/after GeoTIFFs and truth GeoJSON.

    Parameters
    ----------
    spec : SiteSpec
        The site to render.
    outdir : str or Path
        Existing or new folder to write into (files are overwritten).

    Returns
    -------
    tuple of Path
        ``(before, after, truth)`` paths.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    transform = site_grid(spec)
    before, after, gone, new = _render(spec)
    names = spec.file_names()
    paths = tuple(out / n for n in names)
    _write_tif(paths[0], before, transform, spec, spec.before, "before")
    _write_tif(paths[1], after, transform, spec, spec.after, "after")
    truth = _truth(spec, transform, gone, new)
    paths[2].write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return paths  # type: ignore[return-value]


def generate(outdir: str | Path | None = None) -> list[Path]:
    """Write every site in :data:`SITE_SPECS` into ``outdir`` (default: this package's folder).

    Returns
    -------
    list of Path
        All files written, in site order (before, after, truth per site).
    """
    out = Path(__file__).resolve().parent if outdir is None else Path(outdir)
    written: list[Path] = []
    for spec in SITE_SPECS:
        written.extend(generate_site(spec, out))
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m satdelta.sample_data.generate [--outdir DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m satdelta.sample_data.generate",
        description="Write the synthetic sample scenes and their truth polygons.",
    )
    parser.add_argument(
        "--outdir",
        type=Path,
        default=None,
        help="folder to write into (default: the sample_data package folder)",
    )
    args = parser.parse_args(argv)
    for path in generate(args.outdir):
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
