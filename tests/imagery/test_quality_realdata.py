"""Quality bars of the change detector on labelled public imagery (issue 9's floors).

* Taizhou (Landsat 7, 6 bands, 30 m), through :func:`satdelta.imagery.pipeline.run_detection`
  with library defaults: F1 >= 0.95 on the labelled pixels.
* LEVIR-CD (11 RGB pairs, 0.5 m, not georeferenced: ``pixel_size_m=0.5`` as the CLI's
  ``--pixel-size``), default ``"cues"`` score: median per-pair F1 >= 0.33 over the pairs with
  change, every pair with >= 5 % changed pixels at recall >= 0.10 and pooled F1 >= 0.33
  (issue 9's floors; all met, the pooled one by 0.001: 0.331 measured). The former RGB default
  (``method="builtup"``, still available) keeps its own bars: pooled F1 >= 0.30, precision
  >= 0.22, the no-change pair under 2 % flagged.
* SZTAKI Szada (7 RGB pairs, 1.5 m; held out: no setting was chosen on it): pooled F1 >= 0.25.
* NAIP (4 bands, 5 m, no labels): the normalisation guard rejects IR-MAD's negative gains.

``benchmarks/quality.py`` prints the same figures per pair with baselines and variants.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from satdelta.imagery.detect import detect_change
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.pipeline import run_detection

from tests.conftest import require_shared

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _data import LEVIR, NAIP, SZADA, confusion, load_levir, load_naip, load_szada, prf  # noqa: E402

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _read_mask(path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return ds.read(1)


def _scores(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def test_taizhou_default_f1_at_least_095():
    root = require_shared("taizhou-landsat7")
    run = run_detection(root / "taizhou_2000-03-17_etm.tif", root / "taizhou_2003-02-06_etm.tif")
    pos = _read_mask(root / "change_mask.tif") > 0
    neg = _read_mask(root / "unchanged_mask.tif") > 0
    changed = run.maps.changed
    assert changed.shape == pos.shape
    tp = int((changed & pos).sum())
    fp = int((changed & neg).sum())
    fn = int((~changed & pos).sum())
    p, r, f = _scores(tp, fp, fn)
    assert f >= 0.95, f"Taizhou F1 {f:.3f} (precision {p:.3f}, recall {r:.3f}) below 0.95"
    # the defaults are the documented ones for 6-band multispectral data
    assert run.maps.method == "cva" and run.maps.threshold_method == "mixture"
    assert run.maps.parameters["normalise"] == "irmad"


def test_levir_pooled_builtup_f1_and_precision():
    """The former RGB default's bars (it was the default until issue 9)."""
    root = require_shared("levir-cd")
    names = sorted(p.name for p in (root / "A").glob("*.png"))
    assert len(names) == 11
    tot = np.zeros(3, dtype=np.int64)
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            run = run_detection(
                root / "A" / name,
                root / "B" / name,
                DetectionOptions(pixel_size_m=0.5, method="builtup", normalise="none"),
            )
        truth = _read_mask(root / "label" / name) > 127
        changed = run.maps.changed
        assert changed.shape == truth.shape
        tot += [(changed & truth).sum(), (changed & ~truth).sum(), (~changed & truth).sum()]
        if not truth.any():  # train_386_0512_0768: nothing changed
            assert changed.mean() < 0.02, f"{name}: {changed.mean():.3f} of a no-change pair"
    p, r, f = _scores(*(int(v) for v in tot))
    assert f >= 0.30 and p >= 0.22, f"LEVIR pooled F1 {f:.3f}, precision {p:.3f}, recall {r:.3f}"


def _default_scores(pairs) -> list[tuple[str, float, tuple[int, int, int]]]:
    """(name, share changed, (tp, fp, fn)) of the library defaults on each pair."""
    out = []
    for p in pairs:
        maps = detect_change(
            p.before, p.after, pixel_size_m=p.pixel_size_m, band_names=p.band_names
        )
        out.append((p.name, float(p.positive.mean()), confusion(maps.changed, p)))
    return out


def test_levir_default_per_pair():
    require_shared(LEVIR)
    scores = _default_scores(load_levir())
    with_change = [(n, c, prf(*t)) for n, c, t in scores if c > 0]
    median = float(np.median([f for _, _, (_, _, f) in with_change]))
    assert median >= 0.33, f"LEVIR median per-pair F1 {median:.3f}"
    low = [(n, round(r, 3)) for n, c, (_, r, _) in with_change if c >= 0.05 and r < 0.10]
    assert not low, f"pairs with >= 5 % change at recall < 0.10: {low}"
    tot = np.sum([t for _, _, t in scores], axis=0)
    p, r, f = prf(*(int(v) for v in tot))
    # issue 9's floor; met by a hair (0.331): SLIC's seeding alone moves LEVIR by +-0.02
    assert f >= 0.33, f"LEVIR pooled F1 {f:.3f} (precision {p:.3f}, recall {r:.3f})"


def test_szada_default_pooled_f1():
    require_shared(SZADA)
    tot = np.sum([t for _, _, t in _default_scores(load_szada())], axis=0)
    p, r, f = prf(*(int(v) for v in tot))
    assert f >= 0.25, f"Szada pooled F1 {f:.3f} (precision {p:.3f}, recall {r:.3f})"


def test_naip_default_never_inverts_a_band():
    require_shared(NAIP)
    pair = load_naip()
    maps = detect_change(
        pair.before, pair.after, valid=pair.valid, pixel_size_m=5.0, band_names=pair.band_names
    )
    params = maps.parameters
    assert params["normalise"] == "histogram"
    assert params["normalisation_rejected"]["method"] == "irmad"
    assert "gain" in params["normalisation_rejected"]["reason"]
    assert all(g > 0 for g in params["normalisation"]["gains"])
    assert maps.changed_fraction < 0.25  # 28 % with the inverted fit
