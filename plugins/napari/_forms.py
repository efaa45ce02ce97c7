"""Small Qt form helpers shared by the Change annotator's panels."""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox

__all__ = ["narrow_combo"]


def narrow_combo() -> QComboBox:
    """A combo box whose long items (report titles, paths) do not widen the dock."""
    box = QComboBox()
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(18)
    return box
