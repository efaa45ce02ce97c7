"""Load the labelled public pairs in ``<repo>/../shared/data`` for benchmarks and real-data tests.

Nothing here is shipped in the package; the data must never be copied into the repository.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

TAIZHOU = "taizhou-landsat7"
TAIZHOU_BEFORE = "taizhou_2000-03-17_etm.tif"
TAIZHOU_AFTER = "taizhou_2003-02-06_etm.tif"
LEVIR = "levir-cd"
#: LEVIR-CD ground sampling distance (SOURCE.txt: Google Earth VHR, 0.5 m).
LEVIR_PIXEL_SIZE_M = 0.5
SZADA = "sztaki-airchange-szada"
#: SZTAKI AirChange Szada: aerial RGB, 1.5 m (SOURCE.txt).
SZADA_PIXEL_SIZE_M = 1.5
NAIP = "naip-nd"
NAIP_BEFORE = "m_4709963_se_14_1_20090818.tif"
NAIP_AFTER = "m_4709963_se_14_1_20200831.tif"


@dataclass(frozen=True)
class LabelledPair:
    """One labelled before/after pair.

    ``positive`` is True where the reference says changed, ``negative`` True where it says
    unchanged; pixels in neither are not scored (both None: an unlabelled pair). ``valid`` is
    True where both dates have data (None: everywhere).
    """

    name: str
    before: np.ndarray  # (band, row, col) float32
    after: np.ndarray
    positive: np.ndarray  # (row, col) bool
    negative: np.ndarray  # (row, col) bool
    band_names: tuple[str, ...] | None
    pixel_size_m: float | None
    valid: np.ndarray | None = None


def _read(path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return ds.read().astype(np.float32), tuple(d or "" for d in ds.descriptions)


def data_path(*parts: str) -> Path:
    """Path under the shared data folder (may not exist)."""
    return SHARED_DATA.joinpath(*parts)


def load_taizhou() -> LabelledPair:
    """Landsat 7 Taizhou pair with its sparse change / no-change reference."""
    root = data_path(TAIZHOU)
    before, names = _read(root / TAIZHOU_BEFORE)
    after, _ = _read(root / TAIZHOU_AFTER)
    pos = _read(root / "change_mask.tif")[0][0] > 0
    neg = _read(root / "unchanged_mask.tif")[0][0] > 0
    return LabelledPair("taizhou", before, after, pos, neg, names, 30.0)


def _png_pairs(folder: str, pixel_size_m: float) -> list[LabelledPair]:
    """``A/*.png``, ``B/*.png`` and ``label/*.png`` (dense labels: > 127 = changed)."""
    root = data_path(folder)
    pairs = []
    for a_path in sorted((root / "A").glob("*.png")):
        before, _ = _read(a_path)
        after, _ = _read(root / "B" / a_path.name)
        lab = _read(root / "label" / a_path.name)[0][0] > 127
        rgb = ("red", "green", "blue")
        pairs.append(LabelledPair(a_path.stem, before[:3], after[:3], lab, ~lab, rgb, pixel_size_m))
    return pairs


def load_levir() -> list[LabelledPair]:
    """The 11 LEVIR-CD pairs (dense labels: every pixel is positive or negative)."""
    return _png_pairs(LEVIR, LEVIR_PIXEL_SIZE_M)


def load_szada() -> list[LabelledPair]:
    """The 7 SZTAKI AirChange Szada pairs (held out: never used to choose a setting)."""
    return _png_pairs(SZADA, SZADA_PIXEL_SIZE_M)


def load_naip() -> LabelledPair:
    """The NAIP 2009/2020 pair (4 bands, 5 m), co-registered by satdelta; no labels."""
    from satdelta.imagery.align import coregister
    from satdelta.imagery.scene import open_scene

    root = data_path(NAIP)
    al = coregister(open_scene(root / NAIP_BEFORE), open_scene(root / NAIP_AFTER))
    b, a = al.before.copy(), al.after.copy()
    b[:, ~al.valid] = 0
    a[:, ~al.valid] = 0
    names = ("red", "green", "blue", "nir")
    return LabelledPair("naip", b, a, None, None, names, 5.0, al.valid)


def confusion(pred: np.ndarray, pair: LabelledPair) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of ``pred`` on the labelled pixels."""
    tp = int((pred & pair.positive).sum())
    fp = int((pred & pair.negative).sum())
    fn = int((~pred & pair.positive).sum())
    return tp, fp, fn


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f
