"""Map frame, pyramid, reader and writer of the napari plugin, without a viewer.

napari layer *objects* are built here (no window, no GL) to check that
napari's own data<->world transforms agree with rasterio's geotransforms.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.enums import Resampling
from satdelta.imagery.errors import InvalidParameterError, SceneReadError
from satdelta.imagery.pyramid import open_pyramid
from satdelta.plugins.napari._features import (
    feature_collection,
    geometry_to_shapes,
    shape_to_geometry,
    status_colours,
)
from satdelta.plugins.napari._frame import MapFrame, layer_affine
from satdelta.plugins.napari._reader import display_bands, get_reader, raster_layer_data

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "data"


def _napari_image(layer_data):
    import napari

    data, kwargs, kind = layer_data
    assert kind == "image"
    return napari.layers.Image(data, **kwargs)


def _rasterio_pixel(transform: Affine, xy: np.ndarray) -> np.ndarray:
    """(row, col) with pixel centres on whole numbers, from map x/y, by rasterio's inverse."""
    cols, rows = (~transform) @ (xy[:, 0], xy[:, 1])
    return np.column_stack([np.asarray(rows) - 0.5, np.asarray(cols) - 0.5])


def _check_pair(before_path: Path, after_path: Path, rng: np.random.Generator) -> None:
    before = raster_layer_data(before_path, role="before")
    frame = MapFrame.from_dict(before[1]["metadata"]["satdelta"]["frame"])
    after = raster_layer_data(after_path, frame=frame, role="after")
    lb, la = _napari_image(before), _napari_image(after)
    with rasterio.open(before_path) as b, rasterio.open(after_path) as a:
        tb, ta = b.transform, a.transform
        x0, y0 = tb.c + 3 * tb.a, tb.f + 3 * tb.e
        span = 50 * abs(tb.a)
    # a polygon "drawn" in napari: float32 world vertices, as the Shapes layer stores them
    xy = np.column_stack([x0 + rng.random(7) * span, y0 - rng.random(7) * span])
    world32 = frame.map_to_world(xy).astype(np.float32)
    # napari's own world->data on each layer == rasterio's inverse geotransform
    for layer, tr in ((lb, tb), (la, ta)):
        data_pts = np.array([layer.world_to_data(w) for w in world32.astype(np.float64)])
        expected = _rasterio_pixel(tr, frame.world_to_map(world32))
        np.testing.assert_allclose(data_pts, expected, atol=1e-9)
    # map coordinates and back: no drift at all on the float32 values
    geom = shape_to_geometry(world32, "polygon", frame)
    back = geometry_to_shapes(geom, frame)[0]
    np.testing.assert_array_equal(back.astype(np.float32), world32)
    np.testing.assert_allclose(back, world32, atol=1e-6)
    # and the map coordinates are the true ones, within float32 rounding of metres
    np.testing.assert_allclose(np.asarray(geom.exterior.coords)[:-1], xy, atol=1e-3)


def test_layer_affine_places_pixel_centres_like_rasterio() -> None:
    frame = MapFrame("EPSG:32651", 500000.0, 4000000.0)
    tr = Affine(2.5, 0.3, 500123.0, 0.2, -2.5, 3999777.0)  # sheared grid
    A = layer_affine(frame, tr, "EPSG:32651")
    for row, col in [(0, 0), (10, 3), (7.25, 99.5)]:
        world = A @ [row, col, 1.0]
        x, y = tr @ (col + 0.5, row + 0.5)
        np.testing.assert_allclose(frame.world_to_map([world[:2]])[0], [x, y], atol=1e-9)
    # pixel frame (no CRS): not flipped; world = pixel-corner coordinates of the first raster
    pf = MapFrame.from_transform(Affine.identity(), None)
    np.testing.assert_allclose(layer_affine(pf, Affine.identity()) @ [4, 5, 1], [4.5, 5.5, 1])


def test_frame_reprojects_other_crs_and_lonlat() -> None:
    frame = MapFrame("EPSG:32651", 500000.0, 4000000.0)
    ll = frame.world_to_lonlat([[0.0, 0.0]])[0]
    assert 122.9 < ll[0] < 123.1 and 36.0 < ll[1] < 36.2  # UTM 51N, x=500 km -> 123 E
    np.testing.assert_allclose(frame.lonlat_to_map([ll])[0], [500000.0, 4000000.0], atol=1e-6)
    # a raster in EPSG:4326 lands where its corner really is (local affine fit)
    tr = Affine(1e-4, 0, ll[0], 0, -1e-4, ll[1])
    A = layer_affine(frame, tr, "EPSG:4326", shape=(100, 100))
    corner = A @ [-0.5, -0.5, 1.0]
    np.testing.assert_allclose(corner[:2], [0.0, 0.0], atol=0.05)
    with pytest.raises(Exception, match="needs its shape"):
        layer_affine(frame, tr, "EPSG:4326")


def test_round_trip_without_drift_on_synthetic_grids_that_differ(write_raster) -> None:
    rng = np.random.default_rng(0)
    data = (rng.random((3, 60, 80)) * 255).astype("uint8")
    b = write_raster("b.tif", data, transform=Affine(10, 0, 500000, 0, -10, 4000000))
    a = write_raster(
        "a.tif", data[:, :55, :70], transform=Affine(9.7, 0, 500013.3, 0, -9.7, 3999991.1)
    )
    _check_pair(b, a, rng)


@pytest.mark.realdata
def test_round_trip_without_drift_on_naip_pair_whose_grids_differ() -> None:
    from tests.conftest import require_shared

    folder = require_shared("naip-nd")
    before = folder / "m_4709963_se_14_1_20090818.tif"
    after = folder / "m_4709963_se_14_1_20200831.tif"
    with rasterio.open(before) as b, rasterio.open(after) as a:
        assert b.transform != a.transform and b.shape != a.shape  # the grids really differ
    _check_pair(before, after, np.random.default_rng(1))


def _cog(tmp_path: Path, size: int = 1000, bands: int = 3) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(2)
    arr = (rng.random((bands, size, size)) * 255).astype("uint8")
    path = tmp_path / "cog.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=size, height=size, count=bands, dtype="uint8",
        crs="EPSG:32651", transform=Affine(1, 0, 500000, 0, -1, 4000000),
        tiled=True, blockxsize=256, blockysize=256,
    ) as ds:  # fmt: skip
        ds.write(arr)
        ds.build_overviews([2, 4, 8], Resampling.average)
    return path, arr


def test_pyramid_levels_index_like_numpy(tmp_path: Path) -> None:
    path, arr = _cog(tmp_path)
    pyr = open_pyramid(path)
    assert [lv.shape for lv in pyr.levels] == [
        (1000, 1000, 3), (500, 500, 3), (250, 250, 3), (125, 125, 3)
    ]  # fmt: skip
    full = np.moveaxis(arr, 0, -1)
    lv0 = pyr[0]
    for key in [
        (slice(10, 40), slice(300, 333)),
        (slice(None, None, 7), slice(5, 900, 3)),
        (17, slice(2, 9), 1),
        (slice(990, 2000), -1),
        (Ellipsis, 2),
        (slice(20, 5, -2), slice(0, 4)),
    ]:
        np.testing.assert_array_equal(lv0[key], full[key], err_msg=str(key))
    with rasterio.open(path, overview_level=1) as ov:
        expected = np.moveaxis(ov.read([1, 2, 3]), 0, -1)
    np.testing.assert_array_equal(np.asarray(pyr[2]), expected)
    assert pyr.downsample_factors == (1.0, 2.0, 4.0, 8.0)
    first = open_pyramid(path, layout="first", bands=(2,))
    np.testing.assert_array_equal(first[0][0, 5:9, 6], arr[1, 5:9, 6])
    with pytest.raises(InvalidParameterError, match="between 1 and 3"):
        open_pyramid(path, bands=(4,))
    with pytest.raises(IndexError):
        lv0[1000]


def test_reader_lazy_multiscale_for_cog_and_eager_for_small(tmp_path: Path, write_raster) -> None:
    path, arr = _cog(tmp_path)
    data, kwargs, kind = raster_layer_data(path)
    assert kind == "image" and kwargs["multiscale"] and kwargs["rgb"]
    assert [lv.shape[:2] for lv in data] == [(1000, 1000), (500, 500), (250, 250), (125, 125)]
    layer = _napari_image((data, kwargs, kind))
    assert layer.multiscale and layer.level_shapes[1][0] == 500
    small = write_raster("s.tif", np.arange(100, dtype="float32").reshape(1, 10, 10))
    d2, k2, _ = raster_layer_data(small)
    assert isinstance(d2, np.ndarray) and d2.shape == (10, 10) and not k2["multiscale"]
    assert k2["metadata"]["satdelta"]["transform"][0] == 10.0
    assert get_reader(str(small)) is not None
    assert display_bands([0] * 6, ["B1_blue", "B2_green", "B3_red", "B4_nir", "x", "y"]) == (
        3,
        2,
        1,
    )


def test_unreadable_raster_says_what_to_do(tmp_path: Path) -> None:
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"this is not a tiff")
    reader = get_reader(str(bad))
    assert reader is not None  # ours by suffix, so our message reaches the user
    with pytest.raises(SceneReadError, match="check the path or URL"):
        reader(str(bad))


def test_feature_collection_is_rfc7946(write_raster) -> None:
    from geojson_validator import validate_structure
    from shapely.geometry import Polygon

    frame = MapFrame("EPSG:32651", 500000.0, 4000000.0)
    cw = Polygon([(500000, 4000000), (500100, 4000000), (500100, 3999900), (500000, 3999900)])
    assert not cw.exterior.is_ccw
    fc = feature_collection(
        [cw], {"label": ["aircraft"], "score": [np.float32("nan")], "id": [np.int64(3)]}, frame
    )
    assert validate_structure(fc, check_crs=True) == {}
    ring = fc["features"][0]["geometry"]["coordinates"][0]
    from shapely.geometry import LinearRing

    assert LinearRing(ring).is_ccw
    assert all(len(repr(v).split(".")[1]) <= 7 for pt in ring for v in pt)
    assert fc["features"][0]["properties"] == {"label": "aircraft", "score": None, "id": 3}
    assert "crs" not in fc
    np.testing.assert_allclose(status_colours(["candidate"])[0], [1.0, 0.85, 0.0, 1.0])


def test_shapes_layer_saves_as_geojson_in_map_coordinates(tmp_path: Path) -> None:
    import napari
    import pyogrio.raw
    from napari.plugins import _initialize_plugins

    _initialize_plugins()  # what a viewer does at start: find npe2 plugins by entry point
    frame = MapFrame("EPSG:32651", 500000.0, 4000000.0)
    world = frame.map_to_world([[500010, 3999990], [500050, 3999990], [500050, 3999950]])
    layer = napari.layers.Shapes(
        [world, world[:2] + 5.0],
        shape_type=["polygon", "path"],
        properties={"label": ["structure", "other"], "confidence": [0.9, 0.1]},
        metadata={"satdelta": {"frame": frame.to_dict()}},
    )
    out = layer.save(str(tmp_path / "shapes.geojson"), plugin="satdelta")
    assert out == [str(tmp_path / "shapes.geojson")]
    meta, _, wkb, fields = pyogrio.raw.read(out[0])  # GDAL's OGR GeoJSON driver, independent reader
    names = list(meta["fields"])
    assert list(fields[names.index("label")]) == ["structure", "other"]
    assert meta["crs"] == "EPSG:4326"
    geoms = shapely.from_wkb(wkb)
    poly = geoms[0]
    lonlat = np.asarray(poly.exterior.coords)
    assert 122 < lonlat[0, 0] < 124 and 35 < lonlat[0, 1] < 37  # lon/lat, not pixels or metres
    xy_back = frame.lonlat_to_map(lonlat)
    expected = {(500010.0, 3999990.0), (500050.0, 3999990.0), (500050.0, 3999950.0)}
    got = {tuple(np.round(p, 2)) for p in xy_back[:-1]}
    assert got == expected  # 7 decimals of a degree = 1 cm
    assert geoms[1].geom_type == "LineString"
    doc = json.loads(Path(out[0]).read_text())
    assert "crs" not in doc


@pytest.mark.parametrize(
    "module",
    [
        "satdelta.imagery.pyramid",
        "satdelta.plugins.napari._frame",
        "satdelta.plugins.napari._reader",
        "satdelta.plugins.napari._features",
        "satdelta.plugins.napari._status",
        "satdelta.plugins.napari._evidence",
        "satdelta.plugins.napari._keys",
        "satdelta.plugins.napari._layers",
        "satdelta.plugins.napari._block_detection",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_library_imports_stay_free_of_napari_and_qt() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import satdelta.imagery, satdelta.imagery.pyramid, satdelta.annotations\n"
        "import satdelta.plugins.napari, satdelta.plugins.napari._reader\n"
        "import satdelta.plugins.napari._session, satdelta.plugins.napari._detection\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt6', 'PyQt5', 'PySide6', 'vispy', 'magicgui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_npe2_manifest_validates_with_imports() -> None:
    import shutil
    import subprocess
    import sys

    npe2 = shutil.which("npe2", path=str(Path(sys.executable).parent))
    assert npe2, "npe2 is part of the napari extra"
    out = subprocess.run(
        [npe2, "validate", "satdelta", "--imports"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "valid" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize(("name", "driver"), [("plain.png", "PNG"), ("scene.dat", "ENVI")])
def test_manifest_offers_our_reader_for_other_gdal_formats(
    tmp_path: Path, write_raster, name: str, driver: str
) -> None:
    """PNG pairs (no georeferencing) and ENVI files reach our reader through napari's registry."""
    from npe2 import PluginManager

    arr = (np.arange(3 * 20 * 30) % 251).astype("uint8").reshape(3, 20, 30)
    kwargs = {"crs": None} if driver == "PNG" else {}
    path = write_raster(name, arr, driver=driver, **kwargs)
    pm = PluginManager.instance()
    pm.discover()
    readers = [r.plugin_name for r in pm.iter_compatible_readers([str(path)])]
    assert "satdelta" in readers, readers
    data, layer_kwargs, kind = raster_layer_data(path)
    assert kind == "image" and np.asarray(data).shape[:2] == (20, 30)
    assert "frame" in layer_kwargs["metadata"]["satdelta"]
