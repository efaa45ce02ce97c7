"""The napari desk on a team store (PostgreSQL/PostGIS): open by URL, detect, review."""

from __future__ import annotations

import pytest

from tests.pg_server import PASSWORD

pytestmark = pytest.mark.gui


def test_desk_opens_a_postgres_store_and_the_child_saves_candidates_there(
    make_napari_viewer, qtbot, pg_url: str
) -> None:
    from satdelta.annotations import Store

    viewer = make_napari_viewer(show=True)
    viewer.open_sample("satdelta", "sunan-airport")
    _dw, widget = viewer.window.add_plugin_dock_widget("satdelta", "Change annotator")
    assert widget.open_store(pg_url)
    shown = widget.store_panel.store_edit.text()
    assert shown.startswith("postgresql://postgres@127.0.0.1:") and PASSWORD not in shown
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(lambda: widget.detect_panel.worker is None, timeout=120_000)
    qtbot.waitUntil(lambda: not widget.evidence.loading, timeout=60_000)
    evidence = viewer.layers["evidence"]
    with Store.open(pg_url) as other:  # another analyst's view of the same database
        stored = other.list_annotations(status="candidate")
    assert len(stored) == len(set(evidence.features["annotation_id"])) > 0
    first = stored[0].id
    widget.session.set_status([first], "accepted")
    with Store.open(pg_url) as other:
        assert other.get_annotation(first).status == "accepted"
        assert other.history(first)[-1].analyst == "postgres"  # the database user
