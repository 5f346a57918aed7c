"""A profile's call tree folded by path, the unit aggregate flamegraphs are built from.

Every node instance of a profile's call trees is keyed by its path from the root (a hash of
the frames' package, function and address along it, the same identity call trees merge
on), and instances of one path are summed: samples, total time, self time (time no child
accounts for).  The store keeps these rows per profile, so a flamegraph over any number of
profiles is a GROUP BY over the index, never a walk over blobs.
"""

from __future__ import annotations

import msgspec
import numpy as np

from profd.analysis.calltree import CallTree
from profd.formats.rows import FlameNode


def fold(trees: list[CallTree]) -> list[FlameNode]:
    """One row per distinct path across the trees (all threads of a chunk fold together)."""
    rows: dict[int, FlameNode] = {}
    for tree in trees:
        if not len(tree):
            continue
        facts = tree.facts
        depth = tree.depth
        has_parent = tree.parent >= 0
        children = np.bincount(
            tree.parent[has_parent], weights=tree.duration_ns[has_parent], minlength=len(tree)
        ).astype(np.int64)
        own = np.maximum(tree.duration_ns - children, 0)
        signed = tree.path
        parent_paths = np.where(has_parent, signed[np.maximum(tree.parent, 0)], 0)
        unique, first, inverse = np.unique(signed, return_index=True, return_inverse=True)
        sums = [
            np.bincount(inverse, weights=values, minlength=len(unique)).astype(np.int64).tolist()
            for values in (tree.sample_count, tree.duration_ns, own)
        ]
        for k, path in enumerate(unique.tolist()):
            node = int(first[k])
            found = rows.get(path)
            if found is None:
                frame = int(tree.frame[node])
                rows[path] = FlameNode(
                    path=path,
                    parent=int(parent_paths[node]),
                    name=facts.function[frame],
                    package=facts.package[frame],
                    in_app=bool(facts.application[frame]),
                    depth=int(depth[node]),
                    sample_count=sums[0][k],
                    duration_ns=sums[1][k],
                    self_time_ns=sums[2][k],
                )
            else:
                rows[path] = msgspec.structs.replace(
                    found,
                    sample_count=found.sample_count + sums[0][k],
                    duration_ns=found.duration_ns + sums[1][k],
                    self_time_ns=found.self_time_ns + sums[2][k],
                )
    return list(rows.values())
