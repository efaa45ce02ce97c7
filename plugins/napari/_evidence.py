"""The ``evidence`` Shapes layer kept in step with the annotation store.

:class:`EvidenceLayer` turns napari's data events (added, changed, removing/removed)
into store writes at once, and draws store state (after a run, an undo, opening a
store) back with status colours.  Rows hold the store's ``annotation_id``; a
MultiPolygon is one row per part with the same id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from satdelta.imagery.errors import SatdeltaError
from satdelta.plugins.napari._features import ANNOTATION_COLUMNS, status_colours
from satdelta.plugins.napari._layers import viewer_frame
from satdelta.plugins.napari._notify import notify_error as _notify_error
from satdelta.plugins.napari._notify import notify_info as _notify_info
from satdelta.plugins.napari._session import EvidenceRows, LayerRows, Session

if TYPE_CHECKING:
    import napari

__all__ = ["EVIDENCE", "EvidenceLayer"]

EVIDENCE = "evidence"


class EvidenceLayer:
    """The evidence layer of one viewer, read from and written to the current session.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer that shows the layer.
    session : callable
        Returns the current :class:`~._session.Session`, or None when no store is open.
    on_selection : callable
        Called when the selection (or the selected rows' fields) may have changed.
    """

    #: Vertices triangulated per event-loop turn when redrawing many polygons; a
    #: budget of 40,000 keeps each turn around a quarter of a second here.
    chunk_vertices: int = 40_000

    def __init__(
        self,
        viewer: napari.Viewer,
        *,
        session: Callable[[], Session | None],
        on_selection: Callable[[], None],
    ) -> None:
        self.viewer = viewer
        self._session = session
        self._on_selection = on_selection
        self._syncing = False
        self._loading = False
        self._load_generation = 0
        self._removing: list[str] = []
        self._followed: Any = None  # the layer whose events are connected here

    @property
    def session(self) -> Session | None:
        """The current session (None when no store is open)."""
        return self._session()

    def layer(self) -> Any:
        """The Shapes layer with the current report's annotations (created on demand).

        Its edits are saved from now on, also when an earlier dock made the layer.
        """
        if EVIDENCE in self.viewer.layers:
            layer = self.viewer.layers[EVIDENCE]
        else:
            frame = viewer_frame(self.viewer)
            layer = self.viewer.add_shapes(
                name=EVIDENCE,
                ndim=2,
                face_color=[0, 0, 0, 0],
                edge_width=2,
                features={
                    k: np.array([], dtype=object if isinstance(v, str) else float)
                    for k, v in ANNOTATION_COLUMNS.items()
                },
                metadata={
                    "satdelta": {"frame": frame.to_dict() if frame else None, "role": "evidence"}
                },
            )
            layer.feature_defaults = dict(ANNOTATION_COLUMNS)
        if self._followed is None or self._followed != layer:  # napari may hand out proxies
            self.disconnect()
            layer.events.data.connect(self._on_shapes_data)
            layer.selected_data.events.items_changed.connect(self._selection_changed)
            layer.editable = True
            self._followed = layer
        return layer

    def disconnect(self) -> None:
        """Stop following the layer (the dock is closing).

        The layer stays, locked: with nothing saving them, new edits would be lost.
        """
        if self._followed is not None:
            self._followed.events.data.disconnect(self._on_shapes_data)
            self._followed.selected_data.events.items_changed.disconnect(self._selection_changed)
            self._followed.editable = False
            self._followed = None

    def _selection_changed(self, _event: Any = None) -> None:
        self._on_selection()

    @property
    def loading(self) -> bool:
        """True while the evidence layer is still being filled (many polygons)."""
        return self._loading

    def reload(self) -> None:
        """Redraw the evidence layer from the store.

        Up to :attr:`chunk_vertices` vertices are drawn at once; more are added a
        chunk per event-loop turn, so the window keeps responding while thousands
        of detected outlines are triangulated.  Meanwhile the layer is not editable
        (nothing drawn could be lost) and :attr:`loading` is True.
        """
        session, frame = self.session, viewer_frame(self.viewer)
        if session is None or frame is None:
            return
        session.frame = session.frame or frame
        self.show_rows(session.rows())

    def show(self, evidence: EvidenceRows | None) -> None:
        """Draw rows read elsewhere (a worker thread) if they are still current, else reload.

        They are current when the session's :meth:`~._session.Session.mark` is still the
        one they were read at: nothing was saved, undone or chosen through it since.
        """
        session = self.session
        if (
            evidence is not None
            and session is not None
            and viewer_frame(self.viewer) is not None
            and evidence.mark == session.mark()
        ):
            self.show_rows(evidence.rows)
        else:
            self.reload()

    def show_rows(self, rows: LayerRows) -> None:
        """Replace the evidence layer's content with ``rows`` (chunked when there are many).

        Only napari work happens here; the rows come from :meth:`reload` or, after a
        run, from the detection child.
        """
        layer = self.layer()
        self._load_generation += 1
        chunks = _chunks(rows.shapes, self.chunk_vertices)
        # status colours given with the shapes: one colour update instead of two
        colours = status_colours(rows.properties["status"])
        self._syncing = True
        try:
            if len(layer.data):  # clearing an empty layer (a first run) still costs a refresh
                layer.selected_data = set()
                layer.data = []
            if len(chunks) <= 1:
                if rows.shapes:
                    layer.add(rows.shapes, shape_type="polygon", edge_color=colours)
                    layer.features = rows.properties
                self._loading = False
        finally:
            self._syncing = False
        if len(chunks) <= 1:
            self._on_selection()
            return
        self._loading = True
        layer.editable = False
        self._add_chunks(layer, rows, colours, chunks, 0, self._load_generation)

    def _add_chunks(
        self,
        layer: Any,
        rows: LayerRows,
        colours: np.ndarray,
        chunks: list[tuple[int, int]],
        k: int,
        generation: int,
    ) -> None:
        from qtpy.QtCore import QTimer

        if generation != self._load_generation or layer not in self.viewer.layers:
            return  # a newer reload (or the layer's removal) took over
        self._syncing = True
        try:
            lo, hi = chunks[k]
            layer.add(rows.shapes[lo:hi], shape_type="polygon", edge_color=colours[lo:hi])
            if k + 1 == len(chunks):
                layer.features = rows.properties
        finally:
            self._syncing = False
        if k + 1 < len(chunks):
            QTimer.singleShot(
                0, lambda: self._add_chunks(layer, rows, colours, chunks, k + 1, generation)
            )
            return
        self._loading = False
        layer.editable = True
        self._on_selection()

    def _recolour(self, layer: Any) -> None:
        if len(layer.data):
            layer.edge_color = status_colours(list(layer.features["status"]))

    def _on_shapes_data(self, event: Any) -> None:
        if self._syncing or self.loading or self.session is None:
            return
        action = str(getattr(event, "action", ""))
        layer = event.source
        if action.endswith("removing"):
            self._removing = [
                layer.features["annotation_id"].iloc[i]
                for i in event.data_indices
                if 0 <= i < len(layer.features)
            ]
            return
        try:
            if action.endswith("added"):
                self._save_new_shapes(layer)
            elif action.endswith("changed"):
                for i in event.data_indices:
                    if 0 <= i < len(layer.data):
                        self._save_geometry(layer, i)
            elif action.endswith("removed"):
                remaining = list(layer.features["annotation_id"])
                for aid in dict.fromkeys(self._removing):
                    if aid and aid not in remaining:
                        self.session.delete(aid)
                    elif aid:  # one part of a multi-part annotation: keep the others
                        self._save_geometry(layer, remaining.index(aid))
                self._removing = []
        except SatdeltaError as exc:
            _notify_error(exc)

    def _save_new_shapes(self, layer: Any) -> None:
        """Save shapes that have no annotation id yet (drawn, or not saved before)."""
        ids = list(layer.features["annotation_id"])
        seen: set[str] = set()
        for i, aid in enumerate(ids):
            # napari copies the selected shape's properties to a new one: a repeated id is new
            fresh = not aid or aid in seen
            seen.add(aid)
            if not fresh:
                continue
            for k, v in ANNOTATION_COLUMNS.items():
                layer.features.loc[i, k] = v
            ann = self.session.add_drawn(
                np.asarray(layer.data[i]), layer.shape_type[i], status="accepted"
            )
            self._write_row(layer, i, ann)
        self._recolour(layer)

    def _save_geometry(self, layer: Any, i: int) -> None:
        aid = layer.features["annotation_id"].iloc[i]
        if not aid:
            return
        rows = np.flatnonzero(layer.features["annotation_id"].to_numpy() == aid)
        parts = [(np.asarray(layer.data[r]), layer.shape_type[r]) for r in rows]
        ann = self.session.update_geometry(aid, parts)
        for r in rows:
            self._write_row(layer, int(r), ann)

    def _write_row(self, layer: Any, i: int, ann: Any) -> None:
        feats = layer.features
        feats.loc[i, "annotation_id"] = ann.id
        feats.loc[i, "label"] = ann.label
        feats.loc[i, "claim_id"] = str(ann.claim_id)
        feats.loc[i, "verdict"] = ann.verdict
        feats.loc[i, "confidence"] = float("nan") if ann.confidence is None else ann.confidence
        feats.loc[i, "status"] = ann.status
        feats.loc[i, "origin"] = ann.origin
        feats.loc[i, "notes"] = ann.notes or ""
        feats.loc[i, "area_m2"] = ann.area_m2

    def _selected_rows(self) -> list[int]:
        if EVIDENCE not in self.viewer.layers:
            return []
        return sorted(self.viewer.layers[EVIDENCE].selected_data)

    def _selected_ids(self) -> list[str]:
        layer = self.viewer.layers[EVIDENCE] if EVIDENCE in self.viewer.layers else None
        if layer is None:
            return []
        ids = [layer.features["annotation_id"].iloc[i] for i in self._selected_rows()]
        return [a for a in dict.fromkeys(ids) if a]

    def selected(self) -> tuple[dict[str, Any], int] | None:
        """The first selected row's fields and how many rows are selected (None: none)."""
        rows = self._selected_rows()
        if not rows:
            return None
        features = self.viewer.layers[EVIDENCE].features
        return features.iloc[rows[0]].to_dict(), len(rows)

    # ------------------------------------------------------------ edits
    def apply(self, changes: dict[str, Any]) -> None:
        """Save ``changes`` (annotation fields) to every selected annotation, a revision each."""
        session = self.session
        if session is None:
            _notify_info("open a store first (Evidence store)")
            return
        ids = self._selected_ids()
        if not ids:
            _notify_info("select a polygon in the evidence layer first")
            return
        layer = self.viewer.layers[EVIDENCE]
        try:
            for aid in ids:
                ann = session.update(aid, **changes)
                for i in np.flatnonzero(layer.features["annotation_id"].to_numpy() == aid):
                    self._write_row(layer, int(i), ann)
        except SatdeltaError as exc:
            _notify_error(exc)
        self._recolour(layer)
        self._on_selection()

    def set_status(self, status: str) -> None:
        """Accept or reject the selected polygons (keys J and K)."""
        self.apply({"status": status})

    def next_candidate(self) -> None:
        """Select the next unreviewed candidate and centre the view on it (key N)."""
        if EVIDENCE not in self.viewer.layers:
            return
        layer = self.viewer.layers[EVIDENCE]
        statuses = list(layer.features["status"])
        rows = self._selected_rows()
        start = rows[-1] + 1 if rows else 0
        n = len(statuses)
        for k in range(n):
            i = (start + k) % n
            if statuses[i] == "candidate":
                layer.selected_data = {i}
                centre = np.asarray(layer.data[i]).mean(axis=0)
                self.viewer.scene.camera.center = tuple(centre)
                return
        _notify_info("no unreviewed candidates left")

    def undo(self) -> None:
        """Undo the latest change in the store and redraw (key U)."""
        session = self.session
        if session is None:
            return
        try:
            text = session.undo()
        except SatdeltaError as exc:
            _notify_error(exc)
            return
        self.reload()
        _notify_info(text)


def _chunks(shapes: list[np.ndarray], max_vertices: int) -> list[tuple[int, int]]:
    """Split shapes into consecutive ``(start, stop)`` runs of at most ``max_vertices``.

    Examples
    --------
    >>> _chunks([np.zeros((4, 2))] * 5, 8)
    [(0, 2), (2, 4), (4, 5)]
    """
    out: list[tuple[int, int]] = []
    start, count = 0, 0
    for i, s in enumerate(shapes):
        n = len(s)
        if count and count + n > max_vertices:
            out.append((start, i))
            start, count = i, 0
        count += n
    if start < len(shapes):
        out.append((start, len(shapes)))
    return out
