"""Folded call trees with a node budget: the unit aggregate flamegraphs are stored, merged
and answered in.  Pure: numpy columns, no I/O.

A node is a stack of frame identities (function name, package) from the root, keyed by a
63-bit hash of that stack (`path`), so one stack in any two profiles is one node and trees
merge by summing columns per path.  Nodes are kept in topological order (by depth, then
path), so a parent always comes before its children.

`truncate` keeps the heaviest nodes by samples (a node's samples are every sample whose
stack passes through it, so a parent weighs at least as much as its child and the heaviest
set is closed under ancestors) and folds the children of a kept node that were not kept
into one `[other]` child holding their sums.  So:

* every kept node's numbers are those of the tree it was cut from, and the root total never
  changes: truncation moves weight into `[other]` nodes, it never drops or invents any;
* a node that was cut away weighed at most the heaviest node cut; `lost` adds that up over
  every truncation a tree went through (merging adds the trees' `lost`), so in any merged
  tree each node's samples are at most `lost` below the exact merge of the untruncated
  trees, and never above it.
"""

from __future__ import annotations

import dataclasses
import itertools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import zstandard

OTHER = "[other]"
# What is kept, in nodes: of one profile (by the analysis), of an hourly and of a daily
# bucket (by the store; up to 5/4 of these between two cuts).  bench/query.py measures what
# these cost the index and how far the answers are from the exact merge.
PROFILE_NODES = 256
HOUR_NODES = 2048
DAY_NODES = 8192
OTHER_FRAME = 0  # the frame id of [other] nodes; real frame ids are odd

Int64 = npt.NDArray[np.int64]
Int32 = npt.NDArray[np.int32]
Frame = tuple[str, str, bool]  # name, package, in_app

_PRIME = np.uint64(0x100000001B3)
_MASK63 = (1 << 63) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_frame_ids: dict[tuple[str, str], int] = {}


def frame_id(name: str, package: str) -> int:
    """A stable 63-bit id of a frame identity (FNV-1a; Python's hash changes per process)."""
    found = _frame_ids.get((name, package))
    if found is None:
        if len(_frame_ids) > 200_000:
            _frame_ids.clear()
        value = _FNV_OFFSET
        for byte in f"{name}\0{package}".encode():
            value = ((value ^ byte) * 0x100000001B3) & ((1 << 64) - 1)
        found = _frame_ids[(name, package)] = ((value >> 1) & _MASK63) | 1
    return found


def stack_step(parent_path: Int64, frame: Int64) -> Int64:
    """The paths one frame below `parent_path` (0 above the roots), element-wise."""
    with np.errstate(over="ignore"):
        mixed = (parent_path.astype(np.uint64) * _PRIME) ^ frame.astype(np.uint64)
    return ((mixed & np.uint64(_MASK63)) | np.uint64(1)).astype(np.int64)


def stack_path(frames: Sequence[int]) -> int:
    """The path of a stack of frame ids from the root."""
    path = np.zeros(1, np.int64)
    for frame in frames:
        path = stack_step(path, np.array([frame], np.int64))
    return int(path[0])


@dataclass(frozen=True)
class FlameTree:
    path: Int64
    parent: Int32  # index of the parent node, -1 for a root
    depth: Int32  # 0 for a root
    frame: Int64  # frame id (OTHER_FRAME for [other])
    occurrences: Int64  # trees (profiles) the node came from
    samples: Int64
    duration_ns: Int64
    self_time_ns: Int64
    lost: int = 0
    # Frame ids to (name, package, in_app), for the frames this tree introduces (the fold
    # of one profile); stored trees leave names to the store's frame dictionary.
    names: dict[int, Frame] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.path)

    @property
    def total_samples(self) -> int:
        return int(self.samples[self.parent < 0].sum())

    def parent_paths(self) -> Int64:
        return np.where(self.parent >= 0, self.path[np.maximum(self.parent, 0)], 0).astype(np.int64)


_VALUES = ("occurrences", "samples", "duration_ns", "self_time_ns")


def empty(lost: int = 0) -> FlameTree:
    i64, i32 = np.zeros(0, np.int64), np.zeros(0, np.int32)
    return FlameTree(i64, i32, i32, i64, i64, i64, i64, i64, lost=lost)


def _grouped(
    path: Int64,
    parent_path: Int64,
    depth: Int32,
    frame: Int64,
    values: Sequence[Int64],
    lost: int,
    names: dict[int, Frame],
    parent_row: Int64 | None = None,
) -> FlameTree:
    """Rows summed per path and put in topological order (a row whose parent path is not
    among the rows becomes a root).  With `parent_row` (each row's parent row, -1 for none)
    parents are found through the rows' groups instead of by searching their paths."""
    if not len(path):
        return empty(lost)
    order = np.argsort(path)
    ordered = path[order]
    differs = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(np.concatenate(([True], differs)))
    first = order[starts]
    unique = ordered[starts]
    sums = [np.add.reduceat(column[order], starts).astype(np.int64) for column in values]
    if parent_row is not None:
        group = np.empty(len(path), np.int64)
        group[order] = np.cumsum(np.concatenate(([0], differs)))
        above = parent_row[first]
        parent = np.where(above >= 0, group[np.maximum(above, 0)], -1)
    else:
        parents = parent_path[first]
        at = np.minimum(np.searchsorted(unique, parents), len(unique) - 1)
        parent = np.where((parents != 0) & (unique[at] == parents), at, -1)
    levels = depth[first].astype(np.int32)
    # `unique` is sorted by path: a stable sort by depth (a radix sort on 16 bits) makes
    # the order (depth, path).
    if len(levels) and int(levels.max()) < 1 << 15:
        topo = np.argsort(levels.astype(np.int16), kind="stable")
    else:
        topo = np.lexsort((unique, levels))
    renumber = np.empty(len(unique), np.int64)
    renumber[topo] = np.arange(len(unique))
    parent_sorted = parent[topo]
    parent_sorted = np.where(parent_sorted >= 0, renumber[np.maximum(parent_sorted, 0)], -1)
    return FlameTree(
        path=unique[topo],
        parent=parent_sorted.astype(np.int32),
        depth=levels[topo],
        frame=frame[first][topo].astype(np.int64),
        occurrences=sums[0][topo],
        samples=sums[1][topo],
        duration_ns=sums[2][topo],
        self_time_ns=sums[3][topo],
        lost=lost,
        names=names,
    )


def of_instances(
    path: Int64,
    parent_path: Int64,
    depth: Int32,
    frame: Int64,
    samples: Int64,
    duration_ns: Int64,
    self_time_ns: Int64,
) -> FlameTree:
    """One profile's call-tree node instances summed per stack (each stack occurs once)."""
    tree = _grouped(path, parent_path, depth, frame, [samples, samples, duration_ns, self_time_ns], 0, {})
    return dataclasses.replace(tree, occurrences=np.ones(len(tree), np.int64))


def merge(trees: Sequence[FlameTree]) -> FlameTree:
    """The trees summed node by node; `lost` is the sum of theirs."""
    lost = sum(tree.lost for tree in trees)
    full = [tree for tree in trees if len(tree)]
    if len(full) == 1 and not any(len(tree) == 0 and tree.lost for tree in trees):
        return full[0] if full[0].lost == lost else _with_lost(full[0], lost)
    if not full:
        return empty(lost)
    names: dict[int, Frame] = {}
    for tree in full:
        names.update(tree.names)
    offsets = np.cumsum([0] + [len(t) for t in full[:-1]])
    return _grouped(
        np.concatenate([t.path for t in full]),
        np.zeros(0, np.int64),
        np.concatenate([t.depth for t in full]),
        np.concatenate([t.frame for t in full]),
        [np.concatenate([getattr(t, name) for t in full]) for name in _VALUES],
        lost,
        names,
        parent_row=np.concatenate(
            [
                np.where(t.parent >= 0, t.parent.astype(np.int64) + offset, -1)
                for t, offset in zip(full, offsets, strict=True)
            ]
        ),
    )


def fit(tree: FlameTree, budget: int) -> FlameTree:
    """Cut back to `budget` once past 5/4 of it, so most merges into a growing tree need no
    cut (a tree kept with `fit` holds at most 5/4 of its budget)."""
    return truncate(tree, budget) if len(tree) > budget * 5 // 4 else tree


def merge_all(trees: Iterable[FlameTree], budget: int, batch_rows: int = 1 << 21) -> FlameTree:
    """The merge of any number of trees, about `batch_rows` rows at a time, kept within
    `budget` by `fit` so that memory stays bounded however many there are."""
    total = empty()
    pending: list[FlameTree] = []
    rows = 0
    for tree in trees:
        pending.append(tree)
        rows += len(tree)
        if rows >= batch_rows:
            total = fit(merge([total, *pending]), budget)
            pending, rows = [], len(total)
    return fit(merge([total, *pending]), budget)


def _with_lost(tree: FlameTree, lost: int) -> FlameTree:
    return dataclasses.replace(tree, lost=lost)


def _levels(tree: FlameTree) -> list[slice]:
    """The slices of each depth (nodes are in depth order)."""
    if not len(tree):
        return []
    bounds = np.searchsorted(tree.depth, np.arange(int(tree.depth[-1]) + 2))
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


def _weights(tree: FlameTree) -> Int64:
    """Samples made monotone down the tree (a child never outweighs its parent), so the
    heaviest nodes are closed under ancestors even on inconsistent input."""
    samples = tree.samples
    has_parent = tree.parent >= 0
    if not np.any(samples[has_parent] > samples[tree.parent[has_parent]]):
        return samples
    weights = samples.copy()
    for level in _levels(tree)[1:]:
        up = tree.parent[level]
        above = np.where(up >= 0, weights[np.maximum(up, 0)], weights[level])
        weights[level] = np.minimum(weights[level], above)
    return weights


def truncate(tree: FlameTree, budget: int) -> FlameTree:
    """At most `budget` nodes (at least 1): the heaviest, each with its ancestors, and one
    [other] child per kept node (or root level) whose children were not all kept."""
    budget = max(budget, 1)
    n = len(tree)
    if n <= budget:
        return tree
    weights = _weights(tree)
    rank = np.lexsort((tree.depth, -weights))
    position = np.empty(n, np.int64)
    position[rank] = np.arange(n)
    holder_slot = tree.parent.astype(np.int64) + 1  # 0 is the root level
    # cost(k): the first k nodes in rank order kept, plus one new [other] per holder.  A
    # holder (the root level, or a kept node) needs one while a child of it is cut and no
    # [other] child of its own is kept: for k from when it is kept (the root level: 0) to
    # the position of its last child, or of its [other] child if that comes first.  One
    # pass gives cost(k) for every k; it never decreases, so the largest k within the
    # budget is a search.
    slots = n + 1
    last_child = np.full(slots, -1, np.int64)
    np.maximum.at(last_child, holder_slot, position)
    is_other = tree.frame == OTHER_FRAME
    other_child = np.full(slots, n, np.int64)
    np.minimum.at(other_child, holder_slot[is_other], position[is_other])
    first = np.concatenate(([0], position + 1))
    last = np.minimum(last_child, other_child)
    active = last >= first
    changes = np.zeros(n + 2, np.int64)
    np.add.at(changes, first[active], 1)
    np.add.at(changes, last[active] + 1, -1)
    cost = np.arange(n + 1) + np.cumsum(changes)[: n + 1]
    low = int(np.searchsorted(cost, budget, side="right")) - 1
    kept = position < low
    cut = ~kept
    # Each cut node's nearest kept ancestor (slot 0: the root level) takes its weight: the
    # top cut nodes' samples, occurrences and time, and the self time of everything cut.
    holder = np.where(kept, -1, holder_slot)
    for level in _levels(tree)[1:]:
        up = tree.parent[level].astype(np.int64)
        has_up = up >= 0
        safe = np.maximum(up, 0)
        inherited = np.where(has_up & ~kept[safe], holder[safe], holder_slot[level])
        holder[level] = np.where(cut[level], inherited, -1)
    tops = cut & np.concatenate(([True], kept))[holder_slot]

    def per_slot(selected: npt.NDArray[np.bool_], column: Int64, slot_of: Int64) -> Int64:
        out = np.zeros(slots, np.int64)
        np.add.at(out, slot_of[selected], column[selected])
        return out

    sums = {
        "occurrences": per_slot(tops, tree.occurrences, holder_slot),
        "samples": per_slot(tops, tree.samples, holder_slot),
        "duration_ns": per_slot(tops, tree.duration_ns, holder_slot),
        "self_time_ns": per_slot(cut, tree.self_time_ns, holder),
    }
    with_other = np.flatnonzero(np.bincount(holder_slot[tops], minlength=slots))
    holder_index = with_other - 1  # -1: the root level
    safe_holder = np.maximum(holder_index, 0)
    holder_path = np.where(holder_index >= 0, tree.path[safe_holder], 0).astype(np.int64)
    other_depth = np.where(holder_index >= 0, tree.depth[safe_holder] + 1, 0).astype(np.int32)
    other_frame = np.zeros(len(with_other), np.int64)
    kept_index = np.flatnonzero(kept)
    # Rows of the result: the kept nodes, then the [other] nodes; parents by row (a kept
    # node's parent is kept), so grouping needs no search by path.
    row_of = np.full(n, -1, np.int64)
    row_of[kept_index] = np.arange(len(kept_index))
    kept_parent = tree.parent[kept_index].astype(np.int64)
    parent_row = np.concatenate(
        [
            np.where(kept_parent >= 0, row_of[np.maximum(kept_parent, 0)], -1),
            np.where(holder_index >= 0, row_of[safe_holder], -1),
        ]
    )
    lost = tree.lost + int(tree.samples[cut].max(initial=0))
    return _grouped(
        np.concatenate([tree.path[kept_index], stack_step(holder_path, other_frame)]),
        np.zeros(0, np.int64),
        np.concatenate([tree.depth[kept_index], other_depth]),
        np.concatenate([tree.frame[kept_index], other_frame]),
        [np.concatenate([getattr(tree, name)[kept_index], sums[name][with_other]]) for name in _VALUES],
        lost,
        tree.names,
        parent_row=parent_row,
    )


def subtree(tree: FlameTree, index: int) -> FlameTree:
    """The node at `index` and everything below it (the node becomes a root; paths keep
    their values, so the subtree still merges with other trees' nodes)."""
    inside = np.zeros(len(tree), bool)
    inside[index] = True
    start = int(tree.depth[index])
    for level in _levels(tree):
        if level.start < len(tree) and tree.depth[level.start] <= start:
            continue
        up = tree.parent[level]
        inside[level] |= np.where(up >= 0, inside[np.maximum(up, 0)], False)
    chosen = np.flatnonzero(inside)
    parents = tree.parent_paths()[chosen]
    parents[chosen == index] = 0
    return _grouped(
        tree.path[chosen],
        parents,
        (tree.depth[chosen] - start).astype(np.int32),
        tree.frame[chosen],
        [getattr(tree, name)[chosen] for name in _VALUES],
        tree.lost,
        tree.names,
    )


def find(tree: FlameTree, frames: Sequence[int]) -> int | None:
    """The index of the node whose stack is `frames` (frame ids from the root), if any."""
    if not frames:
        return None
    found = np.flatnonzero(tree.path == stack_path(frames))
    return int(found[0]) if len(found) else None


# -- storage -----------------------------------------------------------------------------

_HEADER = struct.Struct("<4sIq")
_MAGIC = b"FT01"
_COLUMNS: tuple[tuple[str, type], ...] = (
    ("path", np.int64),
    ("parent", np.int32),
    ("depth", np.int32),
    ("frame", np.int64),
    ("occurrences", np.int64),
    ("samples", np.int64),
    ("duration_ns", np.int64),
    ("self_time_ns", np.int64),
)
_ROW_BYTES = sum(np.dtype(kind).itemsize for _, kind in _COLUMNS)
_compressor = zstandard.ZstdCompressor(level=3)
_decompressor = zstandard.ZstdDecompressor()


def encode(tree: FlameTree) -> bytes:
    """Columns one after another, zstd-compressed, behind a header (count and `lost`)."""
    body = b"".join(np.ascontiguousarray(getattr(tree, name), kind).tobytes() for name, kind in _COLUMNS)
    return _HEADER.pack(_MAGIC, len(tree), tree.lost) + _compressor.compress(body)


def decode(data: bytes) -> FlameTree:
    """The tree `encode` wrote; ValueError for anything else (a damaged row)."""
    try:
        magic, count, lost = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise ValueError("not a flame tree")
        body = _decompressor.decompress(data[_HEADER.size :], max_output_size=count * _ROW_BYTES)
    except (struct.error, zstandard.ZstdError) as e:
        raise ValueError(f"not a flame tree: {e}") from e
    if len(body) != count * _ROW_BYTES:
        raise ValueError("flame tree of the wrong length")
    columns: dict[str, Any] = {}
    offset = 0
    for name, kind in _COLUMNS:
        width = np.dtype(kind).itemsize * count
        columns[name] = np.frombuffer(body, kind, count, offset)
        offset += width
    return FlameTree(lost=lost, **columns)
