"""The dock's "Detect change" panel: before/after, options, Run/Cancel and progress.

Detection runs in a warm child process (:class:`._process.DetectionProcess`, started
with the panel); a thread of this process waits on its pipe and passes its steps to
the panel.  The score and mask are shown as soon as they exist; the saved candidates
are handed to the dock through the ``show_saved`` callback.  A large pair runs block by
block into a run folder and its maps are shown from the files (:mod:`._block_detection`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
)
from satdelta.imagery.aoi import claim_area
from satdelta.imagery.block_run import BLOCK_PX, BLOCKS_FROM_PX
from satdelta.imagery.detect import SCORE_METHODS, THRESHOLD_METHODS
from satdelta.imagery.errors import SatdeltaError
from satdelta.imagery.options import DetectionOptions
from satdelta.plugins.napari._block_detection import RunFolders, runs_in_blocks
from satdelta.plugins.napari._detection import Failed
from satdelta.plugins.napari._evidence import EVIDENCE, NOT_STORED
from satdelta.plugins.napari._forms import narrow_combo
from satdelta.plugins.napari._layers import (
    MASK,
    SCORE,
    discard_prepared,
    image_layers,
    prepare_change_layer,
    resolve_source,
    role_layer,
    show_change_maps,
    source_layer_names,
    tag_role,
)
from satdelta.plugins.napari._notify import notify_error, notify_info
from satdelta.plugins.napari._process import (
    Cancelled,
    DetectionJob,
    DetectionProcess,
    DetectionProcessDied,
)
from satdelta.plugins.napari._threads import start_in_python_thread

if TYPE_CHECKING:
    import napari
    from satdelta.imagery.detect import ChangeMaps
    from satdelta.plugins.napari._detection import ChangeLayers, DetectionResult
    from satdelta.plugins.napari._session import Session

__all__ = ["DetectPanel"]

#: Steps the progress bar counts: open, align, score, outline, count, save.
PROGRESS_STEPS = 6
#: Metres around a claim's point analysed by "Detect in the claim's area" when the claim
#: has no box.
CLAIM_RADIUS_M = 500.0


class DetectPanel(QGroupBox):
    """Inputs, options and the run of change detection.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the before/after layers are picked and the maps are shown.
    ensure_session : callable
        Returns the session the candidates are saved to (opening a default store if
        needed); raises :class:`~satdelta.imagery.errors.SatdeltaError` if it cannot.
    show_saved : callable
        Called with the :class:`~._detection.DetectionResult` once its candidates are
        saved (their rows read back are in ``result.evidence``).
    reload : callable
        Called when a cancelled or crashed run may have saved: read the store again.
    prepare_evidence : callable, optional
        Called while a run computes, to add the (empty) evidence layer ahead of its rows.

    Attributes
    ----------
    detector : DetectionProcess
        The warm child process.
    worker : superqt worker or None
        The running detection, if any.
    result : DetectionResult or None
        The last finished run.
    blocks_from_px : int
        Pairs whose grid has at least this many pixels run block by block, in bounded
        memory, with progress per block (default: the CLI's
        :data:`~satdelta.imagery.block_run.BLOCKS_FROM_PX`, 4096²); options the block
        runner cannot honour (the claim's area) keep the whole-array path.
    block_px : int
        Side of a block (default :data:`~satdelta.imagery.block_run.BLOCK_PX`).
    run_folders : RunFolders
        Where block runs write their outputs (a temporary folder of this process).
    """

    def __init__(
        self,
        viewer: napari.Viewer,
        *,
        ensure_session: Callable[[], Session],
        show_saved: Callable[[DetectionResult], None],
        reload: Callable[[], None],
        prepare_evidence: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__("Detect change")
        self.viewer = viewer
        self._ensure_session = ensure_session
        self._show_saved = show_saved
        self._reload = reload
        self._prepare_evidence = prepare_evidence
        self.worker: Any = None
        self.result: DetectionResult | None = None
        self._maps_shown: ChangeMaps | None = None
        self._score_shown: ChangeMaps | None = None
        self._cancelling = False
        self._status = ""  # the run's status line, shown again once candidates are drawn
        self.blocks_from_px = BLOCKS_FROM_PX
        self.block_px = BLOCK_PX
        self.run_folders = RunFolders()
        self._expect_blocks = False  # the running pair's layers are prepared multiscale
        # started now: its imports take a second or two, and a Run pressed earlier waits
        self.detector = DetectionProcess()
        self.detector.start()
        # closing the viewer destroys the dock without a closeEvent: stop the child then too
        self.destroyed.connect(functools.partial(_stop_detector, self.detector, self.run_folders))
        self._build_form()

    def _build_form(self) -> None:
        form = QFormLayout(self)
        self.before_edit = self._source_row(form, "Before")
        self.after_edit = self._source_row(form, "After")
        self.method_box = QComboBox()
        self.method_box.addItems(SCORE_METHODS)
        form.addRow("Method", self.method_box)
        self.threshold_box = QComboBox()
        self.threshold_box.addItems(THRESHOLD_METHODS)
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
        self.claim_area_box = QCheckBox("Detect in the claim's area")
        self.claim_area_box.setToolTip(
            f"Only the current claim's box (or {CLAIM_RADIUS_M:g} m around its point)"
        )
        form.addRow(self.claim_area_box)
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
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(0)
        self.progress_label = QLabel("")
        form.addRow(self.progress)
        form.addRow(self.progress_label)

    def _source_row(self, form: QFormLayout, label: str) -> QComboBox:
        box = narrow_combo()
        box.setEditable(True)
        box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        box.lineEdit().setPlaceholderText("layer, file or https:// COG")
        browse = QPushButton("…")
        browse.setFixedWidth(28)

        def pick() -> None:
            path, _ = QFileDialog.getOpenFileName(self, f"{label} raster")
            if path:
                box.setEditText(path)

        browse.clicked.connect(pick)
        row = QHBoxLayout()
        row.addWidget(box, 1)
        row.addWidget(browse)
        form.addRow(label, row)
        return box

    def detection_options(self) -> DetectionOptions:
        """The detection options the form shows (validated; a minimum area of 0 means none)."""
        tm = self.threshold_box.currentText()
        return DetectionOptions(
            method=self.method_box.currentText(),
            threshold=tm,
            threshold_value=self.threshold_value.value() if tm in ("value", "percentile") else None,
            min_area_m2=self.min_area.value() or None,
        )

    def use_sources(self, before: str, after: str) -> None:
        """Choose these layers (names), files or URLs as before and after."""
        self.before_edit.setEditText(before)
        self.after_edit.setEditText(after)

    def refresh_sources(self) -> None:
        """Offer the viewer's file-backed image layers as before and after."""
        self._name_pair()
        names = source_layer_names(self.viewer)
        for box, role in ((self.before_edit, "before"), (self.after_edit, "after")):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            box.setEditText(current)
            box.blockSignals(False)
            if not current:
                layer = role_layer(self.viewer, role)
                if layer is not None:
                    box.setEditText(layer.name)
        if not self.before_edit.currentText() and len(names) >= 2:
            self.before_edit.setEditText(names[0])
            self.after_edit.setEditText(names[1])

    def _name_pair(self) -> None:
        """Tag the before/after layers (the first two opened, if none is tagged yet).

        :func:`~._layers.tag_role` names a layer still named after its file by role and
        date ("before 2009-08-18").
        """
        tagged = {role: role_layer(self.viewer, role) for role in ("before", "after")}
        if not any(tagged.values()):
            sources = source_layer_names(self.viewer)[:2]
            if len(sources) < 2:
                return
            tagged = {
                r: self.viewer.layers[n] for r, n in zip(("before", "after"), sources, strict=True)
            }
        for role, layer in tagged.items():
            if layer is not None:
                tag_role(self.viewer, layer, role)

    # ------------------------------------------------------------ the run
    def run(self) -> Any:
        """Start alignment and detection in the child process; returns the worker.

        The worker is a thread of this process that only waits on the child's pipe (the
        wait releases the interpreter lock) and passes its steps and result on.
        """
        from napari.qt.threading import thread_worker
        from satdelta.plugins.napari._detection import guarded_steps

        if self.worker is not None:
            notify_info("a detection run is already going; wait or press Cancel")
            return None
        try:
            job, session = self._job()
        except SatdeltaError as exc:
            notify_error(exc)
            return None
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
        start_in_python_thread(worker, name="satdelta-detection")
        self._prepare_layers()
        return worker

    def _prepare_layers(self, names: tuple[str, ...] = (MASK, SCORE, EVIDENCE)) -> None:
        """Add the mask, score and evidence layers empty while the run computes.

        One per later event-loop turn: each costs napari a tenth of a second or more on
        the main thread, which would otherwise add to the turns that show the results.
        """
        from qtpy.QtCore import QTimer

        if names:
            QTimer.singleShot(0, functools.partial(self._prepare_layer, names))

    def _prepare_layer(self, names: tuple[str, ...]) -> None:
        if self.worker is None:
            return  # the run ended (its maps, if any, are shown)
        if names[0] == EVIDENCE:
            self._prepare_evidence()
        else:
            prepare_change_layer(self.viewer, names[0], multiscale=self._expect_blocks)
        self._prepare_layers(names[1:])

    def _job(self) -> tuple[DetectionJob, Session]:
        """The job the form describes, and the session its candidates go to."""
        before, b_layer = resolve_source(self.viewer, self.before_edit.currentText(), "before")
        after, a_layer = resolve_source(self.viewer, self.after_edit.currentText(), "after")
        tag_role(self.viewer, b_layer, "before")
        tag_role(self.viewer, a_layer, "after")
        self.before_edit.setEditText(b_layer.name)  # tag_role may have named them by role
        self.after_edit.setEditText(a_layer.name)
        options = self.detection_options()
        self._expect_blocks = _expects_blocks(b_layer, options, self.blocks_from_px)
        session = self._ensure_session()
        claim_id = session.ensure_claim()  # the child saves the candidates to it
        if self.claim_area_box.isChecked():
            claim = session.store.get_claim(claim_id)
            radius = CLAIM_RADIUS_M if claim.bbox is None else None
            options = dataclasses.replace(options, aoi=claim_area(claim, radius))
        job = DetectionJob(
            str(before),
            str(after),
            options,
            store=str(session.store.location),  # a URL keeps its password for the child
            report_id=session.report_id,
            claim_id=claim_id,
            frame=session.frame.to_dict() if session.frame is not None else None,
            run_folder=self.run_folders.next(),  # used if the child runs it block by block
            blocks_from_px=self.blocks_from_px,
            block_px=self.block_px,
        )
        return job, session

    def cancel(self) -> None:
        """Stop the running detection now: the child process is killed (a fresh one starts).

        A save that had begun either committed (all candidates saved) or rolled back
        (none); the status line says which.
        """
        if self.worker is not None:
            self._cancelling = True
            self.detector.cancel()
            self._say("cancelling…")

    def shutdown(self) -> None:
        """Stop the run and the child process (the dock is closing)."""
        if self.worker is not None:
            self.detector.cancel()
        self.detector.stop()
        self.run_folders.remove()

    def _set_progress(self, value: int, total: int = PROGRESS_STEPS) -> None:
        """Move the progress bar to ``value`` of ``total`` (at least the six steps), painted
        with the window's next frame.

        ``QProgressBar.setValue`` repaints at once, and a synchronous repaint in this window
        also redraws the GL canvas; with updates off during the call it is only scheduled.
        """
        self.progress.setUpdatesEnabled(False)
        try:
            top = max(total, PROGRESS_STEPS)  # the whole-array path counts 5 steps, then 6
            if self.progress.maximum() != top:
                self.progress.setRange(0, top)
            self.progress.setValue(value)
        finally:
            self.progress.setUpdatesEnabled(True)  # schedules the bar's paint

    def _say(self, text: str) -> None:
        self._status = text
        self.progress_label.setText(text)

    def show_loading(self, shown: int, total: int) -> None:
        """Say how many candidates the evidence layer holds while it fills."""
        if shown < total:
            self.progress_label.setText(f"drawing {shown}/{total} candidates")
        else:
            self.progress_label.setText(self._status)

    def show_maps(self, layers: ChangeLayers) -> None:
        """Show (or update in place) the mask of a run now, its score on the next turn.

        One layer per event-loop turn: adding a layer costs napari a few tenths of a
        second on the main thread.
        """
        from qtpy.QtCore import QTimer

        show_change_maps(self.viewer, layers, only=(MASK,))
        self._maps_shown = layers.maps
        QTimer.singleShot(0, functools.partial(self._show_score, layers))

    def _show_score(self, layers: ChangeLayers) -> None:
        # once per run, and not when a newer run's maps took over
        if self._maps_shown is layers.maps and self._score_shown is not layers.maps:
            show_change_maps(self.viewer, layers, only=(SCORE,))
            self._score_shown = layers.maps

    def _on_step(self, step: tuple[Any, ...]) -> None:
        i, total, message = step[:3]
        self._set_progress(i, total)
        self._say(message)
        if len(step) > 3 and not self._cancelling:
            # the maps exist and the child now outlines and saves the candidates: show
            # the maps meanwhile (a cancel before the save keeps them and saves nothing)
            try:
                self.show_maps(step[3])
            except SatdeltaError as exc:
                notify_error(exc)

    def _on_result(self, result: DetectionResult | Failed | Cancelled) -> None:
        if isinstance(result, Cancelled):
            self._on_cancelled(result)
            return
        if isinstance(result, Failed):
            self._on_error(result.error)
            return
        self.result = result
        self._set_progress(self.progress.maximum(), self.progress.maximum())  # full
        self._say(
            f"done: {len(result.polygons)} candidates, threshold {result.maps.threshold:.4g} "
            f"({result.maps.method}/{result.maps.threshold_method})"
            + ("; not stored (no georeferencing)" if result.crs is None else "")
        )  # shown again once the candidates are drawn (show_loading)
        try:
            if self._maps_shown is not result.maps:
                self.show_maps(result)
            self._show_score(result)  # if its turn has not come yet
            self._show_saved(result)
        except SatdeltaError as exc:
            notify_error(exc)
            self._say("failed")
            return
        if result.crs is None:
            notify_info(f"{len(result.polygons)} changed regions found. {NOT_STORED}")

    def _on_cancelled(self, outcome: Cancelled | None = None) -> None:
        self._say(outcome.message if outcome is not None else "cancelled: nothing saved")
        discard_prepared(self.viewer)
        self._reload()  # the store as it is (with all candidates or none)

    def _on_error(self, exc: SatdeltaError) -> None:
        notify_error(exc)
        self._say("failed")
        discard_prepared(self.viewer)
        if isinstance(exc, DetectionProcessDied):  # its save may have committed: all or none
            self._reload()

    def _worker_done(self) -> None:
        # the run folders no layer shows any more (replaced, failed, cancelled) go
        self.run_folders.prune(
            {
                run
                for layer in image_layers(self.viewer)
                if (run := (layer.metadata.get("satdelta") or {}).get("run_folder"))
            }
        )
        self.worker = None
        self._cancelling = False
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if not self.detector.is_alive():  # cancelled or crashed: warm a fresh child
            self.detector.start()


def _expects_blocks(before: Any, options: DetectionOptions, blocks_from_px: int) -> bool:
    """Whether the child will run this pair block by block, from the before layer's grid
    (the child decides from the file; a wrong guess costs only a layer made anew)."""
    sd = before.metadata.get("satdelta") or {}
    height, width = sd.get("shape") or (0, 0)
    grid = SimpleNamespace(height=height, width=width, crs=sd.get("crs"))
    return runs_in_blocks(grid, options, blocks_from_px)  # type: ignore[arg-type]


def _stop_detector(detector: DetectionProcess, folders: RunFolders, *_args: Any) -> None:
    """Stop the detection child and remove the run folders (the panel was destroyed)."""
    detector.cancel()
    detector.stop()
    folders.remove()
