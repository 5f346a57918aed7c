"""Folded call trees with a node budget (profd.formats.flame_tree), checked against plain
dict oracles on random trees: truncation keeps what it promises (budget, exact totals, the
heaviest nodes, [other] nodes holding exactly what was cut, `lost` bounding the rest),
merging is the node-wise sum, and subtrees, lookups and storage round trips are exact."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from profd.formats import flame_tree
from profd.formats.flame_tree import (
    OTHER_FRAME,
    FlameTree,
    decode,
    encode,
    find,
    fit,
    frame_id,
    merge,
    merge_all,
    of_instances,
    stack_path,
    stack_step,
    subtree,
    truncate,
)

FRAMES = [frame_id(f"f{n}", "pkg") for n in range(5)]
ABSENT = frame_id("absent", "elsewhere")

Stacks = list[tuple[tuple[int, ...], int]]
Row = tuple[
    int, int, int, int, int, int, int
]  # parent path, depth, frame, occurrences, samples, duration, self

stacks_st = st.lists(
    st.tuples(st.lists(st.sampled_from(FRAMES), min_size=1, max_size=6).map(tuple), st.integers(0, 40)),
    min_size=1,
    max_size=25,
)


def build(stacks: Stacks) -> FlameTree:
    """One profile's tree from the samples that ended in each stack of frame ids: a node's
    samples are those of every stack through it, its duration 10 ns a sample, its self time
    7 ns a sample ending in it.  Fed as one instance per stack prefix, so of_instances sums."""
    rows: list[tuple[int, int, int, int, int, int, int]] = []
    for stack, weight in stacks:
        for depth in range(1, len(stack) + 1):
            prefix = stack[:depth]
            ending = weight * 7 if depth == len(stack) else 0
            rows.append(
                (
                    stack_path(prefix),
                    stack_path(prefix[:-1]),
                    depth - 1,
                    prefix[-1],
                    weight,
                    weight * 10,
                    ending,
                )
            )
    columns = list(zip(*rows, strict=True))
    return of_instances(
        np.array(columns[0], np.int64),
        np.array(columns[1], np.int64),
        np.array(columns[2], np.int32),
        np.array(columns[3], np.int64),
        np.array(columns[4], np.int64),
        np.array(columns[5], np.int64),
        np.array(columns[6], np.int64),
    )


def exact(stacks: Stacks) -> dict[tuple[int, ...], tuple[int, int, int]]:
    """The oracle of `build`: per stack prefix, (samples, duration, self time)."""
    nodes: dict[tuple[int, ...], list[int]] = {}
    for stack, weight in stacks:
        for depth in range(1, len(stack) + 1):
            node = nodes.setdefault(stack[:depth], [0, 0, 0])
            node[0] += weight
            node[1] += weight * 10
            if depth == len(stack):
                node[2] += weight * 7
    return {key: (a, b, c) for key, (a, b, c) in nodes.items()}


@st.composite
def raw_trees(draw: st.DrawFn) -> FlameTree:
    return build(draw(stacks_st))


@st.composite
def any_trees(draw: st.DrawFn) -> FlameTree:
    """Whole trees, or merges of truncated ones (with [other] nodes and some `lost`)."""
    trees = draw(st.lists(raw_trees(), min_size=1, max_size=3))
    budgets = draw(st.lists(st.none() | st.integers(1, 30), min_size=len(trees), max_size=len(trees)))
    cut = [
        tree if budget is None else truncate(tree, budget)
        for tree, budget in zip(trees, budgets, strict=True)
    ]
    return merge(cut)


def rows(tree: FlameTree) -> dict[int, Row]:
    parents = tree.parent_paths()
    found: dict[int, Row] = {}
    for i in range(len(tree)):
        found[int(tree.path[i])] = (
            int(parents[i]),
            int(tree.depth[i]),
            int(tree.frame[i]),
            int(tree.occurrences[i]),
            int(tree.samples[i]),
            int(tree.duration_ns[i]),
            int(tree.self_time_ns[i]),
        )
    assert len(found) == len(tree), "paths are unique"
    return found


def children_of(table: dict[int, Row]) -> dict[int, list[int]]:
    """Child paths per parent path (0: the root level)."""
    found: dict[int, list[int]] = {0: []}
    for path, row in table.items():
        found.setdefault(row[0], []).append(path)
    return found


def below(table: dict[int, Row], path: int) -> list[int]:
    """A node and everything under it."""
    kids = children_of(table)
    out, todo = [], [path]
    while todo:
        here = todo.pop()
        out.append(here)
        todo.extend(kids.get(here, []))
    return out


def assert_well_formed(tree: FlameTree, *, rooted_anywhere: bool = False) -> None:
    """Topological order (depth, then path), parents before children one level up, paths
    the hash of the parent's path and the frame, [other] nodes leaves, no child heavier
    than its parent, consistent dtypes and lengths."""
    n = len(tree)
    for column in (
        "path",
        "parent",
        "depth",
        "frame",
        "occurrences",
        "samples",
        "duration_ns",
        "self_time_ns",
    ):
        assert len(getattr(tree, column)) == n
    assert tree.parent.dtype == np.int32 and tree.depth.dtype == np.int32 and tree.path.dtype == np.int64
    order = sorted(range(n), key=lambda i: (int(tree.depth[i]), int(tree.path[i])))
    assert order == list(range(n))
    has_parent = tree.parent >= 0
    index = np.arange(n)
    assert np.all(tree.parent[has_parent] < index[has_parent])
    assert np.all(tree.depth[has_parent] == tree.depth[tree.parent[has_parent]] + 1)
    assert np.all(tree.depth[~has_parent] == 0)
    assert np.all(tree.samples[has_parent] <= tree.samples[tree.parent[has_parent]])
    below_sum = np.zeros(n, np.int64)
    np.add.at(below_sum, tree.parent[has_parent], tree.samples[has_parent])
    assert np.all(below_sum <= tree.samples)
    assert not np.any(np.isin(np.flatnonzero(tree.frame == OTHER_FRAME), tree.parent)), "[other] is a leaf"
    if not rooted_anywhere:
        expected = stack_step(tree.parent_paths(), tree.frame)
        assert np.array_equal(expected, tree.path)


def same(a: FlameTree, b: FlameTree) -> bool:
    columns = ("path", "parent", "depth", "frame", "occurrences", "samples", "duration_ns", "self_time_ns")
    return a.lost == b.lost and all(np.array_equal(getattr(a, c), getattr(b, c)) for c in columns)


def stack_of(tree: FlameTree, index: int) -> list[int]:
    frames = []
    while index >= 0:
        frames.append(int(tree.frame[index]))
        index = int(tree.parent[index])
    return frames[::-1]


# -- building ------------------------------------------------------------------------------


def test_frame_ids_are_odd_stable_and_never_other() -> None:
    ids = [frame_id(f"name{n}", "package") for n in range(200)]
    assert all(0 < i < 1 << 63 and i % 2 == 1 and i != OTHER_FRAME for i in ids)
    assert ids == [frame_id(f"name{n}", "package") for n in range(200)]
    assert frame_id("a", "bc") != frame_id("ab", "c")
    assert stack_path([]) == 0
    assert stack_path([FRAMES[0], FRAMES[1]]) != stack_path([FRAMES[1], FRAMES[0]])


@settings(max_examples=60, deadline=None)
@given(stacks_st)
def test_a_built_tree_is_the_stacks_folded(stacks: Stacks) -> None:
    tree = build(stacks)
    assert_well_formed(tree)
    oracle = exact(stacks)
    table = rows(tree)
    assert set(table) == {stack_path(key) for key in oracle}
    for key, (samples, duration, self_time) in oracle.items():
        parent, depth, frame, occurrences, *values = table[stack_path(key)]
        assert (parent, depth, frame, occurrences) == (stack_path(key[:-1]), len(key) - 1, key[-1], 1)
        assert values == [samples, duration, self_time]
    assert tree.total_samples == sum(weight for _, weight in stacks)
    assert tree.lost == 0


# -- truncation ----------------------------------------------------------------------------


def cost(table: dict[int, Row], kept: set[int]) -> int:
    """Nodes of a cut keeping `kept` (closed under ancestors): those, plus one [other] per
    kept node (or the root level) with a child not kept and no [other] child kept."""
    kids = children_of(table)
    extra = 0
    for holder in [0, *kept]:
        under = kids.get(holder, [])
        if any(c not in kept for c in under) and not any(
            c in kept and table[c][2] == OTHER_FRAME for c in under
        ):
            extra += 1
    return len(kept) + extra


@settings(max_examples=100, deadline=None)
@given(any_trees(), st.integers(0, 40))
def test_truncation_keeps_totals_and_other_holds_exactly_what_was_cut(tree: FlameTree, budget: int) -> None:
    cut = truncate(tree, budget)
    assert_well_formed(cut)
    assert len(cut) <= max(budget, 1)
    assert cut.total_samples == tree.total_samples
    assert int(cut.self_time_ns.sum()) == int(tree.self_time_ns.sum())
    before, after = rows(tree), rows(cut)
    real = {path for path, row in after.items() if row[2] != OTHER_FRAME}
    assert real <= set(before)
    for path in real:
        assert after[path] == before[path], "a kept node keeps its numbers"
    others = {path for path, row in after.items() if row[2] == OTHER_FRAME}
    assert all(after[path][0] == 0 or after[path][0] in real for path in others)
    kids_before, kids_after = children_of(before), children_of(after)
    for holder in [0, *real]:
        missing = [c for c in kids_before.get(holder, []) if c not in real]
        folded = [c for c in kids_after.get(holder, []) if c in others]
        if not missing:
            assert not folded
            continue
        assert len(folded) == 1
        other = after[folded[0]]
        assert other[3] == sum(before[c][3] for c in missing)
        assert other[4] == sum(before[c][4] for c in missing)
        assert other[5] == sum(before[c][5] for c in missing)
        assert other[6] == sum(before[d][6] for c in missing for d in below(before, c))
        # What ends at the holder is unchanged.
        assert sum(after[c][4] for c in kids_after.get(holder, [])) == sum(
            before[c][4] for c in kids_before.get(holder, [])
        )
    assert cut.lost >= tree.lost
    gone = [row[4] for path, row in before.items() if path not in after]
    assert all(samples <= cut.lost - tree.lost for samples in gone)
    not_real = [row[4] for path, row in before.items() if path not in real]
    assert cut.lost - tree.lost <= max(not_real, default=0)


@settings(max_examples=100, deadline=None)
@given(raw_trees(), st.integers(1, 40))
def test_truncation_keeps_the_heaviest_and_uses_its_budget(tree: FlameTree, budget: int) -> None:
    cut = truncate(tree, budget)
    before, after = rows(tree), rows(cut)
    kept = {path for path, row in after.items() if row[2] != OTHER_FRAME}
    dropped = set(before) - kept
    # The kept nodes are a prefix of the order by weight (heaviest first), then depth.
    if kept and dropped:
        last = max((-before[p][4], before[p][1]) for p in kept)
        first = min((-before[p][4], before[p][1]) for p in dropped)
        assert last <= first
    assert cost(before, kept) == len(cut)
    if dropped:
        # Keeping any one more of the next heaviest would not have fitted.
        first = min((-before[p][4], before[p][1]) for p in dropped)
        candidates = [p for p in dropped if (-before[p][4], before[p][1]) == first]
        assert all(before[p][0] == 0 or before[p][0] in kept for p in candidates)
        assert any(cost(before, kept | {p}) > budget for p in candidates)


@settings(max_examples=40, deadline=None)
@given(any_trees(), st.integers(0, 5))
def test_a_tree_that_fits_is_returned_unchanged(tree: FlameTree, spare: int) -> None:
    assert truncate(tree, len(tree) + spare) is tree
    assert fit(tree, len(tree) + spare) is tree


@settings(max_examples=60, deadline=None)
@given(any_trees(), st.integers(1, 30), st.integers(1, 30))
def test_truncating_twice_keeps_the_bound(tree: FlameTree, first: int, second: int) -> None:
    once = truncate(tree, first)
    twice = truncate(once, second)
    assert_well_formed(twice)
    assert len(twice) <= second
    assert twice.total_samples == tree.total_samples
    whole = rows(tree)
    for path, row in rows(twice).items():
        if row[2] != OTHER_FRAME:
            assert row == whole[path]
    assert all(row[4] <= twice.lost - tree.lost for path, row in whole.items() if path not in rows(twice))


# -- merging -------------------------------------------------------------------------------


def oracle_merge(trees: Sequence[FlameTree]) -> dict[int, Row]:
    total: dict[int, list[int]] = {}
    for tree in trees:
        for path, row in rows(tree).items():
            found = total.setdefault(path, [*row[:3], 0, 0, 0, 0])
            assert found[:3] == list(row[:3])
            for column in range(3, 7):
                found[column] += row[column]
    return {path: (r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for path, r in total.items()}


@settings(max_examples=50, deadline=None)
@given(st.lists(any_trees(), max_size=3), st.data())
def test_merge_is_the_node_wise_sum_in_any_order(trees: list[FlameTree], data: st.DataObject) -> None:
    merged = merge(trees)
    assert_well_formed(merged)
    assert rows(merged) == oracle_merge(trees)
    assert merged.lost == sum(tree.lost for tree in trees)
    assert merged.total_samples == sum(tree.total_samples for tree in trees)
    shuffled = data.draw(st.permutations(trees))
    assert same(merge(shuffled), merged)
    assert same(merge([*trees, flame_tree.empty(3)]), dataclasses.replace(merged, lost=merged.lost + 3))


@settings(max_examples=30, deadline=None)
@given(stacks_st)
def test_merging_one_profile_counts_its_occurrences(stacks: Stacks) -> None:
    tree = build(stacks)
    twice = merge([tree, tree])
    assert np.array_equal(twice.occurrences, np.full(len(tree), 2))
    assert np.array_equal(twice.samples, tree.samples * 2)
    assert len(merge([])) == 0 and merge([]).lost == 0


def assert_within_lost(approximate: FlameTree, whole: dict[int, Row]) -> None:
    """Every real node at most `lost` below the exact merge and never above it; a node
    missing weighs at most `lost` in the exact merge."""
    found = rows(approximate)
    for path, row in found.items():
        if row[2] != OTHER_FRAME:
            assert path in whole
            assert whole[path][4] - approximate.lost <= row[4] <= whole[path][4]
    for path, row in whole.items():
        if path not in found:
            assert row[4] <= approximate.lost


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(raw_trees(), st.integers(1, 20)), min_size=1, max_size=5), st.integers(1, 40))
def test_a_merge_of_cut_trees_is_within_lost_of_the_exact_merge(
    pairs: list[tuple[FlameTree, int]], final: int
) -> None:
    trees = [tree for tree, _ in pairs]
    whole = oracle_merge(trees)
    cut = [truncate(tree, budget) for tree, budget in pairs]
    merged = merge(cut)
    assert merged.lost == sum(tree.lost for tree in cut)
    assert merged.total_samples == sum(tree.total_samples for tree in trees)
    assert int(merged.self_time_ns.sum()) == sum(row[6] for row in whole.values())
    assert_within_lost(merged, whole)
    again = truncate(merged, final)
    assert again.total_samples == merged.total_samples
    assert_within_lost(again, whole)


@settings(max_examples=40, deadline=None)
@given(st.lists(raw_trees(), min_size=1, max_size=30), st.integers(1, 20), st.integers(1, 8))
def test_merge_all_stays_in_budget_and_within_lost(trees: list[FlameTree], budget: int, batch: int) -> None:
    merged = merge_all(trees, budget, batch)
    assert_well_formed(merged)
    assert len(merged) <= max(budget * 5 // 4, 1)
    whole = oracle_merge(trees)
    assert merged.total_samples == sum(tree.total_samples for tree in trees)
    assert int(merged.self_time_ns.sum()) == sum(row[6] for row in whole.values())
    assert_within_lost(merged, whole)
    roomy = merge_all(trees, 10_000, batch)
    assert rows(roomy) == whole and roomy.lost == 0


# -- subtrees and lookups ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(any_trees(), st.data())
def test_a_subtree_is_the_node_and_its_descendants(tree: FlameTree, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(tree) - 1))
    part = subtree(tree, index)
    assert_well_formed(part, rooted_anywhere=True)
    whole = rows(tree)
    top = int(tree.path[index])
    inside = set(below(whole, top))
    found = rows(part)
    assert set(found) == inside
    assert int(np.sum(part.parent < 0)) == 1
    assert int(part.path[0]) == top and part.total_samples == int(tree.samples[index])
    start = int(tree.depth[index])
    for path, row in found.items():
        original = whole[path]
        assert row[0] == (0 if path == top else original[0])
        assert row[1] == original[1] - start
        assert row[2:] == original[2:]
    assert part.lost == tree.lost


@settings(max_examples=40, deadline=None)
@given(any_trees())
def test_find_locates_every_node_by_its_stack(tree: FlameTree) -> None:
    for index in range(len(tree)):
        stack = stack_of(tree, index)
        assert find(tree, stack) == index
        assert stack_path(stack) == int(tree.path[index])
        assert find(tree, [*stack, ABSENT]) is None
    assert find(tree, []) is None
    assert find(tree, [ABSENT]) is None


# -- storage -------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(any_trees() | st.builds(flame_tree.empty, st.integers(0, 10**12)))
def test_encode_decode_round_trips(tree: FlameTree) -> None:
    back = decode(encode(tree))
    assert same(back, tree)
    assert_well_formed(back)
    for column in (
        "path",
        "parent",
        "depth",
        "frame",
        "occurrences",
        "samples",
        "duration_ns",
        "self_time_ns",
    ):
        assert getattr(back, column).dtype == getattr(tree, column).dtype
    assert same(merge([back, back]), merge([tree, tree]))
    assert same(truncate(back, 3), truncate(tree, 3))


def test_decoding_garbage_fails() -> None:
    header = struct.Struct("<4sIq")
    body = zstandard.ZstdCompressor().compress(b"x" * 10)
    with pytest.raises(ValueError):
        decode(b"")
    with pytest.raises(ValueError):
        decode(b"FT01")
    with pytest.raises(ValueError, match="not a flame tree"):
        decode(b"x" * 40)
    with pytest.raises(ValueError, match="wrong length"):
        decode(header.pack(b"FT01", 3, 0) + body)
    with pytest.raises(ValueError):
        decode(header.pack(b"FT01", 3, 0) + b"not zstd at all")
    good = encode(build([((FRAMES[0], FRAMES[1]), 5), ((FRAMES[2],), 3)]))
    assert len(decode(good)) == 3
    for count in (0, 2, 4):
        with pytest.raises(ValueError, match="wrong length"):
            decode(good[:4] + struct.pack("<I", count) + good[8:])
