"""What each sample site shows: the ground and the objects before and after (by site name)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from satdelta.sample_data.canvas import (
    ASPHALT,
    CONCRETE,
    GRANITE,
    GRASS_DRY,
    JOINT,
    PAINT_RED,
    PAINT_WHITE,
    PAINT_YELLOW,
    ROOF_GREEN,
    ROOF_GREY,
    SHADOW,
    UNIFORM_NAVY,
    UNIFORM_OLIVE,
    UNIFORM_WHITE,
    VEHICLE_OLIVE,
    VEHICLE_YELLOW,
    Canvas,
    shadow_vector,
)
from satdelta.sample_data.objects import (
    SceneObject,
    SiteScene,
    aircraft,
    building,
    grass_ground,
    joint_grid,
    line,
    tree_row,
    vehicle,
)
from shapely import affinity
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

__all__ = ["SCENE_BUILDERS"]


def _sunan(cx: float, cy: float, half: float, rng: np.random.Generator) -> SiteScene:
    """Apron in front of the terminal: four stands (aircraft leave) and a remote stand."""

    def P(x: float, y: float) -> tuple[float, float]:
        return cx + x, cy + y

    def ground(canvas: Canvas) -> None:
        tex_fine, tex_coarse = grass_ground(canvas, rng, cx, cy, half)
        # dry patches of grass
        dry = tex_coarse > 0.8
        canvas.paint_mask(
            (slice(None), slice(None)), dry, GRASS_DRY, texture=tex_fine, amplitude=0.08
        )
        # taxiway (asphalt) with a yellow centre line and its grass shoulders
        taxi = box(*P(-half - 5, -104), *P(half + 5, -74))
        canvas.paint(taxi, ASPHALT, texture=tex_fine, amplitude=0.05)
        canvas.paint(line([P(-half - 5, -89), P(half + 5, -89)], 0.6), PAINT_YELLOW)
        canvas.paint(line([P(-half - 5, -75.5), P(half + 5, -75.5)], 0.5), PAINT_WHITE)
        # connector from the apron to the taxiway
        canvas.paint(box(*P(-20, -75), *P(20, -62)), ASPHALT, texture=tex_fine, amplitude=0.05)
        # apron: concrete slabs 5 m x 5 m with darker joints and weathering
        apron = box(*P(-half - 5, -62), *P(half + 5, 92))
        canvas.paint(apron, CONCRETE, texture=tex_coarse, amplitude=0.05)
        win, joints = joint_grid(canvas, apron, (cx, cy), spacing=5.0, width=0.18)
        canvas.paint_mask(win, joints, JOINT)
        # oil stains and tyre marks on the stands (same on both dates)
        for sx in (-90.0, -35.0, 20.0, 75.0):
            for _ in range(5):
                ox, oy = rng.normal(sx, 2.0), rng.uniform(40.0, 70.0)
                stain = Point(*P(ox, oy)).buffer(float(rng.uniform(0.6, 1.6)), quad_segs=8)
                canvas.shade(stain, (0.82, 0.82, 0.84, 0.85))
        # apron taxi lane and stand lead-in lines, stop bars, safety boxes
        canvas.paint(line([P(-half - 5, -38), P(half + 5, -38)], 0.6), PAINT_YELLOW)
        for sx in (-90.0, -35.0, 20.0, 75.0):
            canvas.paint(line([P(sx, -38), P(sx, 82)], 0.5), PAINT_YELLOW)
            canvas.paint(line([P(sx - 3, 82), P(sx + 3, 82)], 0.8), PAINT_YELLOW)
            canvas.paint(
                line([P(sx - 27, 86), P(sx - 27, 0), P(sx + 27, 0), P(sx + 27, 86)], 0.4),
                PAINT_RED,
            )
        canvas.paint(line([P(70, -50), P(120, -50)], 0.5), PAINT_YELLOW)
        canvas.paint(line([P(95, -38), P(95, 8)], 0.5), PAINT_YELLOW)
        # terminal building along the north edge (its shadow falls north, out of the scene)
        building(canvas, box(*P(-half - 5, 92), *P(60, half + 5)), 18.0, ROOF_GREY)
        building(canvas, box(*P(-70, 88), *P(-50, 92)), 10.0, ROOF_GREY)  # jet bridge head
        # service road, tree row and a fire station on the grass east of the terminal
        canvas.paint(box(*P(60, 96), *P(half + 5, 104)), ASPHALT, texture=tex_fine, amplitude=0.05)
        tree_row(canvas, rng, P(66, 112), P(half, 112), 8.0)
        tree_row(canvas, rng, P(-half, -118), P(half, -118), 9.0)
        building(canvas, box(*P(90, -128), *P(120, -112)), 7.0, ROOF_GREEN)

    before = [
        aircraft("Il-62", *P(-90, 80), 0.0, "stand 1: Il-62"),
        aircraft("Tu-204", *P(-35, 80), 0.0, "stand 2: Tu-204"),
        aircraft("An-148", *P(20, 80), 0.0, "stand 3: An-148"),
        aircraft("Il-76", *P(75, 80), 0.0, "stand 4: Il-76"),
        SceneObject(
            "vehicles",
            "tug and stairs at stand 1",
            vehicle(*P(-90, 86), 180.0, length=6.0, width=2.6, height=2.0, colour=VEHICLE_YELLOW)
            + vehicle(*P(-98, 70), 90.0, length=7.0, width=2.4, height=3.2, colour=VEHICLE_YELLOW),
        ),
        SceneObject(
            "vehicles",
            "bus at stand 2",
            vehicle(
                *P(-52, 40),
                0.0,
                length=12.0,
                width=2.6,
                height=3.0,
                colour=(190.0, 70.0, 60.0, 140.0),
            ),
        ),
    ]
    static = [aircraft("An-24", *P(95, -6), 180.0, "remote stand: An-24 (stays)")]
    return SiteScene(ground=ground, before_objects=before, static_objects=static)


def _troop_block(
    x0: float, y0: float, cols: int, rows: int, pitch: float, colour: tuple[float, ...], name: str
) -> SceneObject:
    """A rectangular formation: people as 0.6 m discs on a lattice, 1.7 m tall (shadows)."""
    w, h = (cols - 1) * pitch, (rows - 1) * pitch
    extent = box(x0 - 0.3, y0 - 0.3, x0 + w + 0.3, y0 + h + 0.3)
    sdx, sdy = shadow_vector(1.7)
    shadow = unary_union([extent, affinity.translate(extent, sdx, sdy)]).convex_hull

    def painter(canvas: Canvas) -> None:
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

    return SceneObject(
        "personnel formation",
        name,
        [],
        painter=painter,
        shadow_override=shadow,
        footprint_override=extent,
    )


def _kim_il_sung_square(cx: float, cy: float, half: float, rng: np.random.Generator) -> SiteScene:
    """Granite square with roads and tree rows; troop/vehicle blocks and paint appear."""

    def P(x: float, y: float) -> tuple[float, float]:
        return cx + x, cy + y

    def ground(canvas: Canvas) -> None:
        tex_fine, tex_coarse = grass_ground(canvas, rng, cx, cy, half)
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
                canvas.paint(line([P(xl, float(y)), P(xl, float(y) + 4.5)], 0.3), PAINT_WHITE)
        for yl in (118.0, -120.0):
            canvas.paint(line([P(-half - 5, yl), P(100, yl)], 0.3), PAINT_YELLOW)
        # the square: granite slabs (2 m) with a faint joint grid and weathering
        square = box(*P(-104, -104), *P(92, 102))
        canvas.paint(square, GRANITE, texture=tex_coarse, amplitude=0.04)
        win, joints = joint_grid(canvas, square, (cx, cy), spacing=2.0, width=0.08)
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
        building(canvas, box(*P(-half - 5, -70), *P(-112, 70)), 30.0, ROOF_GREEN)
        # tree rows on the verges
        tree_row(canvas, rng, P(96, -half), P(96, half - 22), 8.0)
        tree_row(canvas, rng, P(-96, 105), P(88, 105), 8.0)
        tree_row(canvas, rng, P(-96, -108), P(88, -108), 8.0)

    after: list[SceneObject] = []
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
            parts += vehicle(
                *P(vx, 60.0 - i * 12.0),
                0.0,
                length=9.0,
                width=3.0,
                height=3.2,
                colour=VEHICLE_OLIVE,
            )
        after.append(SceneObject("vehicles", f"vehicle column {col + 1}", parts))
    # new paint: outlines of three more block positions, a march line, red guide marks
    for j, bx in enumerate((-78.0, -42.0, -6.0)):
        x0, y0 = P(bx - 1.0, -30.0)
        outline = box(x0, y0, x0 + 25.0, y0 + 20.0)
        ring = outline.difference(outline.buffer(-1.0, join_style="mitre"))
        after.append(
            SceneObject(
                "ground marking", f"painted block outline {j + 1}", [(ring, PAINT_WHITE, 0.0, 0.0)]
            )
        )
    after.append(
        SceneObject(
            "ground marking",
            "painted march line",
            [(line([P(-95, -60), P(85, -60)], 1.2), PAINT_YELLOW, 0.0, 0.0)],
        )
    )
    marks = unary_union([box(*P(x, -78), *P(x + 4.0, -76)) for x in (-80.0, -50.0, -20.0, 10.0)])
    after.append(SceneObject("ground marking", "red guide marks", [(marks, PAINT_RED, 0.0, 0.0)]))
    return SiteScene(ground=ground, after_objects=after)


SCENE_BUILDERS: dict[str, Callable[[float, float, float, np.random.Generator], SiteScene]] = {
    "sunan-airport": _sunan,
    "kim-il-sung-square": _kim_il_sung_square,
}
