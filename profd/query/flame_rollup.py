"""Per-path totals of the folded call trees of any selection of profiles: the rollup
buckets for the hours the selection covers whole, the per-profile rows for the rest
(profd.query.rollup).  Both are exact sums, so the result equals summing every profile's
rows, at a cost that grows with hours and paths rather than with profiles.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from profd.query.rollup import edges, rollup_hours, whole_hours
from profd.store.protocols import ProfileReads
from profd.store.records import PathTotal, ProfileFilter

# Per-occurrence durations for percentiles come from at most this many profiles of the
# selection, drawn uniformly (profile ids are random), as vroom draws its candidates.
PERCENTILE_SAMPLE = 500

__all__ = ["PERCENTILE_SAMPLE", "PathTotal", "Totals", "path_durations", "path_totals"]


class Totals(msgspec.Struct):
    paths: dict[int, PathTotal]
    profiles: int


def _add(paths: dict[int, PathTotal], rows: Iterable[PathTotal]) -> None:
    for row in rows:
        found = paths.get(row.path)
        if found is None:
            paths[row.path] = row
        else:
            found.occurrences += row.occurrences
            found.samples += row.samples
            found.duration_ns += row.duration_ns
            found.self_time_ns += row.self_time_ns


def path_totals(reads: ProfileReads, organization_id: int, where: ProfileFilter) -> Totals:
    paths: dict[int, PathTotal] = {}
    profiles = 0
    hours = rollup_hours(where)
    if hours is not None:
        whole = whole_hours(where, hours)
        _add(paths, reads.rollup_path_totals(organization_id, whole))
        profiles += reads.rollup_profile_count(organization_id, whole)
    for edge in edges(where, hours):
        _add(paths, reads.path_totals(organization_id, edge))
        profiles += reads.count_profiles(organization_id, edge)
    return Totals(paths=paths, profiles=profiles)


def path_durations(reads: ProfileReads, organization_id: int, where: ProfileFilter) -> dict[int, list[int]]:
    """Each path's duration in each of up to PERCENTILE_SAMPLE profiles of the selection (all
    of them when the selection is that small): what frame percentiles are computed from."""
    durations: dict[int, list[int]] = {}
    for path, duration in reads.path_durations(organization_id, where, PERCENTILE_SAMPLE):
        durations.setdefault(path, []).append(duration)
    return durations
