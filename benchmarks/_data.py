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


@dataclass(frozen=True)
class LabelledPair:
    """One labelled before/after pair.

    ``positive`` is True where the reference says changed, ``negative`` True where it says
    unchanged; pixels in neither are not scored.
    """

    name: str
    before: np.ndarray  # (band, row, col) float32
    after: np.ndarray
    positive: np.ndarray  # (row, col) bool
    negative: np.ndarray  # (row, col) bool
    band_names: tuple[str, ...] | None
    pixel_size_m: float | None


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


def load_levir() -> list[LabelledPair]:
    """The 11 LEVIR-CD pairs (dense labels: every pixel is positive or negative)."""
    root = data_path(LEVIR)
    pairs = []
    for a_path in sorted((root / "A").glob("*.png")):
        before, _ = _read(a_path)
        after, _ = _read(root / "B" / a_path.name)
        lab = _read(root / "label" / a_path.name)[0][0] > 127
        pairs.append(
            LabelledPair(
                a_path.stem, before, after, lab, ~lab, ("red", "green", "blue"), LEVIR_PIXEL_SIZE_M
            )
        )
    return pairs


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
