"""Per-path totals of the folded call trees of any selection of profiles: the rollup
buckets for the hours the selection covers whole, the per-profile rows for the rest
(profd.query.rollup).  Both are exact sums, so the result equals summing every profile's
rows, at a cost that grows with hours and paths rather than with profiles.
"""

from __future__ import annotations

from typing import Any

import msgspec

from profd.query.profiles import ProfileFilter
from profd.query.rollup import bucket_where, edges, rollup_hours
from profd.store.index import Index

# Per-occurrence durations for percentiles come from at most this many profiles of the
# selection, drawn uniformly (profile ids are random), as vroom draws its candidates.
PERCENTILE_SAMPLE = 500


class PathTotal(msgspec.Struct):
    parent: int
    name: str
    package: str
    in_app: bool
    occurrences: int  # profiles the path appears in
    samples: int
    duration_ns: int
    self_time_ns: int


class Totals(msgspec.Struct):
    paths: dict[int, PathTotal]
    profiles: int


def _add(paths: dict[int, PathTotal], rows: list[Any]) -> None:
    for path, occurrences, samples, duration, self_time, parent, name, package, in_app in rows:
        found = paths.get(path)
        if found is None:
            paths[path] = PathTotal(
                parent, name, package, bool(in_app), occurrences, samples, duration, self_time
            )
        else:
            found.occurrences += occurrences
            found.samples += samples
            found.duration_ns += duration
            found.self_time_ns += self_time


_FRAME = "SELECT t.*, fp.parent, fp.name, fp.package, fp.in_app FROM ({}) t JOIN flame_paths fp ON fp.path = t.path"


def path_totals(index: Index, organization_id: int, where: ProfileFilter) -> Totals:
    paths: dict[int, PathTotal] = {}
    profiles = 0
    hours = rollup_hours(where)
    if hours is not None:
        sql_where, params = bucket_where(organization_id, where, *hours)
        _add(
            paths,
            index.select(
                _FRAME.format(
                    "SELECT r.path, SUM(r.occurrences), SUM(r.sample_count), SUM(r.duration_ns),"
                    " SUM(r.self_time_ns) FROM rollup_buckets b JOIN flame_rollup r ON r.bucket = b.id"
                    f" WHERE {sql_where} GROUP BY r.path"
                ),
                tuple(params),
            ),
        )
        profiles += index.select(
            f"SELECT IFNULL(SUM(b.profiles), 0) FROM rollup_buckets b WHERE {sql_where}", tuple(params)
        )[0][0]
    for edge in edges(where, hours):
        sql_where, params = edge.where(organization_id, table="p")
        _add(
            paths,
            index.select(
                _FRAME.format(
                    "SELECT f.path, COUNT(*), SUM(f.sample_count), SUM(f.duration_ns), SUM(f.self_time_ns)"
                    " FROM profiles p JOIN flame_nodes f ON f.project_id = p.project_id AND f.profile_id ="
                    f" p.profile_id WHERE {sql_where} GROUP BY f.path"
                ),
                tuple(params),
            ),
        )
        profiles += index.select(f"SELECT COUNT(*) FROM profiles p WHERE {sql_where}", tuple(params))[0][0]
    return Totals(paths=paths, profiles=profiles)


def path_durations(index: Index, organization_id: int, where: ProfileFilter) -> dict[int, list[int]]:
    """Each path's duration in each of up to PERCENTILE_SAMPLE profiles of the selection (all
    of them when the selection is that small): what frame percentiles are computed from."""
    sql_where, params = where.where(organization_id, table="p")
    rows = index.select(
        "SELECT f.path, f.duration_ns FROM (SELECT p.project_id, p.profile_id FROM profiles p"
        f" WHERE {sql_where} ORDER BY p.profile_id LIMIT {PERCENTILE_SAMPLE}) s"
        " JOIN flame_nodes f ON f.project_id = s.project_id AND f.profile_id = s.profile_id",
        tuple(params),
    )
    durations: dict[int, list[int]] = {}
    for path, duration in rows:
        durations.setdefault(path, []).append(duration)
    return durations
