"""Render one chip panel to PNG: the image, the polygon outlined, a scale bar in metres, a
north arrow, a title with the acquisition date and the imagery's attribution burned in.

Drawn with matplotlib's Agg canvas (no pyplot state, no display needed).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle
from numpy.typing import NDArray
from rasterio.warp import transform as transform_points
from satdelta.plugins.evidence.chips import ChipGrid
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

__all__ = ["draw_panel", "north_angle_deg", "scale_bar_m", "stretch"]

PANEL_PX = 480
CAPTION_PX = 56
DPI = 100
OUTLINE = "#00e5ff"


def stretch(image: NDArray[np.floating], low: float = 2, high: float = 98) -> NDArray[np.float32]:
    """``(B, M, N)`` to ``(M, N, 3)`` RGB in [0, 1], each band between its percentiles.

    No-data (NaN) pixels come out black; one band is shown grey.
    """
    out = np.zeros((*image.shape[1:], len(image)), np.float32)
    for i, band in enumerate(image):
        ok = np.isfinite(band)
        if ok.any():
            lo, hi = np.percentile(band[ok], [low, high])
            out[..., i] = np.clip((np.where(ok, band, lo) - lo) / max(hi - lo, 1e-6), 0, 1)
    return np.repeat(out, 3, axis=2) if len(image) == 1 else out


def scale_bar_m(width_m: float) -> float:
    """A round length (1, 2 or 5 times a power of ten, metres) near a quarter of ``width_m``."""
    target = width_m / 4
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def north_angle_deg(grid: ChipGrid) -> float:
    """Clockwise angle from the grid's up direction to true north, at the grid's centre."""
    left, right, bottom, top = grid.extent
    x, y = (left + right) / 2, (bottom + top) / 2
    (lon,), (lat,) = transform_points(grid.crs, "EPSG:4326", [x], [y])
    xs, ys = transform_points("EPSG:4326", grid.crs, [lon, lon], [lat, lat + 1e-3])
    return math.degrees(math.atan2(xs[1] - xs[0], ys[1] - ys[0]))


def _rings(geometry: BaseGeometry) -> list[NDArray[np.float64]]:
    polys = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
    return [
        np.asarray(ring.coords)
        for p in polys
        if isinstance(p, Polygon)
        for ring in (p.exterior, *p.interiors)
    ]


def _scale_bar(ax, grid: ChipGrid) -> None:  # noqa: ANN001 - a matplotlib Axes
    left, right, bottom, top = grid.extent
    length_m = scale_bar_m((right - left) * grid.metres_per_unit)
    length = length_m / grid.metres_per_unit
    pad = (right - left) * 0.04
    x0, y0, h = left + pad, bottom + pad, (top - bottom) * 0.015
    ax.add_patch(
        Rectangle(
            (x0 - pad / 3, y0 - pad / 3),
            length + pad / 1.5,
            h + pad * 1.4,
            fc="white",
            alpha=0.8,
            lw=0,
        )
    )
    ax.add_patch(Rectangle((x0, y0), length, h, fc="black", lw=0))
    label = f"{length_m:g} m" if length_m < 1000 else f"{length_m / 1000:g} km"
    ax.text(x0 + length / 2, y0 + h * 1.5, label, ha="center", va="bottom", fontsize=10)


def _north_arrow(ax, angle_deg: float) -> None:  # noqa: ANN001 - a matplotlib Axes
    x, y = 0.91, 0.85
    ux, uy = math.sin(math.radians(angle_deg)), math.cos(math.radians(angle_deg))
    ax.add_patch(Circle((x, y), 0.085, transform=ax.transAxes, fc="white", alpha=0.8, lw=0))
    ax.annotate(
        "",
        xy=(x + 0.015 * ux, y + 0.015 * uy),
        xytext=(x - 0.07 * ux, y - 0.07 * uy),
        xycoords="axes fraction",
        arrowprops=dict(arrowstyle="-|>", color="black", lw=2.5, mutation_scale=18),
    )
    ax.text(
        x + 0.045 * ux,
        y + 0.045 * uy,
        "N",
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=12,
        fontweight="bold",
    )


def draw_panel(
    path: Path,
    image: NDArray[np.floating],
    grid: ChipGrid,
    outline: BaseGeometry,
    *,
    title: str,
    caption: str,
    colour_map: str | None = None,
) -> None:
    """Write one panel as PNG at ``path``.

    Parameters
    ----------
    image : (B, M, N) or (M, N) ndarray
        Display bands (stretched per band), or a score map shown with ``colour_map`` from 0 to
        its 99th percentile.
    title : str
        Top-left label (what the panel shows and its date).
    caption : str
        The strip under the image (attribution, scene id).
    """
    height = PANEL_PX + CAPTION_PX
    fig = Figure(figsize=(PANEL_PX / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, CAPTION_PX / height, 1, PANEL_PX / height))
    ax.set_axis_off()
    if image.ndim == 2:
        ok = np.isfinite(image)
        top = float(np.percentile(image[ok], 99)) if ok.any() else 1.0
        ax.imshow(
            np.where(ok, image, np.nan),
            extent=grid.extent,
            cmap=colormaps[colour_map or "magma"].with_extremes(bad="black"),  # no data: black
            vmin=0,
            vmax=max(top, 1e-6),
            interpolation="nearest",
        )
    else:
        ax.imshow(stretch(image), extent=grid.extent, interpolation="nearest")
    for ring in _rings(outline):
        ax.plot(ring[:, 0], ring[:, 1], color="black", lw=3.2)
        ax.plot(ring[:, 0], ring[:, 1], color=OUTLINE, lw=1.6)
    left, right, bottom, top = grid.extent
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.text(
        0.02,
        0.98,
        title,
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=12,
        fontweight="bold",
        bbox=dict(boxstyle="round,pad=0.25", fc="white", alpha=0.85, lw=0),
    )
    _scale_bar(ax, grid)
    _north_arrow(ax, north_angle_deg(grid))
    fig.text(0.01, (CAPTION_PX - 6) / height, caption, ha="left", va="top", fontsize=8, wrap=True)
    fig.savefig(path, dpi=DPI, facecolor="white", metadata={"Software": None})
