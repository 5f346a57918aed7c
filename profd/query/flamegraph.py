"""Aggregate flamegraphs over any selection of profiles, from the folded call trees indexed
at write time and their hourly rollups (`flame_rollup`); no blob is read.

The result is speedscope-shaped, as Sentry's: ``shared.frames`` (one per name and
package), ``shared.frame_infos`` (occurrences, samples, total and self time, and p75/p95/p99
of the per-profile durations), and one sampled profile whose samples are the stacks where
samples ended, weighted by their sample counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from profd.formats.histogram import exact_quantile
from profd.query.flame_rollup import path_durations, path_totals
from profd.query.flame_tree import DEFAULT_MAX_NODES, OTHER, Identity, Node, build, find, size, truncate, walk
from profd.store.protocols import ProfileReads
from profd.store.records import ProfileFilter


class NoSuchNode(LookupError):
    """The `root` stack is not in the selection's tree."""


def flamegraph(
    reads: ProfileReads,
    organization_id: int,
    where: ProfileFilter,
    max_nodes: int = DEFAULT_MAX_NODES,
    root: Sequence[Identity] | None = None,
) -> dict[str, Any]:
    """The merged tree of the selection, with at most `max_nodes` nodes (flame_tree.truncate);
    with `root`, a stack of (name, package) from the root, the subtree under that node with
    the budget to itself, its stack kept above it.  Raises NoSuchNode for an unknown root."""
    totals = path_totals(reads, organization_id, where)
    paths = totals.paths
    if root is None and len(paths) <= max_nodes:
        return _exact(reads, organization_id, where, totals.paths, totals.profiles)
    tree = build(paths)
    if root is None:
        nodes = size(tree)
        if nodes <= max_nodes:
            return _exact(reads, organization_id, where, totals.paths, totals.profiles)
        return _answer(
            reads, organization_id, where, [], truncate(tree, max_nodes), totals.profiles, max_nodes, nodes
        )
    chain = find(tree, root)
    if not chain:
        raise NoSuchNode(root)
    top = chain[-1]
    # The zoomed node is counted in its own budget: a synthetic parent holds it.
    holder = Node(name="", package="", samples=top.samples, children={top.key: top})
    nodes = size(holder)
    cut = truncate(holder, max_nodes)
    answer = _answer(reads, organization_id, where, chain[:-1], cut, totals.profiles, max_nodes, nodes)
    answer["metadata"]["root"] = [[name, package] for name, package in root]
    return answer


def _answer(
    reads: ProfileReads,
    organization_id: int,
    where: ProfileFilter,
    above: list[Node],
    tree: Node,
    profiles: int,
    max_nodes: int,
    total_nodes: int,
) -> dict[str, Any]:
    """The speedscope-shaped answer for a (truncated) tree, every stack prefixed by `above`
    (the zoomed node's ancestors, whose frame infos are their own totals)."""
    frame_index: dict[tuple[str, str, bool], int] = {}
    frames: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    durations: list[list[int]] = []
    owner: dict[int, int] = {}

    def frame_of(node: Node) -> int:
        index = frame_index.get(node.key)
        if index is None:
            index = frame_index[node.key] = len(frames)
            frame: dict[str, Any] = {"name": node.name, "image": node.package, "is_application": node.in_app}
            if node.other:
                frame["is_other"] = True
            frames.append(frame)
            infos.append({"count": 0, "weight": 0, "sumDuration": 0, "sumSelfTime": 0})
            durations.append([])
        info = infos[index]
        info["count"] += node.occurrences
        info["weight"] += node.samples
        info["sumDuration"] += node.duration_ns
        info["sumSelfTime"] += node.self_time_ns
        for path in node.paths:
            owner[path] = index
        return index

    prefix = [frame_of(node) for node in above]
    samples: list[list[int]] = []
    weights: list[int] = []
    answered = 0
    stack: list[tuple[Node, list[int]]] = [
        (child, prefix) for child in reversed(list(tree.children.values()))
    ]
    while stack:
        node, before = stack.pop()
        answered += 1
        here = [*before, frame_of(node)]
        ending_here = node.samples - sum(child.samples for child in node.children.values())
        if ending_here > 0:
            samples.append(here)
            weights.append(ending_here)
        stack.extend((child, here) for child in reversed(list(node.children.values())))
    for path, values in path_durations(reads, organization_id, where).items():
        index = owner.get(path)
        if index is not None:
            durations[index].extend(values)
    _add_percentiles(frames, infos, durations)
    metadata = {
        "profiles": profiles,
        "max_nodes": max_nodes,
        "nodes": answered,
        "total_nodes": total_nodes,
        "truncated": any(node.other for node in walk(tree)),
        "other": OTHER,
    }
    return _speedscope(frames, infos, samples, weights, metadata)


def _exact(
    reads: ProfileReads, organization_id: int, where: ProfileFilter, paths: dict[int, Any], profiles: int
) -> dict[str, Any]:
    """The whole tree, every path as it is (the answer whenever it fits the budget)."""
    frame_index: dict[tuple[str, str], int] = {}
    frames: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    for node in paths.values():
        key = (node.name, node.package)
        if key not in frame_index:
            frame_index[key] = len(frames)
            frames.append({"name": node.name, "image": node.package, "is_application": node.in_app})
            infos.append({"count": 0, "weight": 0, "sumDuration": 0, "sumSelfTime": 0})
        info = infos[frame_index[key]]
        info["count"] += node.occurrences
        info["weight"] += node.samples
        info["sumDuration"] += node.duration_ns
        info["sumSelfTime"] += node.self_time_ns
    durations: list[list[int]] = [[] for _ in frames]
    for path, values in path_durations(reads, organization_id, where).items():
        found = paths.get(path)
        if found is not None:
            durations[frame_index[(found.name, found.package)]].extend(values)
    _add_percentiles(frames, infos, durations)
    children_samples: dict[int, int] = {}
    for node in paths.values():
        children_samples[node.parent] = children_samples.get(node.parent, 0) + node.samples
    samples, weights = [], []
    for path, node in paths.items():
        ending_here = node.samples - children_samples.get(path, 0)
        if ending_here <= 0:
            continue
        stack = []
        cursor: int | None = path
        while cursor:
            current = paths.get(cursor)
            if current is None:
                break
            stack.append(frame_index[(current.name, current.package)])
            cursor = current.parent
        samples.append(stack[::-1])
        weights.append(ending_here)
    return _speedscope(frames, infos, samples, weights, {"profiles": profiles})


def _add_percentiles(
    frames: list[dict[str, Any]], infos: list[dict[str, Any]], durations: list[list[int]]
) -> None:
    """Each frame's p75/p95/p99 of per-profile durations; none for an [other] frame, whose
    durations belong to different frames."""
    for frame, info, values in zip(frames, infos, durations, strict=True):
        if frame.get("is_other"):
            info.update(p75Duration=None, p95Duration=None, p99Duration=None)
            continue
        values.sort()
        info.update(
            p75Duration=exact_quantile(values, 0.75),
            p95Duration=exact_quantile(values, 0.95),
            p99Duration=exact_quantile(values, 0.99),
        )


def _speedscope(
    frames: list[dict[str, Any]],
    infos: list[dict[str, Any]],
    samples: list[list[int]],
    weights: list[int],
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """The answer's shape, as Sentry's: one sampled profile of the stacks where samples ended."""
    return {
        "shared": {"frames": frames, "frame_infos": infos},
        "profiles": [
            {
                "type": "sampled",
                "unit": "count",
                "name": "aggregate",
                "isMainThread": True,
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
        "metadata": metadata,
    }


def frame_totals(
    reads: ProfileReads, organization_id: int, where: ProfileFilter, root: Sequence[Identity] | None = None
) -> dict[tuple[str, str], list[int]]:
    """Per frame (name, package): samples, total time and self time over the selection (over
    the subtree under the `root` stack only, when given; empty when it is not there)."""
    frames: dict[tuple[str, str], list[int]] = {}
    paths = path_totals(reads, organization_id, where).paths
    if root is None:
        for node in paths.values():
            found = frames.setdefault((node.name, node.package), [0, 0, 0])
            found[0] += node.samples
            found[1] += node.duration_ns
            found[2] += node.self_time_ns
        return frames
    chain = find(build(paths), root)
    for tree_node in walk(chain[-1]) if chain else ():
        found = frames.setdefault((tree_node.name, tree_node.package), [0, 0, 0])
        found[0] += tree_node.samples
        found[1] += tree_node.duration_ns
        found[2] += tree_node.self_time_ns
    return frames


def differential(
    reads: ProfileReads,
    organization_id: int,
    before: ProfileFilter,
    after: ProfileFilter,
    max_nodes: int = DEFAULT_MAX_NODES,
    root: Sequence[Identity] | None = None,
) -> dict[str, Any]:
    """How each frame's share of self time moved between two selections (releases, windows).

    Shares, not raw times, are compared, so a selection with more profiles does not look
    slower everywhere; `change` is the after share minus the before share.  At most
    `max_nodes` frames are listed, the biggest changes; the rest fold into one `[other]`
    entry (`"other": true`) holding their sums, so times and changes still add up.  With
    `root`, only the frames under that stack (shares of its self time) are compared.
    """
    old = frame_totals(reads, organization_id, before, root)
    new = frame_totals(reads, organization_id, after, root)
    old_total = sum(v[2] for v in old.values()) or 1
    new_total = sum(v[2] for v in new.values()) or 1
    frames: list[dict[str, Any]] = []
    for name, package in sorted(old.keys() | new.keys()):
        was, now = old.get((name, package), [0, 0, 0]), new.get((name, package), [0, 0, 0])
        change = now[2] / new_total - was[2] / old_total
        frames.append(
            {
                "name": name,
                "package": package,
                "before": {"samples": was[0], "duration_ns": was[1], "self_time_ns": was[2]},
                "after": {"samples": now[0], "duration_ns": now[1], "self_time_ns": now[2]},
                "change": round(change, 6),
            }
        )
    frames.sort(key=lambda f: -abs(f["change"]))
    if len(frames) > max_nodes:
        rest = frames[max_nodes - 1 :]
        frames = frames[: max_nodes - 1]
        sums = {
            side: {key: sum(f[side][key] for f in rest) for key in ("samples", "duration_ns", "self_time_ns")}
            for side in ("before", "after")
        }
        change = sums["after"]["self_time_ns"] / new_total - sums["before"]["self_time_ns"] / old_total
        frames.append({"name": OTHER, "package": "", **sums, "change": round(change, 6), "other": True})
    return {"frames": frames, "before": {"self_time_ns": old_total}, "after": {"self_time_ns": new_total}}
