"""The dock's viewer key bindings are given back when it closes (the bindings alone, then a
real dock under Xvfb)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from satdelta.annotations import Store
from satdelta.plugins.napari._keys import ViewerKeys

from tests.conftest import process_gone


def test_release_restores_the_bindings_the_viewer_had_before() -> None:
    from napari.components import ViewerModel

    viewer = ViewerModel()

    def users_j(_viewer) -> None:  # noqa: ANN001
        pass

    def users_k_later(_viewer) -> None:  # noqa: ANN001
        pass

    viewer.bind_key("j", users_j)
    keys = ViewerKeys(viewer)
    ours = {k: (lambda _v, k=k: k) for k in "jkq"}
    for key, func in ours.items():
        keys.bind(key, func)
    assert list(viewer.keymap.values()) == [ours["j"], ours["k"], ours["q"]]
    with pytest.raises(ValueError, match="bound twice"):
        keys.bind("j", users_j)
    viewer.bind_key("k", users_k_later, overwrite=True)  # the analyst rebinds K meanwhile
    keys.release()
    assert {str(k): f for k, f in viewer.keymap.items()} == {"J": users_j, "K": users_k_later}
    keys.release()  # twice: nothing more happens
    assert len(viewer.keymap) == 2


@pytest.mark.gui
def test_closing_the_dock_gives_the_viewer_its_own_keys_back(
    make_napari_viewer, qtbot, write_raster, tmp_path: Path, notes
) -> None:
    flat = np.full((3, 120, 160), 80, np.uint8)
    raster = write_raster("r.tif", flat, transform=Affine(10, 0, 500000, 0, -10, 4000000))
    viewer = make_napari_viewer(show=True)
    viewer.open(str(raster), plugin="satdelta")
    pressed: list[str] = []

    @viewer.bind_key("j")
    def users_j(_viewer) -> None:  # noqa: ANN001 - the analyst's own binding
        pressed.append("j")

    before = dict(viewer.keymap)
    dock, widget = viewer.window.add_plugin_dock_widget("satdelta", "Change annotator")
    store_path = tmp_path / "s.gpkg"
    assert widget.open_store(store_path)
    qtbot.waitUntil(lambda: not widget.evidence.loading, timeout=30_000)  # read in a thread
    detector = widget.detect_panel.detector
    assert detector.wait_ready(120)
    child = detector.pid
    # the dock's keys are bound: J is the dock's accept now, not the analyst's function
    assert {str(k) for k in viewer.keymap} == {str(k) for k in before} | set("JKNUQWH")
    _press(viewer, qtbot, "j")
    assert pressed == [] and any("select a polygon" in n for n in notes), notes
    evidence = widget.evidence.layer()
    square = widget.frame().map_to_world([[500100, 3999900], [500300, 3999900], [500300, 3999700]])
    evidence.add_polygons([square])

    # close the dock as its title bar's close button does (napari's remove_dock_widget:
    # the widget is taken out of the window, no closeEvent)
    viewer.window.remove_dock_widget(dock)
    assert dict(viewer.keymap) == before  # the analyst's J is back, the dock's keys gone
    _press(viewer, qtbot, "j")
    assert pressed == ["j"]
    assert widget.session is None  # the store was closed
    assert not evidence.editable  # nothing saves edits now: the layer is locked
    assert process_gone(child, 5.0)  # and the detection child stopped

    # a new dock binds the keys again and saves the evidence layer's edits again
    _dock2, widget2 = viewer.window.add_plugin_dock_widget("satdelta", "Change annotator")
    assert widget2 is not widget and widget2.open_store(store_path)
    qtbot.waitUntil(lambda: not widget2.evidence.loading, timeout=30_000)  # read in a thread
    assert viewer.keymap != before
    assert evidence.editable
    evidence.add_polygons([square + 50.0])
    assert len(Store.open(store_path).list_annotations()) == 2


def _press(viewer, qtbot, key: str) -> None:  # noqa: ANN001
    from qtpy.QtCore import Qt

    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, getattr(Qt.Key, f"Key_{key.upper()}"))
