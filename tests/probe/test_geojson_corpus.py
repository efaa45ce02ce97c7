"""GeoJSON as other tools write it, and files that are not GeoJSON at all, through
``satdelta import`` as a subprocess: imported, or refused in one line (exit 1)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.probe.conftest import assert_clean_outcome, assert_one_line_error, satdelta


def _square(i: int, *, z: bool = False, closed: bool = True) -> list[list[float]]:
    x, y = 120.0 + 0.001 * i, 30.0
    ring = [[x, y], [x + 5e-4, y], [x + 5e-4, y + 5e-4], [x, y + 5e-4]]
    ring = [[*p, 12.5] if z else p for p in ring]
    return [*ring, ring[0]] if closed else ring


def _poly(i: int, **kw: bool) -> dict:
    return {"type": "Polygon", "coordinates": [_square(i, **kw)]}


def _fc(*features: dict, **members: object) -> dict:
    return {"type": "FeatureCollection", **members, "features": list(features)}


def _feat(geometry: dict | None, **extra: object) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": {"name": "x"}, **extra}


CRS84 = {"properties": {"name": "urn:ogc:def:crs:OGC::CRS84"}}
HUGE = {"type": "Polygon", "coordinates": [[[1e300, 0], [2e300, 0], [1e300, 1e300], [1e300, 0]]]}
OPEN_RING = {"type": "Polygon", "coordinates": [_square(8, closed=False)]}

# name -> (file content, imported? None when either is right)
CORPUS: dict[str, tuple[str | bytes, bool | None]] = {
    "crs_member": (json.dumps(_fc(_feat(_poly(1)), crs=CRS84)), True),
    "three_d": (json.dumps(_fc(_feat(_poly(2, z=True)))), True),
    "no_properties": (json.dumps({"type": "Feature", "geometry": _poly(3)}), True),
    "bare_geometry": (json.dumps(_poly(4)), True),
    "bbox_members":
        (json.dumps(_fc(_feat(_poly(5), bbox=[120, 30, 121, 31]), bbox=[0, 1, 2, 3])), True),
    "bom": (b"\xef\xbb\xbf" + json.dumps(_fc(_feat(_poly(6)))).encode(), True),
    "geometry_collection": (
        json.dumps(_feat({"type": "GeometryCollection", "geometries": [_poly(7)]})),
        False,
    ),
    "null_geometry": (json.dumps(_fc(_feat(None))), False),
    "huge_coordinates": (json.dumps(_feat(HUGE)), False),
    "open_ring": (json.dumps(_fc(_feat(OPEN_RING))), None),
    "invalid_json": ('{"type": "FeatureCollection", "features": [', False),
    "null": ("null", False),
    "array": ("[1, 2]", False),
    "deep_nesting": ("[" * 100_000 + "]" * 100_000, False),
    "latin1": ('{"type": "Feature", "properties": {"n": "caf\xe9"}}'.encode("latin-1"), False),
}  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "s.gpkg"
    assert satdelta("--store", path, "report", "add", "--title", "probe").returncode == 0
    made = satdelta("--store", path, "claim", "add", "--report", "1", "--text", "t",
                    "--bbox", "119.9,29.9,120.1,30.1")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return path


def _import(store: Path, file: Path, *extra: str) -> object:
    return satdelta("--store", store, "import", file, "--report", "1", "--claim", "1", *extra)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_foreign_geojson_imports_or_says_why(store: Path, tmp_path: Path, name: str) -> None:
    content, imported = CORPUS[name]
    file = tmp_path / f"{name}.geojson"
    file.write_bytes(content if isinstance(content, bytes) else content.encode())
    start = time.monotonic()
    res = _import(store, file)
    assert time.monotonic() - start < 30
    assert_clean_outcome(res)
    if imported is not None:
        assert (res.returncode == 0) is imported, res.stderr


def test_null_file_says_null(store: Path, tmp_path: Path) -> None:
    file = tmp_path / "null.geojson"
    file.write_text("null")
    assert_one_line_error(_import(store, file), "expected a GeoJSON object, got null")


def test_deep_nesting_is_one_line(store: Path, tmp_path: Path) -> None:
    file = tmp_path / "deep.geojson"
    file.write_text("[" * 100_000 + "]" * 100_000)
    assert_one_line_error(_import(store, file), "too deeply")


def test_device_is_refused_at_once(store: Path) -> None:
    start = time.monotonic()
    assert_one_line_error(_import(store, Path("/dev/zero")), "not a regular file")
    assert time.monotonic() - start < 20


def test_rasters_and_geopackages_say_what_import_takes(store: Path, tmp_path: Path) -> None:
    tif = tmp_path / "scene.tif"
    tif.write_bytes(b"II*\x00" + bytes(64))
    assert_one_line_error(_import(store, tif), "TIFF raster", "import takes GeoJSON")
    assert_one_line_error(_import(store, store), "GeoPackage", "ogr2ogr")
