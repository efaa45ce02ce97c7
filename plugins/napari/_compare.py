"""Comparison aids of the Change annotator: blend, flicker, hold-to-compare, swipe."""

from __future__ import annotations

from typing import Any

from satdelta.plugins.napari._notify import notify_info as _notify_info

__all__ = ["CompareMixin"]


class CompareMixin:
    """Blend/flicker/swipe behaviour of the widget (needs ``viewer``, ``_role_layer``)."""

    viewer: Any
    swipe: Any
    swipe_check: Any

    def _role_layer(self, role: str) -> Any | None:  # provided by the widget
        raise NotImplementedError

    def _on_blend(self, value: int) -> None:
        layer = self._role_layer("after")
        if layer is not None:
            layer.opacity = value / 100.0

    def flicker(self) -> None:
        """Toggle the after layer, so before and after alternate (key Q)."""
        layer = self._role_layer("after")
        if layer is not None:
            layer.visible = not layer.visible

    def _hold_before(self, _viewer: Any):  # noqa: ANN202 - napari hold-key generator
        layer = self._role_layer("after")
        if layer is None:
            return
        was = layer.visible
        layer.visible = False
        yield
        layer.visible = was

    def set_swipe(self, on: bool) -> None:
        """Switch the swipe divider on or off (key W)."""
        from satdelta.plugins.napari._swipe import Swipe

        after = self._role_layer("after")
        if after is None:
            if on:
                _notify_info("choose an after image (or run detection) before swiping")
                self.swipe_check.blockSignals(True)
                self.swipe_check.setChecked(False)
                self.swipe_check.blockSignals(False)
            return
        if self.swipe is not None and self.swipe.after is not after:
            self.swipe.close()
            self.swipe = None
        if on:
            before = self._role_layer("before")
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
