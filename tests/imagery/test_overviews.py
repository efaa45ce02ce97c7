"""COG overviews made in numpy (imagery/overviews.py, cog.streamed_cog) against GDAL's own."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from satdelta.imagery import cog
from satdelta.imagery.cog import streamed_cog, write_cog
from satdelta.imagery.errors import InvalidParameterError, OutputError
from satdelta.imagery.overviews import OverviewStep, cog_overview_shapes, overview_steps
from satdelta.imagery.parallel import threads

from tests.plugins.test_cli_detect import assert_valid_cog

GRID = {"transform": Affine(10, 0, 500000, 0, -10, 4300000), "crs": "EPSG:32633"}
# odd sizes (ratios above 2, partial pixels), thin rasters, sides that halve to 1
SHAPES = [((301, 333), 128), ((255, 300), 128), ((600, 600), 128), ((40, 17), 16),
          ((3, 700), 64), ((129, 16), 16)]  # fmt: skip


def scores(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A float32 score with scattered NaNs, an all-NaN 4 x 4 corner and all-NaN 2 x 2 cells."""
    rng = np.random.default_rng(seed)
    a = (rng.random(shape) * 100 - 20).astype(np.float32)
    a[rng.random(shape) < 0.3] = np.nan
    a[:4, :4] = np.nan
    a[6:8, 2:4] = np.nan
    return a


def gdal_levels(data: np.ndarray, folder: Path, blocksize: int, resampling: str) -> list:
    """GDAL's COG driver's overview levels of ``data`` (written as an uncompressed COG)."""
    nodata = float("nan") if data.dtype.kind == "f" else 255
    path = write_cog(folder / f"gdal-{resampling}.tif", data, transform=GRID["transform"],
                     crs=CRS.from_epsg(32633), nodata=nodata, overview_resampling=resampling,
                     blocksize=blocksize)  # fmt: skip
    return read_levels(path)


def read_levels(path: Path) -> list[np.ndarray]:
    with rasterio.open(path) as ds:
        count = len(ds.overviews(1))
    levels = []
    for k in range(count):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path, overview_level=k) as ds:
                levels.append(ds.read(1))
    return levels


def levels_in_strips(data: np.ndarray, steps: list[OverviewStep], rows: int) -> list:
    """Each level from the one above, ``rows`` destination rows at a time."""
    levels, above = [], data
    for step in steps:
        parts = []
        for start in range(0, step.dst_shape[0], rows):
            part = slice(start, min(step.dst_shape[0], start + rows))
            parts.append(step.apply(above[step.source_rows(part)].copy(), part))
        above = np.concatenate(parts)
        levels.append(above)
    return levels


def assert_same_average(ours: np.ndarray, gdal: np.ndarray) -> None:
    assert ours.shape == gdal.shape and ours.dtype == gdal.dtype
    assert np.array_equal(np.isnan(ours), np.isnan(gdal))
    np.testing.assert_allclose(ours, gdal, rtol=1e-6, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize(("shape", "blocksize"), SHAPES)
def test_levels_are_the_cog_drivers(shape, blocksize, tmp_path):
    ours = cog_overview_shapes(shape, blocksize)
    gdal = [a.shape for a in gdal_levels(np.zeros(shape, np.uint8), tmp_path, blocksize,
                                         "nearest")]  # fmt: skip
    assert ours == gdal and ours  # every case has at least one level


@pytest.mark.parametrize(("shape", "blocksize"), SHAPES)
@pytest.mark.parametrize("rows", [1, 7, 10_000])
def test_average_is_gdals_nan_aware_average(shape, blocksize, rows, tmp_path):
    data = scores(shape)
    gdal = gdal_levels(data, tmp_path, blocksize, "average")
    ours = levels_in_strips(data, overview_steps(shape, blocksize, "average"), rows)
    assert len(ours) == len(gdal)
    for mine, theirs in zip(ours, gdal, strict=True):
        assert_same_average(mine, theirs)
    if shape[0] % 2 == 0 and shape[1] % 2 == 0:  # the 2 x 2 cells that are all NaN stay NaN
        assert np.isnan(ours[0][:2, :2]).all() and np.isnan(ours[0][3, 1])
        valid = ~np.isnan(data[8:10, 8:10])
        assert ours[0][4, 4] == pytest.approx(data[8:10, 8:10][valid].mean(), rel=1e-6)


@pytest.mark.parametrize(("shape", "blocksize"), SHAPES)
def test_nearest_is_gdals_nearest(shape, blocksize, tmp_path):
    data = np.random.default_rng(1).integers(0, 3, shape).astype(np.uint8)
    data[:5, :5] = 255  # nodata: nearest picks it like any other value
    gdal = gdal_levels(data, tmp_path, blocksize, "nearest")
    ours = levels_in_strips(data, overview_steps(shape, blocksize, "nearest"), 7)
    for mine, theirs in zip(ours, gdal, strict=True):
        assert np.array_equal(mine, theirs)


def test_a_strip_reads_only_the_rows_it_needs():
    step = OverviewStep((8193, 9), (4096, 4), "average")  # ratio 2.0002: 3 taps
    spans = [step.source_rows(slice(r, r + 256)) for r in range(0, 4096, 256)]
    assert all(s.stop - s.start <= 2 * 256 + 2 for s in spans)
    assert spans[0].start == 0 and spans[-1].stop == 8193
    assert all(
        a.stop - b.start in (0, 1) for a, b in zip(spans, spans[1:], strict=False)
    )  # overlap <= 1


@pytest.mark.parametrize("side", [8192, 16384, 40_001])
def test_the_overview_pass_reads_bounded_strips(side):
    # memory per strip does not grow with the rows of the grid, only with a row's length
    for step in overview_steps((side, side), 512, "average"):
        strips = cog._strips(step, 512)
        assert strips[0].start == 0 and strips[-1].stop == step.dst_shape[0]
        assert all(a.stop == b.start for a, b in zip(strips, strips[1:], strict=False))
        for part in strips:
            src = step.source_rows(part)
            read_px = (src.stop - src.start) * step.src_shape[1]
            cols = step.src_shape[1]  # at least 32 rows; odd sizes read 1 or 2 rows more
            assert read_px <= max(cog.OVERVIEW_STRIP_PX, 64 * cols) + 2 * cols


def test_bad_steps_are_refused():
    with pytest.raises(InvalidParameterError, match="'average' or 'nearest'"):
        OverviewStep((4, 4), (2, 2), "mode")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="smaller than its source"):
        OverviewStep((4, 4), (8, 2), "average")


def stream(path: Path, data: np.ndarray, *, block: int = 100, **options) -> None:
    """``data`` through streamed_cog in ``block`` x ``block`` windows."""
    nodata = float("nan") if data.dtype.kind == "f" else 255
    with streamed_cog(path, shape=data.shape, dtype=data.dtype.name, nodata=nodata,
                      **GRID, **options) as write:  # fmt: skip
        for r in range(0, data.shape[0], block):
            for c in range(0, data.shape[1], block):
                write(data[r : r + block, c : c + block], r, c)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_streamed_score_cog_has_gdals_overviews(n_threads, tmp_path, monkeypatch):
    shape = (1201, 1033)
    data = scores(shape, seed=3)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(cog, "OVERVIEW_STRIP_PX", 4096)  # strips of 32 rows: many strips
    with threads(n_threads):
        stream(out / "score.tif", data, blocksize=128, overview_resampling="average",
               compress="none", band_name="score", tags={"satdelta_method": "cva"})  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["score.tif"]  # temporary files gone
    assert_valid_cog(out / "score.tif")
    gdal = gdal_levels(data, tmp_path, 128, "average")
    ours = read_levels(out / "score.tif")
    assert [a.shape for a in ours] == [(600, 516), (300, 258), (150, 129), (75, 64)]
    for mine, theirs in zip(ours, gdal, strict=True):
        assert_same_average(mine, theirs)
    # made here, not by GDAL: bit for bit ours, while GDAL's sums round differently
    made_here = levels_in_strips(data, overview_steps(shape, 128, "average"), 32)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(ours, made_here, strict=True))
    assert not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(ours, gdal, strict=True))
    with rasterio.open(out / "score.tif") as ds:
        assert np.array_equal(ds.read(1), data, equal_nan=True)
        assert ds.overviews(1) == [2, 4, 8, 16] and np.isnan(ds.nodata)
        assert ds.descriptions == ("score",) and ds.tags()["satdelta_method"] == "cva"
        assert ds.crs.to_epsg() == 32633 and ds.transform == GRID["transform"]
        assert ds.block_shapes == [(128, 128)] and ds.compression is None


def test_streamed_mask_cog_has_gdals_nearest_overviews(tmp_path):
    data = np.random.default_rng(5).integers(0, 2, (700, 900)).astype(np.uint8)
    data[:, :50] = 255
    stream(tmp_path / "mask.tif", data, block=64, blocksize=128)
    assert_valid_cog(tmp_path / "mask.tif")
    with rasterio.open(tmp_path / "mask.tif") as ds:
        assert ds.compression.name == "deflate" and ds.nodata == 255
    for mine, theirs in zip(read_levels(tmp_path / "mask.tif"),
                            gdal_levels(data, tmp_path, 128, "nearest"), strict=True):  # fmt: skip
        assert np.array_equal(mine, theirs)


def test_the_same_path_written_twice_has_the_second_overviews(tmp_path):
    # GDAL keeps opened sources by name: a second run must not see the first's levels
    first, second = scores((600, 600), seed=1), scores((600, 600), seed=2)
    for data in (first, second):
        stream(tmp_path / "score.tif", data, blocksize=128, overview_resampling="average")
    gdal = gdal_levels(second, tmp_path, 128, "average")
    for mine, theirs in zip(read_levels(tmp_path / "score.tif"), gdal, strict=True):
        assert_same_average(mine, theirs)


def test_other_resamplings_are_left_to_gdal(tmp_path):
    data = np.random.default_rng(2).integers(0, 4, (300, 300)).astype(np.uint8)
    stream(tmp_path / "mode.tif", data, blocksize=64, overview_resampling="mode")
    assert_valid_cog(tmp_path / "mode.tif")
    for mine, theirs in zip(read_levels(tmp_path / "mode.tif"),
                            gdal_levels(data, tmp_path, 64, "mode"), strict=True):  # fmt: skip
        assert np.array_equal(mine, theirs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gdal-mode.tif", "mode.tif"]


def test_a_failed_copy_is_one_line_and_leaves_no_temporary_file(tmp_path):
    (tmp_path / "score.tif").mkdir()  # the COG cannot be written over a folder
    with pytest.raises(OutputError, match=r"cannot write .*score\.tif: .*free space\.$") as err:
        stream(tmp_path / "score.tif", scores((400, 300)), blocksize=64,
               overview_resampling="average")  # fmt: skip
    assert "\n" not in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == ["score.tif"]  # only the folder


def test_an_error_in_the_block_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError, match="stop"):
        with streamed_cog(tmp_path / "score.tif", shape=(300, 300), dtype="float32",
                          nodata=float("nan"), overview_resampling="average",
                          **GRID) as write:  # fmt: skip
            write(scores((100, 100)), 0, 0)
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_odd_folder_names_and_no_georeferencing(tmp_path, monkeypatch):
    folder = tmp_path / "a b & <é>"
    folder.mkdir()
    monkeypatch.chdir(folder)  # a relative path: the VRT must still find every level
    data = scores((300, 260), seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with streamed_cog("score.tif", shape=data.shape, dtype="float32",
                          transform=Affine.identity(), crs=None, nodata=float("nan"),
                          overview_resampling="average",
                          blocksize=64) as write:  # fmt: skip
            write(data, 0, 0)
    assert [p.name for p in folder.iterdir()] == ["score.tif"]
    assert_valid_cog(folder / "score.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        ours = read_levels(folder / "score.tif")
    for mine, theirs in zip(ours, gdal_levels(data, tmp_path, 64, "average"), strict=True):
        assert_same_average(mine, theirs)


def _first_level_sources(monkeypatch) -> list[str]:  # noqa: ANN001
    """The file each level made at the end is read from (``_write_level`` calls)."""
    sources: list[str] = []
    made = cog._write_level

    def spy(source, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        sources.append(Path(source).name)
        return made(source, *args, **kwargs)

    monkeypatch.setattr(cog, "_write_level", spy)
    return sources


@pytest.mark.parametrize("n_threads", [1, 2])
def test_an_even_first_level_is_made_from_the_windows_as_the_file_would_give_it(
    n_threads, tmp_path, monkeypatch
):
    """Even sides, windows on even rows and columns (in threads, in any order): the first
    level is made from the windows and the full resolution is not read again; the levels
    are bit for bit those made from the file."""
    from satdelta.imagery.parallel import run_jobs

    shape = (1200, 1032)
    data = scores(shape, seed=7)
    sources = _first_level_sources(monkeypatch)
    windows = [(r, c) for r in range(0, 1200, 100) for c in range(0, 1032, 172)][::-1]
    with threads(n_threads):
        with streamed_cog(tmp_path / "score.tif", shape=shape, dtype="float32",
                          nodata=float("nan"), overview_resampling="average", compress="none",
                          blocksize=128, **GRID) as write:  # fmt: skip
            run_jobs(lambda rc: write(data[rc[0] : rc[0] + 100, rc[1] : rc[1] + 172], *rc),
                     windows)  # fmt: skip
    assert sources[0] == ".score.tif.tiles.level1.tif"  # level 2 from level 1: none from tmp
    assert not any("level1.level" in name for name in sources)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["score.tif"]
    assert_valid_cog(tmp_path / "score.tif")
    made_here = levels_in_strips(data, overview_steps(shape, 128, "average"), 32)
    ours = read_levels(tmp_path / "score.tif")
    assert len(ours) == len(made_here) == 4
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(ours, made_here, strict=True))


def test_an_average_window_off_the_cells_makes_the_first_level_from_the_file(tmp_path, monkeypatch):
    shape = (600, 600)
    data = scores(shape, seed=8)
    sources = _first_level_sources(monkeypatch)
    stream(tmp_path / "score.tif", data, block=75, blocksize=128,
           overview_resampling="average")  # fmt: skip
    assert sources[0] == ".score.tif.tiles.tif"  # odd offsets: from the full resolution
    made_here = levels_in_strips(data, overview_steps(shape, 128, "average"), 32)
    ours = read_levels(tmp_path / "score.tif")
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(ours, made_here, strict=True))


def test_nearest_levels_follow_any_window_overwrites_and_unwritten_parts(tmp_path, monkeypatch):
    """The mask's case: odd windows, single pixels written again afterwards (the block
    runner's clears), a window never written (nodata): the levels are GDAL's of the final
    raster."""
    shape = (700, 900)
    data = np.random.default_rng(5).integers(0, 2, shape).astype(np.uint8)
    sources = _first_level_sources(monkeypatch)
    final = data.copy()
    final[128:256, 256:384] = 255  # never written: the file's nodata
    with streamed_cog(tmp_path / "mask.tif", shape=shape, dtype="uint8", nodata=255,
                      blocksize=128, **GRID) as write:  # fmt: skip
        for r in range(0, 700, 75):
            for c in range(0, 900, 75):
                window = data[r : r + 75, c : c + 75].copy()
                rows, cols = np.mgrid[r : r + window.shape[0], c : c + window.shape[1]]
                untouched = (rows >= 128) & (rows < 256) & (cols >= 256) & (cols < 384)
                window[untouched] = 255
                if not untouched.all():
                    write(window, r, c)
        for r, c in ((10, 10), (11, 10), (10, 11), (400, 600), (699, 899), (0, 1)):
            final[r, c] = 1 - final[r, c]
            write(final[r : r + 1, c : c + 1], r, c)
    assert sources[0] == ".mask.tif.tiles.level1.tif"
    ours = read_levels(tmp_path / "mask.tif")
    for mine, theirs in zip(ours, gdal_levels(final, tmp_path, 128, "nearest"), strict=True):
        assert np.array_equal(mine, theirs)
    with rasterio.open(tmp_path / "mask.tif") as ds:
        assert np.array_equal(ds.read(1), final)
