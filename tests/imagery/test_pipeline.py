"""run_detection / write_outputs: an end-to-end run in-process and the atomic output folder."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import rasterio
import shapely
from satdelta.imagery.errors import InvalidParameterError, OutputError
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.outputs import check_outdir, write_outputs
from satdelta.imagery.pipeline import run_detection

from tests.conftest import make_pair, make_texture


@pytest.fixture
def pair(tmp_path):
    return make_pair(tmp_path)


def test_run_finds_the_ring_of_change(pair):
    before, after, truth = pair
    run = run_detection(
        before,
        after,
        # normalise pinned to "none", the RGB default when this test was written: histogram
        # matching against a pair whose ring of change fills a fifth of the scene adds specks
        DetectionOptions(min_area_m2=500, method="cva", threshold="otsu", normalise="none"),
    )
    a, m = run.aligned, run.maps
    assert a.shift_before_px == pytest.approx((0.4, -0.3), abs=0.1)
    assert max(map(abs, a.shift_after_px)) < 0.1
    assert not m.valid[:, -6:].any() and m.valid[:, :-8].all()
    inter = (m.changed & truth).sum()
    union = (m.changed | truth).sum()
    assert inter / union > 0.8
    big = max(run.polygons, key=lambda p: p.area_m2)
    # the unchanged 14 x 18 px hole is kept (speckle holes may come with it)
    holes = sorted(shapely.Polygon(r).area for r in big.geometry.interiors)
    assert holes and holes[-1] == pytest.approx(14 * 18 * 100.0, rel=0.2)
    assert big.area_m2 == pytest.approx(truth.sum() * 100.0, rel=0.15)
    assert set(run.timings) == {"open", "align", "detect", "vectorize"}
    prov = run.provenance()
    assert prov["before"]["acquired"] == "2020-01-05" and prov["after"]["sha256"]
    assert prov["method"] == m.method and prov["threshold"] == m.threshold


def test_write_outputs_files_and_grid(pair, tmp_path):
    before, after, truth = pair
    run = run_detection(before, after)
    out = tmp_path / "new" / "out"
    written = write_outputs(run, out)
    assert sorted(written) == ["changes.geojson", "mask.tif", "run.json", "score.tif"]
    assert sorted(os.listdir(out)) == sorted(written)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # temp dir gone
    with rasterio.open(out / "mask.tif") as m, rasterio.open(before) as b:
        assert m.transform == b.transform and m.shape == b.shape and m.crs == b.crs
        assert m.nodata == 255 and m.dtypes[0] == "uint8"
        mask = m.read(1)
    np.testing.assert_array_equal(mask == 255, ~run.maps.valid)
    np.testing.assert_array_equal(mask == 1, run.maps.changed)
    with rasterio.open(out / "score.tif") as s:
        score = s.read(1)
        assert s.dtypes[0] == "float32" and np.isnan(s.nodata)
    assert np.isnan(score[~run.maps.valid]).all()
    np.testing.assert_allclose(score[run.maps.valid], run.maps.score[run.maps.valid])
    info = json.loads((out / "run.json").read_text())
    assert info["inputs"]["before"]["sha256"] == run.before.sha256
    assert info["alignment"]["shift_before_px"] == pytest.approx([0.4, -0.3], abs=0.1)
    assert set(info["timings_s"]) == {"open", "align", "detect", "vectorize", "write"}
    # what the shift was measured on: the whole 120 x 160 grid (smaller than 512 px)
    al = info["alignment"]
    assert al["shift_measured"] is True and al["shift_note"] is None
    assert al["sample_window"] == {"row_off": 0, "col_off": 0, "height": 120, "width": 160}
    assert "upsample_factor" not in al and "sample_px" not in al
    fc = json.loads((out / "changes.geojson").read_text())
    assert fc["satdelta"]["run"]["before"]["scene_id"] == "before_2020-01-05"
    assert len(fc["features"]) == len(run.polygons)


def test_existing_outdir_keeps_other_files_and_replaces_ours(pair, tmp_path):
    before, after, _ = pair
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "mask.tif").write_text("old")
    write_outputs(run_detection(before, after), out)
    assert (out / "notes.txt").read_text() == "mine"
    with rasterio.open(out / "mask.tif") as m:
        assert m.count == 1


def test_failure_while_writing_leaves_outdir_untouched(pair, tmp_path, monkeypatch):
    before, after, _ = pair
    run = run_detection(before, after)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mask.tif").write_text("old")
    import satdelta.imagery.outputs as outputs

    real = outputs.write_cog
    calls = []

    def fail_on_second(path, *a, **k):  # the disk "fills up" after mask.tif was written
        calls.append(path)
        if len(calls) == 2:
            raise OutputError(f"cannot write {path}: No space left on device.")
        return real(path, *a, **k)

    monkeypatch.setattr(outputs, "write_cog", fail_on_second)
    with pytest.raises(OutputError, match="No space"):
        write_outputs(run, out)
    assert os.listdir(out) == ["mask.tif"] and (out / "mask.tif").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == sorted(["out", before.name, after.name])


def test_check_outdir(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        check_outdir(f)
    with pytest.raises(OutputError, match="is a file"):
        check_outdir(f / "sub")
    assert check_outdir(tmp_path / "a" / "b") == tmp_path / "a" / "b"


def test_plain_images_need_no_crs(tmp_path, write_raster):
    before, after, truth = make_pair(tmp_path, nodata_cols=0)
    with rasterio.open(before) as b, rasterio.open(after) as a:
        pb = write_raster("b.png", b.read(), driver="PNG", crs=None)
        pa = write_raster("a.png", a.read(), driver="PNG", crs=None)
    run = run_detection(pb, pa, DetectionOptions(pixel_size_m=0.5))
    assert run.aligned.crs is None and run.pixel_size_m == 0.5
    big = max(run.polygons, key=lambda p: p.pixel_count)
    assert big.geometry_wgs84 is None and big.area_m2 == pytest.approx(big.pixel_count * 0.25)
    written = write_outputs(run, tmp_path / "plain")
    assert "changes.geojson" not in written and "mask.tif" in written


def test_rerun_with_plain_images_removes_the_earlier_geojson(tmp_path, write_raster):
    """An earlier run's changes.geojson must not outlive a run that could not write one."""
    before, after, _ = make_pair(tmp_path, nodata_cols=0)
    out = tmp_path / "out"
    write_outputs(run_detection(before, after), out)
    (out / "notes.txt").write_text("mine")
    assert (out / "changes.geojson").is_file()
    with rasterio.open(before) as b, rasterio.open(after) as a:
        pb = write_raster("b.png", b.read(), driver="PNG", crs=None)
        pa = write_raster("a.png", a.read(), driver="PNG", crs=None)
    write_outputs(run_detection(pb, pa, DetectionOptions(pixel_size_m=0.5)), out)
    assert sorted(os.listdir(out)) == [
        "mask.tif",
        "notes.txt",
        "objects.csv",
        "run.json",
        "score.tif",
    ]
    assert json.loads((out / "run.json").read_text())["grid"]["crs"] is None


def test_residual_not_remeasured_is_null_in_run_json(tmp_path, write_raster):
    # a 17 x 17 pair shifted by 2 px: measured, corrected, too small to measure again
    tex = (make_texture((40, 40), seed=25, sigma=1.5) * 200 + 20).astype("float32")
    before = write_raster("b.tif", tex[10:27, 10:27])
    after = write_raster("a.tif", tex[8:25, 10:27])
    write_outputs(run_detection(before, after), tmp_path / "out")
    al = json.loads((tmp_path / "out" / "run.json").read_text())["alignment"]
    assert al["shift_after_px"] == [None, None] and al["shift_measured"] is True
    assert al["shift_before_px"] == pytest.approx([2.0, 0.0], abs=0.25)


def test_tiny_pair_on_one_grid_records_an_unmeasured_shift(tmp_path, write_raster):
    rng = np.random.default_rng(29)
    b = (rng.random((10, 10)) * 100).astype("float32")
    a = b.copy()
    a[2:6, 3:7] += 80.0
    write_outputs(run_detection(write_raster("b.tif", b), write_raster("a.tif", a)), tmp_path / "o")
    al = json.loads((tmp_path / "o" / "run.json").read_text())["alignment"]
    assert al["shift_measured"] is False and al["shift_before_px"] == [0.0, 0.0]
    assert al["shift_after_px"] == [None, None] and al["sample_window"] is None
    assert "too small" in al["shift_note"]


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_non_finite_max_shift_rejected_before_opening(value, tmp_path):
    # the sources do not exist: the option is checked first
    with pytest.raises(InvalidParameterError, match="max_shift_px must be a finite number"):
        run_detection(
            tmp_path / "nope-b.tif", tmp_path / "nope-a.tif", DetectionOptions(max_shift_px=value)
        )


def test_a_failure_while_moving_into_an_existing_folder_never_mixes_runs(
    pair, tmp_path, monkeypatch
):
    """run.json is the commit mark: old one removed first, new one moved last."""
    import satdelta.imagery.outputs as outputs

    before, after, _ = pair
    out = tmp_path / "out"
    write_outputs(run_detection(before, after), out)
    moved: list[str] = []
    real_replace = os.replace

    def replace_then_fail(src, dst):
        if moved:  # the second move fails, as a kill would stop it
            raise OSError(28, "No space left on device")
        moved.append(os.path.basename(dst))
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", replace_then_fail)
    with pytest.raises(OutputError, match="No space left"):
        write_outputs(run_detection(before, after, DetectionOptions(method="absdiff")), out)
    assert moved and moved[0] != "run.json"
    assert not (out / "run.json").exists()  # incomplete, and says so


def test_stale_temp_folder_of_a_dead_writer_is_removed(pair, tmp_path):
    before, after, _ = pair
    out = tmp_path / "out"
    dead = tmp_path / ".out.tmp-999999999-abc"  # no such pid
    dead.mkdir()
    (dead / "mask.tif").write_bytes(b"half written")
    alive = tmp_path / f".out.tmp-{os.getpid()}-xyz"  # a live writer's: kept
    alive.mkdir()
    write_outputs(run_detection(before, after), out)
    assert not dead.exists() and alive.exists()
