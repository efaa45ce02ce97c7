"""``satdelta imagery`` and STAC items in ``satdelta detect``, as real subprocesses against
real servers on 127.0.0.1 (a small STAC API, a range-capable file server; never mocks)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from satdelta.imagery.cog import write_cog

from tests.conftest import COG_TYPE, footprint_of, make_pair, require_shared
from tests.conftest import stac_item as item

NAIP = ("m_4709963_se_14_1_20090818.tif", "m_4709963_se_14_1_20200831.tif")


def satdelta(*args: str | os.PathLike[str], timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "satdelta.plugins.cli.main", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("satdelta: error: "), res.stderr
    return lines[0]


@pytest.fixture
def stac_api(tmp_path, serve_folder):
    """A STAC API over before/after items of a small pair with one known change."""
    www = tmp_path / "www"
    (www / "items").mkdir(parents=True)
    before, after, truth = make_pair(www)
    fp = footprint_of(before)
    half = (fp[0], fp[1], (fp[0] + fp[2]) / 2, fp[3])
    items = [
        item("before-a", f"{{BASE}}/{before.name}", "2020-01-05T03:00:00Z", fp, cloud=5),
        item("before-b", f"{{BASE}}/{before.name}", "2019-11-01T03:00:00Z", fp, cloud=30),
        item("before-half", f"{{BASE}}/{before.name}", "2020-01-20T03:00:00Z", half, cloud=0),
        item("after-a", f"{{BASE}}/{after.name}", "2021-02-07T03:00:00Z", fp, cloud=10),
        item("after-cloudy", f"{{BASE}}/{after.name}", "2021-02-01T03:00:00Z", fp, cloud=90),
        item("elsewhere", f"{{BASE}}/{after.name}", "2021-02-02T03:00:00Z", (10, 10, 11, 11)),
    ]
    for it in items:
        (www / "items" / f"{it['id']}.json").write_text(json.dumps(it))
    srv = serve_folder(www, "stac_server.py")
    inner = (
        fp[0] + 0.2 * (fp[2] - fp[0]),
        fp[1] + 0.2 * (fp[3] - fp[1]),
        fp[2] - 0.2 * (fp[2] - fp[0]),
        fp[3] - 0.2 * (fp[3] - fp[1]),
    )
    return srv, ",".join(f"{v:.6f}" for v in inner), truth


def search_args(srv, bbox: str, window: str) -> list[str]:
    return ["imagery", "search", "--stac", srv.base, "--collection", "test-imagery",
            "--bbox", bbox, "--datetime", window]  # fmt: skip


def test_search_lists_items_best_first_and_filters_cloud(stac_api):
    srv, bbox, _ = stac_api
    res = satdelta(*search_args(srv, bbox, "2021-01-15/2021-03-31"))
    assert res.returncode == 0, res.stderr
    ids = [line.split()[0] for line in res.stdout.splitlines()[1:]]
    assert ids == ["after-a", "after-cloudy"]  # "elsewhere" is outside the area
    assert res.stdout.splitlines()[1].split()[2:] == ["100", "10", "image"]

    res = satdelta(*search_args(srv, bbox, "2021-01-15/2021-03-31"), "--max-cloud", "50")
    assert [line.split()[0] for line in res.stdout.splitlines()[1:]] == ["after-a"]
    assert any(r["path"] == "/search" for r in srv.requests())


def test_a_search_without_results_is_one_line(stac_api):
    srv, bbox, _ = stac_api
    msg = one_line_error(satdelta(*search_args(srv, bbox, "2001-01-01/2001-12-31")))
    assert "no test-imagery items over" in msg and "Widen the dates or the area" in msg
    msg = one_line_error(satdelta(*search_args(srv, "10,10,9,11", "2021-01-01/2021-12-31")))
    assert "expected a bbox W,S,E,N" in msg


def test_a_static_catalogue_or_a_dead_api_is_one_line(tmp_path, serve_folder):
    www = tmp_path / "static"
    www.mkdir()
    catalog = {"type": "Catalog", "id": "events", "stac_version": "1.0.0",
               "description": "static", "links": []}  # fmt: skip
    (www / "catalog.json").write_text(json.dumps(catalog))
    srv = serve_folder(www)
    msg = one_line_error(
        satdelta(
            *search_args(srv, "1,1,2,2", "2021-01-01/2021-12-31")[:3],
            f"{srv.base}/catalog.json",
            *search_args(srv, "1,1,2,2", "2021-01-01/2021-12-31")[4:],
        )
    )
    assert "has no item search" in msg and "Item URLs" in msg
    msg = one_line_error(
        satdelta(
            *search_args(srv, "1,1,2,2", "2021-01-01/2021-12-31")[:3],
            f"{srv.base}/nothing/",
            *search_args(srv, "1,1,2,2", "2021-01-01/2021-12-31")[4:],
        )
    )
    assert f"{srv.base}/nothing/" in msg


def test_search_reads_the_claims_bbox_from_the_store(stac_api, tmp_path):
    from satdelta.annotations import Store

    srv, bbox, _ = stac_api
    store_path = tmp_path / "s.gpkg"
    with Store.open(store_path, create=True) as store:
        report = store.add_report(title="flood report")
        area = tuple(float(v) for v in bbox.split(","))
        claim = store.add_claim(report_id=report.id, text="the dyke broke", bbox=area)
        bare = store.add_claim(report_id=report.id, text="somewhere")
    args = ["--store", store_path, "imagery", "search", "--stac", srv.base, "--collection",
            "test-imagery", "--datetime", "2019-10-01/2020-01-31"]  # fmt: skip
    res = satdelta(*args, "--claim", claim.id)
    assert res.returncode == 0, res.stderr
    assert {line.split()[0] for line in res.stdout.splitlines()[1:]} == {
        "before-a",
        "before-b",
        "before-half",
    }
    msg = one_line_error(satdelta(*args, "--claim", bare.id))
    assert f"claim {bare.id} has no bbox" in msg


def test_pair_picks_the_best_items_and_batch_runs_them(stac_api, tmp_path):
    srv, bbox, truth = stac_api
    out = tmp_path / "pair"
    res = satdelta("imagery", "pair", "--stac", srv.base, "--collection", "test-imagery",
                   "--bbox", bbox, "--before", "2019-10-01/2020-01-31",
                   "--after", "2021-01-15/2021-03-31", "--max-cloud", "50",
                   "-o", out, "--name", "dyke")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out / "pairs.csv")
    rows = list(csv.DictReader((out / "pairs.csv").open()))
    assert rows == [
        {
            "name": "dyke",
            "before": "dyke_before.json",
            "after": "dyke_after.json",
            "before_item": "before-a",  # full cover beats before-half; less cloud than before-b
            "after_item": "after-a",
        }
    ]
    snap = json.loads((out / "dyke_before.json").read_text())
    assert snap["assets"]["image"]["href"] == f"{srv.base}/before_2020-01-05.tif"

    res = satdelta("batch", out / "pairs.csv", "-o", tmp_path / "runs", "--workers", "1",
                   "--method", "cva")  # fmt: skip
    assert res.returncode == 0, res.stderr
    run = json.loads((tmp_path / "runs" / "dyke" / "run.json").read_text())
    assert run["inputs"]["before"]["stac"]["item_id"] == "before-a"
    assert run["inputs"]["after"]["stac"]["license"] == "CC-BY-4.0"  # from the collection
    with rasterio.open(tmp_path / "runs" / "dyke" / "mask.tif") as src:
        changed = src.read(1) == 1
    assert (changed & truth).sum() / (changed | truth).sum() > 0.8


def test_pair_clip_writes_local_cogs_and_only_the_area_travels(tmp_path, serve_folder):
    www = tmp_path / "www"
    (www / "items").mkdir(parents=True)
    rng = np.random.default_rng(9)
    data = rng.integers(1, 4000, (2, 2048, 2048)).astype("uint16")
    big = write_cog(www / "big.tif", data, crs=CRS.from_epsg(32633), nodata=0, blocksize=256,
                    transform=Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0))  # fmt: skip
    fp = footprint_of(big)
    for it in (
        item("big-2020", "{BASE}/big.tif", "2020-05-01T10:00:00Z", fp),
        item("big-2021", "{BASE}/big.tif", "2021-05-01T10:00:00Z", fp),
    ):
        (www / "items" / f"{it['id']}.json").write_text(json.dumps(it))
    srv = serve_folder(www, "stac_server.py")
    area = transform_bounds("EPSG:32633", "EPSG:4326", 305000, 4990000, 306000, 4991000)
    out = tmp_path / "clip"
    res = satdelta("imagery", "pair", "--stac", srv.base, "--collection", "test-imagery",
                   "--bbox", ",".join(map(str, area)), "--before", "2020-01-01/2020-12-31",
                   "--after", "2021-01-01/2021-12-31", "-o", out, "--clip")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader((out / "pairs.csv").open()))
    assert (rows[0]["before"], rows[0]["after"]) == ("pair_before.tif", "pair_after.tif")
    with rasterio.open(out / "pair_before.tif") as src:
        assert src.crs.to_epsg() == 32633 and src.dtypes[0] == "uint16"
        assert 100 <= src.width <= 110 and 100 <= src.height <= 110  # ~1 km at 10 m
        col, row = ~Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0) * (
            src.transform.c,
            src.transform.f,
        )
        got = src.read()
        assert src.tags()["STAC_ITEM_ID"] == "big-2020"
    r, c = round(row), round(col)
    np.testing.assert_array_equal(got, data[:, r : r + got.shape[1], c : c + got.shape[2]])
    sent = srv.bytes_sent("/big.tif")
    assert 0 < sent < 2 * big.stat().st_size / 10, f"{sent} of {big.stat().st_size} bytes"


def test_tiles_command_writes_the_mosaic_and_says_what_failed(tmp_path, serve_folder):
    from tests.imagery.test_tiles import BBOX, ZOOM, write_tile_pyramid

    www = tmp_path / "www"
    write_tile_pyramid(www / "xyz", ZOOM, margin=0)
    srv = serve_folder(www)
    template = f"{srv.base}/xyz/{{z}}/{{x}}/{{y}}.png"
    bbox = ",".join(map(str, BBOX))
    out = tmp_path / "m.tif"
    res = satdelta("imagery", "tiles", template, "--bbox", bbox, "--zoom", ZOOM, "-o", out,
                   "--attribution", "Test tiles", "--cache", tmp_path / "cache")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out) and "imagery: Test tiles" in res.stderr
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 3857 and src.tags()["ATTRIBUTION"] == "Test tiles"

    msg = one_line_error(
        satdelta(
            "imagery",
            "tiles",
            template,
            "--bbox",
            bbox,
            "--zoom",
            ZOOM + 1,
            "-o",
            tmp_path / "z.tif",
            "--cache",
            tmp_path / "cache",
        )  # fmt: skip
    )
    assert "tiles inside the area are missing" in msg and "try a lower --zoom" in msg


# -- acceptance: the NAIP pair as static STAC Items on loopback ------------------------------


@pytest.mark.realdata
@pytest.mark.slow
def test_naip_items_on_loopback_give_the_same_mask_as_the_local_files(tmp_path, serve_folder):
    naip = require_shared("naip-nd")
    data = serve_folder(naip)  # the shared folder served read-only, never copied
    items = tmp_path / "items"
    items.mkdir()
    for name in NAIP:
        year = name[-12:-8]
        it = item(f"naip-nd-{year}", f"{data.base}/{name}", f"{year}-08-18T17:00:00Z",
                  footprint_of(naip / name), collection="naip")  # fmt: skip
        it["assets"]["thumbnail"]["href"] = f"{data.base}/thumbnails/{year}.jpg"
        (items / f"naip-{year}.json").write_text(json.dumps(it))
    catalogue = serve_folder(items)
    urls = [f"{catalogue.base}/naip-{n[-12:-8]}.json" for n in NAIP]

    local = satdelta("detect", naip / NAIP[0], naip / NAIP[1], "-o", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    remote = satdelta("detect", *urls, "-o", tmp_path / "stac")
    assert remote.returncode == 0, remote.stderr

    masks = []
    for out in ("local", "stac"):
        with rasterio.open(tmp_path / out / "mask.tif") as src:
            masks.append(src.read(1))
    np.testing.assert_array_equal(masks[0], masks[1])
    assert (masks[0] == 1).sum() > 1000
    run = json.loads((tmp_path / "stac" / "run.json").read_text())
    assert run["inputs"]["before"]["stac"]["item_id"] == "naip-nd-2009"
    assert run["inputs"]["before"]["stac"]["asset"] == "image"  # not the thumbnail
    assert run["inputs"]["after"]["stac"]["href"] == f"{data.base}/{NAIP[1]}"
    assert not any("thumbnails" in r["path"] for r in data.requests())

    msg = one_line_error(
        satdelta("detect", f"{catalogue.base}/naip-1999.json", urls[1], "-o", tmp_path / "x")
    )
    assert "not found (HTTP 404)" in msg and "naip-1999.json" in msg


def test_detect_asset_option_and_the_viewer_reader_open_local_items(tmp_path):
    from satdelta.plugins.napari._reader import get_reader, raster_layer_data

    before, after, truth = make_pair(tmp_path)
    sources = []
    for path, when in ((before, "2020-01-05T00:00:00Z"), (after, "2021-02-07T00:00:00Z")):
        it = item(path.stem, path.name, when, footprint_of(path))
        it["assets"]["visual"] = {"href": "missing-visual.tif", "type": COG_TYPE,
                                  "roles": ["visual"]}  # fmt: skip
        sources.append(tmp_path / f"{path.stem}.item.json")
        sources[-1].write_text(json.dumps(it))

    # by default the visual asset is chosen (it is missing here): a one-line error
    msg = one_line_error(satdelta("detect", *sources, "-o", tmp_path / "a"))
    assert "missing-visual.tif" in msg
    res = satdelta("detect", *sources, "-o", tmp_path / "b", "--asset", "image", "--method", "cva")
    assert res.returncode == 0, res.stderr
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["inputs"]["after"]["stac"]["asset"] == "image"
    assert run["inputs"]["after"]["source"] == str(sources[1])
    msg = one_line_error(satdelta("detect", before, after, "-o", tmp_path / "c", "--asset", "x"))
    assert "is not a STAC Item" in msg

    it = json.loads(sources[0].read_text())
    del it["assets"]["visual"]
    sources[0].write_text(json.dumps(it))
    assert get_reader(str(sources[0])) is not None
    data, kwargs, kind = raster_layer_data(sources[0])
    assert kind == "image" and kwargs["metadata"]["satdelta"]["source"] == str(sources[0])
    assert kwargs["metadata"]["satdelta"]["shape"] == list(truth.shape)
