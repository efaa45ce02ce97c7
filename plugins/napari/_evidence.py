"""The ``evidence`` Shapes layer kept in step with the annotation store.

:class:`EvidenceLayer` turns napari's data events (added, changed, removing/removed)
into store writes at once, and draws store state (after a run, an undo, opening a
store) back with status colours.  Rows hold the store's ``annotation_id``; a
MultiPolygon is one row per part with the same id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from satdelta.imagery.errors import SatdeltaError
from satdelta.plugins.napari._features import ANNOTATION_COLUMNS, status_colours, status_z
from satdelta.plugins.napari._layers import viewer_frame, viewer_tolerance
from satdelta.plugins.napari._notify import notify_error as _notify_error
from satdelta.plugins.napari._notify import notify_info as _notify_info
from satdelta.plugins.napari._session import EvidenceRows, LayerRows, Session, polygons_to_rows

if TYPE_CHECKING:
    import napari

__all__ = ["EVIDENCE", "NOT_STORED", "EvidenceLayer"]

EVIDENCE = "evidence"
#: What the desk says when layers without georeferencing are reviewed.
NOT_STORED = (
    "these layers are not georeferenced: their candidates are shown and reviewed in the "
    "evidence layer in pixel coordinates but not stored (the store keeps lon/lat), so "
    "there is nothing to undo or export; use georeferenced rasters to keep evidence."
)
#: Outline width of the evidence polygons, and of the selected ones (highlighted).
EDGE_WIDTH, SELECTED_EDGE_WIDTH = 2.0, 6.0
#: Milliseconds between a new layer's warm-up slice and the next (its first draw between).
WARM_DRAW_MS = 30


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
    on_progress : callable, optional
        Called with ``(shown, total)`` annotations while a redraw fills the layer, and
        once more when it is complete.
    """

    #: Shapes added at once when the layer is redrawn; more are added in later event-loop
    #: turns, each sized to take about :attr:`slice_seconds`, with the layer hidden
    #: meanwhile (so the canvas is not repainted after every slice).
    first_slice: int = 50
    #: Time one event-loop turn may spend adding shapes (the window stays responsive).
    slice_seconds: float = 0.05
    #: Fewest shapes added per turn.
    min_slice: int = 100

    def __init__(
        self,
        viewer: napari.Viewer,
        *,
        session: Callable[[], Session | None],
        on_selection: Callable[[], None],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.viewer = viewer
        self._session = session
        self._on_selection = on_selection
        self._on_progress = on_progress or (lambda _shown, _total: None)
        self._syncing = False
        self._loading = False
        self._visible_after_load = True
        self._load_generation = 0
        self._removing: list[str] = []
        self._highlighted: set[int] = set()  # rows drawn with SELECTED_EDGE_WIDTH
        self._reader: Any = None  # the worker reading the store (kept while it runs)
        self._followed: Any = None  # the layer whose events are connected here
        # layers drawn with outlines once (napari's unique_id: the layer objects handed
        # out may be proxies, a new one per lookup)
        self._drawn_layers: set[Hashable] = set()

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
                edge_width=EDGE_WIDTH,
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

    def prepare(self) -> None:
        """Add the layer now if a store is open and it is missing (ahead of a run's rows)."""
        if self.session is not None and viewer_frame(self.viewer) is not None:
            self.layer()

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
        if self._followed is not None and not self._loading:
            self._highlight(self._followed)
        self._on_selection()

    def _highlight(self, layer: Any) -> None:
        """Draw the selected polygons with a wider outline."""
        selected = {i for i in layer.selected_data if i < len(layer.data)}
        if selected == self._highlighted or not len(layer.data):
            self._highlighted = selected
            return
        widths = np.full(len(layer.data), EDGE_WIDTH)
        widths[sorted(selected)] = SELECTED_EDGE_WIDTH
        layer.edge_width = widths.tolist()
        self._highlighted = selected

    @property
    def stores(self) -> bool:
        """False when the layers have no georeferencing: candidates are shown, not stored."""
        frame = self.session.frame if self.session is not None else None
        return frame is None or frame.georeferenced

    def show_unstored(self, polygons: Sequence[Any]) -> None:
        """Show a run's polygons in a pixel frame: reviewed in the layer, never stored."""
        frame = viewer_frame(self.viewer)
        if frame is not None:
            self.show_rows(polygons_to_rows(polygons, frame))

    @property
    def loading(self) -> bool:
        """True while the evidence layer is still being filled (many polygons)."""
        return self._loading

    def reload(self) -> None:
        """Redraw the evidence layer from the store.

        The store is read in a worker thread (thousands of annotations take a few tenths
        of a second to decode and project); meanwhile :attr:`loading` is True and the
        layer is not editable.  Detected outlines are simplified by half a pixel for
        display; the rows are drawn by :meth:`show_rows`.
        """
        from satdelta.plugins.napari._threads import read_in_thread

        session, frame = self.session, viewer_frame(self.viewer)
        if session is None or frame is None or not frame.georeferenced:
            return  # nothing stored can be placed on layers without georeferencing
        session.frame = session.frame or frame
        tolerance = viewer_tolerance(self.viewer)
        self.layer()  # there (empty, not editable) while the rows are read
        self._begin_loading()
        self._load_generation += 1
        generation, mark = self._load_generation, session.mark()
        self._reader = read_in_thread(
            lambda: session.rows(tolerance=tolerance),
            lambda rows: self._rows_read(rows, generation, mark),
            lambda exc: self._read_failed(exc, generation),
            name="satdelta-evidence-read",
        )

    def _begin_loading(self) -> None:
        """Mark the layer as filling (not editable) and remember whether it was shown."""
        layer = self.viewer.layers[EVIDENCE] if EVIDENCE in self.viewer.layers else None
        if not self._loading:
            self._visible_after_load = layer.visible if layer is not None else True
        self._loading = True
        if layer is not None:
            layer.editable = False

    def _rows_read(self, rows: LayerRows, generation: int, mark: tuple[Any, ...]) -> None:
        """Draw rows the worker read, unless a newer load or a write made them stale."""
        if generation != self._load_generation:
            return  # a newer reload or redraw took over
        if _viewer_closed(self.viewer):
            self._loading = False  # napari closed meanwhile: nothing to draw in
            return
        session = self.session
        if session is None:
            self._end_loading(
                self.viewer.layers[EVIDENCE] if EVIDENCE in self.viewer.layers else None,
                self._visible_after_load,
            )
        elif session.mark() != mark:
            self.reload()  # the session wrote or chose something meanwhile: read again
        else:
            self.show_rows(rows)

    def _read_failed(self, exc: BaseException, generation: int) -> None:
        """A read failed: say why, unless a newer load took over or the store was closed
        meanwhile (another store opened, the dock closed: the read's error is moot)."""
        if generation != self._load_generation:
            return
        layer = self.viewer.layers[EVIDENCE] if EVIDENCE in self.viewer.layers else None
        self._end_loading(layer, self._visible_after_load)
        if self.session is None:
            return
        if not isinstance(exc, SatdeltaError):
            raise exc
        _notify_error(exc)

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
            session.display_tolerance = viewer_tolerance(self.viewer)  # as the child drew
            self.show_rows(evidence.rows)
        else:
            self.reload()

    def show_rows(self, rows: LayerRows) -> None:
        """Replace the evidence layer's content with ``rows``, in slices when there are many.

        :attr:`first_slice` shapes are added now; the rest in later event-loop turns of
        about :attr:`slice_seconds` each, so the window keeps responding while thousands
        of outlines are triangulated.  Meanwhile the layer is not editable (nothing drawn
        could be lost) and :attr:`loading` is True.  Only napari work happens here; the
        rows come from :meth:`reload` or, after a run, from the detection child.
        """
        layer = self.layer()
        self._raise(layer)
        self._load_generation += 1
        self._highlighted = set()
        self._syncing = True
        try:
            if len(layer.data):  # clearing an empty layer (a first run) still costs a refresh
                layer.selected_data = set()
                layer.data = []
        finally:
            self._syncing = False
        # a load that supersedes one still filling keeps that one's visibility, not the
        # hidden state it left the layer in
        self._begin_loading()
        load = _Load(layer, rows, self._load_generation, self._visible_after_load)
        if len(rows.shapes) > self.first_slice:
            # hidden while it fills: each slice would otherwise repaint the whole canvas;
            # a layer never drawn with outlines is first drawn with the first slice alone
            # (vispy builds its shaders and glyphs on that draw: ~0.1 s that would
            # otherwise join the full layer's upload in the last turn)
            load.hide_after_first = layer.unique_id not in self._drawn_layers and load.visible
            layer.visible = load.hide_after_first
            self._drawn_layers.add(layer.unique_id)
        self._add_slice(load, self.first_slice)

    def _raise(self, layer: Any) -> None:
        """Put the evidence layer on top (above a change mask added after it)."""
        index = self.viewer.layers.index(layer)
        if index != len(self.viewer.layers) - 1:
            self.viewer.layers.move(index, len(self.viewer.layers))

    def _add_slice(self, load: _Load, count: int) -> None:
        """Add the next ``count`` shapes of ``load``; schedule the rest for the next turn."""
        from qtpy.QtCore import QTimer

        layer = load.layer
        if load.generation != self._load_generation or layer not in self.viewer.layers:
            return  # a newer reload (or the layer's removal) took over
        if load.done and load.hide_after_first:
            load.hide_after_first = False
            layer.visible = False
        lo = load.done
        hi = min(len(load.rows.shapes), lo + max(count, 1))
        started = time.perf_counter()
        self._syncing = True
        try:
            if hi > lo:
                layer.add(
                    load.rows.shapes[lo:hi],
                    shape_type="polygon",
                    edge_color=load.colours[lo:hi],
                    z_index=load.z[lo:hi],
                )
            if hi == len(load.rows.shapes) and hi:
                layer.features = load.rows.properties
        finally:
            self._syncing = False
        load.done = hi
        if hi < len(load.rows.shapes):
            # "all shown" only once every row is in: the last annotation may have more parts
            self._on_progress(min(load.shown(), load.total - 1), load.total)
            nxt = _next_slice(
                hi - lo, time.perf_counter() - started, self.slice_seconds, self.min_slice
            )
            # after the warm-up slice, a pause lets the canvas draw it in a turn of its own
            pause_ms = WARM_DRAW_MS if load.hide_after_first else 0
            QTimer.singleShot(pause_ms, lambda: self._add_slice(load, nxt))
        elif hi > self.first_slice:
            # shown on a turn of its own: the canvas then redraws with every outline
            QTimer.singleShot(0, lambda: self._finish(load))
        else:
            self._finish(load)

    def _finish(self, load: _Load) -> None:
        """Every row is in: show the layer, say so, and let the analyst edit again."""
        if load.generation != self._load_generation or load.layer not in self.viewer.layers:
            return
        self._end_loading(load.layer, load.visible)
        self._on_progress(load.total, load.total)
        self._on_selection()

    def _end_loading(self, layer: Any, visible: bool) -> None:
        self._loading = False
        if layer is not None:
            layer.editable = True
            layer.visible = visible

    def _recolour(self, layer: Any) -> None:
        if len(layer.data):
            statuses = list(layer.features["status"])
            layer.edge_color = status_colours(statuses)
            # only the rows whose order changed, then one re-sort: napari's z_index setter
            # and update_z_index re-sort the whole layer per shape (private: no public API)
            view = layer._data_view
            moved = [(i, z) for i, z in enumerate(status_z(statuses)) if view._z_index[i] != z]
            for i, z in moved:
                view.shapes[i].z_index = z
                view._z_index[i] = z
            if moved:
                view._update_z_order()
                layer.refresh()

    def _on_shapes_data(self, event: Any) -> None:
        if self._syncing or self.loading or self.session is None or not self.stores:
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

    def review_progress(self) -> tuple[int, int]:
        """(reviewed, total) detected candidates in the layer (reviewed: accepted or rejected)."""
        if EVIDENCE not in self.viewer.layers or self._loading:
            return 0, 0
        feats = self.viewer.layers[EVIDENCE].features
        if not len(feats):
            return 0, 0
        detected = feats[feats["origin"] == "detected"].drop_duplicates("annotation_id")
        return int(detected["status"].isin(("accepted", "rejected")).sum()), len(detected)

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
        if not self.stores:  # reviewed in the layer only
            for i in self._selected_rows():
                for key, value in changes.items():
                    layer.features.loc[i, key] = value
            self._recolour(layer)
            self._on_selection()
            return
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
        if not self.stores:
            _notify_info(NOT_STORED)
            return
        try:
            text = session.undo()
        except SatdeltaError as exc:
            _notify_error(exc)
            return
        self.reload()
        _notify_info(text)


def _next_slice(count: int, elapsed: float, budget: float, minimum: int) -> int:
    """Shapes to add in the next turn, from this turn's pace (``count`` in ``elapsed`` s).

    Sized to take ``budget`` seconds, growing at most twofold and never below
    ``minimum`` (each add has a fixed cost, and each turn its own events).

    Examples
    --------
    >>> _next_slice(100, 0.2, 0.1, 50)  # slow: half as many
    50
    >>> _next_slice(100, 1.0, 0.1, 50)  # very slow: down to the minimum
    50
    >>> _next_slice(100, 0.0001, 0.1, 50)  # fast: twice as many at most
    200
    """
    pace = count * budget / max(elapsed, 1e-6)
    return int(max(minimum, min(2 * count, pace)))


def _viewer_closed(viewer: Any) -> bool:
    """Whether napari closed the viewer's window (a layer added then could never be drawn
    or removed: napari's own teardown then fails on it). ``Window.close`` deletes its
    ``_qt_window``; napari has no public flag for it."""
    return not hasattr(viewer.window, "_qt_window")


class _Load:
    """One redraw of the evidence layer in progress: the rows and how many are added."""

    def __init__(self, layer: Any, rows: LayerRows, generation: int, visible: bool) -> None:
        self.layer, self.rows, self.generation = layer, rows, generation
        self.visible = visible  # shown again once filled
        self.colours = status_colours(rows.properties["status"])  # given with the shapes
        self.z = status_z(rows.properties["status"])  # reviewed outlines drawn on top
        ids = list(rows.properties["annotation_id"])
        # annotations shown after each row (a multi-part annotation's rows are consecutive)
        starts = [i == 0 or ids[i] != ids[i - 1] for i in range(len(ids))]
        self._shown = np.cumsum(starts) if ids else np.zeros(0, dtype=int)
        self.total = int(self._shown[-1]) if ids else 0
        self.done = 0
        self.hide_after_first = False  # shown for the first slice only (see show_rows)

    def shown(self) -> int:
        """Annotations whose rows were added so far."""
        return int(self._shown[self.done - 1]) if self.done else 0
