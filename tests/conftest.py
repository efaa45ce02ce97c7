"""Shared pytest fixtures for satdelta.

* ``shared_data`` -- the folder of real public imagery (``<repo>/../shared/data``).
  Tests marked ``realdata`` use :func:`require_shared` / the fixture: when the data is
  missing they skip, except under ``CI=true`` where they fail.
* ``write_raster`` -- writes a small raster with a known transform/CRS to ``tmp_path``.
* ``textured`` -- a deterministic smooth random texture for registration tests.
* ``stac_item``, ``footprint_of`` -- a STAC Item for a test server, a raster's WGS84 bounds.
* ``notes`` -- every napari notification message shown during a test.
* ``serve_folder`` -- starts ``tests/range_server.py`` or ``tests/stac_server.py`` on a folder.
* ``dask_cluster`` -- a one-worker, one-thread Dask cluster in this process (tcp on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT / ".." / "shared" / "data"


def missing(msg: str) -> NoReturn:
    """Skip a test whose input or tool is missing; fail it instead under ``CI=true``."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def require_shared(*parts: str) -> Path:
    """Return ``SHARED_DATA/<parts>``; skip when missing, fail when ``CI=true``."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        missing(f"shared data not found: {path} (expected ../shared/data beside the clone)")
    return path


def require_file(path: Path, what: str) -> Path:
    """Return *path* (a tool or file the tests need); skip when missing, fail when ``CI=true``."""
    if not path.exists():
        missing(f"{what} not found at {path}; `bash scripts/setup.sh install` installs it")
    return path


@pytest.fixture
def shared_data() -> Path:
    """The ``../shared/data`` folder (skips, or fails under CI=true, when missing)."""
    return require_shared()


@pytest.fixture
def write_raster(tmp_path: Path) -> Callable[..., Path]:
    """Return a function ``write(name, data, **profile)`` writing a raster under ``tmp_path``.

    ``data`` is ``(band, row, col)`` (or ``(row, col)``); defaults: GTiff, EPSG:32651,
    10 m pixels with origin (500000, 4000000), no nodata.
    """
    import rasterio
    from affine import Affine

    def write(name: str, data: np.ndarray, **profile: Any) -> Path:
        arr = np.asarray(data)
        if arr.ndim == 2:
            arr = arr[np.newaxis]
        prof: dict[str, Any] = {
            "driver": "GTiff",
            "crs": "EPSG:32651",
            "transform": Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0),
        }
        prof.update(profile)
        descriptions = prof.pop("descriptions", None)
        tags = prof.pop("tags", None)
        prof.update(count=arr.shape[0], height=arr.shape[1], width=arr.shape[2], dtype=arr.dtype)
        if prof.get("crs") is None:
            prof.pop("crs", None)
            prof.pop("transform", None)
        path = tmp_path / name
        with rasterio.open(path, "w", **prof) as dst:
            dst.write(arr)
            if descriptions:
                for i, d in enumerate(descriptions, start=1):
                    dst.set_band_description(i, d)
            if tags:
                dst.update_tags(**tags)
        return path

    return write


def make_texture(shape: tuple[int, int], *, seed: int = 0, sigma: float = 2.0) -> np.ndarray:
    """A smooth random texture in [0, 1], float64, deterministic for a seed."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    tex = ndimage.gaussian_filter(rng.random(shape), sigma)
    tex -= tex.min()
    tex /= tex.max()
    return tex


@pytest.fixture
def textured() -> Callable[..., np.ndarray]:
    """Return :func:`make_texture`."""
    return make_texture


def make_pair(
    folder: Path,
    *,
    shift: tuple[float, float] = (0.4, -0.3),
    shape: tuple[int, int] = (120, 160),
    bands: int = 3,
    nodata_cols: int = 6,
) -> tuple[Path, Path, np.ndarray]:
    """Write a small georeferenced before/after pair with one known change.

    The after scene is the before texture moved by ``shift`` px (Fourier shift), plus a bright
    rectangle with an unchanged hole (a ring of change), and its last ``nodata_cols`` columns are
    nodata (0).  Returns (before path, after path, truth) where truth is a (row, col) bool array,
    True = changed, on the before grid.
    """
    import rasterio
    from affine import Affine
    from scipy import ndimage

    rows, cols = shape
    before = np.stack([make_texture(shape, seed=10 + b) * 120 + 60 for b in range(bands)])
    after = np.stack(
        [np.fft.ifftn(ndimage.fourier_shift(np.fft.fftn(b), shift)).real for b in before]
    )
    truth = np.zeros(shape, bool)
    truth[30:70, 40:100] = True
    truth[42:56, 60:78] = False
    after[:, truth] += 90.0
    after = np.clip(after, 1, 254)
    if nodata_cols:
        after[:, :, cols - nodata_cols :] = 0
    transform = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    paths = []
    for name, arr in (("before_2020-01-05.tif", before), ("after_2021-02-07.tif", after)):
        path = folder / name
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=cols,
            height=rows,
            count=bands,
            dtype="uint8",
            crs="EPSG:32651",
            transform=transform,
            nodata=0,
        ) as dst:
            dst.write(np.round(arr).astype("uint8"))
        paths.append(path)
    return paths[0], paths[1], truth


@pytest.fixture
def change_pair(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """:func:`make_pair` written under ``tmp_path/pair``: (before, after, truth)."""
    folder = tmp_path / "pair"
    folder.mkdir()
    return make_pair(folder)


def process_gone(pid: int, within: float) -> bool:
    """The process ``pid`` ended (or is a zombie waiting to be reaped) within ``within`` s."""
    import psutil

    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


class Served:
    """A test HTTP server subprocess on 127.0.0.1: its folder, base URL and request log."""

    def __init__(self, root: Path, base: str, log: Path) -> None:
        self.root, self.base, self.log = root, base, log

    def requests(self) -> list[dict[str, Any]]:
        """The requests answered so far (method, path, range, status, bytes)."""
        if not self.log.exists():
            return []
        return [json.loads(x) for x in self.log.read_text().splitlines()]

    def bytes_sent(self, path_part: str = "") -> int:
        """Body bytes sent for requests whose path contains ``path_part``."""
        return sum(r["bytes"] for r in self.requests() if path_part in r["path"])


#: Media type of a cloud-optimized GeoTIFF asset.
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def stac_item(
    item_id: str,
    href: str,
    when: str,
    footprint: tuple[float, float, float, float],
    *,
    collection: str = "test-imagery",
    cloud: float | None = None,
) -> dict:
    """A STAC Item over ``footprint`` whose ``image`` asset (a COG) is ``href`` (``{BASE}`` is the
    test server's URL, see ``tests/stac_server.py``), beside a thumbnail."""
    w, s, e, n = footprint
    props = {"datetime": when}
    if cloud is not None:
        props["eo:cloud_cover"] = cloud
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": collection,
        "bbox": [w, s, e, n],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
        },
        "properties": props,
        "links": [{"rel": "collection", "href": f"{{BASE}}/collections/{collection}"}],
        "assets": {
            "thumbnail": {"href": "{BASE}/thumb.jpg", "type": "image/jpeg", "roles": ["thumbnail"]},
            "image": {"href": href, "type": COG_TYPE, "roles": ["data"]},
        },
    }


def footprint_of(path: Path) -> tuple[float, float, float, float]:
    """WGS84 bounds of a raster."""
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as src:
        return transform_bounds(src.crs, "EPSG:4326", *src.bounds)


@pytest.fixture
def notes():
    """Every napari notification message shown during the test."""
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def grab(n) -> None:  # noqa: ANN001
        seen.append(str(n.message))

    notification_manager.notification_ready.connect(grab)
    yield seen
    notification_manager.notification_ready.disconnect(grab)


@pytest.fixture
def serve_folder(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Return ``serve(root, script="range_server.py")`` that starts a server on ``root``.

    Servers are stopped when the test ends.
    """
    procs: list[subprocess.Popen[str]] = []

    def serve(root: Path, script: str = "range_server.py") -> Served:
        log = tmp_path / f"requests-{len(procs)}.jsonl"
        proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / script), str(root), str(log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("PORT "), line
        return Served(root, f"http://127.0.0.1:{int(line.split()[1])}", log)

    yield serve
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A PostgreSQL + PostGIS server for the whole session (tests/pg_server.py)."""
    from tests.pg_server import PgServer, postgres_available

    if not postgres_available():
        missing("PostgreSQL 15 + PostGIS (apt postgresql postgresql-15-postgis-3; setup.sh)")
    server = PgServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """The address of a new, empty PostGIS database (with the superuser's password)."""
    return pg_server.url(pg_server.new_database())


@pytest.fixture
def dask_cluster() -> Iterator[Any]:
    """A LocalCluster of one single-threaded worker in this process, on 127.0.0.1 (tcp)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster
