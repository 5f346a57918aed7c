"""The flamegraph answer from the flame trees the SQLite index keeps (profiles' trees, hourly
and daily buckets): it holds at most `max_nodes` nodes, its total is exact, every frame
node is within `max_error_samples` below the exact merge, a `root=` zoom answers the
subtree (exactly, when it fits), and the differential's times add up."""

from __future__ import annotations

import dataclasses
import math
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profd.formats.flame_tree import OTHER, FlameTree, frame_id, merge, of_instances, stack_path, truncate
from profd.query.flamegraph import NoSuchNode, differential, flamegraph
from profd.store.records import DAY, HOUR, ProfileFilter
from profd.store.sqlite import SqliteBackend, flames
from tests.factories import indexed_profile

BASE = 19676 * DAY  # a day boundary
PACKAGE = "app"
NAMES = ["main", "a", "b", "c", "d"]

Names = tuple[str, ...]
Stacks = list[tuple[Names, int]]


def build(stacks: Stacks) -> FlameTree:
    """One profile's flame tree, with its frame names, from the samples that ended in each
    stack of function names: a node's samples are those of every stack through it, its
    duration 10 ns a sample, its self time 7 ns a sample ending in it."""
    nodes: dict[Names, list[int]] = {}
    for stack, weight in stacks:
        for depth in range(1, len(stack) + 1):
            node = nodes.setdefault(stack[:depth], [0, 0])
            node[0] += weight
            if depth == len(stack):
                node[1] += weight * 7
    ids = {name: frame_id(name, PACKAGE) for stack, _ in stacks for name in stack}
    keys = list(nodes)
    tree = of_instances(
        np.array([stack_path([ids[n] for n in key]) for key in keys], np.int64),
        np.array([stack_path([ids[n] for n in key[:-1]]) for key in keys], np.int64),
        np.array([len(key) - 1 for key in keys], np.int32),
        np.array([ids[key[-1]] for key in keys], np.int64),
        np.array([nodes[key][0] for key in keys], np.int64),
        np.array([nodes[key][0] * 10 for key in keys], np.int64),
        np.array([nodes[key][1] for key in keys], np.int64),
    )
    return dataclasses.replace(tree, names={i: (name, PACKAGE, True) for name, i in ids.items()})


def stacks_over(names: Sequence[str]) -> st.SearchStrategy[Stacks]:
    return st.lists(
        st.tuples(st.lists(st.sampled_from(names), min_size=1, max_size=5).map(tuple), st.integers(0, 30)),
        min_size=1,
        max_size=15,
    )


class Profile:
    def __init__(self, stacks: Stacks, start: float, budget: int | None, release: str) -> None:
        self.stacks = stacks
        self.start = start
        self.release = release
        self.whole = build(stacks)
        # What the analysis stores: the tree cut to a budget (or whole, when it fits).
        self.stored = self.whole if budget is None else truncate(self.whole, budget)


@st.composite
def profiles(draw: st.DrawFn, names: Sequence[str] = NAMES) -> list[Profile]:
    count = draw(st.integers(1, 6))
    return [
        Profile(
            draw(stacks_over(names)),
            BASE + draw(st.floats(0, 3 * DAY - 1, allow_nan=False)),
            draw(st.none() | st.integers(1, 25)),
            draw(st.sampled_from(["1", "2"])),
        )
        for _ in range(count)
    ]


@st.composite
def selections(draw: st.DrawFn) -> ProfileFilter:
    """Everything, or a window with partial hours and days at its ends."""
    if draw(st.booleans()):
        return ProfileFilter()
    start = BASE + draw(st.floats(-HOUR, 2 * DAY, allow_nan=False))
    return ProfileFilter(start=start, end=start + draw(st.floats(1, 3 * DAY, allow_nan=False)))


@contextmanager
def index_of(chosen: list[Profile]) -> Iterator[SqliteBackend]:
    with tempfile.TemporaryDirectory() as directory:
        index = SqliteBackend(Path(directory) / "index.db")
        try:
            for profile in chosen:
                metadata = indexed_profile(
                    1, uuid.uuid4().hex, profile.start, transaction="t", release=profile.release
                )
                assert index.insert_profile(metadata, [], profile.stored)
            yield index
        finally:
            index.close()


def selected(chosen: list[Profile], where: ProfileFilter) -> list[Profile]:
    return [
        p
        for p in chosen
        if (where.start is None or p.start >= where.start)
        and (where.end is None or p.start < where.end)
        and (where.release is None or p.release == where.release)
    ]


Key = tuple[tuple[str, str], ...]


def drawn(answer: dict[str, Any]) -> dict[Key, int]:
    """The answer as the UI folds it: every stack prefix and the samples through it."""
    frames = answer["shared"]["frames"]
    thread = answer["profiles"][0]
    values: dict[Key, int] = {}
    for stack, weight in zip(thread["samples"], thread["weights"], strict=True):
        keys = tuple((frames[i]["name"], frames[i]["image"]) for i in stack)
        for depth in range(1, len(keys) + 1):
            values[keys[:depth]] = values.get(keys[:depth], 0) + weight
    return values


def keys_of(tree: FlameTree, names: dict[int, tuple[str, str, bool]]) -> list[Key]:
    """Each node's stack as `drawn` keys it ([other] nodes as (OTHER, ''))."""
    keys: list[Key] = []
    for i in range(len(tree)):
        frame = int(tree.frame[i])
        name = (OTHER, "") if frame == 0 else names[frame][:2]
        parent = int(tree.parent[i])
        keys.append((*keys[parent], name) if parent >= 0 else (name,))
    return keys


def folded(trees: Sequence[FlameTree], names: dict[int, tuple[str, str, bool]]) -> dict[Key, int]:
    """The merge of trees as `drawn` keys it: its nodes with samples."""
    tree = merge(trees)
    return {key: int(tree.samples[i]) for i, key in enumerate(keys_of(tree, names)) if tree.samples[i]}


def all_names(chosen: list[Profile]) -> dict[int, tuple[str, str, bool]]:
    return {i: frame for p in chosen for i, frame in p.whole.names.items()}


def has_other(key: Key) -> bool:
    return (OTHER, "") in key


@settings(max_examples=40, deadline=None)
@given(profiles(), selections(), st.integers(16, 48))
def test_the_answer_holds_the_budget_and_the_exact_total(
    chosen: list[Profile], where: ProfileFilter, max_nodes: int
) -> None:
    with index_of(chosen) as index:
        answer = flamegraph(index, 1, where, max_nodes=max_nodes)
    inside = selected(chosen, where)
    stored = merge([p.stored for p in inside])
    names = all_names(chosen)
    values = drawn(answer)
    thread = answer["profiles"][0]
    metadata = answer["metadata"]
    assert len(values) <= max_nodes
    total = sum(p.whole.total_samples for p in inside)
    assert sum(thread["weights"]) == thread["endValue"] == total
    assert all(weight > 0 for weight in thread["weights"])
    assert metadata["profiles"] == len(inside)
    assert metadata["max_error_samples"] == stored.lost == sum(p.stored.lost for p in inside)
    assert sum(info["sumSelfTime"] for info in answer["shared"]["frame_infos"]) == sum(
        int(p.whole.self_time_ns.sum()) for p in inside
    )
    if len(stored) > max_nodes:
        assert metadata["truncated"] is True
        assert metadata["nodes"] <= max_nodes == metadata["max_nodes"]
        assert metadata["total_nodes"] == len(stored)
    else:
        assert not metadata.get("truncated")
        assert values == folded([p.stored for p in inside], names)
    # Each frame node is at most max_error_samples below the exact merge of the whole
    # trees, never above it.
    whole = folded([p.whole for p in inside], names)
    for key, value in values.items():
        if not has_other(key):
            assert whole[key] - metadata["max_error_samples"] <= value <= whole[key]
    if not metadata.get("truncated"):
        for key, value in whole.items():
            if key not in values:
                assert value <= metadata["max_error_samples"]


@settings(max_examples=30, deadline=None)
@given(profiles(), selections(), st.integers(16, 40), st.integers(1, 12), st.integers(1, 12))
def test_cut_buckets_keep_the_total_and_the_error_bound(
    chosen: list[Profile], where: ProfileFilter, max_nodes: int, hour_nodes: int, day_nodes: int
) -> None:
    """With the hourly and daily buckets' trees cut to tiny budgets as they are stored."""
    budgets = {"rollup_buckets": hour_nodes, "day_buckets": day_nodes}
    with mock.patch.dict(flames.BUDGETS, budgets), index_of(chosen) as index:
        answer = flamegraph(index, 1, where, max_nodes=max_nodes)
    inside = selected(chosen, where)
    values = drawn(answer)
    assert len(values) <= max_nodes
    assert answer["profiles"][0]["endValue"] == sum(p.whole.total_samples for p in inside)
    assert answer["metadata"]["profiles"] == len(inside)
    error = answer["metadata"]["max_error_samples"]
    assert error >= sum(p.stored.lost for p in inside)
    whole = folded([p.whole for p in inside], all_names(chosen))
    for key, value in values.items():
        if not has_other(key):
            assert whole[key] - error <= value <= whole[key]
    if not answer["metadata"].get("truncated"):
        for key, value in whole.items():
            if key not in values:
                assert value <= error


@settings(max_examples=40, deadline=None)
@given(profiles(), selections(), st.integers(16, 40), st.data())
def test_a_zoom_answers_the_subtree(
    chosen: list[Profile], where: ProfileFilter, max_nodes: int, data: st.DataObject
) -> None:
    inside = selected(chosen, where)
    stored = [p.stored for p in inside]
    names = all_names(chosen)
    exact = folded(stored, names)
    real = [key for key in exact if not has_other(key)]
    if not real:
        return
    root = data.draw(st.sampled_from(sorted(real)))
    with index_of(chosen) as index:
        answer = flamegraph(index, 1, where, max_nodes=max_nodes, root=list(root))
    metadata = answer["metadata"]
    frames = answer["shared"]["frames"]
    thread = answer["profiles"][0]
    assert metadata["root"] == [list(pair) for pair in root]
    for stack in thread["samples"]:
        assert tuple((frames[i]["name"], frames[i]["image"]) for i in stack[: len(root)]) == root
    assert sum(thread["weights"]) == exact[root]
    values = drawn(answer)
    under = {key: value for key, value in values.items() if len(key) >= len(root)}
    assert len(under) <= max_nodes
    # The subtree's nodes as stored: every stack under the root (with samples or not).
    merged = merge(stored)
    size = sum(1 for key in keys_of(merged, names) if key[: len(root)] == root)
    assert metadata["total_nodes"] == size
    assert metadata["nodes"] <= max_nodes == metadata["max_nodes"]
    assert metadata["truncated"] is (size > max_nodes)
    if size <= max_nodes:
        assert under == {key: value for key, value in exact.items() if key[: len(root)] == root}
    # Above the root, its ancestors carry the subtree's samples only.
    for depth in range(1, len(root)):
        assert values[root[:depth]] == exact[root]


def test_an_unknown_root_raises() -> None:
    chosen = [Profile([(("main", "a"), 3), (("main", "b"), 2)], BASE + 10, None, "1")]
    with index_of(chosen) as index:
        assert flamegraph(index, 1, ProfileFilter(), root=[("main", PACKAGE)])["profiles"][0]["endValue"] == 5
        for root in (
            [("nope", PACKAGE)],
            [("main", PACKAGE), ("c", PACKAGE)],
            [("a", PACKAGE)],
            [("main", "")],
        ):
            with pytest.raises(NoSuchNode):
                flamegraph(index, 1, ProfileFilter(), root=root)
        with pytest.raises(NoSuchNode):
            flamegraph(index, 1, ProfileFilter(release="2"), root=[("main", PACKAGE)])


MANY = [f"f{n}" for n in range(30)]


@settings(max_examples=30, deadline=None)
@given(profiles(MANY), st.integers(1, 24), st.booleans())
def test_the_differential_adds_up(chosen: list[Profile], max_nodes: int, zoom: bool) -> None:
    names = all_names(chosen)
    before, after = ProfileFilter(release="1"), ProfileFilter(release="2")
    root = None
    if zoom:
        firsts = sorted({stack[0] for p in chosen for stack, _ in p.stacks})
        root = [(firsts[0], PACKAGE)]
    with index_of(chosen) as index:
        diff = differential(index, 1, before, after, max_nodes=max_nodes, root=root)
    frames = diff["frames"]
    assert len(frames) <= max_nodes
    assert sum(1 for f in frames if f.get("other")) <= 1
    totals = []
    for side, where in (("before", before), ("after", after)):
        trees = [p.stored for p in selected(chosen, where)]
        tree = merge(trees)
        if root is not None:
            keys = keys_of(tree, names)
            own = [i for i, key in enumerate(keys) if key[: len(root)] == tuple(root)]
        else:
            own = list(range(len(tree)))
        total = int(tree.self_time_ns[own].sum())
        totals.append(total)
        assert sum(f[side]["self_time_ns"] for f in frames) == total
        if total:
            assert diff[side]["self_time_ns"] == total
        # Frames listed on their own carry their exact sums over the (stored) nodes.
        for f in frames:
            if f.get("other"):
                continue
            mine = [i for i in own if int(tree.frame[i]) and names[int(tree.frame[i])][0] == f["name"]]
            assert f[side]["self_time_ns"] == int(tree.self_time_ns[mine].sum())
            assert f[side]["samples"] == int(tree.samples[mine].sum())
    if all(totals):  # both shares add up to 1
        assert math.isclose(sum(f["change"] for f in frames), 0, abs_tol=1e-6 * (len(frames) + 1))
    changes = [abs(f["change"]) for f in frames if not f.get("other")]
    assert changes == sorted(changes, reverse=True)


def test_the_differential_of_an_empty_selection_adds_up() -> None:
    chosen = [Profile([(("main", "a"), 3)], BASE + 10, None, "1")]
    with index_of(chosen) as index:
        diff = differential(index, 1, ProfileFilter(release="1"), ProfileFilter(release="2"))
    for side in ("before", "after"):
        assert sum(f[side]["self_time_ns"] for f in diff["frames"]) == diff[side]["self_time_ns"]
