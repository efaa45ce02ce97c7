"""open_scene over HTTP: a real range-capable server subprocess, a COG, a windowed read."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window
from satdelta.imagery.cog import write_cog
from satdelta.imagery.errors import SceneReadError
from satdelta.imagery.scene import open_scene

SERVER = Path(__file__).resolve().parents[1] / "range_server.py"


@pytest.fixture
def served(tmp_path):
    """Serve tmp_path/www over HTTP; yield (www folder, base URL, log path)."""
    www = tmp_path / "www"
    www.mkdir()
    log = tmp_path / "requests.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), str(www), str(log)], stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        yield www, f"http://127.0.0.1:{int(line.split()[1])}", log
    finally:
        proc.kill()
        proc.wait(timeout=10)


def requests(log: Path) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_remote_cog_window_travels_by_range_requests(served):
    www, base, log = served
    rng = np.random.default_rng(3)
    data = rng.integers(0, 4000, (2, 2048, 2048)).astype("uint16")  # noise: compresses poorly
    transform = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0)
    path = write_cog(
        www / "site_2021-06-30.tif",
        data,
        transform=transform,
        crs=CRS.from_epsg(32633),
        nodata=0,
        blocksize=256,
        band_names=["red", "nir"],
    )
    size = path.stat().st_size

    scene = open_scene(f"{base}/site_2021-06-30.tif")
    assert scene.source == f"{base}/site_2021-06-30.tif" and scene.sha256 is None
    # in place of a sha256 (which would download the file whole): the server's fingerprint
    assert scene.remote["content_length"] == size
    assert scene.remote["etag"] and scene.remote["last_modified"]
    assert scene.crs.to_epsg() == 32633 and scene.transform == transform
    assert (scene.width, scene.height, scene.count) == (2048, 2048, 2)
    assert scene.band_names == ("red", "nir") and scene.acquired == dt.date(2021, 6, 30)

    win = Window(300, 500, 200, 100)
    got, valid = scene.read(win, bands=["nir"])
    np.testing.assert_array_equal(got[0], data[1, 500:600, 300:500].astype("float32"))
    np.testing.assert_array_equal(valid, data[1, 500:600, 300:500] != 0)

    reqs = requests(log)
    gets = [r for r in reqs if r["method"] == "GET"]
    assert gets and all(r["range"] for r in gets), reqs
    assert any(r["status"] == 206 for r in gets)
    sent = sum(r["bytes"] for r in reqs)
    assert sent < size / 10, f"{sent} of {size} bytes travelled"


def test_remote_missing_is_a_scene_read_error(served):
    _, base, _ = served
    with pytest.raises(SceneReadError, match="cannot read"):
        open_scene(f"{base}/nope.tif")


def test_run_detection_on_two_urls(served):
    from satdelta.imagery.options import DetectionOptions
    from satdelta.imagery.pipeline import run_detection

    from tests.conftest import make_pair

    www, base, log = served
    before, after, truth = make_pair(www)
    run = run_detection(
        f"{base}/{before.name}", f"{base}/{after.name}", DetectionOptions(method="cva")
    )
    assert run.before.source.startswith("http://") and run.before.sha256 is None
    assert run.aligned.shift_before_px == pytest.approx((0.4, -0.3), abs=0.1)
    iou = (run.maps.changed & truth).sum() / (run.maps.changed | truth).sum()
    assert iou > 0.8
    prov = run.provenance()
    assert prov["after"]["source"] == f"{base}/{after.name}" and prov["after"]["sha256"] is None
    assert prov["after"]["remote"]["content_length"] == after.stat().st_size
    assert prov["after"]["remote"]["etag"] != prov["before"]["remote"]["etag"]
    assert all(r["status"] in (200, 206) for r in requests(log))


def test_a_server_that_breaks_http_leaves_no_fingerprint_but_no_error(tmp_path):
    """A HEAD answer that is not HTTP must not stop the scene from opening."""
    import socket
    import threading

    from satdelta.imagery.scene import _remote_fingerprint

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def answer_garbage() -> None:
        conn, _ = srv.accept()
        conn.recv(4096)
        conn.sendall(b"this is not an HTTP status line\r\n\r\n")
        conn.close()

    t = threading.Thread(target=answer_garbage, daemon=True)
    t.start()
    try:
        assert _remote_fingerprint(f"http://127.0.0.1:{port}/x.tif", timeout=5) is None
    finally:
        t.join(5)
        srv.close()
