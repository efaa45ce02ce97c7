"""STAC Items as scene sources, over real HTTP servers on 127.0.0.1 (never mocks)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window
from satdelta.imagery.cog import write_cog
from satdelta.imagery.errors import FetchError, SceneReadError, StacError, one_line
from satdelta.imagery.fetch import Fetcher, fetch_bytes
from satdelta.imagery.scene import open_scene
from satdelta.imagery.stac import choose_assets, read_item

from tests.conftest import make_pair

COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def stac_item(item_id: str, assets: dict, *, when: str = "2021-06-30T10:00:00Z", **props) -> dict:
    """A minimal STAC 1.0 Item."""
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": "test-collection",
        "bbox": [120.0, 30.0, 121.0, 31.0],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[120, 30], [121, 30], [121, 31], [120, 31], [120, 30]]],
        },
        "properties": {"datetime": when, **props},
        "links": [],
        "assets": assets,
    }


def image_item(item_id: str, href: str, **kw) -> dict:
    """An item like NAIP's: a COG ``image`` beside a JPEG ``thumbnail``."""
    assets = {
        "thumbnail": {"href": "thumb.jpg", "type": "image/jpeg", "roles": ["thumbnail"]},
        "image": {"href": href, "type": COG_TYPE, "roles": ["data"]},
    }
    return stac_item(item_id, assets, **kw)


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def noisy_cog(path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(5)
    data = rng.integers(1, 4000, (2, 2048, 2048)).astype("uint16")  # compresses poorly
    write_cog(
        path,
        data,
        transform=Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0),
        crs=CRS.from_epsg(32633),
        nodata=0,
        blocksize=256,
    )
    return path, data


# -- choosing the asset (pure) ---------------------------------------------------------------


def test_visual_asset_first_then_data_with_most_bands():
    assets = {
        "thumbnail": {"href": "t.jpg", "type": "image/jpeg", "roles": ["thumbnail"]},
        "B04": {"href": "b4.tif", "type": COG_TYPE, "roles": ["data"],
                "eo:bands": [{"name": "B04", "common_name": "red"}]},
        "rgbn": {"href": "x.tif", "type": COG_TYPE, "roles": ["data"], "eo:bands": [
            {"common_name": c} for c in ("red", "green", "blue", "nir")]},
        "visual": {"href": "tci.tif", "type": COG_TYPE, "roles": ["visual"]},
        "metadata": {"href": "m.xml", "type": "application/xml", "roles": ["metadata"]},
    }  # fmt: skip
    assert choose_assets(stac_item("a", assets)) == ("visual",)
    del assets["visual"]
    assert choose_assets(stac_item("a", assets)) == ("rgbn",)
    assert choose_assets(stac_item("a", assets), asset="B04") == ("B04",)
    assert choose_assets(stac_item("a", assets), asset="B04,rgbn") == ("B04", "rgbn")


def test_an_item_without_a_raster_asset_says_which_assets_it_has():
    item = stac_item(
        "only-meta",
        {
            "thumbnail": {"href": "t.jpg", "type": "image/jpeg", "roles": ["thumbnail"]},
            "mtl": {"href": "m.xml", "type": "application/xml", "roles": ["metadata"]},
        },
    )
    with pytest.raises(StacError) as err:
        choose_assets(item)
    msg = one_line(err.value)
    assert "only-meta has no raster asset" in msg and "thumbnail" in msg and "--asset" in msg
    with pytest.raises(StacError, match="has no asset 'B99'.*thumbnail, mtl"):
        choose_assets(item, asset="B99")


def one_band(name: str, common: str) -> dict:
    return {"href": f"{name}.tif", "type": COG_TYPE, "roles": ["data"],
            "eo:bands": [{"name": name, "common_name": common}]}  # fmt: skip


def test_one_band_assets_are_stacked_as_red_green_blue_nir(tmp_path, serve_folder):
    www = tmp_path / "www"
    www.mkdir()
    rng = np.random.default_rng(2)
    data = rng.integers(1, 30000, (4, 300, 400)).astype("uint16")
    grid = dict(transform=Affine(30.0, 0.0, 600000.0, 0.0, -30.0, 4100000.0),
                crs=CRS.from_epsg(32617), nodata=0, blocksize=256)  # fmt: skip
    keys = ("blue", "green", "red", "nir08", "swir16")
    for i, key in enumerate(keys):
        write_cog(www / f"{key}.tif", data[i % 4], **grid)
    assets = {k: one_band(k, k) for k in keys}
    assets["thumbnail"] = {"href": "t.jpg", "type": "image/jpeg", "roles": ["thumbnail"]}
    write_json(www / "landsat.json", stac_item("LC08_X", assets))
    srv = serve_folder(www)

    url = f"{srv.base}/landsat.json"
    scene = open_scene(url)
    assert scene.band_names == ("red", "green", "blue", "nir") and scene.count == 4
    assert scene.stac["asset"] == ["red", "green", "blue", "nir08"]
    assert scene.stac["href"][0] == f"{srv.base}/red.tif"
    assert scene.crs.to_epsg() == 32617 and scene.res == (30.0, 30.0)
    got, valid = scene.read(Window(10, 20, 50, 40), bands=["nir", "red"])
    np.testing.assert_array_equal(got[0], data[3, 20:60, 10:60])
    np.testing.assert_array_equal(got[1], data[2, 20:60, 10:60])
    assert valid.all()
    assert not any("swir16" in r["path"] for r in srv.requests())

    two = open_scene(url, asset="swir16,nir08")
    assert two.band_names == ("swir16", "nir") and two.stac["asset"] == ["swir16", "nir08"]

    write_cog(www / "half.tif", data[0, ::2, ::2], **grid)
    assets["red"]["href"] = "half.tif"
    write_json(www / "mixed.json", stac_item("LC08_Y", assets))
    with pytest.raises(StacError, match="not one-band images on one grid.*red 200x150 px"):
        open_scene(f"{srv.base}/mixed.json")


# -- local items -----------------------------------------------------------------------------


def test_local_item_opens_its_asset_with_provenance(tmp_path, write_raster):
    write_raster("scene.tif", np.ones((3, 20, 30), "uint8"))
    item = write_json(
        tmp_path / "item.json", image_item("S2_T51_20210630", "scene.tif", license="CC-BY-4.0")
    )
    scene = open_scene(item)
    assert scene.source == str(item) and scene.gdal_path == str(tmp_path / "scene.tif")
    assert scene.scene_id == "S2_T51_20210630" and scene.acquired == dt.date(2021, 6, 30)
    assert scene.sha256 is not None and scene.shape == (3, 20, 30)
    assert scene.stac == {
        "item": str(item),
        "item_id": "S2_T51_20210630",
        "collection": "test-collection",
        "datetime": "2021-06-30T10:00:00Z",
        "license": "CC-BY-4.0",
        "asset": "image",
        "href": str(tmp_path / "scene.tif"),
        "stac_version": "1.0.0",
    }
    with pytest.raises(StacError, match="no asset 'visual'"):
        open_scene(item, asset="visual")


def test_asset_option_on_a_plain_raster_is_an_error(write_raster):
    path = write_raster("plain.tif", np.ones((1, 4, 4), "uint8"))
    with pytest.raises(StacError, match="not a STAC Item"):
        open_scene(path, asset="visual")


def test_json_that_is_not_an_item_and_truncated_json_are_one_line_errors(tmp_path):
    coll = write_json(tmp_path / "c.json", {"type": "Collection", "stac_version": "1.0.0"})
    with pytest.raises(StacError, match="is JSON but not a STAC Item.*'Collection'"):
        open_scene(coll)
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(image_item("x", "a.tif"))[:100])
    with pytest.raises(StacError, match="does not parse.*truncated"):
        open_scene(cut)


# -- served items ----------------------------------------------------------------------------


def test_item_url_opens_the_cog_and_only_windows_travel(tmp_path, serve_folder):
    www = tmp_path / "www"
    (www / "items").mkdir(parents=True)
    cog, data = noisy_cog(www / "site.tif")
    write_json(www / "items" / "site-item", image_item("site-item", "../site.tif"))
    srv = serve_folder(www)

    scene = open_scene(f"{srv.base}/items/site-item")
    assert scene.stac["href"] == f"{srv.base}/site.tif" and scene.stac["item_id"] == "site-item"
    assert scene.remote["content_length"] == cog.stat().st_size
    got, valid = scene.read(Window(300, 500, 200, 100), bands=[2])
    np.testing.assert_array_equal(got[0], data[1, 500:600, 300:500].astype("float32"))
    assert valid.all()
    sent = srv.bytes_sent("site.tif")
    assert 0 < sent < cog.stat().st_size / 10, f"{sent} bytes of the COG travelled"
    cog_gets = [r for r in srv.requests() if r["path"] == "/site.tif" and r["method"] == "GET"]
    assert cog_gets and all(r["range"] for r in cog_gets)


def test_detection_on_item_urls_writes_stac_provenance_to_run_json_and_store(
    tmp_path, serve_folder
):
    from satdelta.annotations import Store
    from satdelta.imagery.options import DetectionOptions
    from satdelta.imagery.outputs import write_outputs
    from satdelta.imagery.pipeline import run_detection

    www = tmp_path / "www"
    (www / "items").mkdir(parents=True)
    before, after, truth = make_pair(www)
    write_json(
        www / "items" / "b.json",
        image_item("pair-b", f"../{before.name}", when="2020-01-05T03:00:00Z"),
    )
    write_json(www / "items" / "a.json", image_item("pair-a", f"../{after.name}",
                                                    when="2021-02-07T03:00:00Z"))  # fmt: skip
    srv = serve_folder(www)

    run = run_detection(
        f"{srv.base}/items/b.json", f"{srv.base}/items/a.json", DetectionOptions(method="cva")
    )
    iou = (run.maps.changed & truth).sum() / (run.maps.changed | truth).sum()
    assert iou > 0.8
    out = write_outputs(run, tmp_path / "out")
    summary = json.loads(out["run.json"].read_text())
    stac_b = summary["inputs"]["before"]["stac"]
    assert stac_b["item_id"] == "pair-b" and stac_b["asset"] == "image"
    assert stac_b["href"] == f"{srv.base}/{before.name}"
    assert stac_b["datetime"] == "2020-01-05T03:00:00Z"
    assert summary["inputs"]["after"]["source"] == f"{srv.base}/items/a.json"
    assert summary["inputs"]["after"]["scene_id"] == "pair-a"

    with Store.open(tmp_path / "s.gpkg", create=True) as store:
        report = store.add_report(title="test report")
        claim = store.add_claim(report_id=report.id, text="something changed")
        store.import_geojson(out["changes.geojson"], report_id=report.id, claim_id=claim.id)
        anns = store.list_annotations()
    assert anns and anns[0].provenance["after"]["stac"]["item_id"] == "pair-a"


# -- failures, each one line -----------------------------------------------------------------


@pytest.fixture
def broken(tmp_path, serve_folder):
    """A server over items whose assets are missing, truncated or served without ranges."""
    www = tmp_path / "www"
    (www / "items").mkdir(parents=True)
    noisy_cog(www / "site.tif")
    full = (www / "site.tif").read_bytes()
    (www / "cut.tif").write_bytes(full[: len(full) * 2 // 3])
    for name, href in {
        "missing": "../gone.tif",
        "norange": "/norange/site.tif",
        "cut": "../cut.tif",
        "truncated-cog": "/truncated/site.tif",
    }.items():
        write_json(www / "items" / f"{name}.json", image_item(name, href))
    return serve_folder(www)


def test_missing_item_is_a_one_line_404(broken):
    with pytest.raises(FetchError) as err:
        open_scene(f"{broken.base}/items/nothing-here")
    msg = str(err.value)
    assert "\n" not in msg and "not found (HTTP 404)" in msg and "Check the URL" in msg


def test_missing_asset_is_a_one_line_404(broken):
    with pytest.raises(FetchError) as err:
        open_scene(f"{broken.base}/items/missing.json")
    msg = str(err.value)
    assert "\n" not in msg and "HTTP 404" in msg and "/gone.tif" in msg


def test_server_without_range_support_says_so(broken):
    with pytest.raises(FetchError) as err:
        open_scene(f"{broken.base}/items/norange.json")
    assert "does not honour HTTP range requests" in one_line(err.value)
    # only the first bytes were asked for by the check, never the whole file by satdelta
    norange = [r for r in broken.requests() if r["path"].startswith("/norange/")]
    assert norange


def test_truncated_cog_is_a_read_error_that_says_re_download(broken):
    with pytest.raises(SceneReadError, match="truncated or corrupt|cannot read"):
        scene = open_scene(f"{broken.base}/items/cut.json")
        scene.read()


def test_timeouts_are_retried_with_backoff_then_one_line(broken):
    fetcher = Fetcher(timeout_s=0.5, retries=2, backoff_s=0.1)
    with pytest.raises(FetchError) as err:
        read_item(f"{broken.base}/slow/items/cut.json", fetcher=fetcher)
    msg = one_line(err.value)
    assert "after 3 tries with backoff" in msg and "no answer within 0.5 s" in msg


def test_a_busy_server_is_retried(broken):
    body, _ = fetch_bytes(
        f"{broken.base}/flaky/items/cut.json", fetcher=Fetcher(retries=2, backoff_s=0.05)
    )
    assert json.loads(body)["id"] == "cut"
    statuses = [r["status"] for r in broken.requests() if r["path"] == "/flaky/items/cut.json"]
    assert statuses == [503, 200]


def test_a_truncated_transfer_is_one_line(broken):
    with pytest.raises(FetchError, match="arrived truncated.*after 2 tries"):
        fetch_bytes(
            f"{broken.base}/truncated/items/cut.json",
            fetcher=Fetcher(retries=1, backoff_s=0.05),
        )
