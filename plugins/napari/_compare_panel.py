"""The dock's "Compare" panel: after opacity, flicker, hold-to-compare and swipe.

Works on the layers tagged ``before`` and ``after`` (:func:`._layers.role_layer`); the
swipe divider itself is :class:`._swipe.Swipe`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QCheckBox, QFormLayout, QGroupBox, QLabel, QSlider
from satdelta.plugins.napari._layers import role_layer
from satdelta.plugins.napari._notify import notify_info

if TYPE_CHECKING:
    import napari
    from satdelta.plugins.napari._swipe import Swipe

__all__ = ["ComparePanel"]


class ComparePanel(QGroupBox):
    """Comparison aids for the before and after layers.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose ``before``/``after`` layers are compared.

    Attributes
    ----------
    swipe : Swipe or None
        The swipe divider, made the first time swipe is switched on.
    """

    def __init__(self, viewer: napari.Viewer) -> None:
        super().__init__("Compare")
        self.viewer = viewer
        self.swipe: Swipe | None = None
        form = QFormLayout(self)
        self.blend = QSlider(Qt.Orientation.Horizontal)
        self.blend.setRange(0, 100)
        self.blend.setValue(100)
        self.blend.valueChanged.connect(self._on_blend)
        form.addRow("After opacity", self.blend)
        self.swipe_check = QCheckBox("Swipe (W): before left, after right")
        self.swipe_check.toggled.connect(self.set_swipe)
        form.addRow(self.swipe_check)
        form.addRow(QLabel("Q: flicker after on/off · H: hold to see before"))

    def _on_blend(self, value: int) -> None:
        layer = role_layer(self.viewer, "after")
        if layer is not None:
            layer.opacity = value / 100.0

    def flicker(self) -> None:
        """Toggle the after layer, so before and after alternate (key Q)."""
        layer = role_layer(self.viewer, "after")
        if layer is not None:
            layer.visible = not layer.visible

    def hold_before(self, _viewer: Any) -> Iterator[None]:
        """Hide the after layer while the key is held (key H; a napari hold-key generator)."""
        layer = role_layer(self.viewer, "after")
        if layer is None:
            return
        was = layer.visible
        layer.visible = False
        yield
        layer.visible = was

    def toggle_swipe(self) -> None:
        """Switch swipe on or off through its check box (key W)."""
        self.swipe_check.toggle()

    def set_swipe(self, on: bool) -> None:
        """Switch the swipe divider on or off."""
        from satdelta.plugins.napari._swipe import Swipe

        after = role_layer(self.viewer, "after")
        if after is None:
            if on:
                notify_info("choose an after image (or run detection) before swiping")
                self.swipe_check.blockSignals(True)
                self.swipe_check.setChecked(False)
                self.swipe_check.blockSignals(False)
            return
        if self.swipe is not None and self.swipe.after is not after:
            self.swipe.close()
            self.swipe = None
        if on:
            before = role_layer(self.viewer, "before")
            if before is not None:
                i_b, i_a = self.viewer.layers.index(before), self.viewer.layers.index(after)
                if i_a < i_b:  # after must be drawn above before
                    self.viewer.layers.move(i_a, i_b)
                before.visible = True
            after.visible = True
            if self.swipe is None:
                self.swipe = Swipe(self.viewer, after)
            self.swipe.enable()
        elif self.swipe is not None:
            self.swipe.disable()

    def shutdown(self) -> None:
        """Remove the swipe divider for good (the dock is closing)."""
        if self.swipe is not None:
            self.swipe.close()
            self.swipe = None
