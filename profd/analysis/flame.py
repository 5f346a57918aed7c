"""A profile's call trees folded by stack, cut to a node budget: what the index keeps of a
profile for aggregate flamegraphs (profd.formats.flame_tree).

Every node instance of a profile's call trees is keyed by its stack of frame identities
(function, package) from the root, as the flamegraph draws them, and the instances of one
stack are summed: samples, total time, self time (time no child accounts for).  All threads
fold together, each stack cut at MAX_DEPTH frames.  The tree is then cut to PROFILE_NODES nodes, the heaviest kept and the rest
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

# Frames kept from the root of a stack.  Work per profile grows with the depth (one numpy
# pass per level, here and in the cuts), so a hostile 100,000-frame stack must not set it;
# no flamegraph shows more, and vroom cuts Android call trees at 128.
MAX_DEPTH = 256


def fold(trees: list[CallTree], budget: int = PROFILE_NODES) -> FlameTree:
    columns: list[list[np.ndarray]] = [[] for _ in range(7)]
    # Frame ids of the frames the trees use, once per profile (threads share their facts).
    ids_of: dict[int, np.ndarray] = {}
    origin: dict[int, tuple[FrameFacts, int]] = {}
    for facts in {id(tree.facts): tree.facts for tree in trees}.values():
        used = np.unique(
            np.concatenate([tree.frame[tree.depth < MAX_DEPTH] for tree in trees if tree.facts is facts])
        ).tolist()
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
        frame, parents, depth = ids[tree.frame], tree.parent, tree.depth
        samples, duration = tree.sample_count, tree.duration_ns
        if int(depth.max()) >= MAX_DEPTH:
            # Below MAX_DEPTH frames the time stays in the deepest ancestor kept, as self time.
            kept = np.flatnonzero(depth < MAX_DEPTH)
            renumber = np.full(len(tree), -1, np.int64)
            renumber[kept] = np.arange(len(kept))
            frame, depth, samples, duration = frame[kept], depth[kept], samples[kept], duration[kept]
            parents = np.where(parents[kept] >= 0, renumber[np.maximum(parents[kept], 0)], -1)
        count = len(frame)
        path = np.zeros(count, np.int64)
        has_parent = parents >= 0
        parent = np.maximum(parents, 0)
        # A level's parents are one level up, already hashed (at most MAX_DEPTH levels).
        order = np.argsort(depth, kind="stable")
        bounds = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2))
        for a, b in itertools.pairwise(bounds):
            level = order[a:b]
            above = np.where(has_parent[level], path[parent[level]], 0)
            path[level] = stack_step(above, frame[level])
        children = np.bincount(parents[has_parent], weights=duration[has_parent], minlength=count).astype(
            np.int64
        )
        columns[0].append(path)
        columns[1].append(np.where(has_parent, path[parent], 0))
        columns[2].append(depth.astype(np.int32))
        columns[3].append(frame)
        columns[4].append(samples.astype(np.int64))
        columns[5].append(duration.astype(np.int64))
        columns[6].append(np.maximum(duration - children, 0))
    if not columns[0]:
        return flame_tree.empty()
    path, parents, depth, frame, samples, duration, own = (np.concatenate(c) for c in columns)
    folded = flame_tree.of_instances(path, parents, depth.astype(np.int32), frame, samples, duration, own)
    cut = flame_tree.truncate(folded, budget)
    names: dict[int, Frame] = {}
    for kept in set(cut.frame.tolist()) & origin.keys():
        facts, index = origin[kept]
        names[kept] = (facts.function[index], facts.package[index], bool(facts.application[index]))
    return dataclasses.replace(cut, names=names)
