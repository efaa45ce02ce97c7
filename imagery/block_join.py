"""Change detection block by block: what is resolved across blocks.

Pure: the records :func:`~satdelta.imagery.blocks.apply_window` keeps of each block in,
the candidates out. The minimum-size filter is resolved from the blocks' region labels
joined over block edges (:class:`GroupIndex`); :class:`CandidateCollector` keeps the
outlines and sums (:class:`RunningSums`) of the kept candidates still open, says which
pixels of each block's mask the filter clears, and joins each candidate's outlines into
one polygon once no block to come can add to it (a row of blocks at a time). The
candidates that lie within one block never reach it: :func:`whole_in_block` finishes them
with the block (most of them on real imagery, in the block runner's threads).
:func:`detect_in_blocks` runs it all on arrays in memory; the file runner is
:mod:`satdelta.imagery.block_run`. What is exact and what is not: ``docs/design-blocks.md``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from satdelta.imagery.blocks import (
    Block,
    BlockLabels,
    BlockPieces,
    Fragments,
    apply_window,
    block_starts,
    plan_blocks,
    window_halo_px,
)
from satdelta.imagery.candidates import change_kind, rank_candidates
from satdelta.imagery.detector import ChangeDetector
from satdelta.imagery.geodesic_areas import PolygonRings
from satdelta.imagery.vectorize import ChangePolygon, change_polygons
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "CandidateCollector",
    "FinishedPart",
    "GroupIndex",
    "RunningSums",
    "StitchSettings",
    "detect_in_blocks",
    "union_pieces",
    "whole_in_block",
]


class GroupIndex:
    """Candidates over the whole grid from per-block labels joined across block edges.

    Two changed pixels are one candidate when the mask dilated by the candidates' gap
    (:func:`~satdelta.imagery.morphology.group_labels`) joins them; each block labels its
    own pixels, and labels meeting across a block edge are joined (connected components of
    a graph of a few thousand nodes). Built from the blocks' :class:`BlockLabels`.
    """

    def __init__(self, plan: Sequence[Sequence[Block]], labels: Callable[[int, int], BlockLabels]):
        self.plan = plan
        self.offsets: dict[tuple[int, int], int] = {}
        total = 0
        counts: list[NDArray] = []
        edges: dict[tuple[int, int], tuple[NDArray, ...]] = {}
        for i, line in enumerate(plan):
            for j, _ in enumerate(line):
                bl = labels(i, j)
                self.offsets[i, j] = total
                edges[i, j] = tuple(
                    np.where(e > 0, e.astype(np.int64) + total, 0) for e in bl.edges
                )
                counts.append(bl.counts)
                total += len(bl.counts)
        self.total = total
        a_parts, b_parts = [], []
        for (i, j), (_, bottom, _, right) in edges.items():
            if (i, j + 1) in edges:
                a_parts.append(right)
                b_parts.append(edges[i, j + 1][2])
            if (i + 1, j) in edges:
                a_parts.append(bottom)
                b_parts.append(edges[i + 1, j][0])
        a = np.concatenate(a_parts) if a_parts else np.zeros(0, np.int64)
        b = np.concatenate(b_parts) if b_parts else np.zeros(0, np.int64)
        both = (a > 0) & (b > 0)
        graph = coo_matrix(
            (np.ones(int(both.sum()), np.int8), (a[both], b[both])), shape=(total + 1, total + 1)
        )
        _, comp = connected_components(graph, directed=False)
        self.component = comp.astype(np.int64)
        per_label = np.concatenate([np.zeros(1, np.int64), *counts])
        self.sizes = np.bincount(self.component, weights=per_label).astype(np.int64)
        # the last row of blocks each component has a label in
        row_of_label = np.concatenate(
            [np.full(1, -1, np.int64)]
            + [np.full(len(c), i, np.int64) for (i, _), c in zip(self.offsets, counts, strict=True)]
        )
        self.last_row = np.full(len(self.sizes), -1, np.int64)
        np.maximum.at(self.last_row, self.component, row_of_label)

    def kept(self, min_pixels: int) -> NDArray[np.bool_]:
        """True for the components of at least ``min_pixels`` changed pixels (per component)."""
        keep = self.sizes >= max(min_pixels, 1)
        keep[self.component[0]] = False  # the background
        return keep

    def components(self, i: int, j: int, labels: NDArray | Sequence[int]) -> NDArray[np.int64]:
        """Component of each of block (i, j)'s ``labels`` (1..n; 0 is the background)."""
        lab = np.asarray(labels, np.int64)
        return self.component[np.where(lab > 0, lab + self.offsets[i, j], 0)]


#: Candidates :meth:`CandidateCollector.finished` stitches at once: a row of blocks 16384
#: pixels wide finishes about 14,000 on real imagery (1.2 million vertices), whose
#: coordinates, WGS84 copies and GeoJSON text made at once took about 250 MB.
FINISHED_AT_ONCE = 1000


class CandidateCollector:
    """Gathers the blocks' outlines, first pixels and region sums of the kept candidates,
    and hands out each candidate once the blocks that can add to it are in.

    Blocks come in raster order; :meth:`finished` after each row of blocks keeps what is
    held to the candidates still open, so that a scene with hundreds of thousands of
    candidates is never held whole (with :meth:`finished` called only once, at the end,
    the blocks may come in any order). The region sums are added as
    the blocks come (:class:`RunningSums`).

    Parameters
    ----------
    plan : list of list of Block
    index : GroupIndex
        Built from every block's labels.
    min_pixels : int
        The minimum size of a candidate (pixels).
    labels : callable
        ``labels(i, j)``: block (i, j)'s :class:`BlockLabels` (for regions named by an anchor
        in a neighbouring block).
    crs : CRS or None
        The grid's (the candidates' WGS84 outlines and ellipsoidal areas).
    pixel_size_m : float or None
    band_scales : ((B,), (B,)) arrays
        Spread of each band of the before and after dates (the change kind's unit).
    """

    def __init__(
        self,
        plan: Sequence[Sequence[Block]],
        index: GroupIndex,
        min_pixels: int,
        labels: Callable[[int, int], BlockLabels],
        *,
        crs: CRS | None,
        pixel_size_m: float | None,
        band_scales: tuple[NDArray, NDArray],
    ):
        self.plan = plan
        self.index = index
        self.keep = index.kept(min_pixels)
        self.labels = labels
        self.settings = StitchSettings.of(crs, pixel_size_m, band_scales)
        self.row_starts, self.col_starts = block_starts(plan)
        self.pieces: dict[int, list] = {}
        self.first: dict[int, int] = {}
        self.handed_out = np.zeros(len(index.sizes), bool)  # finished: nothing may add to it
        self.sums = RunningSums(len(band_scales[0]))

    def add(self, i: int, j: int, fragments: Fragments, pieces: BlockPieces) -> NDArray[np.int64]:
        """Take block (i, j)'s part; the indexes (row * w + col) of the block's changed pixels
        the size filter drops (undecided labels of small candidates)."""
        index, keep = self.index, self.keep
        names = list(pieces.outlines)
        for label, c in zip(names, index.components(i, j, names).tolist(), strict=True):
            if keep[c]:
                self.pieces.setdefault(c, []).extend(pieces.outlines[label])
        names = list(pieces.first)
        for label, c in zip(names, index.components(i, j, names).tolist(), strict=True):
            if keep[c]:
                v = pieces.first[label]
                self.first[c] = min(v, self.first.get(c, v))
        comps = index.components(i, j, fragments.labels)
        for k in np.flatnonzero(fragments.labels == 0).tolist():  # named by an anchor
            row, col = (int(v) for v in fragments.anchors[k])
            bi = bisect.bisect_right(self.row_starts, row) - 1
            bj = bisect.bisect_right(self.col_starts, col) - 1
            label = self.labels(bi, bj).at(row - self.row_starts[bi], col - self.col_starts[bj])
            comps[k] = index.components(bi, bj, [label])[0]
        self.sums.add(fragments, comps, self.keep[comps])
        late = self.handed_out[comps].any() or self.handed_out[index.components(i, j, names)].any()
        if late:  # finished(last_row) was told a row too early: values would be lost
            raise RuntimeError(
                f"block ({i}, {j}) adds to a candidate handed out before it; blocks must come "
                "in raster order and finished(i - 1) only after row i is in"
            )
        names = list(pieces.undecided)
        dropped = [
            pieces.undecided[label]
            for label, c in zip(names, index.components(i, j, names).tolist(), strict=True)
            if not keep[c]
        ]
        return np.concatenate(dropped) if dropped else np.zeros(0, np.int64)

    def finished(self, last_row: int | None = None) -> Iterator[list[tuple[int, ChangePolygon]]]:
        """The candidates no block after row ``last_row`` can add to (all when None), as
        (first pixel's raster index, unranked candidate) in raster order of the first pixel,
        in lists of at most :data:`FINISHED_AT_ONCE`; they are no longer held here (even
        before the lists are made).

        A row's blocks add ring sums to candidates whose labels end a row of blocks above
        (regions in the block's margin are named by an anchor there): ``last_row`` is the
        row before the last one added in full.
        """
        return (part.stitched() for part in self.finished_parts(last_row))

    def finished_parts(self, last_row: int | None = None) -> list[FinishedPart]:
        """What :meth:`finished` stitches, not stitched yet: parts that can be stitched in
        any order, in any thread."""
        last = self.index.last_row
        ended = [c for c in self.pieces if last_row is None or last[c] <= last_row]
        order = sorted(ended, key=lambda c: self.first[c])
        sums = self.sums.taken(order)
        # kept by size, but none of its pixels had a finite score: no outline, sums dropped
        gone = [c for c in self.sums.open() if last_row is None or last[c] <= last_row]
        self.sums.taken(gone)
        self.handed_out[gone] = True
        pieces = [self.pieces.pop(c) for c in order]
        firsts = [self.first.pop(c) for c in order]
        self.handed_out[ended] = True
        return _in_parts(pieces, sums, firsts, self.settings)


def _in_parts(
    pieces: list[list], sums: dict[str, NDArray], firsts: list[int], settings: StitchSettings
) -> list[FinishedPart]:
    return [
        FinishedPart(
            pieces[k : k + FINISHED_AT_ONCE],
            {f: v[k : k + FINISHED_AT_ONCE] for f, v in sums.items()},
            firsts[k : k + FINISHED_AT_ONCE],
            settings,
        )
        for k in range(0, len(pieces), FINISHED_AT_ONCE)
    ]


@dataclass(frozen=True)
class StitchSettings:
    """What stitching needs besides the candidates: the grid's CRS (as WKT, each stitch
    makes its own: GDAL's spatial references are not to be used by two threads at once),
    its pixel size, and the spread of each band on each date (:class:`CandidateCollector`)."""

    crs_wkt: str | None
    pixel_size_m: float | None
    band_scales: tuple[NDArray, NDArray]

    @classmethod
    def of(
        cls, crs: CRS | None, pixel_size_m: float | None, band_scales: tuple[NDArray, NDArray]
    ) -> StitchSettings:
        return cls(None if crs is None else crs.to_wkt(), pixel_size_m, band_scales)


@dataclass(frozen=True)
class FinishedPart:
    """Finished candidates (at most :data:`FINISHED_AT_ONCE`) before they are stitched.

    Attributes
    ----------
    pieces : list of list
        Each candidate's outlines from the blocks it spans.
    sums : dict of str to ndarray
        Its region sums (:class:`RunningSums` fields), row k for candidate k.
    firsts : list of int
        Its first pixel's raster index.
    settings : StitchSettings
    """

    pieces: list[list]
    sums: dict[str, NDArray]
    firsts: list[int]
    settings: StitchSettings

    def stitched(self) -> list[tuple[int, ChangePolygon]]:
        """(first pixel's raster index, unranked candidate) of each candidate, in order (in
        any thread)."""
        st = self.settings
        polygons = _stitched(
            self.pieces, self.sums, crs=None if st.crs_wkt is None else CRS.from_wkt(st.crs_wkt),
            pixel_size_m=st.pixel_size_m, band_scales=st.band_scales,
        )  # fmt: skip
        return list(zip(self.firsts, polygons, strict=True))


def whole_in_block(
    fragments: Fragments, pieces: BlockPieces, labels: BlockLabels, settings: StitchSettings
) -> tuple[list[FinishedPart], Fragments, BlockPieces]:
    """Split off a block's candidates that no other block can add to, finished.

    They are the block's labels with an outline and no pixel within MARGIN_PX of the block's
    edges (none in ``labels``' strips): no neighbour's label meets them, and no
    neighbour's regions (in its margin, named by an anchor found in those strips) reach
    them, so their outline, size and sums are the block's alone (the size filter has
    already dropped the small ones: :func:`~satdelta.imagery.blocks.apply_window`). Their
    sums are added as :class:`CandidateCollector` adds them, region by region, so they are
    the same floats.

    Returns
    -------
    parts : list of FinishedPart
        Those candidates, in raster order of their first pixel.
    fragments, pieces
        What is left for the collector: the rest of the block's regions and labels.
    """
    names = np.fromiter(pieces.outlines, np.int64, len(pieces.outlines))
    strips = (labels.top, labels.bottom, labels.left, labels.right)
    near = np.zeros(len(labels.counts) + 1, bool)
    for strip in strips:
        near[strip.ravel()] = True
    whole = names[~near[names]]
    if not whole.size:
        return [], fragments, pieces
    firsts = [pieces.first[k] for k in whole.tolist()]
    order = np.argsort(firsts, kind="stable")
    whole = whole[order]
    is_whole = np.zeros(len(near), bool)
    is_whole[whole] = True
    theirs = is_whole[fragments.labels]
    sums = RunningSums(fragments.inside.shape[-1])
    sums.add(fragments, fragments.labels, theirs)
    taken = sums.taken(whole.tolist())
    parts = _in_parts(
        [pieces.outlines[k] for k in whole.tolist()], taken, [firsts[k] for k in order.tolist()],
        settings,
    )  # fmt: skip
    rest = Fragments(*(getattr(fragments, f.name)[~theirs] for f in fields(Fragments)))
    left = [k for k in pieces.outlines if not is_whole[k]]
    kept_pieces = BlockPieces(
        {k: pieces.outlines[k] for k in left},
        {k: v for k, v in pieces.first.items() if not is_whole[k]},
        pieces.undecided,
    )
    return parts, rest, kept_pieces


class RunningSums:
    """Each open component's region sums (:class:`Fragments` fields), added block by block.

    A component's sums are added in the order the blocks and their regions come, one
    region at a time (``np.add.at`` adds in index order), so the float sums do not depend
    on how the blocks are grouped; a component's sums are handed out once and its row of
    the arrays reused.

    Parameters
    ----------
    bands : int
        Bands of the ``inside`` and ``ring_sum`` fields.
    """

    def __init__(self, bands: int):
        self.shapes = {
            "count": ((), np.int64), "score_sum": ((), np.float64), "score_n": ((), np.int64),
            "inside": ((2, 2, bands), np.float64), "ring_n": ((), np.int64),
            "ring_sum": ((2, bands), np.float64),
        }  # fmt: skip
        self.arrays = {f: np.zeros((0, *shape), dtype) for f, (shape, dtype) in self.shapes.items()}
        self.row: dict[int, int] = {}
        self.free: list[int] = []

    def add(self, fragments: Fragments, comps: NDArray[np.int64], kept: NDArray[np.bool_]) -> None:
        """Add region k of ``fragments`` to component ``comps[k]`` where ``kept[k]``."""
        if not kept.any():
            return
        rows = np.array([self._row_of(c) for c in comps[kept].tolist()], np.int64)
        for field, total in self.arrays.items():
            np.add.at(total, rows, getattr(fragments, field)[kept])

    def open(self) -> list[int]:
        """Components with sums not yet taken."""
        return list(self.row)

    def taken(self, components: Sequence[int]) -> dict[str, NDArray]:
        """The sums of ``components`` (zeros for one never added), row k for component k;
        they are forgotten here."""
        rows = np.array([self._row_of(c) for c in components], np.int64)
        out = {f: total[rows] for f, total in self.arrays.items()}
        for c in components:
            at = self.row.pop(c)
            for total in self.arrays.values():
                total[at] = 0
            self.free.append(at)
        return out

    def _row_of(self, c: int) -> int:
        at = self.row.get(c)
        if at is not None:
            return at
        if not self.free:  # the arrays grow by half
            n = len(self.arrays["count"])
            grown = max(64, n + n // 2)
            for field, (shape, dtype) in self.shapes.items():
                bigger = np.zeros((grown, *shape), dtype)
                bigger[:n] = self.arrays[field]
                self.arrays[field] = bigger
            self.free = list(range(grown - 1, n - 1, -1))
        at = self.row[c] = self.free.pop()
        return at


def _distinctness(inside: NDArray, n: NDArray, ring_mean: NDArray, scales: NDArray) -> NDArray:
    """RMS over bands and pixels of (pixel - ring mean) / scale, from sums (see candidates).

    Per candidate: ``inside`` (C, 2, B) sums and sums of squares, ``n`` (C,) pixels,
    ``ring_mean`` (C, B); each candidate's bands summed in order, as one at a time.
    """
    s1, s2 = inside[:, 0], inside[:, 1]
    ss = (s2 - 2 * ring_mean * s1 + n[:, None] * ring_mean**2) / scales**2
    total = np.array([row.sum() for row in ss])
    return np.sqrt(np.maximum(total, 0.0) / (n * len(scales)))


def _turning_everywhere(geoms: NDArray) -> NDArray[np.bool_]:
    """True for each (Multi)Polygon whose every edge runs along x or y and that turns at
    every vertex: ``shapely.simplify(g, 0)``, which only drops the vertices on a straight
    line, leaves it as it is. Pixel outlines of a north-up grid traced in one block are."""
    r = PolygonRings.of(geoms)
    xy, ring, ring_part, part_geom = r.xy, r.vertex_ring, r.ring_part, r.part_geom
    if not len(xy):
        return np.ones(len(geoms), bool)
    dx, dy = np.diff(xy[:, 0]), np.diff(xy[:, 1])
    edge = ring[1:] == ring[:-1]  # consecutive vertices of one ring
    ring, along_x, along_y = ring[1:][edge], (dy == 0)[edge], (dx == 0)[edge]
    # a ring's edges alternate along x and y, its last edge (to the closing vertex) and its
    # first too; a zero-length edge is along both, a slanted one along neither
    same_ring = ring[1:] == ring[:-1]
    straight = same_ring & (along_x[1:] == along_x[:-1])
    first = np.flatnonzero(np.concatenate([[True], ~same_ring]))
    last = np.concatenate([first[1:], [len(ring)]]) - 1
    bad_edge = np.concatenate([straight, [False]]) | (along_x == along_y)
    bad_ring = np.logical_or.reduceat(bad_edge, first) | (along_x[first] == along_x[last])
    bad = np.zeros(len(geoms), bool)
    bad[part_geom[ring_part[ring[first]]][bad_ring]] = True
    return ~bad


def union_pieces(pieces: Sequence[Any]) -> Any:
    """``shapely.union_all(pieces)`` of one candidate's outlines from several blocks, with
    only the polygons that meet a polygon of another piece going through the overlay.

    Each piece (a block's Polygon or MultiPolygon of disjoint 4-connected outlines) can hold
    hundreds of polygons, most of them away from the block's edges (a field of fragments on
    real imagery); they are kept as they are, which is what the overlay would give them (the
    same point set; :meth:`CandidateCollector.finished` then makes the outline canonical). GEOS's
    overlay cost grows with every vertex it is given, not only with those it joins.

    Examples
    --------
    >>> a = shapely.MultiPolygon([shapely.box(0, 0, 2, 1), shapely.box(0, 3, 1, 4)])
    >>> b = shapely.box(2, 0, 3, 1)
    >>> union_pieces([a, b]).equals(shapely.union_all([a, b]))
    True
    """
    whole = np.asarray(pieces, dtype=object)
    parts, piece = shapely.get_parts(whole, return_index=True)
    # pieces lie in their own blocks, which meet only along their edges: a polygon can meet
    # another block's only where it reaches its own piece's box (a polygon on the block's
    # edge reaches the block's side, and the piece, inside the block, reaches no further),
    # so only those go through the tree
    box, piece_box = shapely.bounds(parts), shapely.bounds(whole)[piece]
    reach = np.flatnonzero((box == piece_box).any(axis=1))
    left, right = shapely.STRtree(parts[reach]).query(parts[reach], predicate="intersects")
    meets = np.zeros(len(parts), bool)
    meets[reach[left[piece[reach[left]] != piece[reach[right]]]]] = True
    if meets.all():
        return shapely.union_all(parts)
    joined = shapely.get_parts(shapely.union_all(parts[meets])) if meets.any() else []
    kept = [*joined, *parts[~meets]]
    return kept[0] if len(kept) == 1 else shapely.MultiPolygon(kept)


def _stitched(
    pieces: Sequence[list],
    sums: dict[str, NDArray],
    *,
    crs: CRS | None,
    pixel_size_m: float | None,
    band_scales: tuple[NDArray, NDArray],
) -> list[ChangePolygon]:
    """Unranked candidates of each list of ``pieces`` (in order) with their ``sums``."""
    if not pieces:
        return []
    merged = [parts[0] if len(parts) == 1 else union_pieces(parts) for parts in pieces]
    # one canonical outline whatever the blocks: no vertex left on a block edge
    # (collinear), rings starting at the same vertex
    geoms = np.asarray(merged, dtype=object)
    straight = ~_turning_everywhere(geoms)
    geoms[straight] = shapely.simplify(geoms[straight], 0.0)
    geoms = shapely.orient_polygons(shapely.normalize(geoms))
    n, ring_n = sums["count"], sums["ring_n"]
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(sums["score_n"] > 0, sums["score_sum"] / sums["score_n"], math.nan)
        ring_mean = sums["ring_sum"] / ring_n[:, None, None]
        before, after = (
            _distinctness(sums["inside"][:, :, date], n, ring_mean[:, date], band_scales[date])
            for date in (0, 1)
        )
    kinds = [
        change_kind(b, a) if described else "altered"
        for described, b, a in zip(
            ((ring_n > 0) & (n > 0)).tolist(), before.tolist(), after.tolist(), strict=True
        )
    ]
    return change_polygons(
        list(geoms), scores.tolist(), n.tolist(), crs, pixel_size_m, changes=kinds
    )


def detect_in_blocks(
    det: ChangeDetector,
    before: NDArray,
    after: NDArray,
    valid: NDArray[np.bool_],
    *,
    block_px: int,
    first_px: tuple[int, int] | None = None,
    transform: Affine = Affine.identity(),
    crs: CRS | None = None,
    band_scales: tuple[NDArray, NDArray] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.bool_], list[ChangePolygon]]:
    """Score, changed mask and candidates of in-memory arrays, computed block by block.

    The per-block steps :mod:`satdelta.imagery.block_run` runs on files, on arrays already
    aligned. The score and mask equal ``det.decide`` on the whole arrays, and the candidates
    hold the same pixels as :func:`~satdelta.imagery.vectorize.vectorize` makes of that mask
    (tests check both). ``block_px`` and ``first_px`` as for
    :func:`~satdelta.imagery.blocks.plan_blocks`.

    Returns
    -------
    score : (M, N) float32 ndarray
    changed : (M, N) bool ndarray
    candidates : list of ChangePolygon
        Ranked, one per candidate however many blocks it spans.
    """
    shape = valid.shape
    plan = plan_blocks(shape, block_px, window_halo_px(det), first_px)
    results = {
        (i, j): apply_window(
            det,
            b,
            before[:, b.outer_rows, b.outer_cols],
            after[:, b.outer_rows, b.outer_cols],
            valid[b.outer_rows, b.outer_cols],
            shape,
            transform,
        )
        for i, line in enumerate(plan)
        for j, b in enumerate(line)
    }
    if band_scales is None:
        nb = before.shape[0]
        band_scales = (np.ones(nb), np.ones(nb))
    index = GroupIndex(plan, lambda i, j: results[i, j].labels)
    collector = CandidateCollector(
        plan, index, det.min_pixels, lambda i, j: results[i, j].labels, crs=crs,
        pixel_size_m=det.parameters.get("pixel_size_m"), band_scales=band_scales,
    )  # fmt: skip
    score = np.empty(shape, np.float32)
    changed = np.zeros(shape, bool)
    finished = []
    for (i, j), r in results.items():  # raster order, as the file runner adds them
        b = r.block
        score[b.rows, b.cols] = r.score
        mask = r.changed.copy()
        whole, fragments, pieces = whole_in_block(
            r.fragments, r.pieces, r.labels, collector.settings
        )
        finished += [c for part in whole for c in part.stitched()]
        mask.ravel()[collector.add(i, j, fragments, pieces)] = False
        changed[b.rows, b.cols] = mask
        if j == len(plan[i]) - 1:
            finished += [c for part in collector.finished(i - 1) for c in part]
    finished += [c for part in collector.finished() for c in part]
    finished.sort(key=lambda item: item[0])  # raster order of the first pixel
    polygons = rank_candidates([p for _, p in finished], threshold=det.threshold.threshold)
    return score, changed, polygons
