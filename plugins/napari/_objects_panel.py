"""The "Objects" panel and layer: counts per claim and the detected objects coloured by change.

Counting is Qt-free (:func:`satdelta.annotations.object_counts.object_counts_by_claim`); this
module only shows it. The ``objects`` Shapes layer holds the store's object candidates that are
not rejected (a view: review them on the evidence layer, keys J/K), edges coloured by change
kind; both are refreshed by :meth:`ObjectsPanel.refresh` whenever the evidence changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QGroupBox, QLabel, QVBoxLayout
from satdelta.annotations.object_counts import object_change, object_counts_by_claim
from satdelta.plugins.napari._session import annotations_to_rows

if TYPE_CHECKING:
    import napari
    from satdelta.plugins.napari._session import Session

__all__ = ["CHANGE_COLOURS", "OBJECTS_LAYER", "ObjectsPanel"]

OBJECTS_LAYER = "objects"
#: Edge colour of each change kind on the objects layer: none is a colour of the review
#: status legend (yellow, green, red, cyan) or the violet change mask.
CHANGE_COLOURS = {"disappeared": "#ff9020", "appeared": "#4060ff", "unchanged": "#c0c0c0"}


class ObjectsPanel(QGroupBox):
    """Counts of the objects per claim ("before 6 · after 1 · disappeared 5 ...").

    Parameters
    ----------
    viewer : napari.Viewer
        Where the ``objects`` layer is shown.
    """

    def __init__(self, viewer: napari.Viewer) -> None:
        super().__init__("Objects")
        self.viewer = viewer
        self.counts = QLabel("no objects yet")
        self.counts.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.counts)
        self._shown: tuple[Any, ...] | None = None
        self._read_at: tuple[Any, ...] | None = None  # the session's mark at the last read

    def refresh(self, session: Session | None) -> None:
        """Recount the current report's objects and redraw the layer when they changed.

        Called after every reload, save, accept, reject and selection change: the store is
        read again only when the session wrote or chose something since the last read
        (its :meth:`~._session.Session.mark`), and then only the object candidates.
        """
        mark = None if session is None else session.mark()
        if mark is not None and mark == self._read_at:
            return
        self._read_at = mark
        anns = [] if session is None else session.objects()
        objects = [a for a in anns if object_change(a) is not None and not a.deleted]
        key = tuple((a.id, a.status) for a in objects)
        if key == self._shown:
            return
        self._shown = key
        claims = {c.id: c.text for c in session.claims()} if session is not None else {}
        lines = [
            f"{_short(claims.get(cid, f'claim {cid}'))}: {counts}"
            for cid, counts in object_counts_by_claim(objects).items()
        ]
        self.counts.setText("\n".join(lines) or "no objects yet")
        shown = [a for a in objects if a.status != "rejected"]
        frame = session.frame if session is not None else None
        if frame is not None:
            self._draw(shown, frame)

    def _draw(self, shown: list[Any], frame: Any) -> None:
        # one colour per row: a MultiPolygon gives one row per part, all of one annotation
        parts = [annotations_to_rows([a], frame).shapes for a in shown]
        shapes = [s for p in parts for s in p]
        colours = [
            CHANGE_COLOURS[object_change(a)] for a, p in zip(shown, parts, strict=True) for _ in p
        ]
        layers = self.viewer.layers
        if OBJECTS_LAYER in layers:
            layer = layers[OBJECTS_LAYER]
            layer.data = []
            if shapes:
                layer.add(shapes, shape_type="polygon", edge_color=colours)
        elif shapes:
            self.viewer.add_shapes(
                shapes,
                shape_type="polygon",
                name=OBJECTS_LAYER,
                edge_color=colours,
                face_color="transparent",
                edge_width=2,
            )


def _short(text: str) -> str:
    return text if len(text) < 40 else text[:37] + "…"
