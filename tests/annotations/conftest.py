"""Fixtures of the annotation-store tests: a fresh store with one report and one claim."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from satdelta.annotations import Store

from tests.conftest import require_file

VALIDATE_GPKG = Path("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py")


def gpkg_validator() -> Path:
    """GDAL's GeoPackage validator (Debian python3-gdal); skip if missing, fail under CI=true."""
    return require_file(VALIDATE_GPKG, "GDAL's validate_gpkg.py (apt python3-gdal)")


def validate_gpkg(path: Path, *, strict: bool = True) -> subprocess.CompletedProcess:
    """Run GDAL's validator on *path* (``strict``: ``--extra --warning-as-error``)."""
    extra = ["--extra", "--warning-as-error"] if strict else []
    return subprocess.run(
        ["/usr/bin/python3", str(gpkg_validator()), *extra, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def square(x: float, y: float, d: float = 0.001) -> dict:
    """A counter-clockwise GeoJSON square with its lower-left corner at (x, y)."""
    return {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]],
    }


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "project.gpkg"


@pytest.fixture(params=["geopackage", "postgresql"])
def store(request: pytest.FixtureRequest, store_path: Path) -> Iterator[Store]:
    """A new store on each backend: a GeoPackage file, and a PostGIS database."""
    if request.param == "postgresql":
        location: str | Path = request.getfixturevalue("pg_url")
    else:
        location = store_path
    with Store.open(location, analyst="tester") as s:
        yield s


@pytest.fixture
def gpkg_store(store_path: Path) -> Iterator[Store]:
    """A new GeoPackage store (for tests of the file format itself)."""
    with Store.open(store_path, analyst="tester") as s:
        yield s


@pytest.fixture
def claim(store: Store):
    report = store.add_report(title="Sunan cleared", url="https://example.org/a")
    return store.add_claim(
        report_id=report.id,
        text="Aircraft gone from the apron",
        bbox=(125.66, 39.22, 125.68, 39.23),
    )


def raw_rows(store: Store, table: str) -> list[tuple]:
    """Every row of ``table`` as stored (either backend), by id."""
    return store._db.read(f"SELECT * FROM {table} ORDER BY id")


def check_store_valid(store: Store) -> None:
    """GDAL's validator for a GeoPackage; for PostGIS, every geometry valid and in EPSG:4326."""
    if store.backend == "geopackage":
        res = validate_gpkg(Path(store.path))
        assert res.returncode == 0, res.stderr + res.stdout
        return
    bad = store._db.read(
        "SELECT count(*) FROM annotations WHERE NOT ST_IsValid(geom) OR ST_SRID(geom) != 4326"
    )
    assert bad == [(0,)]
