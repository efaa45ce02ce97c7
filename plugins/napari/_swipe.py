"""Swipe comparison: before on the left of a draggable divider, after on the right.

A vispy clipping plane on the after layer's visual node hides it left of the divider at
draw time.  It uses private napari API, all of it in :func:`_visual_node` and
:func:`_scene`; why: docs/design-napari.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import napari

__all__ = ["Swipe"]

log = logging.getLogger(__name__)

#: How close (in screen pixels) a press must be to the divider to grab it.
GRAB_PX = 12.0


def _canvas(viewer: napari.Viewer) -> Any:
    return viewer.window._qt_viewer.canvas  # private: napari's VispyCanvas


def _visual_node(viewer: napari.Viewer, layer: Any) -> Any | None:
    vispy_layer = _canvas(viewer).layer_to_visual.get(layer)
    return None if vispy_layer is None else vispy_layer.node


def _scene(viewer: napari.Viewer) -> Any:
    return _canvas(viewer).view.scene


def _view_cols(viewer: napari.Viewer) -> tuple[float, float]:
    """World column range the canvas shows now (left edge, right edge)."""
    camera = viewer.scene.camera
    zoom = float(camera.zoom) or 1.0  # screen px per world unit
    half = _canvas(viewer).size[-1] / (2.0 * zoom)
    centre = float(camera.center[-1])
    return centre - half, centre + half


class Swipe:
    """A divider that shows ``before`` left of it and ``after`` right of it.

    Parameters
    ----------
    viewer : napari.Viewer
        A viewer with a window (the canvas must exist).
    after : napari.layers.Layer
        The layer to clip; it must be drawn above the before layer.

    Notes
    -----
    ``position`` is the divider's world column coordinate (metres east of the
    frame origin for georeferenced layers).  The divider keeps its place on screen
    (``fraction`` of the view's width from the left) through pan and zoom.
    """

    def __init__(self, viewer: napari.Viewer, after: Any) -> None:
        from vispy.scene.visuals import Line
        from vispy.visuals.filters.clipping_planes import PlanesClipper

        self.viewer = viewer
        self.after = after
        self._clipper = PlanesClipper(coord_system="scene")
        self._node: Any | None = None
        self._line = Line(color=(1.0, 1.0, 1.0, 0.95), width=3, method="gl")
        self._line.order = 1_000_000
        self._line.set_gl_state("translucent", depth_test=False)
        self._line.visible = False
        self._line.parent = _scene(viewer)
        self.fraction = 0.5
        self.position = self._at_fraction()
        self.enabled = False
        self._dragging = False
        viewer.layers.events.inserted.connect(self._on_layers_changed)
        viewer.layers.events.removed.connect(self._on_layers_changed)
        viewer.layers.events.moved.connect(self._on_layers_changed)
        viewer.scene.camera.events.center.connect(self._on_camera)
        viewer.scene.camera.events.zoom.connect(self._on_camera)

    # -- geometry ---------------------------------------------------------
    def _at_fraction(self) -> float:
        left, right = _view_cols(self.viewer)
        return left + self.fraction * (right - left)

    def _on_camera(self, _event: Any = None) -> None:
        if self.enabled:  # the divider stays where it is on screen
            self.position = self._at_fraction()
            self._update()

    def _world_rows(self) -> tuple[float, float]:
        ext = np.asarray(self.viewer.layers.extent.world, dtype=float)
        return float(ext[0, -2]), float(ext[1, -2])

    def _update(self) -> None:
        if self.enabled:
            self._attach()
            planes = np.array([[[self.position, 0.0, 0.0], [1.0, 0.0, 0.0]]], dtype=np.float32)
            self._clipper.clipping_planes = planes
            r0, r1 = self._world_rows()
            pad = (r1 - r0) * 10.0 + 1.0
            self._line.set_data(
                pos=np.array([[self.position, r0 - pad], [self.position, r1 + pad]], np.float32)
            )
            self._line.visible = True
        else:
            self._clipper.clipping_planes = None
            self._line.visible = False
        _canvas(self.viewer).view.canvas.update()

    def _attach(self) -> None:
        node = _visual_node(self.viewer, self.after)
        if node is self._node:
            return
        self._detach()
        if node is not None:
            node.attach(self._clipper)
            self._node = node

    def _detach(self) -> None:
        if self._node is not None:
            try:
                self._node.detach(self._clipper)
            except Exception as exc:  # noqa: BLE001 - the node may be gone already
                log.debug("could not detach the swipe clipper: %s", exc)
            self._node = None

    def _on_layers_changed(self, event: Any = None) -> None:
        if self.after not in self.viewer.layers:
            self.disable()
            return
        if self.enabled:
            self._update()  # re-attaches when napari rebuilt the layer's visual

    # -- public -----------------------------------------------------------
    def enable(self, position: float | None = None) -> None:
        """Show the divider (at world column ``position``, default: mid-view)."""
        if position is None:
            self.fraction = 0.5
            self.position = self._at_fraction()
        else:
            self._place(position)
        self.enabled = True
        if self._drag not in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.append(self._drag)
        self._update()

    def disable(self) -> None:
        """Hide the divider and show the after layer whole again."""
        self.enabled = False
        if self._drag in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._drag)
        self._update()
        self._detach()

    def toggle(self) -> bool:
        """Switch swipe on or off; returns the new state."""
        if self.enabled:
            self.disable()
        else:
            self.enable()
        return self.enabled

    def set_position(self, position: float) -> None:
        """Move the divider to a world column coordinate."""
        self._place(position)
        self._update()

    def _place(self, position: float) -> None:
        self.position = float(position)
        left, right = _view_cols(self.viewer)
        self.fraction = (self.position - left) / (right - left) if right > left else 0.5

    def close(self) -> None:
        """Remove the divider and the clipper for good."""
        self.disable()
        self._line.parent = None
        for ev, cb in (
            (self.viewer.layers.events.inserted, self._on_layers_changed),
            (self.viewer.layers.events.removed, self._on_layers_changed),
            (self.viewer.layers.events.moved, self._on_layers_changed),
            (self.viewer.scene.camera.events.center, self._on_camera),
            (self.viewer.scene.camera.events.zoom, self._on_camera),
        ):
            ev.disconnect(cb)

    # -- mouse ------------------------------------------------------------
    def _near_divider(self, world_col: float) -> bool:
        zoom = float(self.viewer.scene.camera.zoom) or 1.0  # screen px per world unit
        return abs(world_col - self.position) * zoom <= GRAB_PX

    def _drag(self, viewer: Any, event: Any):  # noqa: ANN202 - napari drag generator
        if not self.enabled or not self._near_divider(float(event.position[-1])):
            return
        camera = viewer.scene.camera
        panning = camera.mouse_pan
        camera.mouse_pan = False
        self._dragging = True
        try:
            yield
            while event.type == "mouse_move":
                self.set_position(float(event.position[-1]))
                yield
        finally:
            camera.mouse_pan = panning
            self._dragging = False
