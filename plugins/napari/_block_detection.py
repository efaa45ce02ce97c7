"""A large pair's detection in the desk: the block runner, its progress and its maps as files.

A pair that ``satdelta detect`` would run block by block
(:func:`satdelta.imagery.block_run.uses_blocks`, "auto") runs here the same way: the
detection child calls :func:`run_in_blocks`, which runs
:func:`~satdelta.imagery.block_run.detect_in_files` into a run folder (the dock's, see
``docs/design-desk-blocks.md``), turns its ``progress(stage, done, total)`` into the dock's
steps and reads the candidates back from ``changes.geojson``. The maps stay in the folder's
``mask.tif`` and ``score.tif`` (:class:`ChangeFiles`); the window shows them as lazy
multiscale layers read from the COGs' overviews (:func:`change_file_levels`), so neither
the child nor the window ever holds a full-resolution raster. No napari, no Qt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from satdelta.imagery.block_run import BLOCK_PX, BLOCKS_FROM_PX, ProgressThrottle, uses_blocks
from satdelta.imagery.options import DetectionOptions
from satdelta.imagery.scene import Scene

__all__ = [
    "BLOCK_STEPS",
    "ChangeFiles",
    "MaskLevel",
    "RunFolders",
    "block_step",
    "change_file_levels",
    "remove_stale_runs",
    "run_in_blocks",
    "runs_in_blocks",
]

#: The dock's progress bar runs to this many steps on the block path (per mille).
BLOCK_STEPS = 1000
#: Where each stage of the block runner starts and ends on the bar (per mille), from the
#: stage timings of an 8192² pair on two cores (align 1.1 s, fit 1.0 s, blocks 5.0 s,
#: candidates and the COG copies 1.4 s of 8.8 s; docs/design-desk-blocks.md).
STAGE_SPANS = {
    "open": (0, 10),
    "align": (10, 130),
    "fit": (130, 240),
    "blocks": (240, 850),
    "candidates": (850, 950),
    "write": (950, 960),
}
#: Bar positions of the steps after the runner: candidates read back, then saved.
READ_AT, SAVE_AT = 960, 970
#: Seconds between two progress steps sent to the window within one stage.
STEP_INTERVAL_S = 0.1

STAGE_TEXT = {
    "open": "opening scenes",
    "align": "aligning after onto before",
    "fit": "fitting the detector on a sample",
    "write": "mask.tif and score.tif written",
}


@dataclass(frozen=True)
class ChangeFiles:
    """A block run's maps as the files it wrote (what the desk shows instead of arrays).

    Attributes
    ----------
    folder : str
        The run folder: ``mask.tif`` (1 changed, 0 unchanged, 255 no data), ``score.tif``
        (NaN where no data), ``changes.geojson`` and ``run.json``.
    shape : (int, int)
        Rows and columns of the grid (the before scene's).
    threshold : float
    method, threshold_method : str
    parameters : dict
        As in :class:`~satdelta.imagery.detector.ChangeMaps`.
    """

    folder: str
    shape: tuple[int, int]
    threshold: float
    method: str
    threshold_method: str
    parameters: dict[str, Any]

    @property
    def mask_path(self) -> Path:
        """``mask.tif`` of the run."""
        return Path(self.folder) / "mask.tif"

    @property
    def score_path(self) -> Path:
        """``score.tif`` of the run."""
        return Path(self.folder) / "score.tif"


def runs_in_blocks(
    before: Scene, options: DetectionOptions, blocks_from_px: int = BLOCKS_FROM_PX
) -> bool:
    """Whether the desk runs this pair block by block.

    As ``satdelta detect --runner auto`` decides (:func:`~satdelta.imagery.block_run.uses_blocks`),
    with the grid size from which blocks are used given (``blocks_from_px``; the default is
    the CLI's), and only for georeferenced scenes (the candidates come back through
    ``changes.geojson``, which needs lon/lat).
    """
    return before.crs is not None and uses_blocks(before, options, from_px=blocks_from_px)


def block_step(stage: str, done: int, total: int) -> tuple[int, int, str]:
    """The dock's ``(step, BLOCK_STEPS, message)`` for a block runner progress call.

    Examples
    --------
    >>> block_step("blocks", 0, 81)
    (240, 1000, 'scoring block 0/81')
    >>> block_step("candidates", 81, 81)
    (950, 1000, 'joining candidates across block edges 81/81, writing the COGs and changes.geojson')
    >>> block_step("fit", 0, 0)[2]
    'fitting the detector on a sample'
    """
    start, end = STAGE_SPANS.get(stage, (0, 0))
    step = start + (end - start) * done // total if total else start
    if stage == "blocks":  # each block scored, decided and outlined in one pass
        text = f"scoring block {done}/{total}"
    elif stage == "candidates":
        text = f"joining candidates across block edges {done}/{total}"
        if total and done == total:  # then the COG copies and changes.geojson
            text += ", writing the COGs and changes.geojson"
    else:
        text = STAGE_TEXT.get(stage, stage)
    return step, BLOCK_STEPS, text


def run_in_blocks(
    before: Scene,
    after: Scene,
    options: DetectionOptions,
    folder: str | os.PathLike[str],
    *,
    send: Callable[[tuple[Any, ...]], None],
    block_px: int = BLOCK_PX,
) -> Any:
    """Run the block runner into ``folder``; return the desk's DetectionResult.

    ``send`` gets the dock's steps ``(step, BLOCK_STEPS, message)`` (at most one per
    :data:`STEP_INTERVAL_S` within a stage, the first and last always; from the runner's
    threads, one at a time), then ``(READ_AT, BLOCK_STEPS, message, ChangeLayers)`` once the
    maps are written, so the window shows them while the candidates are read and saved.
    The result's ``maps`` is a :class:`ChangeFiles`.
    """
    from satdelta.imagery.block_run import detect_in_files
    from satdelta.imagery.vectorize import from_feature_collection
    from satdelta.plugins.napari._detection import ChangeLayers, DetectionResult

    throttle = ProgressThrottle(STEP_INTERVAL_S)

    def progress(stage: str, done: int, total: int) -> None:
        if throttle.due(stage, done, total):
            send(block_step(stage, done, total))

    summary = detect_in_files(before, after, folder, options, block_px=block_px, progress=progress)
    det = summary["detection"]
    files = ChangeFiles(
        folder=os.fspath(folder),
        shape=(before.height, before.width),
        threshold=float(det["threshold"]),
        method=det["method"],
        threshold_method=det["threshold_method"],
        parameters=det["parameters"],
    )
    layers = ChangeLayers(files, before.transform, before.crs)  # type: ignore[arg-type]
    n = summary["polygons"]["count"]
    send((READ_AT, BLOCK_STEPS, f"reading {n} candidates", layers))
    with open(Path(folder) / "changes.geojson", encoding="utf-8") as fh:
        fc = json.load(fh)
    polygons = from_feature_collection(fc, before.crs)
    send((SAVE_AT - 1, BLOCK_STEPS, f"{len(polygons)} candidate regions"))
    return DetectionResult(
        files,  # type: ignore[arg-type]
        before.transform,
        before.crs,
        polygons=polygons,
        provenance=fc["satdelta"]["run"],
        shift_px=tuple(summary["alignment"]["shift_before_px"]),
    )


class MaskLevel:
    """One level of ``mask.tif`` as 0/1 (no data, 255, shown as unchanged): an array-like.

    Wraps a :class:`~satdelta.imagery.pyramid.PyramidLevel`; indexing reads only that
    window.
    """

    def __init__(self, level: Any) -> None:
        self.level = level
        self.shape = level.shape
        self.ndim = level.ndim
        self.dtype = np.dtype(np.uint8)
        self.size = level.size

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        return (np.asarray(self.level[key]) == 1).view(np.uint8)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)


def change_file_levels(files: ChangeFiles) -> tuple[list[Any], list[Any], tuple[float, float]]:
    """Score levels, mask levels (0/1) and the score's contrast limits of a block run.

    Lazy array-likes, one per COG level (full resolution first); the limits are the score's
    range in the smallest overview (the only level read whole).
    """
    import warnings

    from satdelta.imagery.pyramid import open_pyramid

    score = list(open_pyramid(files.score_path, bands=(1,), layout="none").levels)
    mask_pyramid = open_pyramid(files.mask_path, bands=(1,), layout="none")
    mask = [MaskLevel(level) for level in mask_pyramid.levels]
    small = np.asarray(score[-1][...])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN
        lo, hi = float(np.nanmin(small)), float(np.nanmax(small))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        lo, hi = 0.0, 1.0
    return score, mask, (lo, hi if hi > lo else lo + 1.0)


class RunFolders:
    """The dock's run folders: ``<temp>/satdelta-desk-<pid>-<random>/run-<n>``.

    A pair run block by block writes its outputs to the next run folder; the window reads
    its maps from there while they are shown. :meth:`prune` removes the folders no layer
    shows (a later run replaced them, or the run failed or was cancelled), :meth:`remove`
    all of them (the dock closed; also at interpreter exit). The temporary folder is
    Python's (``TMPDIR``), or ``parent`` when given.
    """

    def __init__(self, parent: str | os.PathLike[str] | None = None) -> None:
        self.parent = parent
        self.root: Path | None = None
        self._count = 0
        self._finalizer: Any = None

    def next(self) -> str:
        """A new run folder's path (not created: the block runner creates it)."""
        import shutil
        import tempfile
        import weakref

        if self.root is None or not self.root.is_dir():
            remove_stale_runs(self.parent)
            self.root = Path(
                tempfile.mkdtemp(prefix=f"{RUNS_PREFIX}{os.getpid()}-", dir=self.parent)
            )
            self._finalizer = weakref.finalize(self, shutil.rmtree, self.root, True)
        self._count += 1
        return os.fspath(self.root / f"run-{self._count}")

    def prune(self, keep: set[str]) -> None:
        """Remove everything in the root but the run folders named in ``keep``."""
        import shutil

        if self.root is None or not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if os.fspath(entry) not in keep:
                shutil.rmtree(entry, ignore_errors=True)

    def remove(self) -> None:
        """Remove the root and every run folder in it."""
        if self._finalizer is not None:
            self._finalizer()  # rmtree, once
        self.root = None


#: Prefix of the dock's temporary folders (the pid that made one follows it).
RUNS_PREFIX = "satdelta-desk-"


def remove_stale_runs(parent: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the run folders of desks whose process is gone (napari crashed or was killed).

    Returns the folders removed.
    """
    import shutil
    import tempfile

    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    removed = []
    for root in base.glob(f"{RUNS_PREFIX}*-*"):
        pid_text = root.name[len(RUNS_PREFIX) :].split("-", 1)[0]
        if not root.is_dir() or not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
