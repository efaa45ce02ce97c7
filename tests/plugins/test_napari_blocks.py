"""A large pair in the desk: the block runner, progress per block, maps shown from the COGs.

The dock's ``blocks_from_px`` (documented on :class:`DetectPanel`) is lowered so that a
1200 x 2200 pair takes the block path (the CLI's threshold is 4096²); its ``block_px`` of
512 makes 3 x 5 blocks. A real 8192² pair was run by hand (docs/design-desk-blocks.md).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.conftest import make_pair

pytestmark = pytest.mark.gui

SHAPE = (1200, 2200)
BLOCK_PX = 512
BLOCKS = 3 * 5


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_large_pair_runs_in_blocks_with_progress_and_lazy_maps(
    make_napari_viewer, qtbot, tmp_path: Path
) -> None:
    from qtpy.QtCore import QTimer
    from satdelta.imagery.block_run import detect_in_files
    from satdelta.imagery.pyramid import PyramidLevel
    from satdelta.plugins.napari._block_detection import BLOCK_STEPS, MaskLevel

    folder = tmp_path / "pair"
    folder.mkdir()
    before, after, truth = make_pair(folder, shape=SHAPE)
    viewer = make_napari_viewer(show=True)
    _dw, widget = viewer.window.add_plugin_dock_widget("satdelta", "Change annotator")
    assert widget.open_store(tmp_path / "s.gpkg")
    panel = widget.detect_panel
    panel.blocks_from_px, panel.block_px = 1, BLOCK_PX
    panel.before_edit.setEditText(str(before))
    panel.after_edit.setEditText(str(after))

    seen: list[tuple[int, int, str]] = []  # the dock's bar and label at each step
    worker = panel.run()
    assert worker is not None
    worker.yielded.connect(
        lambda _s: seen.append(
            (panel.progress.value(), panel.progress.maximum(), panel.progress_label.text())
        )
    )
    ticks: list[float] = []
    beat = QTimer()
    beat.timeout.connect(lambda: ticks.append(time.perf_counter()))
    beat.start(10)
    # added while the child computes, as multiscale layers: the maps only set their levels
    qtbot.waitUntil(lambda: "change score" in viewer.layers, timeout=60_000)
    prepared = (viewer.layers["change mask"], viewer.layers["change score"])
    assert all(layer.multiscale for layer in prepared)
    qtbot.waitUntil(lambda: panel.worker is None, timeout=240_000)
    qtbot.waitUntil(lambda: not widget.evidence.loading, timeout=60_000)
    beat.stop()
    print(f"longest event-loop gap {np.diff(ticks).max():.2f} s over {len(ticks)} ticks")
    label = panel.progress_label.text()
    assert label.startswith("done: "), (label, seen)
    assert panel.progress.value() == panel.progress.maximum() == BLOCK_STEPS  # a full bar

    # -- progress: every block counted on a bar of BLOCK_STEPS, never going back
    scored = [
        int(t.split()[2].split("/")[0].rstrip(",")) for _v, _m, t in seen if t.startswith("scoring")
    ]
    assert scored[0] == 0 and scored[-1] == BLOCKS and scored == sorted(scored), seen
    assert len(set(scored)) >= 4, seen  # blocks reported as they finish, not only at the end
    assert any(
        t.startswith(f"joining candidates across block edges {BLOCKS}/{BLOCKS},")
        for _v, _m, t in seen
    ), seen
    bar = [v for v, m, _t in seen if m == BLOCK_STEPS]
    assert bar == sorted(bar) and bar[0] < 200 and bar[-1] >= 950, seen
    assert any(t.startswith("saving") for _v, _m, t in seen), seen

    # -- the maps: lazy levels of the run's COGs, the same as the CLI's block runner writes
    mask, score = viewer.layers["change mask"], viewer.layers["change score"]
    assert mask is prepared[0] and score is prepared[1]  # the levels were set in place
    assert mask.multiscale and score.multiscale
    assert all(isinstance(level, MaskLevel) for level in mask.data)
    assert all(isinstance(level, PyramidLevel) for level in score.data)
    assert len(mask.data) >= 2  # the overviews are napari's lower levels
    run_folder = Path(mask.metadata["satdelta"]["run_folder"])
    assert score.metadata["satdelta"]["run_folder"] == str(run_folder)
    assert {"mask.tif", "score.tif", "changes.geojson", "run.json"} <= set(os.listdir(run_folder))
    ref = detect_in_files(
        before, after, tmp_path / "ref", panel.detection_options(), block_px=BLOCK_PX
    )
    assert ref["runner"]["blocks"] == BLOCKS
    ref_mask = _read(tmp_path / "ref" / "mask.tif")
    np.testing.assert_array_equal(_read(run_folder / "mask.tif"), ref_mask)
    np.testing.assert_array_equal(np.asarray(mask.data[0][...]), (ref_mask == 1).astype(np.uint8))
    assert (ref_mask == 1)[truth].mean() > 0.9  # the change is found where it is
    assert mask.visible and not score.visible

    # -- candidates saved to the store as the whole-array path saves them
    fc = json.loads((run_folder / "changes.geojson").read_text())
    stored = widget.session.store.list_annotations(status="candidate")
    assert len(stored) == len(fc["features"]) == len(panel.result.polygons) > 0
    assert {a.origin for a in stored} == {"detected"}
    run = stored[0].provenance
    assert run["before"]["sha256"] and run["method"] == fc["satdelta"]["run"]["method"]
    evidence = viewer.layers["evidence"]
    assert len(set(evidence.features["annotation_id"])) == len(stored)

    # -- drawn: the mask's colour over the changed rectangle, not beside it
    for name in [ly.name for ly in viewer.layers if ly.name not in ("change mask",)]:
        viewer.layers[name].visible = False
    viewer.reset_view()
    with_mask = viewer.screenshot(canvas_only=True, flash=False).astype(int)
    mask.visible = False
    without = viewer.screenshot(canvas_only=True, flash=False).astype(int)
    differs = np.abs(with_mask - without).sum(axis=-1) > 30
    h, w = differs.shape
    assert differs.any()
    rows, cols = np.nonzero(differs)
    # the change lies in the grid's top-left corner (rows 30-70, cols 40-100 of 1200 x 2200)
    assert rows.mean() < h / 2 and cols.mean() < w / 2
    mask.visible = True

    # -- a second run replaces the layers and removes the first run's folder
    worker = panel.run()
    assert worker is not None
    qtbot.waitUntil(lambda: panel.worker is None, timeout=240_000)
    qtbot.waitUntil(lambda: not widget.evidence.loading, timeout=60_000)
    new_mask = viewer.layers["change mask"]
    new_folder = Path(new_mask.metadata["satdelta"]["run_folder"])
    qtbot.waitUntil(
        lambda: score.metadata["satdelta"]["run_folder"] == str(new_folder), timeout=10_000
    )
    assert new_mask is mask and viewer.layers["change score"] is score  # updated in place
    assert mask.data[0].level.path == str(new_folder / "mask.tif")
    assert score.data[0].path == str(new_folder / "score.tif")
    assert new_folder != run_folder and new_folder.is_dir()
    assert not run_folder.exists()
    assert [ly.name for ly in viewer.layers].count("change mask") == 1
    root = panel.run_folders.root
    assert root is not None and sorted(p.name for p in root.iterdir()) == [new_folder.name]

    # -- cancelled among the blocks: nothing saved, the shown run kept, its partial files gone
    n_stored = len(widget.session.store.list_annotations(status="candidate"))
    worker = panel.run()
    assert worker is not None
    qtbot.waitUntil(lambda: panel.progress_label.text().startswith("scoring"), timeout=120_000)
    panel.cancel()
    qtbot.waitUntil(lambda: panel.worker is None, timeout=60_000)
    assert panel.progress_label.text() == "cancelled: nothing saved"
    assert mask.metadata["satdelta"]["run_folder"] == str(new_folder)
    assert sorted(p.name for p in root.iterdir()) == [new_folder.name]
    assert len(widget.session.store.list_annotations(status="candidate")) == n_stored
    qtbot.waitUntil(lambda: not widget.evidence.loading, timeout=60_000)  # reloaded
    viewer.close()
    assert not root.exists()  # the dock's run folders go with it


def test_run_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    import subprocess
    import sys

    from satdelta.plugins.napari._block_detection import RunFolders, remove_stale_runs

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f"satdelta-desk-{int(done.stdout)}-abc"
    (dead / "run-1").mkdir(parents=True)
    mine = RunFolders(tmp_path)
    first = Path(mine.next())  # removes the dead one, keeps its own
    assert not dead.exists()
    first.mkdir()
    assert remove_stale_runs(tmp_path) == []  # this process is alive
    assert first.is_dir()
    second = Path(mine.next())
    second.mkdir()
    mine.prune({str(second)})
    assert not first.exists() and second.is_dir()
    mine.remove()
    assert not second.parent.exists()
