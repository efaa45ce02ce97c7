"""Quality bars of the default change detector on labelled public imagery.

Both datasets run through the shipped path, :func:`satdelta.imagery.pipeline.run_detection`
(open, co-register, detect) with library defaults; the same defaults for both.

* Taizhou (Landsat 7, 6 bands, 30 m): F1 >= 0.95 on the labelled pixels.
* LEVIR-CD (11 RGB pairs, 0.5 m, not georeferenced: ``pixel_size_m=0.5`` as the CLI's
  ``--pixel-size``): pooled F1 >= 0.30 with pooled precision >= 0.22, and under 2 % of the
  pixels of the pair without change called changed.

``benchmarks/quality.py`` prints the same figures with baselines and variants.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.pipeline import run_detection

from tests.conftest import require_shared

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


def test_levir_pooled_default_f1_and_precision():
    root = require_shared("levir-cd")
    names = sorted(p.name for p in (root / "A").glob("*.png"))
    assert len(names) == 11
    tot = np.zeros(3, dtype=np.int64)
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            run = run_detection(
                root / "A" / name, root / "B" / name, DetectionOptions(pixel_size_m=0.5)
            )
        truth = _read_mask(root / "label" / name) > 127
        changed = run.maps.changed
        assert changed.shape == truth.shape
        tot += [(changed & truth).sum(), (changed & ~truth).sum(), (~changed & truth).sum()]
        if not truth.any():  # train_386_0512_0768: nothing changed
            assert changed.mean() < 0.02, f"{name}: {changed.mean():.3f} of a no-change pair"
    p, r, f = _scores(*(int(v) for v in tot))
    assert f >= 0.30 and p >= 0.22, f"LEVIR pooled F1 {f:.3f}, precision {p:.3f}, recall {r:.3f}"
