"""Odd rasters made with GDAL/rasterio in the test, each through ``satdelta detect`` as a
subprocess: it runs, or ends in one line that names the real problem (exit 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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
