"""What a block run holds per block and per candidate, kept in temporary files.

On real imagery a scene gives tens of thousands of candidates per 8192² (a field of small
fragments on NAIP), and their outlines, region sums and GeoJSON text grow with the scene:
held in memory until the end they took 1.5 GB at 8192² and would take about 25 GB at
40,000². The block runner (:mod:`satdelta.imagery.block_run`) keeps them on disk instead:

* :class:`RecordSpill`: each block's region sums and outlines, written by the block's thread
  and read back once when the candidates stage reaches the block;
* :class:`RankedCandidates`: each finished candidate's GeoJSON text, written as rows of
  blocks finish; only its rank key, area, change kind and place in the file (49 bytes)
  stay in memory,
  and the FeatureCollection is written in rank order at the end.

The files live in the run's staging folder (removed with it, also after a failure).
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import numpy as np
import shapely
from satdelta.imagery.blocks import BlockPieces
from satdelta.imagery.candidates import rank_key
from satdelta.imagery.errors import write_failure
from satdelta.imagery.vectorize import (
    CHANGE_KINDS,
    ChangePolygon,
    FeatureValues,
    spelled_features,
    write_spelled_collection,
)

__all__ = [
    "PreparedCandidates",
    "RankedCandidates",
    "RecordSpill",
    "packed_pieces",
    "prepared_candidates",
    "unpacked_pieces",
]


class PreparedCandidates(NamedTuple):
    """A part of the candidates as :class:`RankedCandidates` keeps them: the columns (rank
    strength, larger, first pixel, area, change kind) and each one's pickled GeoJSON text
    (none when the grid is not georeferenced)."""

    columns: tuple[np.ndarray, ...]
    texts: list[bytes]


def _write_at(fd: int, data: bytes, offset: int, path: Path) -> None:
    view = memoryview(data)
    done = 0
    try:
        while done < len(view):
            done += os.pwrite(fd, view[done:], offset + done)
    except OSError as exc:  # a full disk, most likely: one line, the run's files removed
        raise write_failure(path, exc) from exc


def _read_at(fd: int, size: int, offset: int) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise OSError(f"temporary file ended early: {len(data)} of {size} bytes at {offset}")
    return data


class RecordSpill:
    """Python records in one temporary file, written from any thread, each read back once.

    Parameters
    ----------
    path : Path
        The file (created or truncated; removed by :meth:`close`).

    Raises
    ------
    OutputError
        The file cannot be made or written (a full disk is said so).
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise write_failure(path, exc) from exc
        self._end = 0
        self._at: dict[Hashable, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def put(self, key: Hashable, record: Any) -> None:
        """Write ``record`` (picklable) under ``key``."""
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        offset = self.append(data)
        with self._lock:
            self._at[key] = (offset, len(data))

    def take(self, key: Hashable) -> Any:
        """The record written under ``key``, forgotten here (KeyError when there is none)."""
        with self._lock:
            offset, size = self._at.pop(key)
        return pickle.loads(self.read(offset, size))

    def append(self, data: bytes) -> int:
        """Write ``data`` after everything written so far; its offset."""
        with self._lock:
            if self._fd < 0:
                raise ValueError(f"{self.path} is closed")
            offset = self._end
            self._end += len(data)
        _write_at(self._fd, data, offset, self.path)
        return offset

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes written at ``offset``."""
        return _read_at(self._fd, size, offset)

    def close(self) -> None:
        """Close and remove the file."""
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> RecordSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def packed_pieces(pieces: BlockPieces) -> tuple[Any, ...]:
    """``pieces`` as arrays and one WKB blob per outline (what :func:`unpacked_pieces` reads):
    pickling each shapely geometry on its own costs a Python call per geometry."""
    names = list(pieces.outlines)
    sizes = np.array([len(pieces.outlines[k]) for k in names], np.int64)
    flat = np.asarray([g for k in names for g in pieces.outlines[k]], dtype=object)
    wkb = shapely.to_wkb(flat) if flat.size else flat
    first = np.array(list(pieces.first.items()), np.int64).reshape(-1, 2)
    return np.array(names, np.int64), sizes, wkb, first, pieces.undecided


def unpacked_pieces(packed: tuple[Any, ...]) -> BlockPieces:
    """The :class:`BlockPieces` that :func:`packed_pieces` packed (the same geometries)."""
    names, sizes, wkb, first, undecided = packed
    geoms = shapely.from_wkb(wkb) if len(wkb) else []
    cuts = np.cumsum(sizes)[:-1].tolist()
    parts = np.split(np.asarray(geoms, dtype=object), cuts) if len(names) else []
    outlines = {int(k): list(p) for k, p in zip(names.tolist(), parts, strict=True)}
    starts = dict(zip(first[:, 0].tolist(), first[:, 1].tolist(), strict=True))
    return BlockPieces(outlines, starts, undecided)


def prepared_candidates(
    finished: Sequence[tuple[int, ChangePolygon]], *, threshold: float, georeferenced: bool
) -> PreparedCandidates:
    """What :meth:`RankedCandidates.add` keeps of (first pixel's raster index, candidate)
    pairs, made apart from it (in any thread, e.g. the block's own for the candidates that
    lie within one block) and taken by :meth:`RankedCandidates.add_prepared`."""
    polygons = [p for _, p in finished]
    keys = [rank_key(p, threshold=threshold) for p in polygons]
    texts = []
    if georeferenced and polygons:  # (spelled_features wants at least one)
        texts = [pickle.dumps(t) for t in spelled_features(polygons)]
    columns = (
        np.array([k[0] for k in keys], np.float64),
        np.array([k[1] for k in keys], np.int64),
        np.array([f for f, _ in finished], np.int64),
        np.array([p.area_m2 for p in polygons], np.float64),
        np.array([CHANGE_KINDS.index(p.change) if p.change else -1 for p in polygons], np.int8),
    )  # fmt: skip
    return PreparedCandidates(columns, texts)


class RankedCandidates:
    """Candidates handed over in parts, ranked and written as GeoJSON once all are in.

    The order is :func:`~satdelta.imagery.candidates.rank_candidates`' over all of them
    (ties on given order broken by the first pixel's raster index, which is that order).
    Each candidate's GeoJSON text (:func:`~satdelta.imagery.vectorize.spelled_features`)
    waits in ``path``; none is written when the grid is not georeferenced.

    Parameters
    ----------
    path : Path
        The temporary file (removed by :meth:`close`).
    threshold : float
        The run's threshold (for the evidence).
    georeferenced : bool
        Whether the candidates have WGS84 geometries (the GeoJSON can be written).
    """

    def __init__(self, path: Path, *, threshold: float, georeferenced: bool):
        self.threshold = threshold
        self.spill = RecordSpill(path) if georeferenced else None
        self._parts: list[tuple[np.ndarray, ...]] = []

    def add(self, finished: Sequence[tuple[int, ChangePolygon]]) -> None:
        """Take (first pixel's raster index, candidate) pairs (any order)."""
        self.add_prepared(self.prepared(finished))

    def prepared(self, finished: Sequence[tuple[int, ChangePolygon]]) -> PreparedCandidates:
        """What :meth:`add` keeps of ``finished``, made without touching this object (in any
        thread: the block runner's make those of the candidates within one block)."""
        return prepared_candidates(
            finished, threshold=self.threshold, georeferenced=self.spill is not None
        )

    def add_prepared(self, prepared: PreparedCandidates) -> None:
        """Take what :meth:`prepared` made."""
        columns, texts = prepared
        if not len(columns[0]):
            return
        offsets = sizes = np.zeros(len(columns[0]), np.int64)
        if self.spill is not None:
            sizes = np.array([len(t) for t in texts], np.int64)
            start = self.spill.append(b"".join(texts))
            offsets = start + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._parts.append((*columns, offsets, sizes))

    def _columns(self) -> tuple[np.ndarray, ...]:
        if not self._parts:
            empty = np.zeros(0, np.int64)
            return (empty.astype(np.float64), empty, empty, empty.astype(np.float64),
                    empty.astype(np.int8), empty, empty)  # fmt: skip
        columns = tuple(np.concatenate(c) for c in zip(*self._parts, strict=True))
        self._parts = [columns]
        return columns

    def order(self) -> np.ndarray:
        """Indexes (in the order added) of the candidates in rank order."""
        strength, larger, first, *_ = self._columns()
        return np.lexsort((first, larger, strength))

    def summary(self) -> tuple[int, float, dict[str, int]]:
        """Count, the sum of ``area_m2`` in rank order, and the count of each change kind."""
        _, _, _, area, kinds, _, _ = self._columns()
        total = sum(area[self.order()].tolist())
        counts = np.bincount(kinds[kinds >= 0], minlength=len(CHANGE_KINDS))
        return len(area), total, dict(zip(CHANGE_KINDS, counts.tolist(), strict=True))

    def write_geojson(self, fh: TextIO, *, run: dict[str, Any] | None = None) -> None:
        """The FeatureCollection of every candidate in rank order (as
        :func:`~satdelta.imagery.vectorize.write_feature_collection` writes the ranked
        candidates)."""
        if self.spill is None:
            raise ValueError("candidates without WGS84 geometries have no GeoJSON")
        write_spelled_collection(fh, self._ranked(), run=run)

    def _ranked(self) -> Iterator[tuple[str, FeatureValues]]:
        assert self.spill is not None
        *_, offsets, sizes = self._columns()
        for rank, k in enumerate(self.order().tolist(), start=1):
            geometry, values = pickle.loads(self.spill.read(int(offsets[k]), int(sizes[k])))
            yield geometry, values._replace(rank=rank)

    def close(self) -> None:
        """Remove the temporary file."""
        if self.spill is not None:
            self.spill.close()

    def __enter__(self) -> RankedCandidates:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
