"""The cursor's map coordinates and lon/lat in napari's status bar.

napari's status thread overwrites ``viewer.status`` set from a mouse callback,
so instead each layer's ``get_status`` is wrapped to append easting/northing
and latitude/longitude to the coordinates it reports.  The wrapper runs in
napari's status thread; :class:`~._frame.MapFrame` keeps one pyproj
Transformer per thread.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from satdelta.plugins.napari._frame import MapFrame
from satdelta.plugins.napari._reader import frame_of_layers

if TYPE_CHECKING:
    import napari

__all__ = ["format_position", "install_lonlat_status"]

log = logging.getLogger(__name__)

_WRAPPED = "_satdelta_status_wrapped"
_HOOKED: weakref.WeakSet = weakref.WeakSet()


def format_position(frame: MapFrame, world: np.ndarray | list[float]) -> str:
    """Map x/y and lon/lat of a world position, as one short status string.

    Examples
    --------
    >>> f = MapFrame("EPSG:32651", 500000.0, 4000000.0)
    >>> format_position(f, [20.0, 10.0])
    'E 500010.0 N 3999980.0 | 36.144538°N 123.000111°E'
    >>> format_position(MapFrame(None, 0.0, 0.0), [3, 4])
    'x 4.0 y 3.0 (not georeferenced)'
    """
    w = np.asarray(world, dtype=np.float64)[-2:]
    x, y = frame.world_to_map([w])[0]
    if not frame.georeferenced:
        return f"x {x:.1f} y {y:.1f} (not georeferenced)"
    lon, lat = frame.map_to_lonlat(np.array([[x, y]]))[0]
    ns = "N" if lat >= 0 else "S"
    ew = "E" if lon >= 0 else "W"
    return f"E {x:.1f} N {y:.1f} | {abs(lat):.6f}°{ns} {abs(lon):.6f}°{ew}"


def _wrap(layer: Any, viewer: napari.Viewer) -> None:
    if getattr(layer, _WRAPPED, False):
        return
    original = layer.get_status

    def get_status(position=None, *, view_direction=None, dims_displayed=None, world=False):  # noqa: ANN001
        status = original(
            position, view_direction=view_direction, dims_displayed=dims_displayed, world=world
        )
        if position is None:
            return status
        try:
            frame = frame_of_layers([layer]) or frame_of_layers(list(viewer.layers))
            if frame is None:
                return status
            pos = np.asarray(position, dtype=np.float64)
            if not world:
                pos = np.asarray(layer.data_to_world(pos), dtype=np.float64)
            text = format_position(frame, pos)
        except Exception as exc:  # noqa: BLE001 - never break napari's status bar
            log.debug("no map position for the status bar: %s", exc)
            return status
        if isinstance(status, dict):
            status = dict(status)
            status["coordinates"] = f"{status.get('coordinates', '')} | {text}"
            return status
        return f"{status} | {text}"

    layer.get_status = get_status
    setattr(layer, _WRAPPED, True)


def install_lonlat_status(viewer: napari.Viewer) -> None:
    """Show map x/y and lon/lat of the cursor for every current and future layer."""
    for layer in viewer.layers:
        _wrap(layer, viewer)
    if viewer not in _HOOKED:
        viewer.layers.events.inserted.connect(lambda e: _wrap(e.value, viewer))
        _HOOKED.add(viewer)
