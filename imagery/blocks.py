"""Change detection block by block: the window plan and what each window keeps.

Pure: arrays in, arrays and plain objects out. A fitted
:class:`~satdelta.imagery.detector.ChangeDetector` is applied to each window with its halo
(:func:`apply_window`), which keeps the block's score, its mask (every region that is not
certainly smaller than the minimum size), the outlines of its regions and small records
for what is not window-local: the region labels near its edges, and per-region sums for
the candidates. Those are resolved across blocks by :mod:`satdelta.imagery.block_join`; the
file-reading runner is :mod:`satdelta.imagery.block_run`; what is exact and what is not:
``docs/design-blocks.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from satdelta.imagery.candidates import RING_PX
from satdelta.imagery.cues import SEGMENT_M
from satdelta.imagery.detector import ChangeDetector, score_both
from satdelta.imagery.errors import InvalidParameterError
from satdelta.imagery.morphology import MERGE_GAP_PX, group_labels, square_dilation
from satdelta.imagery.polygonize import polygonize
from scipy import ndimage

__all__ = [
    "Block",
    "BlockLabels",
    "BlockPieces",
    "BlockResult",
    "Fragments",
    "apply_window",
    "block_starts",
    "plan_blocks",
    "window_halo_px",
]

#: Pixels past a block's own the per-block records need exact (the candidates' ring).
MARGIN_PX = RING_PX + 1
#: A last row or column of blocks narrower than ``block_px // SLIVER_FRACTION`` joins the
#: one before it (8192 px in blocks of 1024 after a first of 1016 left an 8-pixel sliver:
#: 17 of 81 blocks, each paying a block's fixed costs for almost no pixels).
SLIVER_FRACTION = 4


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


#: Up to this many labels a block's outlines fill their pack label by label, beyond it in
#: one scatter of all changed pixels (a scan of the whole block: 1-2 ms more on the 8192²
#: pair's blocks of about 30 labels; 45 ms less on NAIP blocks of about 1,500).
FEW_LABELS = 64

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
    >>> [b.cols.stop - b.cols.start for b in plan_blocks((16, 8192), 1024, 1, (16, 1016))[0]]
    [1016, 1024, 1024, 1024, 1024, 1024, 1024, 1032]
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
    if len(starts) > 1 and n - starts[-1] < block_px // SLIVER_FRACTION:
        starts.pop()  # a sliver at the far edge joins the block before it
    return [(a, n if k == len(starts) - 1 else starts[k + 1]) for k, a in enumerate(starts)]


def block_starts(plan: Sequence[Sequence[Block]]) -> tuple[list[int], list[int]]:
    """First grid row of each row of blocks, first grid column of each column of blocks."""
    return [line[0].rows.start for line in plan], [b.cols.start for b in plan[0]]


@dataclass(frozen=True)
class Fragments:
    """Per-region sums of one block, for regions of the mask before the size filter.

    A region (``group_labels`` with the candidates' gap on the block plus its margin) is
    named by the block's label of one of its own pixels, or, when it has none (it lies in
    the margin), by its anchor: its first pixel in raster order (grid row, col), within
    MARGIN_PX of a neighbouring block's edge. Sums cover the block's own pixels only, so
    each pixel counts once over all blocks.

    Attributes
    ----------
    anchors : (K, 2) int64 ndarray
    labels : (K,) int64 ndarray
        The block's label (:class:`BlockLabels`) of one of the region's own pixels; 0 when it
        has none.
    count, score_sum, score_n : (K,) arrays
        Changed pixels, sum and number of finite scores over them.
    inside : (K, 2, 2, B) float64 ndarray
        Sum and sum of squares (axis 1) per date (axis 2: before, after) per band.
    ring_n : (K,) int64 ndarray
    ring_sum : (K, 2, B) float64 ndarray
        Pixels and per-date per-band sums of the ring (within RING_PX, valid, not changed).
    """

    anchors: NDArray[np.int64]
    labels: NDArray[np.int64]
    count: NDArray[np.int64]
    score_sum: NDArray[np.float64]
    score_n: NDArray[np.int64]
    inside: NDArray[np.float64]
    ring_n: NDArray[np.int64]
    ring_sum: NDArray[np.float64]


@dataclass(frozen=True)
class BlockLabels:
    """A block's own region labels (1..n) within MARGIN_PX of its edges, and their sizes.

    The labels are the 4-connected components of the mask before the size filter dilated to
    bridge the candidates' gap (on the block grown by one pixel, so that labels meeting
    across a block edge can be joined).

    Attributes
    ----------
    top, bottom : (m, w) uint16 or int32 ndarray
        The first and last ``m = min(MARGIN_PX, h)`` rows of labels (0 = no region).
    left, right : (h, m') uint16 or int32 ndarray
        The first and last ``m' = min(MARGIN_PX, w)`` columns.
    counts : (n,) int64 ndarray
        Changed pixels (before the size filter) of labels 1..n.
    """

    top: NDArray[np.integer]
    bottom: NDArray[np.integer]
    left: NDArray[np.integer]
    right: NDArray[np.integer]
    counts: NDArray[np.int64]

    @classmethod
    def of(cls, lab: NDArray[np.int32], counts: NDArray[np.int64]) -> BlockLabels:
        """The strips of a block's ``(h, w)`` labels ``lab`` (uint16 when they fit: the
        strips are most of what a block keeps)."""
        m = MARGIN_PX
        kind = np.uint16 if counts.size < 2**16 else np.int32
        strips = (lab[:m], lab[-m:], lab[:, :m], lab[:, -m:])
        return cls(*(x.astype(kind) for x in strips), counts)

    @property
    def edges(self) -> tuple[NDArray[np.integer], ...]:
        """Labels along the top, bottom, left and right edge."""
        return self.top[0], self.bottom[-1], self.left[:, 0], self.right[:, -1]

    def at(self, row: int, col: int) -> int:
        """Label of the block's pixel (row, col) (block coordinates, within MARGIN_PX of an
        edge)."""
        h, w = self.left.shape[0], self.top.shape[1]
        if row < self.top.shape[0]:
            return int(self.top[row, col])
        if row >= h - self.bottom.shape[0]:
            return int(self.bottom[row - (h - self.bottom.shape[0]), col])
        if col < self.left.shape[1]:
            return int(self.left[row, col])
        if col >= w - self.right.shape[1]:
            return int(self.right[row, col - (w - self.right.shape[1])])
        raise InvalidParameterError(
            f"pixel ({row}, {col}) is more than {MARGIN_PX} px from the edges of a {h} x {w} "
            "block: only labels near the edges are kept."
        )


@dataclass(frozen=True)
class BlockPieces:
    """What the candidates take from a block's mask, by the block's labels.

    Attributes
    ----------
    outlines : dict of int to list of Polygon or MultiPolygon
        Pixel-edge outline (grid coordinates) of each label's changed pixels: one Polygon,
        or one MultiPolygon of its disjoint pieces.
    first : dict of int to int
        Raster index (row * width + col in the grid) of each label's first changed pixel.
    undecided : dict of int to (k,) int64 ndarray
        Labels on an edge with fewer changed pixels than the minimum size: whether their
        candidate is kept depends on the blocks beside. Their changed pixels, as indexes
        (row * w + col) into the block.
    """

    outlines: dict[int, list]
    first: dict[int, int]
    undecided: dict[int, NDArray[np.int64]]


@dataclass(frozen=True)
class BlockResult:
    """What :func:`apply_window` keeps of one block.

    Attributes
    ----------
    block : Block
    score : (h, w) float32 ndarray
        The block's own score, NaN where not valid.
    valid : (h, w) bool ndarray
        True = both dates have data.
    changed : (h, w) bool ndarray
        True = changed: the mask before the size filter where the score is finite, less the
        regions certainly smaller than the minimum size (off the block's edges); the
        ``pieces.undecided`` labels are still in it.
    fragments : Fragments
    labels : BlockLabels
    pieces : BlockPieces
    """

    block: Block
    score: NDArray[np.float32]
    valid: NDArray[np.bool_]
    changed: NDArray[np.bool_]
    fragments: Fragments
    labels: BlockLabels
    pieces: BlockPieces


def apply_window(
    det: ChangeDetector,
    block: Block,
    before: NDArray,
    after: NDArray,
    valid: NDArray[np.bool_],
    grid_shape: tuple[int, int],
    transform: Affine = Affine.identity(),
) -> BlockResult:
    """Score and decide one outer window; keep the block's own results, outlines and sums.

    ``before`` and ``after`` are the aligned dates on the outer window (float32, not
    normalised), ``valid`` True where both have data. The window must carry
    ``det.halo_px + MARGIN_PX`` of context where the grid has it (:func:`plan_blocks`).
    ``transform`` is the grid's (for the outlines).
    """
    a_n = after if det.normalisation is None else det.normalisation.apply(after)
    fine, s = score_both(det.score, before, a_n, valid)
    pre = det.local_mask(fine, s, valid, det.segments(before, a_n))
    del fine, a_n
    inner = block.inner
    ok = valid[inner] & np.isfinite(s[inner])
    grown = _grown_by_one(pre, block, grid_shape)
    lab, n = _block_labels(grown)
    pre_own = grown[1:-1, 1:-1]
    counts = np.bincount(np.take(lab, np.flatnonzero(pre_own)), minlength=n + 1)[1:]
    labels = BlockLabels.of(lab, counts)
    frag = _fragments(block, pre, s, before, after, valid, lab)
    # a label off the edges is a whole candidate: below the minimum size it is dropped here
    small = np.zeros(n + 1, bool)
    small[1:] = counts < max(det.min_pixels, 1)
    on_edge = np.zeros(n + 1, bool)
    for edge in labels.edges:
        on_edge[edge] = True
    changed = pre_own & ok & np.take(~(small & ~on_edge), lab)  # take: 2x fancy indexing
    small[0] = False
    pieces = _pieces(changed, lab, small & on_edge, block, transform, grid_shape[1])
    return BlockResult(block, s[inner].copy(), valid[inner].copy(), changed, frag, labels, pieces)


def _pieces(
    changed: NDArray[np.bool_],
    lab: NDArray[np.int32],
    undecided: NDArray[np.bool_],
    block: Block,
    transform: Affine,
    width: int,
) -> BlockPieces:
    """Outlines, first pixels and undecided pixels of a block's labels."""
    at_px = np.flatnonzero(changed)  # raster order: the block's and the grid's agree
    if at_px.size == 0:
        return BlockPieces({}, {}, {})
    rows, cols = np.divmod(at_px, changed.shape[1])  # (5x faster than np.nonzero)
    at = np.take(lab, at_px)
    used, first_at = np.unique(at, return_index=True)
    index = (rows[first_at] + block.rows.start) * width + cols[first_at] + block.cols.start
    first = dict(zip(used.tolist(), index.tolist(), strict=True))
    bt = transform @ Affine.translation(block.cols.start, block.rows.start)
    outlines = _outlines(lab, changed, bt)
    wait = undecided[at]
    flat = at_px[wait].astype(np.int64)
    which = at[wait]
    order = np.argsort(which, kind="stable")
    which, flat = which[order], flat[order]
    cuts = np.flatnonzero(np.diff(which)) + 1
    parts = np.split(flat, cuts) if which.size else []
    names = [int(part_label) for part_label in which[np.r_[0, cuts]]] if which.size else []
    return BlockPieces(outlines, first, dict(zip(names, parts, strict=True)))


def _outlines(
    lab: NDArray[np.int32], changed: NDArray[np.bool_], transform: Affine
) -> dict[int, list]:
    """Pixel-edge outlines (in ``transform``'s coordinates) of each label's changed pixels.

    GDAL's polygonize costs about 12 ns for every pixel it scans, changed or not (12 ms a
    1024² block). The labels' boxes, about a tenth of a block, are packed side by side into
    one small raster (shelves, tallest box first), polygonised at once
    (:func:`~satdelta.imagery.polygonize.polygonize`: GDAL's, the GIL released), and each
    outline is moved back from its place in the pack: the same polygons, in a few
    milliseconds.
    """
    found = ndimage.find_objects(lab)
    boxes = [(k + 1, sl) for k, sl in enumerate(found) if sl is not None]
    boxes.sort(key=lambda item: item[1][0].start - item[1][0].stop)  # tallest first
    width = lab.shape[1]
    # each label's move from the block to its place in the pack (rows, cols), by label
    moved = np.zeros((len(found) + 1, 2), np.int64)
    x, y, shelf = 0, 0, 0
    for value, (rows, cols) in boxes:
        if x + cols.stop - cols.start > width:  # next shelf
            x, y, shelf = 0, y + shelf, 0
        moved[value] = y - rows.start, x - cols.start
        x += cols.stop - cols.start
        shelf = max(shelf, rows.stop - rows.start)
    pack = np.zeros((y + shelf, width), np.int32)
    if len(boxes) <= FEW_LABELS:  # box by box: the boxes are a small part of the block
        for value, (rows, cols) in boxes:
            own = (lab[rows, cols] == value) & changed[rows, cols]
            r0, c0 = rows.start + moved[value, 0], cols.start + moved[value, 1]
            pack[r0 : r0 + own.shape[0], c0 : c0 + own.shape[1]][own] = value
    else:  # every label's changed pixels moved at once (the pack is as wide as the block:
        # a move is one offset in raster order)
        at = np.flatnonzero(changed)
        at_label = np.take(lab, at)
        if not at_label.all():  # changed pixels of no label (none in apply_window's blocks)
            at, at_label = at[at_label > 0], at_label[at_label > 0]
        offset = moved[:, 0] * width + moved[:, 1]
        pack.ravel()[at + np.take(offset, at_label)] = at_label
    label, polygons = polygonize(pack, pack > 0, connectivity=4)
    if not label.size:
        return {}
    # every vertex moved back and through ``transform`` at once (one shapely object per
    # polygon made in Python cost 0.2 ms: most of a block's time on real imagery, with
    # thousands of small regions)
    corners = shapely.get_coordinates(polygons)
    back = np.repeat(moved[label], shapely.get_num_coordinates(polygons), axis=0)
    px, py = corners[:, 0] - back[:, 1], corners[:, 1] - back[:, 0]  # block pixels
    a, b, c0, d, e, f = transform[:6]
    polygons = shapely.set_coordinates(
        polygons, np.stack([c0 + px * a + py * b, f + px * d + py * e], axis=1)
    )
    # a label's polygons (disjoint: 4-connected pieces of one region) as one MultiPolygon,
    # so that the join unions only what crosses block edges (a union of a region's pieces
    # within a block gave the same outline, 30x slower); the MultiPolygons made in bulk,
    # each label's polygons in the order traced, labels in the order first traced
    order = np.argsort(label, kind="stable")
    by_label = label[order]
    starts = np.flatnonzero(np.r_[True, by_label[1:] != by_label[:-1]])
    counts = np.diff(np.r_[starts, label.size])
    multi = counts > 1
    grouped = polygons[order]
    outline = grouped[starts]  # one polygon: itself
    in_multi = np.repeat(multi, counts)
    outline[multi] = shapely.multipolygons(
        grouped[in_multi], indices=np.repeat(np.arange(int(multi.sum())), counts[multi])
    )
    first_traced = np.argsort(order[starts], kind="stable")
    return {
        int(v): [g]
        for v, g in zip(by_label[starts][first_traced].tolist(), outline[first_traced], strict=True)
    }


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
    lab: NDArray[np.int32],
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
    h, width = labels.shape
    # every region pixel (raster order) and its region; anchors: each region's first pixel
    # (labels are numbered in that order, so a pixel is its region's first when its label
    # is larger than every one before it)
    at = np.flatnonzero(pre_e)  # where labels > 0 (faster on the bool mask)
    seq = labels.ravel()[at]
    first = np.ones(seq.size, bool)
    first[1:] = seq[1:] > np.maximum.accumulate(seq)[:-1]
    rows, cols = at // width + er.start, at % width + ec.start  # in the outer window
    anchors = np.stack(
        [block.outer_rows.start + rows[first], block.outer_cols.start + cols[first]], axis=1
    ).astype(np.int64)
    # the block's own changed pixels and their regions
    own = (rows >= ir.start) & (rows < ir.stop) & (cols >= ic.start) & (cols < ic.stop)
    rows, cols, region = rows[own], cols[own], seq[own].astype(np.intp) - 1
    count = np.bincount(region, minlength=n).astype(np.int64)
    # each region named by the block's label of one of its own pixels (any: they are all in
    # one candidate), 0 when it has none
    named = np.zeros(n, np.int64)
    named[region] = lab[rows - ir.start, cols - ic.start]
    outer_w = s.shape[1]
    inside_at = rows * outer_w + cols
    sv = np.take(s.ravel(), inside_at)
    fin = np.isfinite(sv)
    score_sum = np.bincount(region[fin], weights=sv[fin].astype(np.float64), minlength=n)
    score_n = np.bincount(region[fin], minlength=n).astype(np.int64)
    # rings: within RING_PX of a region (a square), valid, unchanged, the block's own
    own_e = (
        slice(ir.start - er.start, ir.stop - er.start),
        slice(ic.start - ec.start, ic.stop - ec.start),
    )
    base = np.zeros(pre_e.shape, bool)
    base[own_e] = ~pre_e[own_e] & valid[ir, ic]
    ring_e, rk = (_rings_by_region if n <= FEW_LABELS else _rings_at_once)(labels, base)
    ring_r, ring_c = np.divmod(ring_e, width)
    ring_idx = (ring_r + er.start) * outer_w + ring_c + ec.start
    ring_n = np.bincount(rk, minlength=n).astype(np.int64)
    inside = np.zeros((n, 2, 2, nb), np.float64)
    ring_sum = np.zeros((n, 2, nb), np.float64)
    for d, img in enumerate((before, after)):
        flat = img.reshape(nb, -1)  # a view for arrays of whole rows (a copy otherwise)
        x = np.take(flat, inside_at, axis=1).astype(np.float64)  # take: 2x fancy indexing
        y = np.take(flat, ring_idx, axis=1).astype(np.float64)
        for band in range(nb):
            inside[:, 0, d, band] = np.bincount(region, weights=x[band], minlength=n)
            inside[:, 1, d, band] = np.bincount(region, weights=x[band] * x[band], minlength=n)
            ring_sum[:, d, band] = np.bincount(rk, weights=y[band], minlength=n)
    return Fragments(anchors, named, count, score_sum, score_n, inside, ring_n, ring_sum)


def _rings_by_region(
    labels: NDArray[np.int32], base: NDArray[np.bool_]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Every (pixel, region) of the regions' rings: pixels of ``base`` within RING_PX (a
    square) of a pixel of region ``k + 1`` of ``labels``, as flat indices into ``labels`` and
    region indices ``k``; by region, each region's pixels in raster order. Region by region,
    in each one's box."""
    ring_at, ring_region = [], []
    width = labels.shape[1]
    for k, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None:
            continue
        box = tuple(
            slice(max(x.start - RING_PX, 0), min(x.stop + RING_PX, dim))
            for x, dim in zip(sl, labels.shape, strict=True)
        )
        ring = square_dilation(labels[box] == k + 1, RING_PX)
        ring &= base[box]
        rr, cc = np.nonzero(ring)
        ring_at.append((rr + box[0].start) * width + cc + box[1].start)
        ring_region.append(np.full(rr.size, k, np.intp))
    if not ring_at:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return np.concatenate(ring_at).astype(np.intp), np.concatenate(ring_region)


def _rings_at_once(
    labels: NDArray[np.int32], base: NDArray[np.bool_]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """What :func:`_rings_by_region` gives, for blocks of many regions: the largest and the
    smallest label within reach of every pixel (square filters); where they agree the pixel
    is in that one region's ring, elsewhere the labels around it are read offset by offset;
    the pairs sorted by region, then pixel. No Python loop over regions (on NAIP blocks of
    about 1,500 regions the loop held the GIL for 60-80 ms)."""
    size = 2 * RING_PX + 1
    big = np.iinfo(np.int32).max
    top = ndimage.maximum_filter(labels, size=size, mode="constant", cval=0)
    low = ndimage.minimum_filter(
        np.where(labels > 0, labels, big), size=size, mode="constant", cval=big
    )
    near = base & (top > 0)
    one = np.flatnonzero(near & (top == low))
    pixels, regions = [one], [np.take(top, one)]
    several = np.flatnonzero(near & (top != low))
    if several.size:
        # the labels around each such pixel (0 past the edges), each label once a pixel
        padded = np.pad(labels, RING_PX)
        h, w = padded.shape
        rows, cols = np.divmod(several, labels.shape[1])
        at = rows * w + cols  # the window's first pixel in ``padded``
        offsets = (np.arange(size)[:, None] * w + np.arange(size)).ravel()
        around = np.sort(np.take(padded, at[:, None] + offsets), axis=1)
        new = np.ones(around.shape, bool)
        new[:, 1:] = around[:, 1:] != around[:, :-1]
        new &= around > 0
        pixels.append(np.broadcast_to(several[:, None], around.shape)[new])
        regions.append(around[new])
    pixel = np.concatenate(pixels).astype(np.int64)
    region = np.concatenate(regions).astype(np.int64) - 1
    order = np.argsort(region * labels.size + pixel)  # by region, then pixel
    return pixel[order].astype(np.intp), region[order].astype(np.intp)


def _block_labels(pre_grown: NDArray[np.bool_]) -> tuple[NDArray[np.int32], int]:
    """4-connected labels of the block's pixels on the mask dilated to bridge the gap."""
    half = -(-MERGE_GAP_PX // 2)
    lab, n = ndimage.label(square_dilation(pre_grown, half)[1:-1, 1:-1])
    return lab.astype(np.int32, copy=False), int(n)
