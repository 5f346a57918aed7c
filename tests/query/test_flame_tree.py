"""Flamegraphs with a node budget: totals stay exact under truncation, `[other]` nodes carry
exactly what they replace, and a subtree query is the exact merge when the subtree fits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from profd.query.flame_tree import OTHER, Node, build, find, size, truncate, walk
from profd.query.flamegraph import differential, flamegraph
from profd.store.records import PathTotal, ProfileFilter

NAMES = ["a", "b", "c", "d", "e"]


@st.composite
def trees(draw: st.DrawFn) -> dict[int, PathTotal]:
    """Call-tree paths: a few names (so distinct paths merge into one drawn node, as paths
    that differ only by address do), parents drawn among earlier paths."""
    count = draw(st.integers(1, 60))
    rows: list[PathTotal] = []
    for index in range(count):
        parent = draw(st.integers(-1, index - 1))
        rows.append(
            PathTotal(
                path=index + 1,
                parent=0 if parent < 0 else parent + 1,
                name=draw(st.sampled_from(NAMES)),
                package=draw(st.sampled_from(["", "app"])),
                in_app=False,
                occurrences=draw(st.integers(1, 5)),
                samples=draw(st.integers(0, 50)),  # self samples for now
                duration_ns=0,
                self_time_ns=draw(st.integers(0, 10_000)),
            )
        )
    # Totals include the children: add each path's own share up its ancestors.
    own = [(row.samples, row.self_time_ns) for row in rows]
    for row in rows:
        row.duration_ns = row.self_time_ns
    for index in reversed(range(count)):
        samples, self_time = own[index]
        parent = rows[index].parent
        while parent:
            rows[parent - 1].samples += samples
            rows[parent - 1].duration_ns += self_time
            parent = rows[parent - 1].parent
    return {row.path: row for row in rows}


def stacks(
    node: Node, above: tuple[tuple[str, str, bool], ...] = ()
) -> Iterator[tuple[tuple[Any, ...], Node]]:
    for child in node.children.values():
        here = (*above, child.key)
        yield here, child
        yield from stacks(child, here)


def by_stack(node: Node) -> dict[tuple[Any, ...], Node]:
    return dict(stacks(node))


@settings(max_examples=300, deadline=None)
@given(trees(), st.integers(1, 80))
def test_truncation_keeps_totals_exact_and_other_carries_the_rest(
    paths: dict[int, PathTotal], max_nodes: int
) -> None:
    full = build(paths)
    cut = truncate(full, max_nodes)
    assert size(cut) <= max_nodes
    assert (cut.samples, cut.duration_ns, cut.self_time_ns) == (
        full.samples,
        full.duration_ns,
        full.self_time_ns,
    )
    assert sum(n.self_time_ns for n in walk(cut)) == sum(n.self_time_ns for n in walk(full))
    whole = by_stack(full)
    pairs = [(full, cut)] + [(whole[stack], node) for stack, node in stacks(cut) if not node.other]
    for original, kept in pairs:
        assert (kept.samples, kept.duration_ns, kept.self_time_ns, kept.occurrences) == (
            original.samples,
            original.duration_ns,
            original.self_time_ns,
            original.occurrences,
        )
        missing = [c for key, c in original.children.items() if key not in kept.children]
        other = kept.children.get((OTHER, "", True))
        if not missing:
            assert other is None
            continue
        assert other is not None and not other.children
        assert other.samples == sum(c.samples for c in missing)
        assert other.duration_ns == sum(c.duration_ns for c in missing)
        assert other.occurrences == sum(c.occurrences for c in missing)
        assert other.self_time_ns == sum(n.self_time_ns for c in missing for n in walk(c))
        assert sum(c.samples for c in kept.children.values()) == sum(
            c.samples for c in original.children.values()
        )


@given(trees())
def test_a_tree_that_fits_is_left_alone(paths: dict[int, PathTotal]) -> None:
    full = build(paths)
    assert truncate(full, size(full)) is full


@settings(max_examples=200, deadline=None)
@given(trees(), st.integers(1, 40))
def test_truncation_keeps_the_heaviest(paths: dict[int, PathTotal], max_nodes: int) -> None:
    """No child folded into `[other]` weighs more than any node kept."""
    full = build(paths)
    whole = by_stack(full)
    cut = truncate(full, max_nodes)
    kept = {stack: node for stack, node in stacks(cut) if not node.other}
    parents = [full] + [whole[stack] for stack in kept]
    folded = [
        child.samples
        for stack, parent in zip([(), *kept], parents, strict=True)
        for key, child in parent.children.items()
        if (*stack, key) not in kept
    ]
    if folded and kept:
        assert max(folded) <= min(node.samples for node in kept.values())
    assert cut.samples == full.samples


class Reads:
    """ProfileReads enough for the flamegraph: one selection answered from the rollups."""

    def __init__(self, paths: dict[int, PathTotal]) -> None:
        self.paths = paths

    def rollup_path_totals(self, organization_id: int, hours: ProfileFilter) -> Iterator[PathTotal]:
        return iter([msgspec.structs.replace(row) for row in self.paths.values()])

    def rollup_profile_count(self, organization_id: int, hours: ProfileFilter) -> int:
        return 1

    def path_durations(
        self, organization_id: int, where: ProfileFilter, sample: int
    ) -> Iterator[tuple[int, int]]:
        return iter([(path, row.duration_ns) for path, row in self.paths.items()])


def drawn(answer: dict[str, Any]) -> dict[tuple[Any, ...], int]:
    """The answer as the UI folds it: every stack prefix and the samples passing through it."""
    frames = answer["shared"]["frames"]
    thread = answer["profiles"][0]
    values: dict[tuple[Any, ...], int] = {}
    for stack, weight in zip(thread["samples"], thread["weights"], strict=True):
        keys = tuple((frames[i]["name"], frames[i]["image"], bool(frames[i].get("is_other"))) for i in stack)
        for depth in range(1, len(keys) + 1):
            values[keys[:depth]] = values.get(keys[:depth], 0) + weight
    return values


def fold_exact(node: Node, above: tuple[Any, ...]) -> dict[tuple[Any, ...], int]:
    """The exact merge below a node (every stack with samples), keyed as `drawn` keys."""
    found = {(*above, *stack): n.samples for stack, n in stacks(node) if n.samples}
    if node.samples:
        found[above] = node.samples
    return found


@settings(max_examples=200, deadline=None)
@given(trees(), st.integers(16, 40))
def test_the_answer_holds_the_budget_and_the_total(paths: dict[int, PathTotal], max_nodes: int) -> None:
    answer = flamegraph(Reads(paths), 1, ProfileFilter(), max_nodes=max_nodes)  # type: ignore[arg-type]
    full = build(paths)
    values = drawn(answer)
    assert len(values) <= max_nodes
    assert answer["profiles"][0]["endValue"] == full.samples
    if "max_nodes" in answer["metadata"]:
        assert answer["metadata"]["nodes"] <= max_nodes < answer["metadata"]["total_nodes"] == size(full)


@settings(max_examples=200, deadline=None)
@given(trees(), st.integers(16, 60), st.data())
def test_a_subtree_query_is_the_exact_merge_when_it_fits(
    paths: dict[int, PathTotal], max_nodes: int, data: st.DataObject
) -> None:
    full = build(paths)
    choices = list(stacks(full))
    stack, node = data.draw(st.sampled_from(choices))
    root = [(name, package) for name, package, _ in stack]
    assert find(full, root) is not None
    answer = flamegraph(Reads(paths), 1, ProfileFilter(), max_nodes=max_nodes, root=root)  # type: ignore[arg-type]
    assert answer["metadata"]["root"] == [list(pair) for pair in root]
    assert answer["profiles"][0]["endValue"] == node.samples
    values = drawn(answer)
    if size(node) + 1 <= max_nodes:
        assert {k: v for k, v in values.items() if len(k) >= len(stack)} == fold_exact(node, stack)
        assert not any(f.get("is_other") for f in answer["shared"]["frames"])
    else:
        assert len([k for k in values if len(k) >= len(stack)]) <= max_nodes
        assert values.get(stack, 0) == node.samples


def test_unknown_roots_are_refused() -> None:
    paths = {1: PathTotal(1, 0, "main", "", True, 1, 10, 100, 100)}
    try:
        flamegraph(Reads(paths), 1, ProfileFilter(), root=[("nope", "")])  # type: ignore[arg-type]
    except LookupError:
        return
    raise AssertionError("an unknown root must raise")


def test_the_differential_folds_small_changes_into_other() -> None:
    paths = {
        n: PathTotal(n, 0 if n == 1 else 1, f"f{n}", "", True, 1, n, n * 10, n * 10 if n > 1 else 0)
        for n in range(1, 40)
    }
    both = Reads(paths)
    diff = differential(both, 1, ProfileFilter(), ProfileFilter(release="x"), max_nodes=16)  # type: ignore[arg-type]
    whole = differential(both, 1, ProfileFilter(), ProfileFilter(release="x"))  # type: ignore[arg-type]
    assert len(diff["frames"]) == 16 and diff["frames"][-1]["other"] is True
    assert diff["frames"][:15] == whole["frames"][:15]
    for side in ("before", "after"):
        assert sum(f[side]["self_time_ns"] for f in diff["frames"]) == diff[side]["self_time_ns"]
    under = differential(both, 1, ProfileFilter(), ProfileFilter(), root=[("f1", "")])  # type: ignore[arg-type]
    assert {f["name"] for f in under["frames"]} == {f"f{n}" for n in range(1, 40)}
