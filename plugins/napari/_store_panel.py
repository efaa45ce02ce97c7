"""The dock's "Evidence store" panel: which store, report and claim; GeoJSON export and the
evidence package.

A view only: it emits what the analyst asked for and shows the choices it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
)
from satdelta.plugins.napari._forms import narrow_combo

__all__ = ["StorePanel"]


class StorePanel(QGroupBox):
    """Store path, report and claim choosers, and the export button.

    Signals
    -------
    open_requested(str)
        A store path was typed or browsed to.
    report_chosen(int), claim_chosen(int)
        The analyst picked a report or claim (by id).
    export_requested(str)
        A GeoJSON path to export the current report to.
    evidence_requested(str)
        A new folder to write the current report's evidence package into.
    """

    open_requested = Signal(str)
    report_chosen = Signal(int)
    claim_chosen = Signal(int)
    export_requested = Signal(str)
    evidence_requested = Signal(str)

    def __init__(self) -> None:
        super().__init__("Evidence store")
        self._syncing = False
        form = QFormLayout(self)
        row = QHBoxLayout()
        self.store_edit = QLineEdit()
        self.store_edit.setPlaceholderText("project.gpkg or postgresql://USER@HOST:PORT/DB")
        self.store_edit.returnPressed.connect(
            lambda: self.open_requested.emit(self.store_edit.text())
        )
        browse = QPushButton("Open…")
        browse.clicked.connect(self._browse_store)
        row.addWidget(self.store_edit)
        row.addWidget(browse)
        form.addRow("Store", row)
        self.report_box = narrow_combo()
        self.report_box.currentIndexChanged.connect(
            lambda i: self._emit_choice(self.report_box, i, self.report_chosen)
        )
        form.addRow("Report", self.report_box)
        self.claim_box = narrow_combo()
        self.claim_box.currentIndexChanged.connect(
            lambda i: self._emit_choice(self.claim_box, i, self.claim_chosen)
        )
        form.addRow("Claim", self.claim_box)
        export = QPushButton("Export GeoJSON…")
        export.clicked.connect(self._browse_export)
        evidence = QPushButton("Evidence package…")
        evidence.clicked.connect(self._browse_evidence)
        form.addRow(export, evidence)

    def show_store(self, path: str) -> None:
        """Show the path of the store now open."""
        self.store_edit.setText(path)

    def show_choices(
        self,
        reports: Sequence[tuple[str, int]],
        report_id: int | None,
        claims: Sequence[tuple[str, int]],
        claim_id: int | None,
    ) -> None:
        """Fill the choosers with ``(text, id)`` items and select the current ones."""
        self._syncing = True
        try:
            for box, items, current in (
                (self.report_box, reports, report_id),
                (self.claim_box, claims, claim_id),
            ):
                box.clear()
                for text, item_id in items:
                    box.addItem(text, item_id)
                if current is not None:
                    box.setCurrentIndex(box.findData(current))
        finally:
            self._syncing = False

    def _emit_choice(self, box: QComboBox, index: int, signal: Any) -> None:
        if not self._syncing and index >= 0:
            signal.emit(box.itemData(index))

    def _browse_store(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Evidence store",
            "",
            "GeoPackage (*.gpkg)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.open_requested.emit(path)

    def _browse_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export GeoJSON", "", "GeoJSON (*.geojson)")
        if path:
            self.export_requested.emit(path)

    def _browse_evidence(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Evidence package (a new folder)", "", "")
        if path:
            self.evidence_requested.emit(path)
