"""The napari desk's objects: their own layer, coloured by change, and counts per claim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from satdelta.annotations.object_counts import object_change
from satdelta.plugins.napari._objects_panel import CHANGE_COLOURS, OBJECTS_LAYER


@pytest.mark.slow
def test_run_shows_objects_layer_and_counts_that_follow_review(
    make_napari_viewer, qtbot, tmp_path: Path
) -> None:
    viewer = make_napari_viewer()
    viewer.open_sample("satdelta", "sunan-airport")
    _dw, widget = viewer.window.add_plugin_dock_widget("satdelta", "Change annotator")
    assert widget.open_store(tmp_path / "evidence.gpkg")
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.detect_panel.worker is None, timeout=180_000)

    session = widget.session
    objects = [a for a in session.annotations() if object_change(a) is not None]
    gone = [a for a in objects if object_change(a) == "disappeared"]
    kept = [a for a in objects if object_change(a) == "unchanged"]
    assert len(gone) >= 6 and not [a for a in objects if object_change(a) == "appeared"]
    assert {a.label for a in gone} == {"aircraft", "vehicles"}
    assert all(a.origin == "detected" and a.status == "candidate" for a in objects)
    assert all(0 < a.confidence <= 1 for a in objects)
    assert gone[0].provenance["object"]["size_class"] in ("aircraft-sized", "vehicle")

    layer = viewer.layers[OBJECTS_LAYER]
    assert len(layer.data) >= len(objects)
    red = np.array([1.0, 0x90 / 255, 0x20 / 255, 1.0])  # CHANGE_COLOURS["disappeared"]

    def red_rows() -> int:
        return int((np.abs(layer.edge_color - red).sum(axis=1) < 1e-6).sum())

    red_before = red_rows()
    assert red_before >= len(gone)
    text = widget.objects_panel.counts.text()
    expected = (
        f"before {len(gone) + len(kept)} · after {len(kept)} · disappeared {len(gone)} · "
        f"appeared 0 · unchanged {len(kept)}"
    )
    assert expected in text

    # rejecting an object takes it out of the counts and off the layer
    rejected = gone[0]
    rows = [
        i
        for i, v in enumerate(widget.evidence.layer().features["annotation_id"])
        if v == rejected.id
    ]
    widget.evidence.layer().selected_data = set(rows)
    widget.evidence.set_status("rejected")
    text = widget.objects_panel.counts.text()
    assert f"disappeared {len(gone) - 1} ·" in text
    assert 0 < red_rows() < red_before
    assert CHANGE_COLOURS["disappeared"] == "#ff9020"
    # no change kind takes a colour of the review-status legend
    from matplotlib.colors import to_rgba
    from satdelta.plugins.napari._features import STATUS_COLOURS

    legend = {tuple(np.round(c, 2)) for c in STATUS_COLOURS.values()}
    assert not {tuple(np.round(to_rgba(c), 2)) for c in CHANGE_COLOURS.values()} & legend
