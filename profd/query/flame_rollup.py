"""The merged flame tree of any selection of profiles: the daily buckets for the days it
covers whole, the hourly buckets for the other whole hours, each profile's own tree for
the partial hours at its ends (profd.query.rollup).  Its cost grows with days, hours and
the node budgets, not with profiles.

Every tree merged is within its budget (profd.formats.flame_tree), so the result's root
total is exact and each node is at most the result's `lost` samples below the exact merge
of the profiles' whole call trees.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import msgspec

from profd.formats.flame_tree import FlameTree, merge_all
from profd.query.rollup import split
from profd.store.protocols import ProfileReads
from profd.store.records import ProfileFilter

# Per-occurrence durations for percentiles come from at most this many profiles of the
# selection, drawn uniformly (profile ids are random), as vroom draws its candidates.
PERCENTILE_SAMPLE = 500
# A merge is cut back to this many nodes as it goes, so its memory stays bounded however
# many buckets it reads (the cut adds to `lost`, as any cut does).
MERGE_NODES = 1 << 17


class Totals(msgspec.Struct):
    tree: FlameTree
    profiles: int


def merged_tree(reads: ProfileReads, organization_id: int, where: ProfileFilter) -> Totals:
    parts = split(where)
    sources: list[Iterator[FlameTree]] = []
    profiles = 0
    if parts.days is not None:
        sources.append(reads.rollup_flame_trees(organization_id, parts.days, "day"))
        profiles += reads.rollup_profile_count(organization_id, parts.days, "day")
    for hours in parts.hours:
        sources.append(reads.rollup_flame_trees(organization_id, hours, "hour"))
        profiles += reads.rollup_profile_count(organization_id, hours, "hour")
    for edge in parts.edges:
        sources.append(reads.flame_trees(organization_id, edge))
        profiles += reads.count_profiles(organization_id, edge)
    return Totals(tree=merge_all(itertools.chain(*sources), MERGE_NODES), profiles=profiles)


def sample_trees(reads: ProfileReads, organization_id: int, where: ProfileFilter) -> list[FlameTree]:
    """The trees of up to PERCENTILE_SAMPLE profiles of the selection (all of them when it is
    that small): what frame percentiles are computed from."""
    return list(reads.flame_trees(organization_id, where, PERCENTILE_SAMPLE))
