"""A profile's call trees folded by stack, cut to a node budget: what the index keeps of a
profile for aggregate flamegraphs (profd.formats.flame_tree).

Every node instance of a profile's call trees is keyed by its stack of frame identities
(function, package) from the root, as the flamegraph draws them, and the instances of one
stack are summed: samples, total time, self time (time no child accounts for).  All threads
fold together.  The tree is then cut to PROFILE_NODES nodes, the heaviest kept and the rest
folded into [other] nodes, so what one profile costs the index is bounded whatever its
stack diversity; `lost` records the heaviest node cut.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from profd.analysis.calltree import CallTree
from profd.analysis.frames import FrameFacts
from profd.formats import flame_tree
from profd.formats.flame_tree import PROFILE_NODES, FlameTree, Frame, frame_id, stack_step


def fold(trees: list[CallTree], budget: int = PROFILE_NODES) -> FlameTree:
    columns: list[list[np.ndarray]] = [[] for _ in range(7)]
    # Frame ids of the frames the trees use, once per profile (threads share their facts).
    ids_of: dict[int, np.ndarray] = {}
    origin: dict[int, tuple[FrameFacts, int]] = {}
    for facts in {id(tree.facts): tree.facts for tree in trees}.values():
        used = np.unique(np.concatenate([tree.frame for tree in trees if tree.facts is facts])).tolist()
        function, package = facts.function, facts.package
        found = [frame_id(function[index], package[index]) for index in used]
        ids = np.zeros(len(function), np.int64)
        ids[used] = found
        for frame_id_, index in zip(found, used, strict=True):
            origin.setdefault(frame_id_, (facts, index))
        ids_of[id(facts)] = ids
    for tree in trees:
        if not len(tree):
            continue
        ids = ids_of[id(tree.facts)]
        frame = ids[tree.frame]
        path = np.zeros(len(tree), np.int64)
        has_parent = tree.parent >= 0
        parent = np.maximum(tree.parent, 0)
        # Instances are in pre-order; a level's parents are one level up, already hashed.
        order = np.argsort(tree.depth, kind="stable")
        depths = tree.depth[order]
        bounds = np.searchsorted(depths, np.arange(int(depths[-1]) + 2))
        for a, b in itertools.pairwise(bounds):
            level = order[a:b]
            above = np.where(has_parent[level], path[parent[level]], 0)
            path[level] = stack_step(above, frame[level])
        children = np.bincount(
            tree.parent[has_parent], weights=tree.duration_ns[has_parent], minlength=len(tree)
        ).astype(np.int64)
        columns[0].append(path)
        columns[1].append(np.where(has_parent, path[parent], 0))
        columns[2].append(tree.depth.astype(np.int32))
        columns[3].append(frame)
        columns[4].append(tree.sample_count.astype(np.int64))
        columns[5].append(tree.duration_ns.astype(np.int64))
        columns[6].append(np.maximum(tree.duration_ns - children, 0))
    if not columns[0]:
        return flame_tree.empty()
    path, parents, depth, frame, samples, duration, own = (np.concatenate(c) for c in columns)
    folded = flame_tree.of_instances(path, parents, depth, frame, samples, duration, own)
    cut = flame_tree.truncate(folded, budget)
    names: dict[int, Frame] = {}
    for kept in set(cut.frame.tolist()) & origin.keys():
        facts, index = origin[kept]
        names[kept] = (facts.function[index], facts.package[index], bool(facts.application[index]))
    return dataclasses.replace(cut, names=names)
