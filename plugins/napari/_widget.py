"""The "Change annotator" dock widget: its panels, the evidence layer and the keys.

A thin composition over the Qt-free :class:`._session.Session`: the panels
(:mod:`._detect_panel`, :mod:`._compare_panel`, :mod:`._store_panel`,
:mod:`._polygon_panel`, :mod:`._imagery_panel`) and the evidence layer
(:mod:`._evidence`) are wired here.
Keys J accept, K reject, N next candidate, U undo, Q flicker, H hold to see before and
W swipe are bound on the viewer while the dock is open, and given back when it closes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QEvent, QSize, Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget
from satdelta.imagery.errors import SatdeltaError
from satdelta.plugins.napari._compare_panel import ComparePanel
from satdelta.plugins.napari._detect_panel import DetectPanel
from satdelta.plugins.napari._evidence import NOT_STORED, EvidenceLayer
from satdelta.plugins.napari._imagery_panel import ImageryPanel
from satdelta.plugins.napari._keys import ViewerKeys
from satdelta.plugins.napari._layers import InputError, viewer_frame
from satdelta.plugins.napari._notify import notify_error, notify_info
from satdelta.plugins.napari._objects_panel import ObjectsPanel
from satdelta.plugins.napari._polygon_panel import PolygonPanel
from satdelta.plugins.napari._session import Session
from satdelta.plugins.napari._status import install_lonlat_status
from satdelta.plugins.napari._store_panel import StorePanel

if TYPE_CHECKING:
    import napari
    from satdelta.plugins.evidence import Package
    from satdelta.plugins.napari._detection import DetectionResult
    from satdelta.plugins.napari._frame import MapFrame

__all__ = ["ChangeAnnotator"]

#: Store opened in the working directory when Run needs one and none is open.
DEFAULT_STORE = "satdelta.gpkg"


class ChangeAnnotator(QWidget):
    """Dock widget for before/after review and report-linked annotation.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        Injected by napari.
    store : path, optional
        A store to open at once.

    Attributes
    ----------
    session : Session or None
        The open store, report and claim (None until a store is opened).
    detect_panel, compare_panel, store_panel, polygon_panel, imagery_panel : QWidget
        The dock's panels, top to bottom.
    evidence : EvidenceLayer
        The ``evidence`` Shapes layer kept in step with the store.
    """

    def __init__(self, napari_viewer: napari.Viewer, *, store: str | os.PathLike | None = None):
        super().__init__()
        self.viewer = napari_viewer
        self.session: Session | None = None
        self._pending_report: tuple[dict[str, Any] | None, str | None] = (None, None)
        self._docked = False
        self._closed = False
        self.evidence = EvidenceLayer(
            napari_viewer,
            session=lambda: self.session,
            on_selection=self._show_selection,
            on_progress=lambda shown, total: self.detect_panel.show_loading(shown, total),
        )
        self.detect_panel = DetectPanel(
            napari_viewer,
            ensure_session=self._ensure_session,
            show_saved=self._show_saved,
            reload=self.evidence.reload,
            prepare_evidence=self.evidence.prepare,
        )
        self.compare_panel = ComparePanel(napari_viewer)
        self.imagery_panel = ImageryPanel(napari_viewer)
        self.store_panel = StorePanel()
        self.polygon_panel = PolygonPanel()
        self.objects_panel = ObjectsPanel(napari_viewer)
        self.setMaximumWidth(520)
        panels = (self.detect_panel, self.compare_panel, self.store_panel, self.polygon_panel)
        self._lay_out(*panels, self.objects_panel, self.imagery_panel)
        self._connect_panels()
        self.keys = self._bind_keys()
        # closing the viewer destroys the dock without a closeEvent: give the keys back then
        self.destroyed.connect(functools.partial(_release_keys, self.keys))
        install_lonlat_status(napari_viewer)
        napari_viewer.layers.events.inserted.connect(self._on_layer_inserted)
        napari_viewer.layers.events.removed.connect(self._on_layer_removed)
        self.detect_panel.refresh_sources()
        for layer in list(napari_viewer.layers):
            self._adopt_report(layer)
        if store is not None:
            self.open_store(store)

    def _lay_out(self, *panels: QWidget) -> None:
        """Stack the panels in a scroll area: the dock never makes the window taller."""
        inner = QWidget()
        layout = QVBoxLayout(inner)
        for panel in panels:
            layout.addWidget(panel)
        layout.addStretch(1)
        scroll = _VerticalScroll()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def _connect_panels(self) -> None:
        store, polygon, evidence = self.store_panel, self.polygon_panel, self.evidence
        store.open_requested.connect(self.open_store)
        store.report_chosen.connect(self._on_report_chosen)
        store.claim_chosen.connect(self._on_claim_chosen)
        store.export_requested.connect(self.export_geojson)
        store.evidence_requested.connect(self.write_evidence)
        polygon.edited.connect(self._on_field_edited)
        polygon.status_requested.connect(evidence.set_status)
        polygon.next_requested.connect(evidence.next_candidate)
        polygon.undo_requested.connect(evidence.undo)
        self.imagery_panel.opened.connect(self.detect_panel.use_sources)

    def _bind_keys(self) -> ViewerKeys:
        keys = ViewerKeys(self.viewer)
        evidence, compare = self.evidence, self.compare_panel
        keys.bind("j", lambda _v: evidence.set_status("accepted"))
        keys.bind("k", lambda _v: evidence.set_status("rejected"))
        keys.bind("n", lambda _v: evidence.next_candidate())
        keys.bind("u", lambda _v: evidence.undo())
        keys.bind("q", lambda _v: compare.flicker())
        keys.bind("w", lambda _v: compare.toggle_swipe())
        keys.bind("h", compare.hold_before)
        return keys

    # ------------------------------------------------------------ public
    def frame(self) -> MapFrame | None:
        """The viewer's map frame (from the first satdelta layer)."""
        return viewer_frame(self.viewer)

    def run(self) -> Any:
        """Start detection with the Detect panel's inputs; returns the worker, or None."""
        return self.detect_panel.run()

    def cancel(self) -> None:
        """Stop the running detection."""
        self.detect_panel.cancel()

    def open_store(self, path: str | os.PathLike) -> bool:
        """Open (or create) a store and show the latest report's annotations."""
        try:
            session = Session.open(path, self.frame())
        except SatdeltaError as exc:
            notify_error(exc)
            return False
        if self.session is not None:
            self.session.close()
        self.session = session
        self.store_panel.show_store(str(session.store.path))  # a URL without its password
        self._load_pending_report()
        self._show_choices()
        self.evidence.reload()
        return True

    def export_geojson(self, path: str | os.PathLike) -> int | None:
        """Export the current report's annotations as RFC 7946 GeoJSON; returns the count."""
        if self.session is None:
            notify_info("open a store first (Evidence store)")
            return None
        if not self.evidence.stores:
            notify_info(f"GeoJSON export skipped: {NOT_STORED}")
            return None
        try:
            n = self.session.export(path)
        except SatdeltaError as exc:
            notify_error(exc)
            return None
        notify_info(f"exported {n} polygons to {path}")
        return n

    def write_evidence(self, folder: str | os.PathLike) -> Package | None:
        """Write the current report's evidence package into a new folder (docs/evidence.md)."""
        if self.session is None or self.session.report_id is None:
            notify_info("open a store and choose a report first (Evidence store)")
            return None
        from satdelta.plugins.evidence import make_package

        try:
            package = make_package(self.session.store, self.session.report_id, folder)
        except SatdeltaError as exc:
            notify_error(exc)
            return None
        n = len(package.problems)
        notify_info(
            f"wrote the evidence package to {package.folder}"
            + (f"; {n} problem(s) named in index.html" if n else "")
        )
        return package

    # ------------------------------------------------------------ session
    def _ensure_session(self) -> Session:
        if self.session is None:
            path = Path.cwd() / DEFAULT_STORE
            if not self.open_store(path):
                raise InputError(
                    f"could not open the default store {path}; open a store under Evidence store."
                )
            notify_info(f"saving evidence to {path}")
        assert self.session is not None
        if self.session.frame is None:
            self.session.frame = self.frame()
        return self.session

    def _show_saved(self, result: DetectionResult) -> None:
        """Show the candidates a run saved (read back by the child when still current)."""
        if self.session is None:
            return
        if self.session.frame is None:
            self.session.frame = self.frame()
        self._show_choices()  # the run may have made the "Working notes" report
        if result.crs is None:
            self.evidence.show_unstored(result.polygons)
            return
        self.evidence.show(self.session.note_write_elsewhere(result.evidence))

    def _show_choices(self) -> None:
        s = self.session
        if s is None:
            return
        claims = [(c.text if len(c.text) < 60 else c.text[:57] + "…", c.id) for c in s.claims()]
        reports = [(r.title, r.id) for r in s.reports()]
        self.store_panel.show_choices(reports, s.report_id, claims, s.claim_id)
        self.polygon_panel.set_choices(claims, s.store.labels())
        self._show_claim()

    def _on_report_chosen(self, report_id: int) -> None:
        if self.session is None:
            return
        self.session.select_report(report_id)
        self._show_choices()
        self.evidence.reload()

    def _on_claim_chosen(self, claim_id: int) -> None:
        if self.session is not None:
            self.session.claim_id = claim_id
            self._show_claim()

    def _show_claim(self) -> None:
        s = self.session
        claim = s.store.get_claim(s.claim_id) if s is not None and s.claim_id is not None else None
        self.imagery_panel.show_claim(claim)

    def _on_field_edited(self, field: str, value: Any) -> None:
        if self.session is not None:
            self.evidence.apply({field: value})

    def _show_selection(self) -> None:
        self.polygon_panel.show_review(*self.evidence.review_progress())
        self.objects_panel.refresh(self.session)  # after every reload, save, accept or reject
        selected = self.evidence.selected() if self.session is not None else None
        if selected is None:
            self.polygon_panel.show_selection(None)
        else:
            self.polygon_panel.show_selection(*selected)

    # ------------------------------------------------------------ layers
    def _on_layer_inserted(self, event: Any) -> None:
        self.detect_panel.refresh_sources()
        self._adopt_report(event.value)

    def _on_layer_removed(self, _event: Any) -> None:
        self.detect_panel.refresh_sources()

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
        report, site = self._pending_report
        if report is None or self.session is None:
            return
        try:
            self.session.load_report(report, site=site)
        except SatdeltaError as exc:
            notify_error(exc)
            return
        self._pending_report = (None, None)
        self._show_choices()

    # ------------------------------------------------------------ closing
    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ParentChange:
            if self.parent() is not None:
                self._docked = True
            elif self._docked:  # napari's remove_dock_widget orphans the widget: closed
                self._shutdown()
        return super().event(event)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self._shutdown()
        super().closeEvent(event)

    def _shutdown(self) -> None:
        """Give the keys back, stop detection, let go of the viewer and close the store."""
        if not self._closed:
            self._closed = True
            self.keys.release()
            self.detect_panel.shutdown()
            self.compare_panel.shutdown()
            self.evidence.disconnect()
            self.viewer.layers.events.inserted.disconnect(self._on_layer_inserted)
            self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        if self.session is not None:
            self.session.close()
            self.session = None


def _release_keys(keys: ViewerKeys, *_args: Any) -> None:
    """Give the viewer its keys back (the dock widget was destroyed)."""
    keys.release()


class _VerticalScroll(QScrollArea):
    """A scroll area that scrolls only vertically and is never narrower than its content.

    QScrollArea's own minimum width ignores its widget's, so content that grows wider after
    construction (a long status line, a store path) was clipped on the left.
    """

    def setWidget(self, widget: QWidget) -> None:  # noqa: N802 (Qt's name)
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(watched, event)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        hint = super().minimumSizeHint()
        inner = self.widget()
        if inner is not None:
            bar = self.verticalScrollBar().sizeHint().width()
            hint.setWidth(inner.minimumSizeHint().width() + bar)
        return hint
