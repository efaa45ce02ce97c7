"""The things that stand on the sample sites' ground: aircraft, vehicles, trees, buildings."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from satdelta.sample_data.canvas import (
    AIRCRAFT_BLUE,
    AIRCRAFT_RED,
    AIRCRAFT_WHITE,
    ENGINE_GREY,
    GRASS,
    ROOF_EDGE,
    SUN_AZIMUTH_DEG,
    SUPERSAMPLE,
    TREE,
    Canvas,
    cast_shadow,
    fractal,
)
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

__all__ = [
    "AIRCRAFT_TYPES",
    "AircraftType",
    "SceneObject",
    "SiteScene",
    "aircraft",
    "building",
    "grass_ground",
    "joint_grid",
    "line",
    "place",
    "tree_row",
    "vehicle",
]


@dataclass
class SiteScene:
    """The objects of one site: ground painter plus change objects per date."""

    ground: Callable[[Canvas], None]
    before_objects: list[SceneObject] = field(default_factory=list)
    after_objects: list[SceneObject] = field(default_factory=list)
    static_objects: list[SceneObject] = field(default_factory=list)


@dataclass
class SceneObject:
    """A thing standing on the ground: parts (geometry, colour, heights) and a label."""

    label: str
    name: str
    parts: list[tuple[BaseGeometry, tuple[float, ...], float, float]]
    # optional custom painter for textured objects (troop blocks)
    painter: Callable[[Canvas], None] | None = None
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
        return unary_union([cast_shadow(g, lo, hi) for g, _, lo, hi in self.parts if hi > 0])

    @property
    def changed_area(self) -> BaseGeometry:
        return unary_union([self.footprint, self.shadow])

    def paint_shadow(self, canvas: Canvas) -> None:
        if self.painter is None:
            canvas.shade(self.shadow)

    def paint(self, canvas: Canvas) -> None:
        if self.painter is not None:
            self.painter(canvas)
            return
        for geom, colour, _, _ in self.parts:
            canvas.paint(geom, colour)


def place(geom: BaseGeometry, heading_deg: float, x: float, y: float) -> BaseGeometry:
    """Rotate a shape drawn nose-up (heading 0 = north) clockwise by ``heading_deg``, then move."""
    g = affinity.rotate(geom, -heading_deg, origin=(0.0, 0.0))
    return affinity.translate(g, x, y)


@dataclass(frozen=True)
class AircraftType:
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
    "Il-62": AircraftType(
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
    "Tu-204": AircraftType(
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
    "An-148": AircraftType(
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
    "Il-76": AircraftType(
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
    "An-24": AircraftType(
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


def aircraft(kind: str, x: float, y: float, heading_deg: float, name: str) -> SceneObject:
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
    placed = [(place(g, heading_deg, x, y), c, lo, hi) for g, c, lo, hi in parts]
    # paint order: wings, engines under them would be hidden; keep engines visible (under-wing
    # pods stick out ahead of the leading edge) by painting them after the wings
    order = [0, *range(5, len(placed)), 1, 2, 3, 4]
    return SceneObject("aircraft", name, [placed[i] for i in order])


def vehicle(
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
        (place(hull, heading_deg, x, y), colour, 0.5, height),
        (place(cab, heading_deg, x, y), tuple(0.8 * c for c in colour), height, height + 0.3),
    ]


def tree_row(
    canvas: Canvas,
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
        canvas.shade(cast_shadow(crown, h - 2 * r, h))
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


def building(canvas: Canvas, roof: BaseGeometry, height: float, colour: tuple[float, ...]) -> None:
    canvas.shade(cast_shadow(roof, 0.0, height))
    canvas.paint(roof, ROOF_EDGE)
    canvas.paint(roof.buffer(-1.0, join_style="mitre"), colour)


def line(coords: list[tuple[float, float]], width: float) -> BaseGeometry:
    return LineString(coords).buffer(width / 2, cap_style="flat", join_style="mitre")


def grass_ground(
    canvas: Canvas, rng: np.random.Generator, cx: float, cy: float, half: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cover the site (and a 5 m margin) with textured grass; return the (fine, coarse)
    textures, drawn from ``rng`` in that order, for the rest of the ground to reuse."""
    size = canvas.size // SUPERSAMPLE
    tex_fine = fractal(rng, size, [(0.0, 0.5), (1.0, 1.0), (4.0, 0.6)])
    tex_coarse = fractal(rng, size, [(6.0, 0.5), (20.0, 1.0)])
    everything = box(cx - half - 5, cy - half - 5, cx + half + 5, cy + half + 5)
    canvas.paint(everything, GRASS, texture=tex_fine, amplitude=0.10)
    return tex_fine, tex_coarse


def joint_grid(
    canvas: Canvas,
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
