"""Change detection block by block: window plan, per-window apply, candidates across blocks.

Pure: arrays in, arrays and plain objects out. A fitted
:class:`~satdelta.imagery.detector.ChangeDetector` is applied to each window with its halo
(:func:`apply_window`); the minimum-size filter and the candidates, which are not
window-local, are resolved across blocks from small per-block records (:class:`GroupIndex`:
region labels joined over block edges) and the candidates' outlines traced per block are
joined into one polygon each (:func:`stitch_candidates`). The file-reading runner is
:mod:`satdelta.imagery.block_run`; what is exact and what is not: ``docs/design-blocks.md``.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.features import shapes
from satdelta.imagery.candidates import RING_PX, change_kind, rank_candidates
from satdelta.imagery.cues import SEGMENT_M
from satdelta.imagery.detector import ChangeDetector, score_both
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.morphology import MERGE_GAP_PX, group_labels
from satdelta.imagery.vectorize import ChangePolygon, change_polygons
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry import shape

__all__ = [
    "Block",
    "BlockLabels",
    "BlockResult",
    "CandidateCollector",
    "Fragments",
    "GroupIndex",
    "apply_window",
    "detect_in_blocks",
    "finish_block",
    "plan_blocks",
    "stitch_candidates",
    "window_halo_px",
]

#: Pixels past a block's own the per-block records need exact (the candidates' ring).
MARGIN_PX = RING_PX + 1


@dataclass(frozen=True)
class Block:
    """One block of the grid and the window read for it.

    Attributes
    ----------
    rows, cols : slice
        The block's own pixels in the grid.
    outer_rows, outer_cols : slice
        The window read: the block grown by the halo on every side, clipped to the grid.
    """

    rows: slice
    cols: slice
    outer_rows: slice
    outer_cols: slice

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows.stop - self.rows.start, self.cols.stop - self.cols.start

    @property
    def inner(self) -> tuple[slice, slice]:
        """The block's own pixels inside an array cut with the outer window."""
        r0, c0 = self.rows.start - self.outer_rows.start, self.cols.start - self.outer_cols.start
        h, w = self.shape
        return slice(r0, r0 + h), slice(c0, c0 + w)

    def around(self, margin: int) -> tuple[slice, slice]:
        """The block grown by ``margin`` (clipped to the outer window), in outer coordinates."""
        r, c = self.inner
        oh = self.outer_rows.stop - self.outer_rows.start
        ow = self.outer_cols.stop - self.outer_cols.start
        return (
            slice(max(r.start - margin, 0), min(r.stop + margin, oh)),
            slice(max(c.start - margin, 0), min(c.stop + margin, ow)),
        )


#: Segments of overlap a window gets around its block for the ``"cues"`` segment vote.
SEGMENT_OVERLAP = 4


def window_halo_px(det: ChangeDetector) -> int:
    """Pixels of context a block's window gets on each side.

    The detector's :attr:`~satdelta.imagery.detector.ChangeDetector.halo_px` (exact) plus
    :data:`MARGIN_PX` for the region sums; with the ``"cues"`` score also
    :data:`SEGMENT_OVERLAP` superpixel sides, so that the segments near the block, which
    SLIC seeds over the window it is given, are mostly those of a wider area (not exact:
    ``docs/design-blocks.md``).
    """
    halo = det.halo_px + MARGIN_PX
    if det.score.method == "cues":
        side = SEGMENT_M / (det.score.parameters.get("pixel_size_m") or 1.0)
        halo += int(math.ceil(SEGMENT_OVERLAP * side))
    return halo


def plan_blocks(
    shape: tuple[int, int],
    block_px: int,
    halo_px: int,
    first_px: tuple[int, int] | None = None,
) -> list[list[Block]]:
    """Blocks of about ``block_px`` covering a grid of ``shape``, in rows of blocks.

    ``first_px`` (rows, cols): the size of the first row and column of blocks (``block_px``
    when None), e.g. to put block edges in the middle of a file's tiles, so that a window's
    halo decodes one tile row or column more rather than two.

    Examples
    --------
    >>> plan = plan_blocks((20, 28), 16, 1)
    >>> [(b.rows, b.cols, b.outer_cols) for b in plan[0]]  # doctest: +NORMALIZE_WHITESPACE
    [(slice(0, 16, None), slice(0, 16, None), slice(0, 17, None)),
     (slice(0, 16, None), slice(16, 28, None), slice(15, 28, None))]
    >>> len(plan), plan[1][0].rows
    (2, slice(16, 20, None))
    >>> [b.cols for b in plan_blocks((20, 28), 16, 1, first_px=(16, 8))[0]]
    [slice(0, 8, None), slice(8, 24, None), slice(24, 28, None)]
    """
    rows, cols = shape
    first = (block_px, block_px) if first_px is None else first_px
    if (
        block_px < 16
        or halo_px < 0
        or min(rows, cols) < 1
        or not all(0 < f <= block_px for f in first)
    ):
        raise InvalidParameterError(
            f"blocks need block_px >= 16, halo_px >= 0, first blocks of 1..block_px and a "
            f"non-empty grid; got block_px={block_px}, halo_px={halo_px}, first_px={first_px}, "
            f"grid {shape}."
        )
    plan = []
    for r0, r1 in _spans(rows, block_px, first[0]):
        line = []
        for c0, c1 in _spans(cols, block_px, first[1]):
            line.append(
                Block(
                    slice(r0, r1),
                    slice(c0, c1),
                    slice(max(r0 - halo_px, 0), min(r1 + halo_px, rows)),
                    slice(max(c0 - halo_px, 0), min(c1 + halo_px, cols)),
                )
            )
        plan.append(line)
    return plan


def _spans(n: int, block_px: int, first_px: int) -> list[tuple[int, int]]:
    starts = [0, *range(first_px, n, block_px)] if first_px < n else [0]
    return [(a, min(a + (first_px if a == 0 else block_px), n)) for a in starts]


def block_starts(plan: Sequence[Sequence[Block]]) -> tuple[list[int], list[int]]:
    """First grid row of each row of blocks, first grid column of each column of blocks."""
    return [line[0].rows.start for line in plan], [b.cols.start for b in plan[0]]


@dataclass(frozen=True)
class Fragments:
    """Per-region sums of one block, for regions of the mask before the size filter.

    A region (``group_labels`` with the candidates' gap on the block plus its margin) is
    named by its anchor, its first pixel in raster order (grid row, col). Sums cover the
    block's own pixels only, so each pixel counts once over all blocks.

    Attributes
    ----------
    anchors : (K, 2) int64 ndarray
    count, score_sum, score_n : (K,) arrays
        Changed pixels, sum and number of finite scores over them.
    inside : (K, 2, 2, B) float64 ndarray
        Sum and sum of squares (axis 1) per date (axis 2: before, after) per band.
    ring_n : (K,) int64 ndarray
    ring_sum : (K, 2, B) float64 ndarray
        Pixels and per-date per-band sums of the ring (within RING_PX, valid, not changed).
    """

    anchors: NDArray[np.int64]
    count: NDArray[np.int64]
    score_sum: NDArray[np.float64]
    score_n: NDArray[np.int64]
    inside: NDArray[np.float64]
    ring_n: NDArray[np.int64]
    ring_sum: NDArray[np.float64]


@dataclass(frozen=True)
class BlockResult:
    """What :func:`apply_window` keeps of one block.

    Attributes
    ----------
    block : Block
    score : (h, w) float32 ndarray
        The block's own score, NaN where not valid.
    valid, ok : (h, w) bool ndarray
        True = both dates have data; ``ok`` also needs a finite score.
    pre : (h + 2, w + 2) bool ndarray
        The mask before the size filter on the block grown by one pixel (False past the grid).
    fragments : Fragments
    labels : BlockLabels
        The block's region labels at its edges and their sizes (for :class:`GroupIndex`).
    """

    block: Block
    score: NDArray[np.float32]
    valid: NDArray[np.bool_]
    ok: NDArray[np.bool_]
    pre: NDArray[np.bool_]
    fragments: Fragments
    labels: BlockLabels


@dataclass(frozen=True)
class BlockLabels:
    """A block's own region labels (1..n) on its four edges and each label's changed pixels.

    Attributes
    ----------
    top, bottom, left, right : 1-D int32 ndarray
        Labels along each edge (0 = no region).
    counts : (n,) int64 ndarray
        Changed pixels (before the size filter) of labels 1..n.
    """

    top: NDArray[np.int32]
    bottom: NDArray[np.int32]
    left: NDArray[np.int32]
    right: NDArray[np.int32]
    counts: NDArray[np.int64]

    @classmethod
    def of(cls, pre_grown: NDArray[np.bool_]) -> BlockLabels:
        """The labels of a block's ``pre`` mask grown by one pixel (:class:`BlockResult`)."""
        lab, n = _block_labels(pre_grown)
        counts = np.bincount(lab[pre_grown[1:-1, 1:-1]], minlength=n + 1)[1:]
        return cls(lab[0].copy(), lab[-1].copy(), lab[:, 0].copy(), lab[:, -1].copy(), counts)


def apply_window(
    det: ChangeDetector,
    block: Block,
    before: NDArray,
    after: NDArray,
    valid: NDArray[np.bool_],
    grid_shape: tuple[int, int],
) -> BlockResult:
    """Score and decide one outer window; keep the block's own results and region sums.

    ``before`` and ``after`` are the aligned dates on the outer window (float32, not
    normalised), ``valid`` True where both have data. The window must carry
    ``det.halo_px + MARGIN_PX`` of context where the grid has it (:func:`plan_blocks`).
    """
    a_n = after if det.normalisation is None else det.normalisation.apply(after)
    fine, s = score_both(det.score, before, a_n, valid)
    pre = det.local_mask(fine, s, valid, det.segments(before, a_n))
    del fine
    ok = valid & np.isfinite(s)
    inner = block.inner
    grown = _grown_by_one(pre, block, grid_shape)
    frag = _fragments(block, pre, s, before, after, valid)
    return BlockResult(
        block,
        s[inner].copy(),
        valid[inner].copy(),
        ok[inner].copy(),
        grown,
        frag,
        BlockLabels.of(grown),
    )


def _grown_by_one(pre: NDArray[np.bool_], block: Block, grid_shape: tuple[int, int]) -> NDArray:
    r, c = block.around(1)
    h, w = block.shape
    out = np.zeros((h + 2, w + 2), bool)
    r0 = block.rows.start - 1 - block.outer_rows.start  # outer row of out[0]
    c0 = block.cols.start - 1 - block.outer_cols.start
    out[r.start - r0 : r.stop - r0, c.start - c0 : c.stop - c0] = pre[r, c]
    return out


def _fragments(
    block: Block,
    pre: NDArray[np.bool_],
    s: NDArray[np.float32],
    before: NDArray,
    after: NDArray,
    valid: NDArray[np.bool_],
) -> Fragments:
    """Region sums of the block's own pixels (regions labelled on the block plus MARGIN_PX).

    The sums are taken with ``np.bincount`` over the pixels in raster order (each region's
    ring gathered region by region), in float64.
    """
    er, ec = block.around(MARGIN_PX)
    pre_e = pre[er, ec]
    labels, n = group_labels(pre_e, gap_px=MERGE_GAP_PX, connectivity=4)
    nb = before.shape[0]
    ir, ic = block.inner
    own = (slice(ir.start - er.start, ir.stop - er.start), slice(ic.start - ec.start, ic.stop - ec.start))
    # anchors: each region's first pixel in raster order (labels are numbered in that order,
    # so a pixel is its region's first when its label is larger than every one before it)
    flat = labels.ravel()
    at = np.flatnonzero(flat)
    lab = flat[at]
    first = np.ones(lab.size, bool)
    first[1:] = lab[1:] > np.maximum.accumulate(lab)[:-1]
    width = labels.shape[1]
    top, left = block.outer_rows.start + er.start, block.outer_cols.start + ec.start
    anchors = np.stack([top + at[first] // width, left + at[first] % width], axis=1).astype(np.int64)
    # the block's own changed pixels (positions in the outer arrays) and their regions
    rows, cols = np.nonzero(labels[own])
    region = labels[own][rows, cols] - 1
    rows += ir.start
    cols += ic.start
    count = np.bincount(region, minlength=n).astype(np.int64)
    sv = s[rows, cols]
    fin = np.isfinite(sv)
    score_sum = np.bincount(region[fin], weights=sv[fin].astype(np.float64), minlength=n)
    score_n = np.bincount(region[fin], minlength=n).astype(np.int64)
    # rings: within RING_PX of a region (a square), valid, unchanged, the block's own
    base = ~pre_e & valid[er, ec]
    outside = np.ones(base.shape, bool)
    outside[own] = False
    base[outside] = False
    ring_rows, ring_cols, ring_region = [], [], []
    for k, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None:
            continue
        box = tuple(
            slice(max(x.start - RING_PX, 0), min(x.stop + RING_PX, dim))
            for x, dim in zip(sl, pre_e.shape, strict=True)
        )
        ring = ndimage.maximum_filter(labels[box] == k + 1, size=2 * RING_PX + 1)
        ring &= base[box]
        rr, cc = np.nonzero(ring)
        ring_rows.append(rr + (box[0].start + er.start))
        ring_cols.append(cc + (box[1].start + ec.start))
        ring_region.append(np.full(rr.size, k, np.intp))
    rr = np.concatenate(ring_rows) if ring_rows else np.zeros(0, np.intp)
    cc = np.concatenate(ring_cols) if ring_cols else np.zeros(0, np.intp)
    rk = np.concatenate(ring_region) if ring_region else np.zeros(0, np.intp)
    ring_n = np.bincount(rk, minlength=n).astype(np.int64)
    inside = np.zeros((n, 2, 2, nb), np.float64)
    ring_sum = np.zeros((n, 2, nb), np.float64)
    for d, img in enumerate((before, after)):
        for band in range(nb):
            x = img[band][rows, cols].astype(np.float64)
            inside[:, 0, d, band] = np.bincount(region, weights=x, minlength=n)
            inside[:, 1, d, band] = np.bincount(region, weights=x * x, minlength=n)
            y = img[band][rr, cc].astype(np.float64)
            ring_sum[:, d, band] = np.bincount(rk, weights=y, minlength=n)
    return Fragments(anchors, count, score_sum, score_n, inside, ring_n, ring_sum)


def _block_labels(pre_grown: NDArray[np.bool_]) -> tuple[NDArray[np.int32], int]:
    """4-connected labels of the block's pixels on the mask dilated to bridge the gap."""
    half = -(-MERGE_GAP_PX // 2)
    grown = ndimage.maximum_filter(pre_grown, size=2 * half + 1, mode="constant", cval=False)
    lab, n = ndimage.label(grown[1:-1, 1:-1])
    return lab.astype(np.int32, copy=False), int(n)


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
                    np.where(e > 0, e.astype(np.int64) + total, 0)
                    for e in (bl.top, bl.bottom, bl.left, bl.right)
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

    def kept(self, min_pixels: int) -> NDArray[np.bool_]:
        """True for the components of at least ``min_pixels`` changed pixels (per component)."""
        keep = self.sizes >= max(min_pixels, 1)
        keep[self.component[0]] = False  # the background
        return keep

    def block_components(self, i: int, j: int, grown: NDArray[np.bool_]) -> NDArray[np.int64]:
        """Component of each of block (i, j)'s pixels (the background's where unchanged)."""
        lab, _ = _block_labels(grown)
        g = np.where(lab > 0, lab + self.offsets[i, j], 0)
        return self.component[g]


def block_outlines(
    changed: NDArray[np.bool_], comp: NDArray[np.int64], transform: Affine
) -> dict[int, list]:
    """Pixel-edge outlines of each component's pixels in one block (``transform``: the block's)."""
    pieces: dict[int, list] = {}
    if not changed.any():
        return pieces
    for geom, value in shapes(
        comp.astype(np.int32), mask=changed, connectivity=4, transform=transform
    ):
        pieces.setdefault(int(value), []).append(shape(geom))
    return pieces


def first_pixels(
    changed: NDArray[np.bool_], comp: NDArray[np.int64], block: Block, width: int
) -> dict[int, int]:
    """Raster index (row * width + col) of each component's first changed pixel in the block."""
    rows, cols = np.nonzero(changed)  # raster order within the block
    if rows.size == 0:
        return {}
    c = comp[rows, cols]
    idx = (rows + block.rows.start) * width + cols + block.cols.start
    # raster order inside a block is not the grid's; take each component's minimum index
    order = np.lexsort((idx, c))
    c, idx = c[order], idx[order]
    start = np.r_[True, c[1:] != c[:-1]]
    return dict(zip(c[start].tolist(), idx[start].tolist(), strict=True))


def finish_block(
    index: GroupIndex,
    keep: NDArray[np.bool_],
    i: int,
    j: int,
    pre: NDArray[np.bool_],
    ok: NDArray[np.bool_],
    transform: Affine,
    width: int,
) -> tuple[NDArray[np.bool_], NDArray[np.int64], dict[int, list], dict[int, int]]:
    """Block (i, j) after the size filter: its mask, components, outlines and first pixels.

    ``transform`` is the grid's; ``width`` its number of columns.
    """
    b = index.plan[i][j]
    comp = index.block_components(i, j, pre)
    changed = pre[1:-1, 1:-1] & keep[comp] & ok
    bt = transform @ Affine.translation(b.cols.start, b.rows.start)
    return changed, comp, block_outlines(changed, comp, bt), first_pixels(changed, comp, b, width)


class CandidateCollector:
    """Gathers the blocks' outlines, first pixels and region sums into candidates.

    Parameters
    ----------
    fragments : dict of (i, j) to Fragments
        Every block's region sums (from :func:`apply_window`).
    plan : list of list of Block
        The blocks (to find the block holding a region's anchor).
    """

    def __init__(
        self, fragments: dict[tuple[int, int], Fragments], plan: Sequence[Sequence[Block]]
    ):
        self.fragments = fragments
        self.row_starts, self.col_starts = block_starts(plan)
        self.anchors: dict[tuple[int, int], list[tuple[tuple[int, int], int, int, int]]] = {}
        for key, f in fragments.items():
            for n, (row, col) in enumerate(f.anchors.tolist()):
                where = (
                    bisect.bisect_right(self.row_starts, row) - 1,
                    bisect.bisect_right(self.col_starts, col) - 1,
                )
                self.anchors.setdefault(where, []).append((key, n, row, col))
        self.components = {key: np.zeros(len(f.count), np.int64) for key, f in fragments.items()}
        self.pieces: dict[int, list] = {}
        self.first: dict[int, int] = {}

    def add(
        self,
        i: int,
        j: int,
        comp: NDArray[np.int64],
        outlines: dict[int, list],
        first: dict[int, int],
    ) -> None:
        """Take block (i, j)'s part (from :func:`finish_block`); blocks in any order."""
        r0, c0 = self.row_starts[i], self.col_starts[j]
        for c, parts in outlines.items():
            self.pieces.setdefault(c, []).extend(parts)
        for c, v in first.items():
            self.first[c] = min(v, self.first.get(c, v))
        for key, n, row, col in self.anchors.get((i, j), ()):
            self.components[key][n] = comp[row - r0, col - c0]

    def candidates(
        self,
        *,
        crs: CRS | None,
        pixel_size_m: float | None,
        threshold: float,
        band_scales: tuple[NDArray, NDArray],
    ) -> list[ChangePolygon]:
        """The ranked candidates (:func:`stitch_candidates`) once every block was added."""
        return stitch_candidates(
            self.pieces,
            self.first,
            ((f, self.components[key]) for key, f in self.fragments.items()),
            crs=crs,
            pixel_size_m=pixel_size_m,
            threshold=threshold,
            band_scales=band_scales,
        )


def _distinctness(inside: NDArray, n: int, ring_mean: NDArray, scales: NDArray) -> float:
    """RMS over bands and pixels of (pixel - ring mean) / scale, from sums (see candidates)."""
    s1, s2 = inside
    ss = (s2 - 2 * ring_mean * s1 + n * ring_mean**2) / scales**2
    return float(math.sqrt(max(ss.sum(), 0.0) / (n * len(scales))))


def stitch_candidates(
    pieces: dict[int, list],
    first: dict[int, int],
    fragments: Iterable[tuple[Fragments, NDArray[np.int64]]],
    *,
    crs: CRS | None,
    pixel_size_m: float | None,
    threshold: float,
    band_scales: tuple[NDArray, NDArray],
) -> list[ChangePolygon]:
    """One :class:`ChangePolygon` per candidate from outlines and sums gathered per block.

    Parameters
    ----------
    pieces : dict of int to list of Polygon
        Outlines of each kept component's pixels, per block (:func:`block_outlines`).
    first : dict of int to int
        Each component's first pixel in raster order (the candidates' order before ranking).
    fragments : iterable of (Fragments, (K,) int array)
        Each block's region sums and the component of each region's anchor.
    band_scales : ((B,), (B,)) arrays
        Spread of each band of the before and after dates (the change kind's unit).
    """
    nb = len(band_scales[0])
    sums: dict[int, list] = {
        c: [0, 0.0, 0, np.zeros((2, 2, nb)), 0, np.zeros((2, nb))] for c in pieces
    }
    for frag, comps in fragments:
        for k, c in enumerate(comps.tolist()):
            acc = sums.get(c)
            if acc is None:
                continue
            acc[0] += int(frag.count[k])
            acc[1] += float(frag.score_sum[k])
            acc[2] += int(frag.score_n[k])
            acc[3] += frag.inside[k]
            acc[4] += int(frag.ring_n[k])
            acc[5] += frag.ring_sum[k]
    order = sorted(pieces, key=lambda c: first[c])
    geoms = []
    for c in order:
        parts = pieces[c]
        g = parts[0] if len(parts) == 1 else shapely.union_all(parts)
        # one canonical outline whatever the blocks: no vertex left on a block edge
        # (collinear), rings starting at the same vertex
        g = shapely.normalize(shapely.simplify(g, 0.0))
        geoms.append(shapely.orient_polygons(g))
    scores = [sums[c][1] / sums[c][2] if sums[c][2] else math.nan for c in order]
    counts = [sums[c][0] for c in order]
    polygons = change_polygons(geoms, scores, counts, crs, pixel_size_m)
    described = []
    for c, p in zip(order, polygons, strict=True):
        n, inside, rn, rsum = sums[c][0], sums[c][3], sums[c][4], sums[c][5]
        kind = "altered"
        if rn > 0 and n > 0:
            kind = change_kind(
                _distinctness(inside[:, 0], n, rsum[0] / rn, band_scales[0]),
                _distinctness(inside[:, 1], n, rsum[1] / rn, band_scales[1]),
            )
        described.append(dataclasses.replace(p, change=kind))
    return rank_candidates(described, threshold=threshold)


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
    (tests check both). ``block_px`` and ``first_px`` as for :func:`plan_blocks`.

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
        )
        for i, line in enumerate(plan)
        for j, b in enumerate(line)
    }
    index = GroupIndex(plan, lambda i, j: results[i, j].labels)
    keep = index.kept(det.min_pixels)
    collector = CandidateCollector({k: r.fragments for k, r in results.items()}, plan)
    score = np.empty(shape, np.float32)
    changed = np.zeros(shape, bool)
    for (i, j), r in results.items():
        b = r.block
        score[b.rows, b.cols] = r.score
        mask, comp, outlines, first = finish_block(
            index, keep, i, j, r.pre, r.ok, transform, shape[1]
        )
        changed[b.rows, b.cols] = mask
        collector.add(i, j, comp, outlines, first)
    if band_scales is None:
        nb = before.shape[0]
        band_scales = (np.ones(nb), np.ones(nb))
    polygons = collector.candidates(
        crs=crs,
        pixel_size_m=det.parameters.get("pixel_size_m"),
        threshold=det.threshold.threshold,
        band_scales=band_scales,
    )
    return score, changed, polygons
