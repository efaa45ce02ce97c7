"""Odd rasters made with GDAL/rasterio in the test, each through ``satdelta detect`` as a
subprocess: it runs, or ends in one line that names the real problem (exit 1)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.transform import from_origin

from tests.probe.conftest import assert_clean_outcome, assert_one_line_error, satdelta, write_tif


def test_south_up_scene_paired_with_itself_runs(tmp_path: Path, texture: np.ndarray) -> None:
    tif = write_tif(tmp_path / "southup.tif", texture, transform=Affine(10, 0, 5e5, 0, 10, 4e6))
    res = satdelta("detect", tif, tif, "-o", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "mask.tif").exists()


def test_geographic_bounds_keep_their_decimals(tmp_path: Path, texture: np.ndarray) -> None:
    near = write_tif(
        tmp_path / "a.tif", texture, crs="EPSG:4326", transform=from_origin(120, 30, 1e-4, 1e-4)
    )
    far = write_tif(
        tmp_path / "b.tif", texture, crs="EPSG:4326", transform=from_origin(120.01, 30, 1e-4, 1e-4)
    )
    line = assert_one_line_error(satdelta("detect", near, far, "-o", tmp_path / "o"), "overlap")
    assert "(120.000000, 29.993600, 120.006400, 30.000000)" in line


@pytest.mark.parametrize("shift_px", [5000, 30])
def test_block_runner_on_scenes_apart_is_one_line(
    tmp_path: Path, texture: np.ndarray, shift_px: int
) -> None:
    """The block runner (which starts decoding the first row of tiles before it aligns) on
    scenes that share no pixel, or whose first row of blocks has no after pixel: one line
    naming the overlap, or a run; never a traceback."""
    before = write_tif(tmp_path / "a.tif", texture, transform=from_origin(5e5, 4e6, 10, 10))
    after = write_tif(
        tmp_path / "b.tif", texture, transform=from_origin(5e5, 4e6 - 10 * shift_px, 10, 10)
    )
    res = satdelta("detect", before, after, "-o", tmp_path / "o", "--runner", "blocks")
    if shift_px > texture.shape[-2]:
        assert_one_line_error(res, "overlap")
    else:
        assert_clean_outcome(res)


def _gdal_create(path: Path, size: int) -> Path:
    res = subprocess.run(
        ["gdal_create", "-of", "GTiff", "-outsize", str(size), str(size), "-bands", "1",
         "-ot", "Byte", "-co", "SPARSE_OK=YES", "-co", "TILED=YES", "-co", "BLOCKXSIZE=4096",
         "-co", "BLOCKYSIZE=4096", "-a_srs", "EPSG:32651",
         "-a_ullr", "0", str(10 * size), str(10 * size), "0", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if res.returncode != 0:
        pytest.skip(f"gdal_create could not make a sparse GeoTIFF: {res.stderr.strip()}")
    return path


def test_raster_too_large_for_memory_is_refused_before_allocating(tmp_path: Path) -> None:
    if shutil.which("gdal_create") is None:
        pytest.skip("gdal_create (GDAL's command-line tools) is not installed")
    sparse = _gdal_create(tmp_path / "sparse.tif", 200_000)
    vrt = tmp_path / "huge.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="2147483647" rasterYSize="2147483647">'
        '<VRTRasterBand dataType="Byte" band="1"/></VRTDataset>'
    )
    for big in (sparse, vrt):
        start = time.monotonic()
        res = satdelta("detect", big, big, "-o", tmp_path / "out", "--runner", "whole")
        assert_one_line_error(res, big.name, "too large to read whole", "GiB")
        assert time.monotonic() - start < 30
    # the default runner takes such a grid block by block: refused before reading when its
    # outputs (2^31 px on a side) cannot fit on the disk
    start = time.monotonic()
    res = satdelta("detect", vrt, vrt, "-o", tmp_path / "out")
    assert_one_line_error(res, vrt.name, "2147483647x2147483647 px", "not enough free space", "GiB")
    assert time.monotonic() - start < 30
    assert not (tmp_path / "out").exists()


def test_file_with_subdatasets_and_no_band_names_one(tmp_path: Path) -> None:
    nc = tmp_path / "two.nc"
    code = (
        "from osgeo import gdal\n"
        f"ds = gdal.GetDriverByName('netCDF').CreateMultiDimensional({str(nc)!r})\n"
        "g = ds.GetRootGroup()\n"
        "dims = [g.CreateDimension(n, None, None, 4) for n in 'yx']\n"
        "for name in 'ab':\n"
        "    g.CreateMDArray(name, dims, gdal.ExtendedDataType.Create(gdal.GDT_Float32))\n"
    )
    made = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, timeout=60)
    if made.returncode != 0:
        pytest.skip(f"GDAL's Python bindings could not write netCDF: {made.stderr!r}")
    assert_one_line_error(satdelta("detect", nc, nc, "-o", tmp_path / "o"), "no raster band", ":a")


def test_truncated_tiff_is_named_truncated(tmp_path: Path, texture: np.ndarray) -> None:
    whole = write_tif(tmp_path / "whole.tif", texture).read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole[: len(whole) // 2])
    line = assert_one_line_error(satdelta("detect", cut, cut, "-o", tmp_path / "o"), "cut.tif")
    assert "truncated or corrupt" in line and "previous exception" not in line


def test_complex_pixels_and_xyz_tables_are_refused(tmp_path: Path, texture: np.ndarray) -> None:
    cplx = write_tif(tmp_path / "c.tif", texture.astype("complex64"))
    assert_one_line_error(satdelta("detect", cplx, cplx, "-o", tmp_path / "o"), "complex")
    xyz = tmp_path / "points.csv"
    xyz.write_text("\n".join(f"{x},{y},{x * y}" for y in range(5) for x in range(5)))
    assert_one_line_error(satdelta("detect", xyz, xyz, "-o", tmp_path / "o"), "not an image")


def test_one_band_scene_is_told_bands_it_has(tmp_path: Path, texture: np.ndarray) -> None:
    one = write_tif(tmp_path / "one.tif", texture[:1])
    three = write_tif(tmp_path / "three.tif", texture)
    line = assert_one_line_error(satdelta("detect", one, three, "-o", tmp_path / "o"), "1 bands")
    assert "--bands 1)" in line and "1,2,3" not in line


def _odd(kind: str, path: Path, texture: np.ndarray) -> Path:
    """Write the odd raster *kind* to *path*."""
    if kind == "one_bit":
        return write_tif(path, (texture[:1] > 100).astype("uint8"), nbits=1)
    if kind == "palette":
        write_tif(path, texture[:1] // 32, photometric="palette")
        with rasterio.open(path, "r+") as dst:
            dst.write_colormap(1, {i: (32 * i, 255 - 32 * i, 0, 255) for i in range(8)})
        return path
    if kind == "int8":
        return write_tif(path, (texture.astype("int16") - 100).astype("int8"))
    if kind == "float64":
        return write_tif(path, texture.astype("float64") / 7.0, nodata=np.nan)
    if kind == "rotated":
        return write_tif(path, texture, transform=Affine(10, 2, 5e5, 2, -10, 4e6))
    if kind == "masked":
        write_tif(path, texture)
        with rasterio.open(path, "r+") as dst:
            mask = np.full((64, 64), 255, "uint8")
            mask[:8] = 0
            dst.write_mask(mask)
        return path
    if kind == "huge_header":
        write_tif(path, texture)
        with rasterio.open(path, "r+") as dst:
            dst.update_tags(NOTES="x" * 4_000_000)
        return path
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["one_bit", "palette", "int8", "float64", "rotated", "masked", "huge_header"]
)
def test_odd_raster_runs_or_says_why(tmp_path: Path, texture: np.ndarray, kind: str) -> None:
    tif = _odd(kind, tmp_path / f"{kind}.tif", texture)
    res = satdelta("detect", tif, tif, "-o", tmp_path / "out")
    assert_clean_outcome(res)
