"""The dock's "Public imagery" panel: search a STAC API for the selected claim, open a pair.

The search (:func:`satdelta.imagery.stac_search.best_items`) and the opening of the chosen
items (the plugin's reader, which takes STAC Items) run in worker threads, so the network
never blocks napari; each side's items are listed best first with the best selected.
"""

from __future__ import annotations

import datetime as _dt
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from satdelta.imagery.errors import StacError
from satdelta.imagery.stac_search import ItemChoice, area_around, best_items, default_windows
from satdelta.plugins.napari._frame import MapFrame
from satdelta.plugins.napari._layers import tag_role, viewer_frame
from satdelta.plugins.napari._notify import notify_error, notify_info

if TYPE_CHECKING:
    import napari
    from satdelta.annotations import Claim

__all__ = ["ImageryPanel", "choice_row"]

SIDES = ("before", "after")
#: Half the side of the search box around a point claim, metres.
POINT_HALF_SIDE_M = 500.0


def choice_row(choice: ItemChoice) -> str:
    """One list row: id, date, cloud and coverage of an item.

    Examples
    --------
    >>> item = {"id": "a", "properties": {"datetime": "2021-02-07T03:00:00Z"}}
    >>> choice_row(ItemChoice(item, coverage=1.0, cloud=10.0, days_from_event=3.0))
    'a · 2021-02-07 · cloud 10 % · covers 100 %'
    """
    when = str((choice.item.get("properties") or {}).get("datetime") or "?")[:10]
    cloud = "?" if math.isnan(choice.cloud) else f"{choice.cloud:.0f}"
    return f"{choice.item_id} · {when} · cloud {cloud} % · covers {100 * choice.coverage:.0f} %"


class ImageryPanel(QGroupBox):
    """STAC search for the selected claim's place and dates, and Open of the pair chosen.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the chosen items are added as ``before: ID`` and ``after: ID`` layers.

    Signals
    -------
    opened(str, str)
        The names of the before and after layers just added.

    Attributes
    ----------
    body : QWidget
        The form, shown while the panel's box is ticked.
    claim : Claim or None
        The claim searched for (:meth:`show_claim`).
    choices : dict of str to list of ItemChoice
        The listed items of each side, best first.
    worker : superqt worker or None
        The running search or open, if any.
    """

    opened = Signal(str, str)

    def __init__(self, viewer: napari.Viewer) -> None:
        super().__init__("Public imagery (STAC)")
        self.viewer = viewer
        self.claim: Claim | None = None
        self.choices: dict[str, list[ItemChoice]] = {side: [] for side in SIDES}
        self.worker: Any = None
        self._searched_url = ""
        self._items_dir = tempfile.TemporaryDirectory(prefix="satdelta-stac-")
        self._build_form()
        self.show_claim(None)

    def _build_form(self) -> None:
        # folded until ticked: the dock is already about a screen tall (napari does not scroll it)
        self.setCheckable(True)
        self.setChecked(False)
        self.body = QWidget()
        self.body.setVisible(False)
        self.toggled.connect(self.body.setVisible)
        QVBoxLayout(self).addWidget(self.body)
        form = QFormLayout(self.body)
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("https://earth-search.aws.element84.com/v1")
        form.addRow("STAC API", self.url_edit)
        self.collection_edit = QLineEdit()
        self.collection_edit.setPlaceholderText("sentinel-2-l2a, naip, …")
        form.addRow("Collection", self.collection_edit)
        self.claim_label = QLabel()
        self.claim_label.setWordWrap(True)
        form.addRow("Area", self.claim_label)
        self.window_edits: dict[str, QLineEdit] = {}
        for side in SIDES:
            edit = QLineEdit()
            edit.setPlaceholderText("START/END, e.g. 2020-06-01/2020-09-30")
            self.window_edits[side] = edit
            form.addRow(f"{side.capitalize()} dates", edit)
        self.max_cloud = QDoubleSpinBox()
        self.max_cloud.setRange(0.0, 100.0)
        self.max_cloud.setValue(100.0)
        self.max_cloud.setSuffix(" %")
        form.addRow("Max cloud", self.max_cloud)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        form.addRow(self.search_button)
        self.lists: dict[str, QListWidget] = {}
        for side in SIDES:
            box = QListWidget()
            box.setMaximumHeight(80)
            self.lists[side] = box
            form.addRow(side.capitalize(), box)
        self.open_button = QPushButton("Open before and after")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_selected)
        form.addRow(self.open_button)

    # ------------------------------------------------------------ claim
    def show_claim(self, claim: Claim | None) -> None:
        """Search for ``claim``: show its area and set the dates around its time window."""
        self.claim = claim
        area = self.area()
        if claim is None:
            self.claim_label.setText("select a claim (Evidence store) to search its place")
        elif area is None:
            self.claim_label.setText(
                "this claim has no bbox or point; set one with `satdelta claim edit`"
            )
        else:
            self.claim_label.setText(", ".join(f"{v:.4f}" for v in area) + " (W,S,E,N)")
        start = claim.time_start if claim is not None else None
        end = claim.time_end if claim is not None else None
        windows = default_windows(start, end, today=_dt.date.today())
        for side, window in zip(SIDES, windows, strict=True):
            self.window_edits[side].setText(window)
        if self.worker is None:  # a running search lists its items when it ends
            self._clear_choices()

    def _clear_choices(self) -> None:
        for box in self.lists.values():
            box.clear()
        self.choices = {side: [] for side in SIDES}
        self.open_button.setEnabled(False)

    def area(self) -> tuple[float, float, float, float] | None:
        """The claim's bbox, or a small box around its point (None without either)."""
        if self.claim is None:
            return None
        if self.claim.bbox is not None:
            return self.claim.bbox
        if self.claim.point is not None:
            return area_around(*self.claim.point, half_side_m=POINT_HALF_SIDE_M)
        return None

    # ------------------------------------------------------------ search
    def search(self) -> Any:
        """Search both windows in a worker thread; returns the worker, or None."""
        if self.worker is not None:
            notify_info("a search or open is already going; wait for it")
            return None
        url, collection = self.url_edit.text().strip(), self.collection_edit.text().strip()
        area = self.area()
        if not url or not collection:
            notify_info("give the STAC API URL and a collection id, then Search")
            return None
        if area is None:
            notify_info("select a claim with a bbox or a point (Evidence store), then Search")
            return None
        windows = {side: self.window_edits[side].text().strip() for side in SIDES}
        cloud = self.max_cloud.value()
        max_cloud = None if cloud >= 100.0 else cloud
        self._clear_choices()
        self._searched_url = url
        return self._start(_search_sides, self._on_found, url, collection, area, windows, max_cloud)

    def _on_found(self, found: dict[str, list[ItemChoice] | StacError]) -> None:
        for side in SIDES:
            result = found[side]
            if isinstance(result, StacError):
                notify_error(result)
                continue
            self.choices[side] = result
            box = self.lists[side]
            box.addItems([choice_row(c) for c in result])
            box.setCurrentRow(0)
        self.open_button.setEnabled(all(self.choices[side] for side in SIDES))

    def selected(self) -> dict[str, ItemChoice]:
        """The item selected in each side's list (sides with none are left out)."""
        out = {}
        for side in SIDES:
            row = self.lists[side].currentRow()
            if 0 <= row < len(self.choices[side]):
                out[side] = self.choices[side][row]
        return out

    # ------------------------------------------------------------ open
    def open_selected(self) -> Any:
        """Open the selected before and after items as layers in a worker; returns it."""
        chosen = self.selected()
        if self.worker is not None or len(chosen) < 2:
            notify_info("search first, and pick a before and an after item")
            return None
        folder = Path(self._items_dir.name)
        frame = viewer_frame(self.viewer)
        return self._start(_layer_data, self._on_opened, chosen, frame, folder, self._searched_url)

    def _on_opened(self, layers: list[tuple[str, Any]]) -> None:
        from napari.layers import Layer

        names = []
        for side, data in layers:
            layer = self.viewer.add_layer(Layer.create(*data))
            tag_role(self.viewer, layer, side)
            names.append(layer.name)
        self.opened.emit(*names)

    # ------------------------------------------------------------ workers
    def _start(self, fn: Callable[..., Any], on_returned: Callable[[Any], None], *args: Any) -> Any:
        """Run ``fn(*args)`` in a worker thread; its result goes to ``on_returned``, an error
        to a one-line notification."""
        from napari.qt.threading import create_worker
        from satdelta.plugins.napari._threads import start_in_python_thread

        connect = {"returned": on_returned, "errored": notify_error, "finished": self._worker_done}
        worker = create_worker(fn, *args, _connect=connect, _start_thread=False)
        self.worker = worker
        self.search_button.setEnabled(False)
        self.open_button.setEnabled(False)
        start_in_python_thread(worker, name="satdelta-imagery")
        return worker

    def _worker_done(self) -> None:
        self.worker = None
        self.search_button.setEnabled(True)
        self.open_button.setEnabled(all(self.choices[side] for side in SIDES))


def _search_sides(
    url: str,
    collection: str,
    area: tuple[float, float, float, float],
    windows: dict[str, str],
    max_cloud: float | None,
) -> dict[str, list[ItemChoice] | StacError]:
    """Each side's items best first, or why it has none.

    Raises
    ------
    SatdeltaError
        The API is down or refuses the search, or a window is malformed (both sides fail).
    """
    found: dict[str, list[ItemChoice] | StacError] = {}
    for side in SIDES:
        try:
            found[side] = best_items(
                url,
                collection=collection,
                bbox=area,
                window=windows[side],
                side=side,  # type: ignore[arg-type]
                max_cloud=max_cloud,
            )
        except StacError as exc:  # nothing found on this side: the other may still list
            found[side] = exc
    return found


def _layer_data(
    chosen: dict[str, ItemChoice], frame: MapFrame | None, folder: Path, api_url: str
) -> list[tuple[str, Any]]:
    """Reader layer data ``(side, data)`` for the chosen items, all in one map frame."""
    from satdelta.imagery.stac_search import item_source
    from satdelta.plugins.napari._reader import raster_layer_data

    out = []
    for side in SIDES:
        choice = chosen[side]
        source = item_source(choice.item, folder, api_url=api_url)
        data = raster_layer_data(source, frame=frame, name=f"{side}: {choice.item_id}", role=side)
        if frame is None:
            frame = MapFrame.from_dict(data[1]["metadata"]["satdelta"]["frame"])
        out.append((side, data))
    return out
