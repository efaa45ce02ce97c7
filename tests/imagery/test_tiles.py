"""Web tiles mosaicked into a GeoTIFF, from a real tile server on 127.0.0.1 (never mocks)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.warp import transform_bounds
from satdelta.imagery.errors import TileError, one_line
from satdelta.imagery.fetch import Fetcher
from satdelta.imagery.scene import open_scene
from satdelta.imagery.tiles import (
    TileSource,
    lonlat_to_tile,
    tile_range,
    wmts_source,
    write_tiles,
)

#: The landmark: a red pixel at this WGS84 point (Jamestown, North Dakota area).
LANDMARK = (-99.1512, 47.0213)
ZOOM = 15
BBOX = (-99.158, 47.017, -99.144, 47.026)
FAST = Fetcher(timeout_s=5, retries=1, backoff_s=0.05, min_interval_s=0.0)


def write_tile_pyramid(folder: Path, zoom: int, *, margin: int = 1) -> set[tuple[int, int]]:
    """Write 256 px PNG tiles ``folder/z/x/y.png`` around BBOX, the landmark pixel pure red.

    Returns the (x, y) of the tiles written.
    """
    x0, y0, x1, y1 = tile_range(BBOX, zoom)
    fx, fy = lonlat_to_tile(*LANDMARK, zoom)
    lx, ly = int(fx), int(fy)
    lc, lr = int((fx - lx) * 256), int((fy - ly) * 256)
    written = set()
    for x in range(x0 - margin, x1 + margin + 1):
        for y in range(y0 - margin, y1 + margin + 1):
            rgb = np.zeros((3, 256, 256), np.uint8)
            rgb[1] = 120 + (x % 7) * 10  # greenish, a shade per tile
            rgb[2] = 60 + (y % 5) * 20
            rgb[0] = 30
            if (x, y) == (lx, ly):
                rgb[:, lr, lc] = (255, 0, 0)
            path = folder / str(zoom) / str(x) / f"{y}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            with rasterio.open(
                path, "w", driver="PNG", width=256, height=256, count=3, dtype="uint8"
            ) as dst:
                dst.write(rgb)
            written.add((x, y))
    return written


def tile_requests(srv, prefix: str) -> list[str]:
    return [r["path"] for r in srv.requests() if r["path"].startswith(prefix)]


@pytest.fixture
def tile_server(tmp_path, serve_folder):
    www = tmp_path / "www"
    write_tile_pyramid(www / "xyz", ZOOM)
    return serve_folder(www)


def landmark_lonlat(path: Path) -> tuple[float, float, float]:
    """(lon, lat, pixel size in degrees of longitude) of the pure red pixel in ``path``."""
    with rasterio.open(path) as src:
        data = src.read()
        transform = src.transform
        assert src.crs.to_epsg() == 3857
    rows, cols = np.nonzero((data[0] == 255) & (data[1] <= 1) & (data[2] <= 1))  # 0 -> 1
    assert len(rows) == 1, f"expected one landmark pixel, found {len(rows)}"
    x, y = transform * (cols[0] + 0.5, rows[0] + 0.5)
    lon, lat = Transformer.from_crs(3857, 4326, always_xy=True).transform(x, y)
    return lon, lat, 360.0 / 2**ZOOM / 256


def test_landmark_pixel_lands_on_its_lon_lat_and_only_the_area_travels(tile_server, tmp_path):
    source = TileSource(
        f"{tile_server.base}/xyz/{{z}}/{{x}}/{{y}}.png", attribution="Test tiles (CC0)"
    )
    out, mosaic = write_tiles(
        tmp_path / "mosaic.tif",
        source,
        BBOX,
        ZOOM,
        acquired="2021-05-04",
        cache_dir=tmp_path / "cache",
        fetcher=FAST,
    )
    lon, lat, px_deg = landmark_lonlat(out)
    assert abs(lon - LANDMARK[0]) < px_deg and abs(lat - LANDMARK[1]) < px_deg

    x0, y0, x1, y1 = tile_range(BBOX, ZOOM)
    wanted = {f"/xyz/{ZOOM}/{x}/{y}.png" for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}
    asked = tile_requests(tile_server, "/xyz/")
    assert sorted(asked) == sorted(wanted)  # each tile of the area once, none around it
    assert mosaic.tiles == mosaic.fetched == len(wanted)

    # the mosaic is cut to the area and reads like any scene
    scene = open_scene(out)
    west, south, east, north = transform_bounds(scene.crs, "EPSG:4326", *scene.bounds)
    assert west <= BBOX[0] and east >= BBOX[2] and south <= BBOX[1] and north >= BBOX[3]
    assert east - west < BBOX[2] - BBOX[0] + 2 * px_deg
    assert scene.band_names == ("red", "green", "blue") and scene.acquired == dt.date(2021, 5, 4)
    with rasterio.open(out) as src:
        assert src.tags()["ATTRIBUTION"] == "Test tiles (CC0)"
        assert src.tags()["TILE_ZOOM"] == str(ZOOM)

    # a second mosaic of the same area comes from the cache: no request travels
    _, again = write_tiles(
        tmp_path / "again.tif", source, BBOX, ZOOM, cache_dir=tmp_path / "cache", fetcher=FAST
    )
    assert again.fetched == 0 and len(tile_requests(tile_server, "/xyz/")) == len(wanted)


def test_missing_tiles_inside_the_area_are_one_line(tile_server, tmp_path):
    x0, y0, _, _ = tile_range(BBOX, ZOOM)
    (tile_server.root / "xyz" / str(ZOOM) / str(x0) / f"{y0}.png").unlink()
    source = TileSource(f"{tile_server.base}/xyz/{{z}}/{{x}}/{{y}}.png")
    with pytest.raises(TileError) as err:
        write_tiles(tmp_path / "m.tif", source, BBOX, ZOOM, cache_dir=tmp_path / "c", fetcher=FAST)
    msg = one_line(err.value)
    assert f"first {ZOOM}/{x0}/{y0}" in msg and "try a lower --zoom" in msg
    assert not (tmp_path / "m.tif").exists()


def test_too_many_tiles_and_bad_templates_are_refused(tmp_path):
    with pytest.raises(TileError, match="needs 3149 tiles at zoom 14.*Lower --zoom"):
        write_tiles(
            tmp_path / "x.tif",
            TileSource("http://127.0.0.1:9/{z}/{x}/{y}.png"),
            (-100.0, 46.0, -99.0, 47.0),
            14,
        )
    with pytest.raises(ValueError, match=r"with \{z\}, \{x\} and \{y\}"):
        TileSource("http://127.0.0.1:9/tiles.png")


CAPABILITIES = """<?xml version="1.0" encoding="UTF-8"?>
<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1"
  version="1.0.0">
  <ows:ServiceProvider><ows:ProviderName>Test Mapping Agency</ows:ProviderName>
  </ows:ServiceProvider>
  <Contents>
    <Layer>
      <ows:Title>Historic imagery</ows:Title>
      <ows:Identifier>historic</ows:Identifier>
      <Style isDefault="true"><ows:Identifier>default</ows:Identifier></Style>
      <Format>image/png</Format>
      <Dimension><ows:Identifier>Time</ows:Identifier><Default>2020-06-01</Default>
        <Value>2019-01-01</Value><Value>2020-06-01</Value></Dimension>
      <TileMatrixSetLink><TileMatrixSet>WebMercator</TileMatrixSet></TileMatrixSetLink>
      <ResourceURL format="image/png" resourceType="tile"
        template="wmts/{Time}/{TileMatrixSet}/{TileMatrix}/{TileCol}/{TileRow}.png"/>
    </Layer>
    <TileMatrixSet>
      <ows:Identifier>WebMercator</ows:Identifier>
      <ows:SupportedCRS>urn:ogc:def:crs:EPSG::3857</ows:SupportedCRS>
      {matrices}
    </TileMatrixSet>
  </Contents>
</Capabilities>
"""

MATRIX = """<TileMatrix><ows:Identifier>L{z:02d}</ows:Identifier>
  <ScaleDenominator>{scale}</ScaleDenominator>
  <TopLeftCorner>-20037508.3427892 20037508.3427892</TopLeftCorner>
  <TileWidth>256</TileWidth><TileHeight>256</TileHeight>
  <MatrixWidth>{n}</MatrixWidth><MatrixHeight>{n}</MatrixHeight></TileMatrix>"""


def test_wmts_layer_with_a_release_time(tmp_path, serve_folder):
    www = tmp_path / "www"
    matrices = "".join(
        MATRIX.format(z=z, n=2**z, scale=559082264.0287178 / 2**z) for z in range(0, 19)
    )
    (www / "wmts").mkdir(parents=True)
    (www / "WMTSCapabilities.xml").write_text(CAPABILITIES.replace("{matrices}", matrices))
    write_tile_pyramid(www / "pyramid", ZOOM, margin=0)
    release = www / "wmts" / "2019-01-01" / "WebMercator"
    release.mkdir(parents=True)
    (www / "pyramid" / str(ZOOM)).rename(release / f"L{ZOOM:02d}")
    srv = serve_folder(www)

    source = wmts_source(f"{srv.base}/WMTSCapabilities.xml", "historic", time="2019-01-01")
    assert source.attribution == "Historic imagery, Test Mapping Agency"
    out, _ = write_tiles(
        tmp_path / "w.tif", source, BBOX, ZOOM, cache_dir=tmp_path / "c", fetcher=FAST
    )
    lon, lat, px_deg = landmark_lonlat(out)
    assert abs(lon - LANDMARK[0]) < px_deg and abs(lat - LANDMARK[1]) < px_deg
    assert all("/wmts/2019-01-01/WebMercator/L15/" in p for p in tile_requests(srv, "/wmts/"))

    with pytest.raises(TileError, match="no Time '2018-01-01'; it offers 2019-01-01, 2020-06-01"):
        wmts_source(f"{srv.base}/WMTSCapabilities.xml", "historic", time="2018-01-01")
    with pytest.raises(TileError, match="no layer 'roads'.*historic"):
        wmts_source(f"{srv.base}/WMTSCapabilities.xml", "roads")
