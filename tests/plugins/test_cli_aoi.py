"""``satdelta detect --aoi`` / ``--claim`` as real subprocesses, and one changed area everywhere.

The pair (tests.conftest.make_pair) is 160 x 120 pixels of 10 m in UTM 51N; its change is a
ring of rows 30-70, columns 40-100.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import box, shape

from tests.conftest import make_pair
from tests.plugins.test_cli_detect import assert_one_line_error, satdelta

PINNED = ("--method", "cva", "--threshold", "otsu", "--normalise", "none")


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    before, after, _ = make_pair(tmp_path)
    return before, after


def lonlat_box(rows: tuple[int, int], cols: tuple[int, int]) -> tuple[float, ...]:
    """W,S,E,N of the pixels rows[0]:rows[1], cols[0]:cols[1] of the pair's grid."""
    tr = Transformer.from_crs("EPSG:32651", "EPSG:4326", always_xy=True)
    xs = [500000 + 10 * c for c in cols]
    ys = [4000000 - 10 * r for r in rows]
    lon, lat = tr.transform([xs[0], xs[1], xs[0], xs[1]], [ys[0], ys[0], ys[1], ys[1]])
    return min(lon), min(lat), max(lon), max(lat)


def test_aoi_box_limits_mask_and_candidates(pair, tmp_path):
    before, after = pair
    aoi = lonlat_box((20, 60), (30, 75))
    out = tmp_path / "out"
    res = satdelta("detect", before, after, "-o", out, *PINNED, "--aoi", ",".join(map(str, aoi)))
    assert res.returncode == 0, res.stderr
    fc = json.loads((out / "changes.geojson").read_text())
    record = json.loads((out / "run.json").read_text())
    assert record["options"]["aoi"]["bbox"] == pytest.approx(list(aoi))
    assert record["detection"]["area_of_interest"]["bbox"] == pytest.approx(list(aoi))
    feats = fc["features"]
    assert feats, "the ring of change crosses the area of interest"
    inside = box(*aoi)
    assert all(inside.covers(shape(f["geometry"])) for f in feats)
    assert [f["properties"]["rank"] for f in feats] == list(range(1, len(feats) + 1))
    assert all(f["properties"]["change"] == "appeared" for f in feats)  # a bright object added
    with rasterio.open(out / "mask.tif") as src:
        mask = src.read(1)
        t = src.transform
    # only the area plus a margin is read: the grid starts at column 0 (margin clipped) and
    # ends before the scene's last columns
    assert mask.shape[1] < 160
    rows, cols = np.nonzero(mask != 255)
    x, y = t * (cols + 0.5, rows + 0.5)
    lon, lat = Transformer.from_crs("EPSG:32651", "EPSG:4326", always_xy=True).transform(x, y)
    w, s, e, n = aoi
    assert ((lon > w) & (lon < e) & (lat > s) & (lat < n)).all()  # analysed = inside
    assert (mask == 1).sum() == sum(f["properties"]["pixel_count"] for f in feats)


def test_aoi_geojson_file(pair, tmp_path):
    before, after = pair
    aoi = lonlat_box((20, 60), (30, 75))
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps({"type": "Feature", "geometry": box(*aoi).__geo_interface__}))
    out = tmp_path / "out"
    res = satdelta("detect", before, after, "-o", out, *PINNED, "--aoi", path)
    assert res.returncode == 0, res.stderr
    feats = json.loads((out / "changes.geojson").read_text())["features"]
    assert feats and all(box(*aoi).covers(shape(f["geometry"])) for f in feats)


@pytest.mark.parametrize(
    "aoi, needles",
    [
        ("10,45,10.01,45.01", ["outside the scene", "10,45,10.01,45.01"]),
        ("500000,3999000,500500,4000000", ["longitude/latitude", "not projected metres"]),
        ("123.1,36.1,123.0,36.2", ["empty", "W < E"]),
        ("123.0,36.1", ["4 numbers W,S,E,N"]),
    ],
)
def test_bad_aoi_is_one_line(pair, tmp_path, aoi, needles):
    before, after = pair
    res = satdelta("detect", before, after, "-o", tmp_path / "out", "--aoi", aoi)
    assert_one_line_error(res, *needles)
    assert not (tmp_path / "out").exists()


def test_bad_aoi_files_are_one_line(pair, tmp_path):
    before, after = pair
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "Feature", ')
    point = tmp_path / "point.geojson"
    point.write_text('{"type": "Point", "coordinates": [123.0, 36.1]}')
    for path, needle in (
        (broken, "cannot read"),
        (point, "no Polygon"),
        (tmp_path / "missing.geojson", "no file"),
    ):
        res = satdelta("detect", before, after, "-o", tmp_path / "out", "--aoi", path)
        assert_one_line_error(res, needle)


def test_detect_in_a_claims_area_imports_ranked_candidates(pair, tmp_path):
    before, after = pair
    store = tmp_path / "s.gpkg"
    aoi = lonlat_box((20, 60), (30, 75))
    assert satdelta("--store", store, "report", "add", "--title", "r").returncode == 0
    res = satdelta(
        "--store", store, "claim", "add", "--report", "1", "--text", "new hangar",
        "--bbox", ",".join(map(str, aoi)),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    res = satdelta("--store", store, "detect", before, after, "-o", out, *PINNED, "--claim", "1")
    assert res.returncode == 0, res.stderr
    fc = json.loads((out / "changes.geojson").read_text())
    record = json.loads((out / "run.json").read_text())
    assert record["options"]["aoi"]["bbox"] == pytest.approx(list(aoi))
    listed = satdelta("--store", store, "annotation", "list", "--json", "--sort", "rank")
    anns = json.loads(listed.stdout)
    assert [a["rank"] for a in anns] == [f["properties"]["rank"] for f in fc["features"]]
    # one area definition: the GeoJSON, run.json (what batch reports) and the store agree
    total = sum(f["properties"]["area_m2"] for f in fc["features"])
    assert record["detection"]["changed_area_m2"] == pytest.approx(total, abs=1e-3)
    assert sum(a["area_m2"] for a in anns) == pytest.approx(total, abs=1e-3)
    appeared = satdelta("--store", store, "annotation", "list", "--json", "--change", "appeared")
    assert len(json.loads(appeared.stdout)) == sum(
        f["properties"]["change"] == "appeared" for f in fc["features"]
    )
    assert_one_line_error(
        satdelta(
            "--store",
            store,
            "detect",
            before,
            after,
            "-o",
            out,
            "--claim",
            "1",
            "--aoi",
            "123,36,124,37",
        ),  # fmt: skip
        "either --aoi or --claim",
    )
    res = satdelta("--store", store, "claim", "add", "--report", "1", "--text", "p",
                   "--point", f"{(aoi[0] + aoi[2]) / 2},{(aoi[1] + aoi[3]) / 2}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert_one_line_error(
        satdelta("--store", store, "detect", before, after, "-o", out, "--claim", "2"),
        "--radius",
    )
    res = satdelta("--store", store, "detect", before, after, "-o", tmp_path / "o2", *PINNED,
                   "--claim", "2", "--radius", "150")  # fmt: skip
    assert res.returncode == 0, res.stderr


def test_batch_changed_m2_is_the_candidates_area(tmp_path):
    before, after, _ = make_pair(tmp_path)
    (tmp_path / "pairs.csv").write_text(f"name,before,after\nsite,{before},{after}\n")
    out = tmp_path / "out"
    res = satdelta("batch", tmp_path / "pairs.csv", "-o", out, *PINNED)
    assert res.returncode == 0, res.stderr
    changed_m2 = float(res.stdout.strip().splitlines()[1].split("\t")[3])
    feats = json.loads((out / "site" / "changes.geojson").read_text())["features"]
    assert changed_m2 == pytest.approx(sum(f["properties"]["area_m2"] for f in feats), abs=0.06)
