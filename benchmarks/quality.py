"""Change-detection quality on every shared set, pooled and per pair, beside plain baselines.

Datasets (in ``<repo>/../shared/data``, never copied into the repository):

* ``levir`` - 11 LEVIR-CD pairs, RGB, 0.5 m, dense building-change labels (development set).
* ``szada`` - 7 SZTAKI AirChange Szada pairs, aerial RGB, 1.5 m, dense labels (**held out**:
  no setting was chosen on it).
* ``taizhou`` - Landsat 7 ETM+, 6 bands, 30 m, sparse change / no-change reference pixels.
* ``sample`` - the package's synthetic demo sites (4 bands, 0.5 m) through
  :func:`satdelta.imagery.pipeline.run_detection`: polygon IoU against the true polygons next
  to the 1-pixel-off bar of ``tests/plugins/test_cli_demo.py``, and objects found.
* ``naip`` - NAIP 2009/2020, 4 bands, 5 m, co-registered by satdelta; no labels: share of
  the scene flagged, 4-connected candidates, candidates under 100 m², and candidates left by a
  4-pixel floor (issue 9 item 3, applied where the polygons are made, not in ``detect_change``).

Rows: ``DEFAULT`` (library defaults), the plain baseline (mean absolute difference + Otsu, no
normalisation, no no-change floor), CVA + Otsu (plain), the former RGB default (``builtup``)
on RGB sets, and flagging every pixel. Per set: pooled precision/recall/F1 and, over the pairs
with change, the min / median / max per-pair F1 and the number of pairs with recall < 0.2.
Run (about 2-3 min)::

    .venv/bin/python benchmarks/quality.py [levir szada taizhou sample naip]
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import (  # noqa: E402
    LabelledPair,
    confusion,
    data_path,
    load_levir,
    load_naip,
    load_szada,
    load_taizhou,
    prf,
)
from satdelta.imagery.detect import detect_change  # noqa: E402
from satdelta.imagery.options import DetectionOptions  # noqa: E402

PLAIN = {"threshold": "otsu", "normalise": "none", "null_quantile": None}
#: The variants, as detection options ("flag all" marks every valid pixel).
VARIANTS: dict[str, dict | None] = {
    "DEFAULT": {},
    "absdiff + Otsu (plain)": {"method": "absdiff", **PLAIN},
    "CVA + Otsu (plain)": {"method": "cva", **PLAIN},
    "builtup (former RGB default)": {"method": "builtup", "normalise": "none"},
    "flag all": None,
}
RGB_ONLY = {"builtup (former RGB default)"}


@dataclass(frozen=True)
class PairScore:
    name: str
    changed: float  # share of labelled pixels that changed
    counts: tuple[int, int, int]
    total: int  # labelled pixels

    @property
    def prf(self) -> tuple[float, float, float]:
        return prf(*self.counts)


def _mask(pair: LabelledPair, options: dict | None) -> np.ndarray:
    valid = pair.valid if pair.valid is not None else np.ones(pair.before.shape[1:], bool)
    if options is None:
        return valid
    return detect_change(
        pair.before,
        pair.after,
        DetectionOptions(**options),
        valid=valid,
        pixel_size_m=pair.pixel_size_m,
        band_names=pair.band_names,
    ).changed


def score_pairs(pairs: list[LabelledPair], options: dict | None) -> list[PairScore]:
    """Per-pair counts of one variant."""
    out = []
    for p in pairs:
        labelled = int(p.positive.sum() + p.negative.sum())
        share = p.positive.sum() / max(labelled, 1)
        out.append(PairScore(p.name, share, confusion(_mask(p, options), p), labelled))
    return out


def summary(scores: list[PairScore]) -> dict[str, float]:
    """Pooled P/R/F1; min/median/max F1 and pairs with recall < 0.2 over pairs with change."""
    tot = np.sum([s.counts for s in scores], axis=0)
    p, r, f = prf(*(int(v) for v in tot))
    with_change = [s for s in scores if s.counts[0] + s.counts[2] > 0]
    f1 = [s.prf[2] for s in with_change]
    return {
        "precision": p,
        "recall": r,
        "f1": f,
        "min": min(f1),
        "median": float(np.median(f1)),
        "max": max(f1),
        "recall<0.2": sum(s.prf[1] < 0.2 for s in with_change),
        "5%&recall<0.1": sum(s.prf[1] < 0.1 and s.changed >= 0.05 for s in with_change),
    }


def _cell(s: PairScore) -> str:
    """F1 and recall; on a pair without change, the share of its pixels flagged."""
    tp, fp, fn = s.counts
    if tp + fn == 0:
        return f"flags {fp / max(s.total, 1):5.3f}"
    return f"{s.prf[2]:5.3f} R{s.prf[1]:4.2f}"


def labelled_set(name: str, pairs: list[LabelledPair], rgb: bool) -> dict[str, dict]:
    """Print one labelled set's summary and per-pair table; returns the summaries."""
    per: dict[str, list[PairScore]] = {}
    secs: dict[str, float] = {}
    for label, options in VARIANTS.items():
        if label in RGB_ONLY and not rgb:
            continue
        t0 = time.perf_counter()
        per[label] = score_pairs(pairs, options)
        secs[label] = time.perf_counter() - t0
    out = {label: summary(s) for label, s in per.items()}
    print(f"\n## {name}: pooled and per pair (F1 over pairs with change)\n")
    print(
        f"{'variant':30s} {'P':>6s} {'R':>6s} {'F1':>6s} {'min':>6s} {'median':>6s} "
        f"{'max':>6s} {'R<0.2':>5s} {'sec':>5s}"
    )
    for label, s in out.items():
        print(
            f"{label:30s} {s['precision']:6.3f} {s['recall']:6.3f} {s['f1']:6.3f} "
            f"{s['min']:6.3f} {s['median']:6.3f} {s['max']:6.3f} {s['recall<0.2']:5d} "
            f"{secs[label]:5.1f}"
        )
    if len(pairs) > 1:
        labels = list(per)
        print(f"\n{'pair':24s} {'changed':>7s} " + " ".join(f"{lb[:12]:>12s}" for lb in labels))
        for i, p in enumerate(pairs):
            cells = " ".join(_cell(per[lb][i]) for lb in labels)
            print(f"{p.name:24s} {per[labels[0]][i].changed:7.3f} {cells}")
    return out


def sample_sites() -> None:
    """The synthetic demo sites through the pipeline: polygon IoU vs bar, objects found."""
    from satdelta.imagery.pipeline import run_detection
    from satdelta.sample_data import SITES, site_paths
    from satdelta.sample_data.evaluate import match_truth, read_polygons
    from shapely.ops import unary_union

    print("\n## sample sites (pipeline): polygon IoU / bar, objects found, false alarms\n")
    for label in ("DEFAULT", "absdiff + Otsu (plain)", "CVA + Otsu (plain)"):
        cells = []
        for site in SITES:
            paths = site_paths(site)
            truth = read_polygons(paths.truth)
            u = unary_union(truth)
            bar = u.buffer(-0.5).area / u.buffer(0.5).area
            run = run_detection(paths.before, paths.after, DetectionOptions(**VARIANTS[label]))
            m = match_truth([p.geometry for p in run.polygons], truth)
            cells.append(
                f"{site}: {m.iou:.3f}/{bar:.3f} {m.objects_found}/{m.objects_total} "
                f"fa {m.false_alarms}"
            )
        print(f"{label:30s} " + "; ".join(cells))


def naip() -> None:
    """NAIP without labels: flagged share, candidates (grouped as the pipeline groups them:
    4-connected, fragments up to MERGE_GAP_PX apart joined), candidates < 100 m²."""
    from satdelta.imagery.morphology import MERGE_GAP_PX, group_labels

    pair = load_naip()
    print("\n## naip (no labels): flagged, candidates (as the pipeline groups them), < 100 m2\n")
    for label, options in VARIANTS.items():
        if label in RGB_ONLY:
            continue
        t0 = time.perf_counter()
        m = _mask(pair, options)
        lab, n = group_labels(m, gap_px=MERGE_GAP_PX, connectivity=4)
        sizes = np.bincount(lab.ravel())[1:] * pair.pixel_size_m**2
        share = m[pair.valid].mean()
        n4 = int((sizes >= 4 * pair.pixel_size_m**2).sum())
        print(
            f"{label:30s} flagged {share:6.1%}  candidates {n:5d}  < 100 m2 "
            f"{int((sizes < 100).sum()):5d}  >= 4 px {n4:5d}  ({time.perf_counter() - t0:.1f} s)"
        )


SETS: dict[str, Callable[[], object]] = {
    "levir": lambda: labelled_set("levir (development)", load_levir(), rgb=True),
    "szada": lambda: labelled_set("szada (held out)", load_szada(), rgb=True),
    "taizhou": lambda: labelled_set("taizhou (development)", [load_taizhou()], rgb=False),
    "sample": sample_sites,
    "naip": naip,
}


def main(argv: list[str]) -> int:
    if not data_path().exists():
        print(f"shared data not found at {data_path().resolve()}", file=sys.stderr)
        return 1
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    for name in argv or list(SETS):
        SETS[name]()
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
