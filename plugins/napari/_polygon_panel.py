"""The dock's "Selected polygon" panel: the form of the selected evidence polygon.

A view only: it shows the selected row it is given and emits each field the analyst
edits and each review action (accept, reject, next, undo).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
)
from satdelta.plugins.napari._features import MASK_COLOUR, STATUS_COLOURS
from satdelta.plugins.napari._forms import narrow_combo

__all__ = ["PolygonPanel"]


class PolygonPanel(QGroupBox):
    """Label, claim, verdict, confidence and notes of the selected polygon.

    Signals
    -------
    edited(str, object)
        A form field (``label``, ``claim_id``, ``verdict``, ``confidence``, ``notes``)
        and its new value.
    status_requested(str)
        ``"accepted"`` or ``"rejected"``.
    next_requested(), undo_requested()
        Go to the next candidate; undo the latest change.
    """

    edited = Signal(str, object)
    status_requested = Signal(str)
    next_requested = Signal()
    undo_requested = Signal()

    def __init__(self) -> None:
        from satdelta.annotations import DEFAULT_LABELS, VERDICTS

        super().__init__("Selected polygon")
        self._syncing = False
        form = QFormLayout(self)
        self.status_label = QLabel("—")
        self.review_label = QLabel("")  # "reviewed 12/2383 candidates"
        self.label_box = QComboBox()
        self.label_box.addItems(DEFAULT_LABELS)
        self.form_claim = narrow_combo()
        self.verdict_box = QComboBox()
        self.verdict_box.addItems(VERDICTS)
        self.confidence = QDoubleSpinBox()
        self.confidence.setRange(0.0, 1.0)
        self.confidence.setSingleStep(0.05)
        self.confidence.setValue(0.5)
        self.notes = QLineEdit()
        for text, widget in (
            ("Review", self.review_label),
            ("Status", self.status_label),
            ("Label", self.label_box),
            ("Claim", self.form_claim),
            ("Verdict", self.verdict_box),
            ("Confidence", self.confidence),
            ("Notes", self.notes),
        ):
            form.addRow(text, widget)
        self.label_box.activated.connect(lambda _i: self._edited("label"))
        self.form_claim.activated.connect(lambda _i: self._edited("claim_id"))
        self.verdict_box.activated.connect(lambda _i: self._edited("verdict"))
        self.confidence.editingFinished.connect(lambda: self._edited("confidence"))
        self.notes.editingFinished.connect(lambda: self._edited("notes"))
        actions = QHBoxLayout()
        for text, slot in (
            ("Accept (J)", lambda: self.status_requested.emit("accepted")),
            ("Reject (K)", lambda: self.status_requested.emit("rejected")),
            ("Next (N)", self.next_requested.emit),
            ("Undo (U)", self.undo_requested.emit),
        ):
            button = QPushButton(text)
            button.clicked.connect(slot)
            actions.addWidget(button)
        form.addRow(actions)
        form.addRow(QLabel(_legend()))
        self._set_enabled(False)

    def set_choices(self, claims: Sequence[tuple[str, int]], labels: Sequence[str]) -> None:
        """The claims (``(text, id)``) and labels the form offers."""
        self.form_claim.clear()
        for text, claim_id in claims:
            self.form_claim.addItem(text, claim_id)
        self.label_box.clear()
        self.label_box.addItems(list(labels))

    def show_review(self, reviewed: int, total: int) -> None:
        """Say how many detected candidates were accepted or rejected so far."""
        self.review_label.setText(f"reviewed {reviewed}/{total} candidates" if total else "")

    def show_selection(self, row: Mapping[str, Any] | None, count: int = 0) -> None:
        """Show the first selected polygon's fields (``row``), or nothing when None."""
        if row is None:
            self._set_enabled(False)
            self.status_label.setText("—")
            return
        self._syncing = True
        try:
            self._set_enabled(True)
            self.label_box.setCurrentText(str(row["label"]))
            cid = row["claim_id"]
            self.form_claim.setCurrentIndex(
                self.form_claim.findData(int(cid)) if str(cid).isdigit() else -1
            )
            self.verdict_box.setCurrentText(str(row["verdict"]))
            conf = float(row["confidence"])
            self.confidence.setValue(0.5 if math.isnan(conf) else conf)
            self.notes.setText(str(row["notes"]))
            self.status_label.setText(
                f"{row['status']} · {row['origin']} · "
                f"{float(row['area_m2']):.1f} m² · {count} selected"
            )
        finally:
            self._syncing = False

    def _edited(self, field: str) -> None:
        if self._syncing:
            return
        value: Any = {
            "label": self.label_box.currentText,
            "claim_id": self.form_claim.currentData,
            "verdict": self.verdict_box.currentText,
            "confidence": self.confidence.value,
            "notes": self.notes.text,
        }[field]()
        if value is not None:
            self.edited.emit(field, value)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.label_box, self.form_claim, self.verdict_box, self.confidence, self.notes):
            w.setEnabled(on)


def _legend() -> str:
    """The status colours of the evidence outlines and the mask's colour, as rich text."""
    items = [(f"□ {k}", rgba[:3]) for k, rgba in STATUS_COLOURS.items()]
    items.append(("■ change mask", MASK_COLOUR))
    return " ".join(
        f"<span style='color: rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})'>{text}</span>"
        for text, (r, g, b) in items
    )
