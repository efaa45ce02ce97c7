"""The map frame every satdelta layer shares in napari (pure: no napari import).

World coordinates are map units (metres) from the first raster's top-left corner, so
float32 Shapes vertices keep centimetres; :class:`MapFrame` converts world, map and
lon/lat, and :func:`layer_affine` places a raster of any grid in the frame.  Why this
frame: docs/design-napari.md.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from satdelta.imagery.errors import InvalidParameterError, SatdeltaError

__all__ = [
    "FrameError",
    "MapFrame",
    "layer_affine",
    "affine_to_list",
    "affine_from_list",
]


class FrameError(SatdeltaError, ValueError):
    """A layer cannot be placed in, or converted out of, the viewer's map frame."""


def affine_to_list(transform: Affine) -> list[float]:
    """The six coefficients ``[a, b, c, d, e, f]`` of a rasterio transform."""
    return [float(v) for v in tuple(transform)[:6]]


def affine_from_list(values: Sequence[float]) -> Affine:
    """Inverse of :func:`affine_to_list`."""
    if len(values) < 6:
        raise InvalidParameterError(
            f"a transform needs six coefficients a, b, c, d, e, f; got {list(values)}."
        )
    return Affine(*[float(v) for v in values[:6]])


_local = threading.local()


def _transformer(src: str, dst: str) -> Transformer:
    """One pyproj Transformer per (thread, src, dst): they are not thread-safe."""
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    key = (src, dst)
    tr = cache.get(key)
    if tr is None:
        tr = cache[key] = Transformer.from_crs(src, dst, always_xy=True)
    return tr


def _transform_points(points: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Points x/y ``(N, 2)`` from CRS ``src`` to CRS ``dst`` (always x/y order)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    u, v = _transformer(src, dst).transform(pts[:, 0], pts[:, 1])
    return np.column_stack([u, v])


def _crs_text(crs: Any) -> str | None:
    if crs is None:
        return None
    if hasattr(crs, "to_wkt"):
        return crs.to_wkt()
    text = str(crs)
    return text or None


@dataclass(frozen=True)
class MapFrame:
    """A local map frame: ``world = (s * (y - y_ref), x - x_ref)``.

    Parameters
    ----------
    crs : str or None
        WKT (or any pyproj-readable text) of the map CRS; ``None`` when the
        rasters are not georeferenced (world units are then pixels).
    x_ref, y_ref : float
        Map coordinates of the frame origin (the before raster's top-left corner).

    Examples
    --------
    >>> f = MapFrame("EPSG:32651", 500000.0, 4000000.0)
    >>> f.map_to_world([[500010.0, 3999980.0]]).tolist()
    [[20.0, 10.0]]
    """

    crs: str | None
    x_ref: float
    y_ref: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.x_ref) and np.isfinite(self.y_ref)):
            raise FrameError(
                f"a map frame needs a finite origin, got ({self.x_ref}, {self.y_ref}); "
                "check the raster's transform."
            )

    # -- construction -----------------------------------------------------
    @classmethod
    def from_transform(cls, transform: Affine, crs: Any) -> MapFrame:
        """The frame whose origin is the top-left corner of a raster."""
        return cls(_crs_text(crs), float(transform.c), float(transform.f))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (kept in napari layer metadata)."""
        return {"crs": self.crs, "x_ref": self.x_ref, "y_ref": self.y_ref}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MapFrame:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(d.get("crs"), float(d["x_ref"]), float(d["y_ref"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameError(
                f"layer metadata has no valid map frame (expected crs, x_ref, y_ref), got {d!r}; "
                "re-open the layer with the satdelta reader."
            ) from exc

    @property
    def georeferenced(self) -> bool:
        """True when the frame has a CRS (world units are map units)."""
        return self.crs is not None

    @property
    def sign(self) -> float:
        """-1 for north-up georeferenced frames, +1 for pixel frames."""
        return -1.0 if self.georeferenced else 1.0

    def same_crs(self, crs: Any) -> bool:
        """Whether ``crs`` equals the frame's CRS (both ``None`` counts as equal)."""
        other = _crs_text(crs)
        if self.crs is None or other is None:
            return self.crs is None and other is None
        return ProjCRS.from_user_input(self.crs) == ProjCRS.from_user_input(other)

    # -- conversions ------------------------------------------------------
    def map_to_world(self, xy: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Map ``(N, 2)`` x/y to ``(N, 2)`` napari world (row-axis, col-axis), float64."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return np.column_stack([self.sign * (xy[:, 1] - self.y_ref), xy[:, 0] - self.x_ref])

    def world_to_map(self, world: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """napari world ``(N, 2)`` to map x/y ``(N, 2)``, float64."""
        w = np.asarray(world, dtype=np.float64).reshape(-1, 2)
        return np.column_stack([w[:, 1] + self.x_ref, self.sign * w[:, 0] + self.y_ref])

    def world_to_lonlat(self, world: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """napari world ``(N, 2)`` to WGS84 lon/lat ``(N, 2)``.

        Raises
        ------
        FrameError
            When the frame is not georeferenced.
        """
        return self.map_to_lonlat(self.world_to_map(world))

    def map_to_lonlat(self, xy: np.ndarray) -> np.ndarray:
        """Map x/y ``(N, 2)`` in the frame CRS to WGS84 lon/lat ``(N, 2)``."""
        if self.crs is None:
            raise FrameError(
                "these layers are not georeferenced, so they have no lon/lat; "
                "open rasters that carry a CRS to get map coordinates."
            )
        return _transform_points(xy, self.crs, "EPSG:4326")

    def lonlat_to_map(self, lonlat: np.ndarray) -> np.ndarray:
        """WGS84 lon/lat ``(N, 2)`` to map x/y ``(N, 2)`` in the frame CRS."""
        if self.crs is None:
            raise FrameError(
                "these layers are not georeferenced, so lon/lat cannot be placed on them; "
                "open rasters that carry a CRS."
            )
        return _transform_points(lonlat, "EPSG:4326", self.crs)

    def from_crs(self, xy: np.ndarray, crs: Any) -> np.ndarray:
        """Reproject map x/y ``(N, 2)`` from ``crs`` into the frame CRS."""
        if self.same_crs(crs):
            return np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self.crs is None or crs is None:
            raise FrameError(
                "cannot mix georeferenced and non-georeferenced layers in one map frame; "
                "open a pair that both carry a CRS, or both do not."
            )
        return _transform_points(xy, _crs_text(crs), self.crs)


def layer_affine(
    frame: MapFrame,
    transform: Affine,
    crs: Any = None,
    *,
    shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """The napari layer affine placing a raster's pixels in ``frame``.

    Parameters
    ----------
    frame : MapFrame
        The viewer's shared frame.
    transform : affine.Affine
        The raster's rasterio transform (pixel corner ``(col, row)`` to map x/y).
    crs : CRS-like, optional
        The raster's CRS. When it differs from the frame's, a local affine
        approximation is fitted at the raster's centre (needs ``shape``); exact
        for CRSs that differ only by an affine map, approximate otherwise.
    shape : (rows, cols), optional
        Raster size, used only for the approximation above.

    Returns
    -------
    (3, 3) ndarray
        Maps napari data coordinates ``(row, col)`` (pixel centres on whole
        numbers) to world ``(row-axis, col-axis)``.

    Examples
    --------
    >>> f = MapFrame("EPSG:32651", 500000.0, 4000000.0)
    >>> A = layer_affine(f, Affine(10, 0, 500000, 0, -10, 4000000), "EPSG:32651")
    >>> (A @ [0, 0, 1]).tolist()  # centre of the top-left pixel
    [5.0, 5.0, 1.0]
    """
    if not frame.same_crs(crs):
        transform = _approximate_in_frame(frame, transform, crs, shape)
    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
    s = frame.sign
    return np.array(
        [
            [s * e, s * d, s * (f + (d + e) / 2.0 - frame.y_ref)],
            [b, a, c + (a + b) / 2.0 - frame.x_ref],
            [0.0, 0.0, 1.0],
        ],
        dtype=np.float64,
    )


def _approximate_in_frame(
    frame: MapFrame, transform: Affine, crs: Any, shape: tuple[int, int] | None
) -> Affine:
    """Fit an affine from pixel (col, row) to frame-CRS x/y around the raster centre."""
    if shape is None:
        raise FrameError(
            "a raster in another CRS than the viewer's needs its shape to be placed; "
            "pass shape=(rows, cols)."
        )
    rows, cols = shape
    px = np.array([[0.0, 0.0], [cols, 0.0], [0.0, rows]])
    xy = np.array([transform @ tuple(p) for p in px])
    fxy = frame.from_crs(xy, crs)
    # solve x = a*col + b*row + c from the three corners (exact for affine maps)
    m = np.column_stack([px, np.ones(3)])
    ax, bx, cx = np.linalg.solve(m, fxy[:, 0])
    ay, by, cy = np.linalg.solve(m, fxy[:, 1])
    return Affine(ax, bx, cx, ay, by, cy)
