"""The dock's Public imagery panel against a real STAC API on 127.0.0.1 (under Xvfb).

The API (``tests/stac_server.py``, a subprocess) serves items pointing at small COGs it also
serves; the panel searches for the selected claim, preselects the best items and opens them.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import rasterio
from satdelta.annotations import Store
from satdelta.imagery.cog import write_cog
from satdelta.plugins.napari._layers import resolve_source, role_layer

from tests.conftest import footprint_of, make_pair, stac_item

pytestmark = pytest.mark.gui


def _cog(src: Path, out: Path) -> Path:
    with rasterio.open(src) as ds:
        return write_cog(out, ds.read(), transform=ds.transform, crs=ds.crs, nodata=ds.nodata)


@pytest.fixture
def stac_api(tmp_path, serve_folder):
    """A STAC API over before/after items of one small pair; returns (server, footprint)."""
    www = tmp_path / "www"
    (www / "items").mkdir(parents=True)
    before, after, _truth = make_pair(tmp_path)
    _cog(before, www / "before.tif")
    _cog(after, www / "after.tif")
    fp = footprint_of(www / "before.tif")
    half = (fp[0], fp[1], (fp[0] + fp[2]) / 2, fp[3])
    items = [
        stac_item("before-cloudy", "{BASE}/before.tif", "2020-02-20T03:00:00Z", fp, cloud=60),
        stac_item("before-best", "{BASE}/before.tif", "2020-01-05T03:00:00Z", fp, cloud=5),
        stac_item("before-old", "{BASE}/before.tif", "2019-06-01T03:00:00Z", fp, cloud=0),
        stac_item("after-half", "{BASE}/after.tif", "2021-02-02T03:00:00Z", half, cloud=0),
        stac_item("after-best", "{BASE}/after.tif", "2021-02-07T03:00:00Z", fp, cloud=10),
    ]
    for it in items:
        (www / "items" / f"{it['id']}.json").write_text(json.dumps(it))
    return serve_folder(www, "stac_server.py"), fp


def _store(path: Path, fp: tuple[float, float, float, float]) -> Path:
    """A store with a point claim (selected first) and a bbox claim inside ``fp``."""
    w, s, e, n = fp
    inner = (w + 0.2 * (e - w), s + 0.2 * (n - s), e - 0.2 * (e - w), n - 0.2 * (n - s))
    with Store.open(path) as store:
        report = store.add_report(title="Flood at the test site")
        store.add_claim(report_id=report.id, text="A point", point=((w + e) / 2, (s + n) / 2))
        store.add_claim(
            report_id=report.id,
            text="The field flooded",
            bbox=inner,
            time_start="2020-03-01",
            time_end="2021-01-31",
        )
    return path


@pytest.fixture
def dock(make_napari_viewer):
    """``open_dock(store)`` -> (viewer, Change annotator with ``store`` open)."""
    widgets = []

    def open_dock(store: Path):
        viewer = make_napari_viewer()
        _dw, widget = viewer.window.add_plugin_dock_widget("satdelta", "Change annotator")
        widgets.append(widget)
        assert widget.open_store(store)
        return viewer, widget

    yield open_dock
    for widget in widgets:  # stop the detection child now, not in a later test's event loop
        widget.close()


def _wait(panel, qtbot) -> None:
    qtbot.waitUntil(lambda: panel.worker is None, timeout=120_000)


def test_search_for_the_claim_preselects_the_best_and_open_fills_detect(
    dock, qtbot, tmp_path, stac_api, notes
):
    srv, fp = stac_api
    viewer, widget = dock(_store(tmp_path / "s.gpkg", fp))
    panel = widget.imagery_panel

    assert panel.body.isHidden()  # folded until ticked
    panel.setChecked(True)
    assert not panel.body.isHidden()

    # the point claim (selected on open) searches a ~1 km box around its point
    assert panel.claim.text == "A point"
    w, s, e, n = panel.area()
    assert w < (fp[0] + fp[2]) / 2 < e and n - s == pytest.approx(1000 / 111_320)

    # the analyst picks the bbox claim: its area, and dates around its time window
    widget.store_panel.claim_box.setCurrentIndex(1)
    assert panel.claim.text == "The field flooded"
    assert panel.area() == panel.claim.bbox
    assert panel.window_edits["before"].text() == "2019-12-02/2020-02-29"
    assert panel.window_edits["after"].text() == "2021-02-01/2021-05-01"

    panel.url_edit.setText(srv.base)
    panel.collection_edit.setText("test-imagery")
    assert panel.search() is not None
    _wait(panel, qtbot)
    listed = {side: [c.item_id for c in panel.choices[side]] for side in ("before", "after")}
    # before-old is outside the window; full coverage beats less cloud beats closeness
    assert listed == {
        "before": ["before-best", "before-cloudy"],
        "after": ["after-best", "after-half"],
    }
    assert panel.lists["before"].count() == 2
    assert panel.lists["after"].item(0).text().startswith("after-best · 2021-02-07 · cloud 10 %")
    assert {s: c.item_id for s, c in panel.selected().items()} == {
        "before": "before-best",
        "after": "after-best",
    }
    assert sum(r["path"] == "/search" for r in srv.requests()) == 2

    n_layers = len(viewer.layers)
    assert panel.open_selected() is not None
    _wait(panel, qtbot)
    assert len(viewer.layers) == n_layers + 2
    before, after = role_layer(viewer, "before"), role_layer(viewer, "after")
    assert (before.name, after.name) == ("before: before-best", "after: after-best")
    assert before.data.shape == (120, 160, 3) and before.rgb
    assert before.metadata["satdelta"]["crs"] == after.metadata["satdelta"]["crs"]
    # the COGs travelled through the server, and the detect panel now points at the layers
    assert any(r["path"] == "/before.tif" for r in srv.requests())
    detect = widget.detect_panel
    assert detect.before_edit.currentText() == "before: before-best"
    assert detect.after_edit.currentText() == "after: after-best"
    source, layer = resolve_source(viewer, detect.before_edit.currentText(), "before")
    assert layer is before and source.endswith("before-best.json")
    assert not [m for m in notes if "error" in m.lower()], notes

    # another claim: the lists of this one go
    widget.store_panel.claim_box.setCurrentIndex(0)
    assert panel.choices == {"before": [], "after": []} and panel.lists["after"].count() == 0
    assert not panel.open_button.isEnabled()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_down_404_and_no_results_are_one_line_notifications(
    dock, qtbot, tmp_path, stac_api, notes
):
    srv, fp = stac_api
    _viewer, widget = dock(_store(tmp_path / "s.gpkg", fp))
    panel = widget.imagery_panel
    widget.store_panel.claim_box.setCurrentIndex(1)
    panel.collection_edit.setText("test-imagery")
    cases = [
        (f"http://127.0.0.1:{_closed_port()}", "cannot reach a STAC API"),
        (srv.base + "/no/such/api", "refused"),
    ]
    for url, expected in cases:
        notes.clear()
        panel.url_edit.setText(url)
        assert panel.search() is not None
        _wait(panel, qtbot)
        assert len(notes) == 1 and expected in notes[0] and "\n" not in notes[0], notes
        assert panel.choices == {"before": [], "after": []}
        assert not panel.open_button.isEnabled()

    # nothing in either window: one line per side, and nothing to open
    notes.clear()
    panel.url_edit.setText(srv.base)
    panel.collection_edit.setText("other-collection")
    panel.search()
    _wait(panel, qtbot)
    assert len(notes) == 2 and all("no other-collection items" in m for m in notes), notes
    assert not panel.open_button.isEnabled()
