"""Threads give the same results as one thread, bit for bit; the thread count and its sources.

Every comparison runs the same call under ``threads(1)`` and ``threads(n)`` and compares the
bytes of the arrays (NaN positions included), the threshold and the whole provenance. The data
puts invalid pixels and NaNs on the rows where the blocks meet, uses odd sizes and rasters with
fewer rows than blocks, and smoothing on (pixels of 2 m or finer); one test checks that these
comparisons do see a halo one row short of the filters' reach.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from satdelta.imagery import parallel
from satdelta.imagery.align import coregister, estimate_shift
from satdelta.imagery.batch import Pair, run_batch, worker_threads
from satdelta.imagery.detect import ChangeMaps, detect_change, fit_detector
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.parallel import (
    ENV_VAR,
    available_cpus,
    default_threads,
    map_row_blocks,
    row_blocks,
    run_jobs,
    set_threads,
    thread_count,
    threads,
)
from satdelta.imagery.scene import open_scene
from satdelta.imagery.scores import ScoreModel
from scipy import ndimage

from tests.conftest import make_pair, make_texture

RGBN = ("B1_blue", "B2_green", "B3_red", "B4_nir")


@pytest.fixture(autouse=True)
def _no_thread_setting(monkeypatch):
    """Each test starts from the default: no SATDELTA_THREADS, no set_threads()."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    set_threads(None)
    yield
    set_threads(None)


# ------------------------------------------------------------------------------ test data


def block_borders(rows: int) -> list[int]:
    """Rows where the blocks of 2 and of 3 threads meet."""
    return sorted({rows // 2, rows // 3, 2 * rows // 3})


def scene_arrays(
    shape: tuple[int, int], *, bands: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured before/after pair with changes, gains, noise, NaNs and invalid pixels.

    Invalid pixels (``valid`` False) and NaNs in the after image sit on every row where blocks
    of 2 or 3 threads meet, so a block that read them wrongly would spread the error.
    """
    rng = np.random.default_rng(seed)
    rows, cols = shape
    before = np.stack(
        [make_texture(shape, seed=seed + b, sigma=1.5) * 150 + 40 for b in range(bands)]
    )
    after = before * rng.uniform(0.9, 1.1, (bands, 1, 1)) + rng.uniform(-5, 5, (bands, 1, 1))
    after += rng.normal(0, 2, after.shape)
    # changes: a grey block (built) crossing the middle row and a greener one
    after[:, rows // 3 : rows // 2 + 3, cols // 4 : cols // 2] = 128.0
    after[1, 2 * rows // 3 :, cols // 2 :] += 40
    valid = rng.random(shape) > 0.02
    for r in block_borders(rows):
        valid[max(r - 2, 0) : r + 1, cols // 8 : cols // 3] = False
        after[:, max(r - 1, 0), cols // 2 : cols // 2 + 5] = np.nan
    return before.astype(np.float32), after.astype(np.float32), valid


def same_maps(a: ChangeMaps, b: ChangeMaps) -> None:
    assert a.score.tobytes() == b.score.tobytes()  # bit for bit, NaNs included
    assert np.array_equal(a.changed, b.changed)
    assert np.array_equal(a.valid, b.valid)
    assert a.threshold == b.threshold
    assert (a.method, a.threshold_method) == (b.method, b.threshold_method)
    assert json.dumps(a.parameters, sort_keys=True) == json.dumps(b.parameters, sort_keys=True)


def detect_with(n: int, before, after, **kw) -> ChangeMaps:
    with threads(n):
        return detect_change(before, after, **kw)


# ---------------------------------------------------------------- the thread count setting


def test_thread_count_default_env_set_threads_and_context(monkeypatch):
    assert default_threads() == min(available_cpus(), parallel.MAX_DEFAULT_THREADS)
    assert thread_count() == default_threads()
    monkeypatch.setenv(ENV_VAR, " 3 ")
    assert thread_count() == 3
    monkeypatch.setenv(ENV_VAR, "")  # empty = unset
    assert thread_count() == default_threads()
    monkeypatch.setenv(ENV_VAR, "5")
    set_threads(2)  # the process setting wins over the environment
    assert thread_count() == 2
    with threads(1) as n:  # and a with block over both, in this thread only
        assert n == 1 and thread_count() == 1
        seen = []
        t = threading.Thread(target=lambda: seen.append(thread_count()))
        t.start()
        t.join()
        assert seen == [2]
        with threads(None):
            assert thread_count() == 1
    assert thread_count() == 2
    set_threads(None)
    assert thread_count() == 5


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "two", "4 threads"])
def test_bad_thread_count_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv(ENV_VAR, value)
    with pytest.raises(InvalidParameterError) as err:
        thread_count()
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"SATDELTA_THREADS must be a whole number of threads >= 1, got {value!r}")
    assert "unset it" in msg
    with pytest.raises(InvalidParameterError, match="thread count must be a whole number"):
        set_threads(0)
    with pytest.raises(InvalidParameterError), threads(-1):
        pass


@pytest.mark.parametrize("value", ["0", "abc"])
def test_detect_cli_rejects_a_bad_satdelta_threads_before_any_work(change_pair, tmp_path, value):
    before, after, _ = change_pair
    out = tmp_path / "out"
    env = {**os.environ, ENV_VAR: value}
    cmd = [sys.executable, "-m", "satdelta.plugins.cli.main", "detect", before, after, "-o", out]
    res = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=180, env=env
    )
    assert res.returncode == 1, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0] == (
        f"satdelta: error: SATDELTA_THREADS must be a whole number of threads >= 1, got "
        f"{value!r}; set it to e.g. 1 or 2, or unset it to use the default "
        f"({default_threads()} here)."
    )
    assert not out.exists()


# -------------------------------------------------------------------------- the two helpers


def test_run_jobs_keeps_order_reads_items_here_and_runs_nested_jobs_inline():
    main = threading.get_ident()
    drawn = []

    def items():
        for i in range(12):
            assert threading.get_ident() == main  # the generator runs in the caller
            drawn.append(i)
            yield i

    def job(i):
        # a job that starts jobs runs them in its own thread, one after another
        inner = run_jobs(lambda k: (k, threading.get_ident()), range(3))
        assert {t for _, t in inner} == {threading.get_ident()}
        return i * i

    with threads(3):
        assert run_jobs(job, items()) == [i * i for i in range(12)]
    assert drawn == list(range(12))


def test_run_jobs_reraises_the_first_failure_in_job_order():
    def job(i):
        if i in (3, 5):
            raise ValueError(f"job {i}")
        return i

    with threads(2), pytest.raises(ValueError, match="job 3"):
        run_jobs(job, list(range(8)))


@pytest.mark.parametrize("nrows", [0, 1, 2, 3, 7, 10, 101])
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_row_blocks_cover_every_row_once(nrows, count):
    blocks = row_blocks(nrows, count, halo=3)
    assert len(blocks) == max(1, min(count, nrows))  # never more blocks than rows
    covered = [r for b in blocks for r in range(b.rows.start, b.rows.stop)]
    assert covered == list(range(nrows))
    for b in blocks:
        assert b.outer.start == max(b.rows.start - 3, 0)
        assert b.outer.stop == min(b.rows.stop + 3, nrows)
        assert range(nrows)[b.outer][b.inner] == range(nrows)[b.rows]


def test_map_row_blocks_is_exact_with_the_filter_reach_and_not_one_row_less():
    x = np.random.default_rng(1).random((61, 37))
    sigma = 2.0
    reach = int(4 * sigma + 0.5)  # scipy's Gaussian kernel radius (truncate=4)
    whole = ndimage.gaussian_filter(x, sigma)

    def blocks(halo: int, n: int) -> np.ndarray:
        with threads(n):
            return map_row_blocks(lambda r: [ndimage.gaussian_filter(x[r], sigma)], 61, halo)[0]

    for n in (2, 3, 4):
        assert blocks(reach, n).tobytes() == whole.tobytes()
        assert blocks(reach - 1, n).tobytes() != whole.tobytes()


# --------------------------------------------------------------------- detect_change, bitwise


@pytest.mark.parametrize(
    ("shape", "method", "band_names", "pixel_size_m"),
    [
        ((97, 61), "auto", RGBN, 0.5),  # cva + IR-MAD normalisation, smoothing + edge discount
        ((97, 61), "builtup", ("red", "green", "blue"), 0.5),  # the RGB default until issue 9
        ((64, 45), "builtup", ("red", "green", "blue"), 2.0),  # smoothing at half a pixel
        ((240, 200), "auto", ("red", "green", "blue"), 0.5),  # cues: halo, SLIC vote
        ((83, 50), "absdiff", None, 1.0),
        ((83, 50), "logratio", None, 0.5),
        ((83, 50), "ndvi", RGBN, 0.5),
        ((83, 50), "irmad", RGBN, 0.5),
        ((83, 50), "cva", RGBN, 30.0),  # no smoothing: one score array
        ((5, 40), "auto", RGBN, 0.5),  # tiny: blocks are mostly halo
        ((2, 40), "builtup", ("red", "green", "blue"), 0.5),  # fewer rows than 3 blocks
    ],
)
def test_detect_change_is_identical_with_2_and_3_threads(shape, method, band_names, pixel_size_m):
    nb = len(band_names) if band_names else 4
    before, after, valid = scene_arrays(shape, bands=nb, seed=sum(shape))
    kw = dict(
        valid=valid,
        pixel_size_m=pixel_size_m,
        band_names=band_names,
        options=DetectionOptions(method=method, min_area_m2=1.0),
    )
    one = detect_with(1, before, after, **kw)
    assert one.changed.any() or shape[0] < 10  # a real detection, not an empty one
    for n in (2, 3):
        same_maps(one, detect_with(n, before, after, **kw))


@pytest.mark.parametrize("band_names", [("red", "green", "blue"), RGBN])
def test_large_scene_windows_fit_and_no_change_floor_are_identical(band_names):
    # over a megapixel: the threshold floor simulates no change on 16 windows, the fit (and
    # cva's edge median) on patches; each is drawn and combined in the same order with threads
    before, after, valid = scene_arrays((1031, 1029), bands=len(band_names), seed=5)
    # RGB: the score with the no-change floor of the threshold (the RGB default until issue 9)
    opts = DetectionOptions(method="builtup" if len(band_names) == 3 else "auto")
    kw = dict(valid=valid, pixel_size_m=0.5, band_names=band_names, options=opts)
    one = detect_with(1, before, after, **kw)
    assert one.parameters["no_change_quantile"] is not None
    same_maps(one, detect_with(2, before, after, **kw))
    with threads(1):
        fit1 = fit_detector(before, after, **kw)
    with threads(2):
        fit2 = fit_detector(before, after, **kw)
    assert json.dumps(fit1.parameters, sort_keys=True) == json.dumps(
        fit2.parameters, sort_keys=True
    )


def test_the_comparison_sees_a_score_halo_one_row_short(monkeypatch):
    """Guard for the tests above: with one row less context than the score's filters reach
    (Gaussian radius ``int(4 sigma + 0.5)`` for the smoothing plus the edge term's), the
    blocks' rows next to a border come out different."""
    before, after, valid = scene_arrays((97, 61), seed=3)
    kw = dict(
        valid=valid, pixel_size_m=0.5, band_names=RGBN, options=DetectionOptions(min_area_m2=1.0)
    )
    one = detect_with(1, before, after, **kw)
    sigma = one.parameters["smooth_px"]
    edge = one.parameters["score"]["edge_sigma_px"]
    reach = int(4 * sigma + 0.5) + int(4 * edge + 0.5)
    real = ScoreModel.halo_px.fget(ScoreModel("cva", one.parameters["score"], smooth_px=sigma))
    assert real >= reach
    monkeypatch.setattr(ScoreModel, "halo_px", property(lambda self: reach))
    assert detect_with(2, before, after, **kw).score.tobytes() == one.score.tobytes()
    monkeypatch.setattr(ScoreModel, "halo_px", property(lambda self: reach - 1))
    assert detect_with(2, before, after, **kw).score.tobytes() != one.score.tobytes()


@pytest.mark.parametrize("smooth_px", [0.0, 1.5])
def test_a_score_model_with_the_edge_term_and_no_smoothing_keeps_its_halo(smooth_px):
    """The shared-edge gradient reaches ``int(4 edge + 0.5)`` rows with or without smoothing;
    a model built by hand with ``smooth_px=0`` once got a halo of 0 and differed by thread
    count next to block borders."""
    from satdelta.imagery.detector import score_both

    rng = np.random.default_rng(0)
    b = rng.normal(100, 20, (3, 40, 23)).astype(np.float32)
    a = (b + rng.normal(0, 5, b.shape)).astype(np.float32)
    params = {
        "difference_median": [0.0] * 3,
        "difference_scale": [5.0] * 3,
        "edge_sigma_px": 1.3,
        "edge_median": 1.0,
    }
    model = ScoreModel("cva", params, smooth_px=smooth_px)
    assert model.halo_px >= int(4 * 1.3 + 0.5) + (int(4 * smooth_px + 0.5) if smooth_px else 0)
    valid = np.ones((40, 23), bool)
    whole = model.apply(b, a, valid)
    for n in (1, 2, 3):
        with threads(n):
            assert score_both(model, b, a, valid)[1].tobytes() == whole.tobytes(), n


# ------------------------------------------------------------------------ alignment, bitwise


def test_coregister_and_estimate_shift_are_identical_with_threads(tmp_path):
    folder = tmp_path / "pair"
    folder.mkdir()
    b_path, a_path, _ = make_pair(folder, shift=(0.6, -1.3), shape=(181, 203), bands=4)
    before, after = open_scene(b_path), open_scene(a_path)
    with threads(1):
        one = coregister(before, after)
    assert one.shift_measured and abs(one.shift_before_px[0] - 0.6) < 0.1
    for n in (2, 3):
        with threads(n):
            got = coregister(before, after)
        assert got.shift_before_px == one.shift_before_px
        assert got.shift_after_px == one.shift_after_px
        assert got.shift_sample == one.shift_sample
        assert got.after.tobytes() == one.after.tobytes()
        assert np.array_equal(got.valid, one.valid)
    tex = make_texture((130, 117), seed=4)
    moved = np.roll(tex, (1, -2), axis=(0, 1))
    with threads(1):
        s1 = estimate_shift(tex, moved, sample_size=None)
    with threads(2):
        assert estimate_shift(tex, moved, sample_size=None) == s1


# ------------------------------------------------------------------------- batch workers


def test_batch_workers_share_the_cpus_out(tmp_path, monkeypatch):
    folder = tmp_path / "pair"
    folder.mkdir()
    before, after, _ = make_pair(folder, shape=(60, 70))
    pairs = [Pair(f"p{i}", str(before), str(after)) for i in range(2)]
    res = run_batch(pairs, tmp_path / "out2", workers=2)
    assert [r.status for r in res.results] == ["done", "done"], res.results
    expect = max(1, min(available_cpus() // 2, parallel.MAX_DEFAULT_THREADS))
    assert worker_threads(2) == expect
    assert [r.worker["threads"] for r in res.results] == [expect, expect]
    report = json.loads(res.report.read_text())
    assert [p["worker"]["threads"] for p in report["pairs"]] == [expect, expect]
    # one worker gets what one process would use; an operator's SATDELTA_THREADS wins
    res = run_batch(pairs[:1], tmp_path / "out1", workers=1)
    assert res.results[0].worker["threads"] == worker_threads(1) == default_threads()
    monkeypatch.setenv(ENV_VAR, "3")
    res = run_batch(pairs[:1], tmp_path / "out3", workers=1, force=True)
    assert res.results[0].worker["threads"] == 3
