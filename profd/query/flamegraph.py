"""Aggregate and differential flamegraphs over any selection of profiles, from the bounded
flame trees indexed at write time (profd.query.flame_rollup); no blob is read.

The answer is speedscope-shaped, as Sentry's: ``shared.frames`` (one per name and
package), ``shared.frame_infos`` (occurrences, samples, total and self time, and p75/p95/p99
of the per-profile durations), and one sampled profile whose samples are the stacks where
samples ended, weighted by their sample counts.  It holds at most `max_nodes` nodes: the
heaviest, with the rest of each kept node's children folded into one `[other]` child
(profd.formats.flame_tree.truncate).  `root` zooms: the subtree under that stack gets the
whole budget, its ancestors shown above it with their own totals.

``metadata.max_error_samples`` is the stored trees' bound: every frame node of the answer
has at most that many samples fewer than the exact merge of the selection's whole call
trees, and never more; `[other]` nodes hold exactly what their siblings miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from profd.formats.flame_tree import (
    OTHER,
    OTHER_FRAME,
    FlameTree,
    Frame,
    find,
    frame_id,
    subtree,
    truncate,
)
from profd.formats.histogram import exact_quantile
from profd.query.flame_rollup import merged_tree, sample_trees
from profd.store.protocols import ProfileReads
from profd.store.records import ProfileFilter

DEFAULT_MAX_NODES = 8192
MIN_MAX_NODES = 16
MAX_MAX_NODES = 100_000

Identity = tuple[str, str]  # (name, package)


class NoSuchNode(LookupError):
    """The `root` stack is not in the selection's tree."""


def _root_index(tree: FlameTree, root: Sequence[Identity]) -> int | None:
    return find(tree, [frame_id(name, package) for name, package in root])


def _ancestors(tree: FlameTree, index: int) -> list[int]:
    chain = []
    cursor = int(tree.parent[index])
    while cursor >= 0:
        chain.append(cursor)
        cursor = int(tree.parent[cursor])
    return chain[::-1]


def flamegraph(
    reads: ProfileReads,
    organization_id: int,
    where: ProfileFilter,
    max_nodes: int = DEFAULT_MAX_NODES,
    root: Sequence[Identity] | None = None,
) -> dict[str, Any]:
    """The merged tree of the selection within `max_nodes` nodes; with `root`, a stack of
    (name, package) from the root, the subtree under that node with the budget to itself,
    its stack kept above it.  Raises NoSuchNode for an unknown root."""
    totals = merged_tree(reads, organization_id, where)
    tree = totals.tree
    above: list[int] = []
    shown = tree
    if root is not None:
        index = _root_index(tree, root)
        if index is None:
            raise NoSuchNode(root)
        above = _ancestors(tree, index)
        shown = subtree(tree, index)
    cut = truncate(shown, max_nodes)
    metadata: dict[str, Any] = {"profiles": totals.profiles, "max_error_samples": shown.lost}
    if root is not None or len(shown) > max_nodes:
        metadata.update(
            max_nodes=max_nodes,
            nodes=len(cut),
            total_nodes=len(shown),
            truncated=len(shown) > max_nodes,
            other=OTHER,
        )
    if root is not None:
        metadata["root"] = [[name, package] for name, package in root]
    ids = {int(f) for f in cut.frame} | {int(tree.frame[i]) for i in above}
    names = reads.frame_names(ids - {OTHER_FRAME})
    return _answer(tree, above, cut, names, sample_trees(reads, organization_id, where), metadata)


def _answer(
    tree: FlameTree,
    above: list[int],
    cut: FlameTree,
    names: dict[int, Frame],
    samples_from: list[FlameTree],
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """The speedscope-shaped answer for a (cut) tree, every stack prefixed by `above` (the
    zoomed node's ancestors in `tree`, whose frame infos are their own totals)."""
    frame_index: dict[int, int] = {}
    frames: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    owner: dict[int, int] = {}  # a real node's path -> its frame's index, for percentiles

    def frame_of(source: FlameTree, node: int) -> int:
        frame = int(source.frame[node])
        index = frame_index.get(frame)
        if index is None:
            index = frame_index[frame] = len(frames)
            if frame == OTHER_FRAME:
                frames.append({"name": OTHER, "image": "", "is_application": False, "is_other": True})
            else:
                name, package, in_app = names.get(frame, ("[unknown]", "", False))
                frames.append({"name": name, "image": package, "is_application": in_app})
            infos.append({"count": 0, "weight": 0, "sumDuration": 0, "sumSelfTime": 0})
        info = infos[index]
        info["count"] += int(source.occurrences[node])
        info["weight"] += int(source.samples[node])
        info["sumDuration"] += int(source.duration_ns[node])
        info["sumSelfTime"] += int(source.self_time_ns[node])
        if frame != OTHER_FRAME:
            owner[int(source.path[node])] = index
        return index

    prefix = [frame_of(tree, node) for node in above]
    n = len(cut)
    parent = cut.parent.tolist()
    has_parent = cut.parent >= 0
    below = np.zeros(n, np.int64)
    np.add.at(below, cut.parent[has_parent], cut.samples[has_parent])
    ending = (cut.samples - below).tolist()
    children: list[list[int]] = [[] for _ in range(n)]
    roots: list[int] = []
    for node in np.lexsort((cut.path, -cut.samples)).tolist():  # heaviest first
        (roots if parent[node] < 0 else children[parent[node]]).append(node)
    samples: list[list[int]] = []
    weights: list[int] = []
    stack: list[tuple[int, list[int]]] = [(node, prefix) for node in reversed(roots)]
    while stack:
        node, before = stack.pop()
        here = [*before, frame_of(cut, node)]
        if ending[node] > 0:
            samples.append(here)
            weights.append(ending[node])
        stack.extend((child, here) for child in reversed(children[node]))
    _add_percentiles(frames, infos, _durations(samples_from, owner, len(frames)))
    return _speedscope(frames, infos, samples, weights, metadata)


def _durations(trees: list[FlameTree], owner: dict[int, int], count: int) -> list[list[int]]:
    """Per answer frame, the durations of its nodes in each sampled profile."""
    durations: list[list[int]] = [[] for _ in range(count)]
    if not trees or not owner:
        return durations
    paths = np.fromiter(owner.keys(), np.int64, len(owner))
    frames = np.fromiter(owner.values(), np.int64, len(owner))
    order = np.argsort(paths)
    paths, frames = paths[order], frames[order]
    every_path = np.concatenate([t.path for t in trees])
    every_duration = np.concatenate([t.duration_ns for t in trees])
    at = np.minimum(np.searchsorted(paths, every_path), len(paths) - 1)
    hit = paths[at] == every_path
    for frame, duration in zip(frames[at[hit]].tolist(), every_duration[hit].tolist(), strict=True):
        durations[frame].append(duration)
    return durations


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
    the subtree under the `root` stack only, when given; empty when it is not there).  The
    stored trees' [other] nodes are one frame, (OTHER, '')."""
    tree = merged_tree(reads, organization_id, where).tree
    if root is not None:
        index = _root_index(tree, root)
        if index is None:
            return {}
        tree = subtree(tree, index)
    if not len(tree):
        return {}
    ids, inverse = np.unique(tree.frame, return_inverse=True)
    sums: list[list[int]] = []
    for values in (tree.samples, tree.duration_ns, tree.self_time_ns):
        summed = np.zeros(len(ids), np.int64)
        np.add.at(summed, inverse, values)
        sums.append(summed.tolist())
    names = reads.frame_names({int(i) for i in ids} - {OTHER_FRAME})
    frames: dict[tuple[str, str], list[int]] = {}
    for k, frame in enumerate(ids.tolist()):
        name, package, _ = (
            (OTHER, "", False) if frame == OTHER_FRAME else names.get(frame, ("[unknown]", "", False))
        )
        found = frames.setdefault((name, package), [0, 0, 0])
        for column in range(3):
            found[column] += sums[column][k]
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
    `max_nodes` frames are listed, the biggest changes; the rest, and what the stored trees
    hold in [other] nodes, fold into one `[other]` entry (`"other": true`) holding their
    sums, so times and changes still add up.  With `root`, only the frames under that stack
    (shares of its self time) are compared.
    """
    old = frame_totals(reads, organization_id, before, root)
    new = frame_totals(reads, organization_id, after, root)
    old_sum, new_sum = sum(v[2] for v in old.values()), sum(v[2] for v in new.values())
    # Shares of an empty side are 0 (the guard is for the division only).
    old_total, new_total = old_sum or 1, new_sum or 1
    frames: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for name, package in sorted(old.keys() | new.keys()):
        was, now = old.get((name, package), [0, 0, 0]), new.get((name, package), [0, 0, 0])
        change = now[2] / new_total - was[2] / old_total
        entry = {
            "name": name,
            "package": package,
            "before": {"samples": was[0], "duration_ns": was[1], "self_time_ns": was[2]},
            "after": {"samples": now[0], "duration_ns": now[1], "self_time_ns": now[2]},
            "change": round(change, 6),
        }
        (rest if (name, package) == (OTHER, "") else frames).append(entry)
    frames.sort(key=lambda f: -abs(f["change"]))
    if len(frames) + len(rest) > max_nodes:
        rest.extend(frames[max_nodes - 1 :])
        frames = frames[: max_nodes - 1]
    if rest:
        sums = {
            side: {key: sum(f[side][key] for f in rest) for key in ("samples", "duration_ns", "self_time_ns")}
            for side in ("before", "after")
        }
        change = sums["after"]["self_time_ns"] / new_total - sums["before"]["self_time_ns"] / old_total
        frames.append({"name": OTHER, "package": "", **sums, "change": round(change, 6), "other": True})
    return {"frames": frames, "before": {"self_time_ns": old_sum}, "after": {"self_time_ns": new_sum}}
