"""``satdelta detect`` as a real subprocess: outputs, validators, bad input, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geojson_validator
import numpy as np
import pytest
import rasterio
import rasterio.warp
import shapely
from satdelta.imagery.objects import ObjectOptions
from shapely.geometry import box, shape

from tests.conftest import require_file

GDAL_COG_VALIDATOR = Path(
    "/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py"
)
NAIP = ("m_4709963_se_14_1_20090818.tif", "m_4709963_se_14_1_20200831.tif")


def satdelta(
    *args: str | os.PathLike[str], cwd: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "satdelta.plugins.cli.main", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    if folder.is_file():
        return {"<file>": folder.read_bytes()}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def cog_validator() -> Path:
    return require_file(GDAL_COG_VALIDATOR, "GDAL's COG validator (apt python3-gdal)")


def assert_valid_cog(path: Path) -> None:
    res = subprocess.run(
        ["/usr/bin/python3", str(cog_validator()), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "is a valid cloud optimized GeoTIFF" in res.stdout


def assert_valid_geojson(path: Path) -> dict:
    fc = json.loads(path.read_text())
    assert "crs" not in fc
    assert geojson_validator.validate_structure(fc, check_crs=True) == {}
    report = geojson_validator.validate_geometries(fc)
    assert report["invalid"] == {}, report
    return fc


def assert_one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("satdelta: error: "), lines[0]
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])


def test_detect_end_to_end(change_pair, tmp_path):
    before, after, truth = change_pair
    out = tmp_path / "out"
    # the score/threshold choice is pinned: "auto" is engine-quality's to tune
    res = satdelta("detect", before, after, "-o", out, "--method", "cva", "--threshold", "otsu")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and res.stderr == ""  # piped: nothing extra
    assert sorted(os.listdir(out)) == ["changes.geojson", "mask.tif", "run.json", "score.tif"]
    assert_valid_cog(out / "mask.tif")
    assert_valid_cog(out / "score.tif")
    with rasterio.open(out / "mask.tif") as m, rasterio.open(before) as b:
        assert (m.transform, m.shape, m.crs, m.nodata) == (b.transform, b.shape, b.crs, 255)
        mask = m.read(1)
    assert set(np.unique(mask)) == {0, 1, 255}
    assert (mask[:, -6:] == 255).all()  # the after scene's nodata columns
    iou = ((mask == 1) & truth).sum() / ((mask == 1) | truth).sum()
    assert iou > 0.8
    fc = assert_valid_geojson(out / "changes.geojson")
    assert fc["features"] and all(f["properties"]["origin"] == "detected" for f in fc["features"])
    run = fc["satdelta"]["run"]
    assert fc["satdelta"]["kind"] == "change-candidates"
    assert set(run) >= {
        "before",
        "after",
        "method",
        "threshold_method",
        "threshold",
        "parameters",
        "created",
    }
    assert run["before"]["acquired"] == "2020-01-05" and len(run["after"]["sha256"]) == 64
    info = json.loads((out / "run.json").read_text())
    assert info["inputs"]["before"]["sha256"] == run["before"]["sha256"]
    assert info["alignment"]["shift_before_px"] == pytest.approx([0.4, -0.3], abs=0.1)
    assert max(map(abs, info["alignment"]["shift_after_px"])) < 0.1
    assert set(info["timings_s"]) == {"open", "align", "detect", "vectorize", "write"}
    assert info["detection"]["threshold"] == run["threshold"]
    assert info["versions"]["rasterio"] and info["versions"]["gdal"]
    assert info["options"]["method"] == "cva" and info["detection"]["method"] == "cva"


def test_detect_options_are_used_and_recorded(change_pair, tmp_path):
    before, after, _ = change_pair
    out = tmp_path / "out"
    res = satdelta(
        "detect",
        before,
        after,
        "-o",
        out,
        "--method",
        "absdiff",
        "--threshold",
        "value",
        "--threshold-value",
        "40",
        "--bands",
        "1,2",
        "--min-area",
        "2000",
        "--normalise",
        "none",
        "--max-shift",
        "2",
        "--resampling",
        "bilinear",
    )
    assert res.returncode == 0, res.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["options"] == {
        "method": "absdiff",
        "threshold": "value",
        "threshold_value": 40.0,
        "null_quantile": 0.99,
        "normalise": "none",
        "min_area_m2": 2000.0,
        "min_pixels": 4,
        "aoi": None,
        "bands": [1, 2],
        "pixel_size_m": None,
        "max_shift_px": 2.0,
        "resampling": "bilinear",
        "objects": None,
        "object_options": ObjectOptions().to_dict(),
    }
    assert info["grid"]["band_names"] == ["red", "green"]  # 3-band uint8 GeoTIFF: RGB
    assert info["detection"]["method"] == "absdiff"
    assert info["detection"]["threshold"] == 40.0
    fc = assert_valid_geojson(out / "changes.geojson")
    assert all(f["properties"]["area_m2"] >= 2000 for f in fc["features"])


def test_plain_png_pair_skips_geojson_with_one_line_notice(change_pair, tmp_path):
    before, after, _ = change_pair
    pngs = []
    for p in (before, after):
        with rasterio.open(p) as src:
            data = src.read()
        data[data == 0] = 1  # PNG has no nodata here: keep every pixel as data
        dst = tmp_path / (p.stem + ".png")
        with rasterio.open(
            dst,
            "w",
            driver="PNG",
            width=data.shape[2],
            height=data.shape[1],
            count=3,
            dtype="uint8",
        ) as d:
            d.write(data)
        pngs.append(dst)
    out = tmp_path / "out"
    res = satdelta("detect", *pngs, "-o", out, "--pixel-size", "0.5", "--method", "cva")
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().splitlines() == [
        "satdelta: notice: inputs are not georeferenced; changes.geojson skipped "
        "(GeoJSON needs lon/lat)"
    ]
    assert sorted(os.listdir(out)) == ["mask.tif", "objects.csv", "run.json", "score.tif"]
    assert_valid_cog(out / "mask.tif")
    info = json.loads((out / "run.json").read_text())
    assert info["grid"]["crs"] is None and info["grid"]["pixel_size_m"] == 0.5


def _bad_cases(tmp_path: Path, before: Path, after: Path) -> dict[str, tuple[list, tuple]]:
    text = tmp_path / "notes.tif"
    text.write_text("this is not a raster\n")
    far = tmp_path / "far.tif"
    with rasterio.open(after) as src:
        prof = src.profile
        data = src.read()
    prof["transform"] = rasterio.Affine(10.0, 0.0, 900000.0, 0.0, -10.0, 4000000.0)
    with rasterio.open(far, "w", **prof) as d:
        d.write(data)
    two = tmp_path / "two_bands.tif"
    prof.update(count=2, dtype="int16", transform=rasterio.Affine(10, 0, 500000, 0, -10, 4000000))
    with rasterio.open(two, "w", **prof) as d:
        d.write(data[:2].astype("int16"))
    return {
        "missing": ([tmp_path / "nope.tif", after], ("no such file", "nope.tif")),
        "unreadable": ([text, after], ("cannot read", "notes.tif")),
        "elsewhere": ([before, far], ("do not overlap", "same place")),
        "bands": ([before, two], ("cannot be matched", "--bands")),
    }


@pytest.mark.parametrize("case", ["missing", "unreadable", "elsewhere", "bands"])
def test_bad_input_one_line_exit_1_outdir_unchanged(change_pair, tmp_path, case):
    before, after, _ = change_pair
    args, needles = _bad_cases(tmp_path, before, after)[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "mask.tif").write_bytes(b"previous run")
    (out / "keep.txt").write_text("analyst notes")
    before_state = snapshot(out)
    res = satdelta("detect", *args, "-o", out)
    assert_one_line_error(res, *needles)
    assert snapshot(out) == before_state
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.parametrize("case", ["outdir-is-file", "parent-is-file", "unwritable-fs"])
def test_unwritable_outdir(change_pair, tmp_path, case):
    before, after, _ = change_pair
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    out = {
        "outdir-is-file": blocker,
        "parent-is-file": blocker / "out",
        "unwritable-fs": Path("/proc/satdelta-test-out"),  # a filesystem nobody can write
    }[case]
    state = snapshot(blocker)
    res = satdelta("detect", before, after, "-o", out)
    assert_one_line_error(res, str(out) if case != "parent-is-file" else "is a file")
    assert snapshot(blocker) == state and not Path("/proc/satdelta-test-out").exists()


def test_kill_9_while_writing_leaves_outdir_as_it_was(change_pair, tmp_path):
    before, after, _ = change_pair
    out = tmp_path / "out"
    out.mkdir()
    (out / "mask.tif").write_bytes(b"previous run")
    state = snapshot(out)
    cmd = [
        sys.executable,
        "-m",
        "satdelta.plugins.cli.main",
        "detect",
        str(before),
        str(after),
        "-o",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    caught = False
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any(p.name.startswith(".out.tmp-") for p in tmp_path.iterdir()):
            os.kill(proc.pid, signal.SIGKILL)  # mid-write: the temp folder exists
            caught = True
            break
        time.sleep(0.0005)
    proc.wait(timeout=60)
    assert caught, "the run ended before its write stage could be interrupted"
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(out) == state
    # the killed run's temp folder is cleared by the next run into the same folder
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    res = satdelta("detect", before, after, "-o", out)
    assert res.returncode == 0, res.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    assert (out / "run.json").is_file()


@pytest.mark.realdata
def test_naip_real_pair(shared_data, tmp_path):
    d = shared_data / "naip-nd"
    out = tmp_path / "naip"
    res = satdelta("detect", d / NAIP[0], d / NAIP[1], "-o", out, "--min-area", "500")
    assert res.returncode == 0, res.stderr
    with rasterio.open(out / "mask.tif") as m, rasterio.open(d / NAIP[0]) as b:
        assert m.transform == b.transform and m.shape == b.shape == (724, 934)
        assert m.crs == b.crs
        footprints = []
        for p in NAIP:
            with rasterio.open(d / p) as s:
                footprints.append(
                    box(*rasterio.warp.transform_bounds(s.crs, "EPSG:4326", *s.bounds))
                )
    assert_valid_cog(out / "mask.tif")
    fc = assert_valid_geojson(out / "changes.geojson")
    assert fc["features"]
    area = shapely.union_all(footprints).buffer(1e-7)
    for f in fc["features"]:
        g = shape(f["geometry"])
        assert area.contains(g), f["properties"]
    info = json.loads((out / "run.json").read_text())
    assert max(map(abs, info["alignment"]["shift_after_px"])) < 0.5
    assert info["inputs"]["after"]["acquired"] == "2020-08-31"
