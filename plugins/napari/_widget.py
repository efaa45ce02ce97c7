"""The "Change annotator" dock widget: run detection, compare, annotate, export.

A thin Qt front-end: the work is done by :mod:`._process` (detection, candidate
save and row read in a child process), :mod:`._detection` (library calls in
steps), :mod:`._session` (store writes), :mod:`._features` (geometry and
colours), :mod:`._swipe` and :mod:`._status`.  Every error a user can cause
arrives here as a :class:`~satdelta.imagery.errors.SatdeltaError` and is shown
with :func:`napari.utils.notifications.show_error`; nothing else is caught.

Keys (napari leaves them free): J accept, K reject, N next candidate, U undo,
Q flicker (toggle after), H hold to see before, W swipe on/off.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)
from satdelta.imagery.errors import SatdeltaError
from satdelta.plugins.napari._compare import CompareMixin
from satdelta.plugins.napari._detection import Failed
from satdelta.plugins.napari._evidence import EVIDENCE, EvidenceMixin
from satdelta.plugins.napari._features import (
    STATUS_COLOURS,
)
from satdelta.plugins.napari._frame import MapFrame, layer_affine
from satdelta.plugins.napari._notify import notify_error as _notify_error
from satdelta.plugins.napari._notify import notify_info as _notify_info
from satdelta.plugins.napari._process import (
    Cancelled,
    DetectionJob,
    DetectionProcess,
    DetectionProcessDied,
)
from satdelta.plugins.napari._reader import frame_of_layers, raster_layer_data
from satdelta.plugins.napari._session import Session
from satdelta.plugins.napari._status import install_lonlat_status

if TYPE_CHECKING:
    import napari
    from satdelta.plugins.napari._detection import ChangeLayers, DetectionResult

__all__ = ["ChangeAnnotator"]

log = logging.getLogger(__name__)

SCORE = "change score"
MASK = "change mask"
FORM_FIELDS = ("label", "claim_id", "verdict", "confidence", "notes")


def _choices(module: str, name: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    try:
        mod = __import__(module, fromlist=[name])
        return tuple(getattr(mod, name))
    except (ImportError, AttributeError):  # pragma: no cover - library older than the contract
        return fallback


class ChangeAnnotator(EvidenceMixin, CompareMixin, QWidget):
    """Dock widget for before/after review and report-linked annotation.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        Injected by napari.
    """

    def __init__(self, napari_viewer: napari.Viewer, *, store: str | os.PathLike | None = None):
        super().__init__()
        self.viewer = napari_viewer
        self.session: Session | None = None
        self.worker: Any = None
        self.result: DetectionResult | None = None
        self.swipe: Any = None
        self._syncing = False
        self._cancelling = False
        self._maps_shown: Any = None  # the ChangeMaps on screen
        self._hold_state: bool | None = None
        # detection runs in a warm child process, started now (its imports take a second
        # or two; a Run pressed earlier waits for them)
        self.detector = DetectionProcess()
        self.detector.start()
        # closing the viewer destroys the dock without a closeEvent: stop the child then too
        self.destroyed.connect(functools.partial(_stop_detector, self.detector))
        self._build_ui()
        install_lonlat_status(self.viewer)
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        self.viewer.layers.events.removed.connect(lambda e: self._refresh_layer_choices())
        self._bind_keys()
        self._refresh_layer_choices()
        for layer in list(self.viewer.layers):
            self._adopt_report(layer)
        if store is not None:
            self.open_store(store)

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        from satdelta.annotations import DEFAULT_LABELS, VERDICTS

        root = QVBoxLayout(self)
        self.setMaximumWidth(520)

        # -- inputs and detection
        run_box = QGroupBox("Detect change")
        form = QFormLayout(run_box)
        self.before_edit = self._source_row(form, "Before")
        self.after_edit = self._source_row(form, "After")
        self.method_box = QComboBox()
        self.method_box.addItems(
            _choices("satdelta.imagery.detect", "SCORE_METHODS", ("auto", "cva"))
        )
        form.addRow("Method", self.method_box)
        self.threshold_box = QComboBox()
        self.threshold_box.addItems(
            _choices("satdelta.imagery.detect", "THRESHOLD_METHODS", ("auto", "otsu"))
        )
        self.threshold_value = QDoubleSpinBox()
        self.threshold_value.setRange(-1e9, 1e9)
        self.threshold_value.setDecimals(4)
        self.threshold_value.setValue(95.0)
        self.threshold_value.setToolTip("Score for 'value', percentile for 'percentile'")
        row = QHBoxLayout()
        row.addWidget(self.threshold_box)
        row.addWidget(self.threshold_value)
        form.addRow("Threshold", row)
        self.min_area = QDoubleSpinBox()
        self.min_area.setRange(0.0, 1e9)
        self.min_area.setSuffix(" m²")
        self.min_area.setValue(4.0)  # as `satdelta demo`: drops single-pixel speckle
        form.addRow("Minimum area", self.min_area)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        form.addRow(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 6)
        self.progress.setValue(0)
        self.progress_label = QLabel("")
        form.addRow(self.progress)
        form.addRow(self.progress_label)
        root.addWidget(run_box)

        # -- comparison aids
        cmp_box = QGroupBox("Compare")
        cmp = QFormLayout(cmp_box)
        self.blend = QSlider(Qt.Orientation.Horizontal)
        self.blend.setRange(0, 100)
        self.blend.setValue(100)
        self.blend.valueChanged.connect(self._on_blend)
        cmp.addRow("After opacity", self.blend)
        self.swipe_check = QCheckBox("Swipe (W): before left, after right")
        self.swipe_check.toggled.connect(self.set_swipe)
        cmp.addRow(self.swipe_check)
        cmp.addRow(QLabel("Q: flicker after on/off · H: hold to see before"))
        root.addWidget(cmp_box)

        # -- store, report, claim
        store_box = QGroupBox("Evidence store")
        sform = QFormLayout(store_box)
        srow = QHBoxLayout()
        self.store_edit = QLineEdit()
        self.store_edit.setPlaceholderText("project.gpkg")
        self.store_edit.returnPressed.connect(lambda: self.open_store(self.store_edit.text()))
        sbtn = QPushButton("Open…")
        sbtn.clicked.connect(self._browse_store)
        srow.addWidget(self.store_edit)
        srow.addWidget(sbtn)
        sform.addRow("Store", srow)
        self.report_box = QComboBox()
        self.report_box.currentIndexChanged.connect(self._on_report_chosen)
        sform.addRow("Report", self.report_box)
        self.claim_box = QComboBox()
        self.claim_box.currentIndexChanged.connect(self._on_claim_chosen)
        sform.addRow("Claim", self.claim_box)
        root.addWidget(store_box)

        for box in (self.report_box, self.claim_box):
            _narrow(box)

        # -- selected polygon
        sel_box = QGroupBox("Selected polygon")
        pform = QFormLayout(sel_box)
        self.label_box = QComboBox()
        self.label_box.addItems(DEFAULT_LABELS)
        self.form_claim = QComboBox()
        _narrow(self.form_claim)
        self.verdict_box = QComboBox()
        self.verdict_box.addItems(VERDICTS)
        self.confidence = QDoubleSpinBox()
        self.confidence.setRange(0.0, 1.0)
        self.confidence.setSingleStep(0.05)
        self.confidence.setValue(0.5)
        self.notes = QLineEdit()
        self.status_label = QLabel("—")
        pform.addRow("Status", self.status_label)
        pform.addRow("Label", self.label_box)
        pform.addRow("Claim", self.form_claim)
        pform.addRow("Verdict", self.verdict_box)
        pform.addRow("Confidence", self.confidence)
        pform.addRow("Notes", self.notes)
        self.label_box.activated.connect(lambda _i: self.save_form("label"))
        self.form_claim.activated.connect(lambda _i: self.save_form("claim_id"))
        self.verdict_box.activated.connect(lambda _i: self.save_form("verdict"))
        self.confidence.editingFinished.connect(lambda: self.save_form("confidence"))
        self.notes.editingFinished.connect(lambda: self.save_form("notes"))
        arow = QHBoxLayout()
        for text, slot in (
            ("Accept (J)", lambda: self.set_status("accepted")),
            ("Reject (K)", lambda: self.set_status("rejected")),
            ("Next (N)", self.next_candidate),
            ("Undo (U)", self.undo),
        ):
            b = QPushButton(text)
            b.clicked.connect(slot)
            arow.addWidget(b)
        pform.addRow(arow)
        export = QPushButton("Export GeoJSON…")
        export.clicked.connect(self._browse_export)
        pform.addRow(export)
        legend = " ".join(
            f"<span style='color: rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})'>■ {k}</span>"
            for k, (r, g, b, _a) in STATUS_COLOURS.items()
        )
        pform.addRow(QLabel(legend))
        root.addWidget(sel_box)
        root.addStretch(1)
        self._set_form_enabled(False)

    def _source_row(self, form: QFormLayout, label: str) -> QComboBox:
        box = QComboBox()
        _narrow(box)
        box.setEditable(True)
        box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        box.lineEdit().setPlaceholderText("layer, file or https:// COG")
        btn = QPushButton("…")
        btn.setFixedWidth(28)

        def browse() -> None:
            path, _ = QFileDialog.getOpenFileName(self, f"{label} raster")
            if path:
                box.setEditText(path)

        btn.clicked.connect(browse)
        row = QHBoxLayout()
        row.addWidget(box, 1)
        row.addWidget(btn)
        form.addRow(label, row)
        return box

    def _bind_keys(self) -> None:
        v = self.viewer
        v.bind_key("j", lambda _v: self.set_status("accepted"), overwrite=True)
        v.bind_key("k", lambda _v: self.set_status("rejected"), overwrite=True)
        v.bind_key("n", lambda _v: self.next_candidate(), overwrite=True)
        v.bind_key("u", lambda _v: self.undo(), overwrite=True)
        v.bind_key("q", lambda _v: self.flicker(), overwrite=True)
        v.bind_key("w", lambda _v: self.swipe_check.toggle(), overwrite=True)
        v.bind_key("h", self._hold_before, overwrite=True)

    # ------------------------------------------------------------ layers
    def _image_layers(self) -> list[Any]:
        from napari.layers import Image

        return [ly for ly in self.viewer.layers if isinstance(ly, Image)]

    def _role_layer(self, role: str) -> Any | None:
        for ly in self._image_layers():
            if (ly.metadata.get("satdelta") or {}).get("role") == role:
                return ly
        return None

    def _refresh_layer_choices(self) -> None:
        names = [
            ly.name
            for ly in self._image_layers()
            if (ly.metadata.get("satdelta") or {}).get("source")
        ]
        for box, role in ((self.before_edit, "before"), (self.after_edit, "after")):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            box.setEditText(current)
            box.blockSignals(False)
            if not current:
                layer = self._role_layer(role)
                if layer is not None:
                    box.setEditText(layer.name)
        if not self.before_edit.currentText() and len(names) >= 2:
            self.before_edit.setEditText(names[0])
            self.after_edit.setEditText(names[1])

    def _on_layer_inserted(self, event: Any) -> None:
        self._refresh_layer_choices()
        self._adopt_report(event.value)

    def _adopt_report(self, layer: Any) -> None:
        """A sample layer carries the sample report: load it and pick the site's claim."""
        sd = (getattr(layer, "metadata", None) or {}).get("satdelta") or {}
        report = sd.get("report")
        if not report:
            return
        self._pending_report = (report, sd.get("site"))
        if self.session is not None:
            self._load_pending_report()

    def _load_pending_report(self) -> None:
        report, site = getattr(self, "_pending_report", (None, None))
        if report is None or self.session is None:
            return
        try:
            self.session.load_report(report)
            for claim in report.get("claims", []):
                if site and claim.get("site") == site:
                    cid = self.session.claim_for_text(claim.get("text", ""))
                    if cid is not None:
                        self.session.claim_id = cid
        except SatdeltaError as exc:
            _notify_error(exc)
            return
        self._pending_report = (None, None)
        self._refresh_store_choices()

    def frame(self) -> MapFrame | None:
        """The viewer's map frame (from the first satdelta layer)."""
        return frame_of_layers(list(self.viewer.layers))

    def _resolve_source(self, text: str, role: str) -> tuple[str, Any]:
        """(file or URL, layer) for what the analyst typed or picked."""
        text = text.strip()
        if not text:
            raise _InputError(
                f"no {role} image chosen; pick a layer, browse to a file or paste an https:// URL."
            )
        for ly in self._image_layers():
            if ly.name == text:
                src = (ly.metadata.get("satdelta") or {}).get("source")
                if not src:
                    raise _InputError(
                        f"layer {text!r} was not opened from a file, so it cannot be aligned; "
                        "open the raster with File > Open (satdelta reader) or give its path."
                    )
                return src, ly
        for ly in self._image_layers():
            if (ly.metadata.get("satdelta") or {}).get("source") == text:
                return text, ly
        data = raster_layer_data(text, frame=self.frame(), role=role)  # raises SceneReadError
        data[1]["name"] = f"{role}: {data[1]['name']}"
        layer = self.viewer.add_layer(_make_layer(data))
        return text, layer

    # ------------------------------------------------------------ detection
    def run(self) -> Any:
        """Start alignment and detection in the child process; returns the worker.

        The worker is a thread of this process that only waits on the child's pipe (the
        wait releases the interpreter lock) and passes its steps and result on.
        """
        from napari.qt.threading import thread_worker
        from satdelta.imagery.options import DetectionOptions
        from satdelta.plugins.napari._detection import guarded_steps

        if self.worker is not None:
            _notify_info("a detection run is already going; wait or press Cancel")
            return None
        try:
            before, b_layer = self._resolve_source(self.before_edit.currentText(), "before")
            after, a_layer = self._resolve_source(self.after_edit.currentText(), "after")
            self._tag_role(b_layer, "before")
            self._tag_role(a_layer, "after")
            tm = self.threshold_box.currentText()
            options = DetectionOptions(
                method=self.method_box.currentText(),
                threshold=tm,
                threshold_value=self.threshold_value.value()
                if tm in ("value", "percentile")
                else None,
                min_area_m2=self.min_area.value() or None,
            )
            session = self._ensure_session()
            claim_id = session.ensure_claim()  # the child saves the candidates to it
        except SatdeltaError as exc:
            _notify_error(exc)
            return None
        job = DetectionJob(
            str(before),
            str(after),
            options,
            store=str(session.store.path),
            report_id=session.report_id,
            claim_id=claim_id,
            frame=session.frame.to_dict() if session.frame is not None else None,
        )
        # called here, on the main thread: it may restart the child
        steps = self.detector.steps(job, session.mark(), session.store.changes)
        # progress goes to the dock's own bar: napari's activity-dock progress
        # (thread_worker(progress=...)) made the run twice as slow here
        worker = thread_worker(guarded_steps)(lambda: steps)
        worker.yielded.connect(self._on_step)
        worker.returned.connect(self._on_result)
        worker.aborted.connect(self._on_cancelled)
        worker.finished.connect(self._worker_done)
        self.worker = worker
        self._cancelling = False
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._set_progress(0)
        _start_in_python_thread(worker)
        return worker

    def cancel(self) -> None:
        """Stop the running detection now: the child process is killed (a fresh one starts).

        A save that had begun either committed (all candidates saved) or rolled back
        (none); the status line says which.
        """
        if self.worker is not None:
            self._cancelling = True
            self.detector.cancel()
            self.progress_label.setText("cancelling…")

    def _set_progress(self, value: int) -> None:
        """Move the progress bar, painted with the window's next frame.

        ``QProgressBar.setValue`` repaints at once, and a synchronous repaint in this window
        also redraws the GL canvas (with 2048² layers about 0.04-0.08 s on the main thread,
        once per step); with updates off during the call it is only scheduled.
        """
        self.progress.setUpdatesEnabled(False)
        try:
            self.progress.setValue(value)
        finally:
            self.progress.setUpdatesEnabled(True)  # schedules the bar's paint

    def _tag_role(self, layer: Any, role: str) -> None:
        sd = layer.metadata.setdefault("satdelta", {})
        for other in self._image_layers():
            osd = other.metadata.get("satdelta") or {}
            if other is not layer and osd.get("role") == role:
                osd["role"] = None
        sd["role"] = role

    def _on_cancelled(self, outcome: Cancelled | None = None) -> None:
        self._on_finished(outcome.message if outcome is not None else "cancelled: nothing saved")
        self.reload_annotations()  # the store as it is (with all candidates or none)

    def _on_step(self, step: tuple[Any, ...]) -> None:
        i, _total, message = step[:3]
        self._set_progress(i)
        self.progress_label.setText(message)
        if len(step) > 3 and not self._cancelling:
            # the maps exist and the worker now outlines and saves the candidates: show
            # the maps meanwhile (a cancel before the save keeps them and saves nothing)
            try:
                self.show_maps(step[3])
            except SatdeltaError as exc:
                _notify_error(exc)

    def _on_error(self, exc: SatdeltaError) -> None:
        _notify_error(exc)
        self._on_finished("failed")
        if isinstance(exc, DetectionProcessDied):  # its save may have committed: all or none
            self.reload_annotations()

    def _on_finished(self, text: str) -> None:
        self.progress_label.setText(text)

    def _worker_done(self) -> None:
        self.worker = None
        self._cancelling = False
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if not self.detector.is_alive():  # cancelled or crashed: warm a fresh child
            self.detector.start()

    def _on_result(self, result: DetectionResult | Failed | Cancelled) -> None:
        if isinstance(result, Cancelled):
            self._on_cancelled(result)
            return
        if isinstance(result, Failed):
            self._on_error(result.error)
            return
        self.result = result
        try:
            self.show_result(result)
        except SatdeltaError as exc:
            _notify_error(exc)
            return
        self._set_progress(self.progress.maximum())
        self.progress_label.setText(
            f"done: {len(result.polygons)} candidates, threshold {result.maps.threshold:.4g} "
            f"({result.maps.method}/{result.maps.threshold_method})"
        )
        if result.crs is None and result.polygons:
            _notify_info(
                f"{len(result.polygons)} changed regions found, but the images are not "
                "georeferenced, so they cannot be stored as evidence (the store keeps lon/lat); "
                "the change mask shows them. Use georeferenced images to annotate."
            )

    def show_result(self, result: DetectionResult) -> None:
        """Show score and mask layers (unless already shown) and the saved candidates."""
        if self._maps_shown is not result.maps:
            self.show_maps(result)
        frame = self.frame()
        if self.session is not None and self.session.frame is None:
            self.session.frame = frame
        if self.session is not None:  # candidates were saved (and read back) by the child
            self.show_evidence(self.session.note_write_elsewhere(result.evidence))

    def show_maps(self, result: ChangeLayers) -> None:
        """Show (or update in place) the score and mask layers of ``result``."""
        frame = self.frame() or MapFrame.from_transform(result.transform, result.crs)
        shape = result.maps.score.shape
        affine = layer_affine(frame, result.transform, result.crs, shape=shape)
        meta = {
            "satdelta": {
                "frame": frame.to_dict(),
                "crs": result.crs.to_wkt() if result.crs is not None else None,
                "transform": list(tuple(result.transform)[:6]),
                "role": "score",
            }
        }
        score = result.maps.score
        # explicit contrast limits, so napari does not estimate them; nanmin/nanmax scan the
        # score without copying its finite part
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN score
            lo, hi = float(np.nanmin(score)), float(np.nanmax(score))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            lo, hi = 0.0, 1.0
        self._replace_image(
            SCORE,
            score,
            affine=affine,
            colormap="magma",
            contrast_limits=[lo, hi if hi > lo else lo + 1.0],
            visible=False,
            metadata=meta,
        )
        mask_meta = {"satdelta": {**meta["satdelta"], "role": "mask"}}
        self._replace_image(
            MASK,
            _as_uint8(result.maps.changed),
            affine=affine,
            colormap="red",
            contrast_limits=[0, 1],
            blending="additive",
            opacity=0.6,
            metadata=mask_meta,
        )
        self._maps_shown = result.maps

    def _replace_image(self, name: str, data: np.ndarray, **kwargs: Any) -> Any:
        """Add the layer ``name``, or on a re-run update the existing one in place.

        Updating keeps the layer's vispy node and controls (removing and re-adding a
        2048² layer cost about 0.35 s here); the result looks the same as a new layer
        made with ``kwargs``.
        """
        from napari.layers import Image

        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        if isinstance(layer, Image) and not layer.multiscale and layer.ndim == data.ndim:
            layer.data = data
            if "contrast_limits" in kwargs:  # a new layer's range is its given limits
                layer.contrast_limits_range = kwargs["contrast_limits"]
            for key, value in kwargs.items():
                setattr(layer, key, value)
            return layer
        if layer is not None:
            self.viewer.layers.remove(name)
        return self.viewer.add_image(data, name=name, **kwargs)

    # ------------------------------------------------------------ store
    def _browse_store(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Evidence store",
            "",
            "GeoPackage (*.gpkg)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.open_store(path)

    def open_store(self, path: str | os.PathLike) -> bool:
        """Open (or create) a store and show the latest report's annotations."""
        try:
            session = Session.open(path, self.frame())
        except SatdeltaError as exc:
            _notify_error(exc)
            return False
        if self.session is not None:
            self.session.close()
        self.session = session
        self.store_edit.setText(str(path))
        self._load_pending_report()
        self._refresh_store_choices()
        self.reload_annotations()
        return True

    def _ensure_session(self) -> Session:
        if self.session is None:
            path = Path.cwd() / "satdelta.gpkg"
            if not self.open_store(path):
                raise _InputError(
                    f"could not open the default store {path}; open a store under Evidence store."
                )
            _notify_info(f"saving evidence to {path}")
        assert self.session is not None
        if self.session.frame is None:
            self.session.frame = self.frame()
        return self.session

    def _refresh_store_choices(self) -> None:
        s = self.session
        if s is None:
            return
        self._syncing = True
        try:
            self.report_box.clear()
            for r in s.reports():
                self.report_box.addItem(r.title, r.id)
            if s.report_id is not None:
                self.report_box.setCurrentIndex(self.report_box.findData(s.report_id))
            self.claim_box.clear()
            self.form_claim.clear()
            for c in s.claims():
                text = c.text if len(c.text) < 60 else c.text[:57] + "…"
                self.claim_box.addItem(text, c.id)
                self.form_claim.addItem(text, c.id)
            if s.claim_id is not None:
                self.claim_box.setCurrentIndex(self.claim_box.findData(s.claim_id))
            labels = s.store.labels()
            self.label_box.clear()
            self.label_box.addItems(labels)
        finally:
            self._syncing = False

    def _on_report_chosen(self, index: int) -> None:
        if self._syncing or self.session is None or index < 0:
            return
        self.session.select_report(self.report_box.itemData(index))
        self._refresh_store_choices()
        self.reload_annotations()

    def _on_claim_chosen(self, index: int) -> None:
        if self._syncing or self.session is None or index < 0:
            return
        self.session.claim_id = self.claim_box.itemData(index)

    def _set_form_enabled(self, on: bool) -> None:
        for w in (self.label_box, self.form_claim, self.verdict_box, self.confidence, self.notes):
            w.setEnabled(on)

    def _on_selection(self, event: Any = None) -> None:
        rows = self._selected_rows()
        if not rows or self.session is None:
            self._set_form_enabled(False)
            self.status_label.setText("—")
            return
        feats = self.viewer.layers[EVIDENCE].features
        i = rows[0]
        self._syncing = True
        try:
            self._set_form_enabled(True)
            self.label_box.setCurrentText(str(feats["label"].iloc[i]))
            cid = feats["claim_id"].iloc[i]
            idx = self.form_claim.findData(int(cid)) if str(cid).isdigit() else -1
            self.form_claim.setCurrentIndex(idx)
            self.verdict_box.setCurrentText(str(feats["verdict"].iloc[i]))
            conf = float(feats["confidence"].iloc[i])
            self.confidence.setValue(0.5 if math.isnan(conf) else conf)
            self.notes.setText(str(feats["notes"].iloc[i]))
            self.status_label.setText(
                f"{feats['status'].iloc[i]} · {feats['origin'].iloc[i]} · "
                f"{float(feats['area_m2'].iloc[i]):.1f} m² · {len(rows)} selected"
            )
        finally:
            self._syncing = False

    # ------------------------------------------------------------ form
    def save_form(self, field: str) -> None:
        """Save one form field to every selected annotation (a revision each)."""
        if self._syncing or self.session is None:
            return
        value: Any = {
            "label": self.label_box.currentText,
            "claim_id": lambda: self.form_claim.currentData(),
            "verdict": self.verdict_box.currentText,
            "confidence": self.confidence.value,
            "notes": self.notes.text,
        }[field]()
        if value is None:
            return
        self._apply({field: value})

    def _browse_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export GeoJSON", "", "GeoJSON (*.geojson)")
        if path:
            self.export_geojson(path)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        if self.worker is not None:
            self.detector.cancel()
        self.detector.stop()
        if self.session is not None:
            self.session.close()
            self.session = None
        super().closeEvent(event)


def _start_in_python_thread(worker: Any) -> None:
    """Run a superqt worker in a new Python thread instead of Qt's global thread pool.

    The worker only waits on the detection child's pipe now; it kept its own thread from
    when the library ran in it: pyproj 3.7 keeps its per-thread PROJ context in OS-thread
    storage but frees it with the Python thread state, and a Qt pool thread gets a fresh
    thread state per runnable, so a second Run crashed napari (pyproj issues #1509, #1622,
    fixed upstream by PR #1541, not in 3.7.2).  A Python thread lives for one run.
    """
    threading.Thread(target=worker.run, name="satdelta-detection", daemon=True).start()


def _stop_detector(detector: DetectionProcess, *_args: Any) -> None:
    """Stop the detection child (the dock widget was destroyed)."""
    detector.cancel()
    detector.stop()


def _as_uint8(mask: np.ndarray) -> np.ndarray:
    """A bool mask as 0/1 bytes, without a copy when it is already bool."""
    mask = np.asarray(mask)
    return mask.view(np.uint8) if mask.dtype == np.bool_ else mask.astype(np.uint8)


def _narrow(box: QComboBox) -> None:
    """Long report titles and paths must not widen the dock."""
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(18)


class _InputError(SatdeltaError, ValueError):
    """The widget's inputs are incomplete."""


def _make_layer(data: tuple[Any, dict[str, Any], str]) -> Any:
    from napari.layers import Layer

    return Layer.create(*data)
