"""The functions table: per function, how often and how long it ran across profiles.

Built from the hourly function rollups and the function rows the store wrote for every
profile (never from blobs): for a filter and time range, per fingerprint the number of
occurrences, percentiles of their self times (nearest rank over log histograms, within 1%
of the exact value: profd.analysis.histogram), the total, the profile where it was slowest
and a few example profiles.
"""

from __future__ import annotations

import math

import msgspec

from profd.analysis import histogram
from profd.query.profiles import ProfileFilter
from profd.query.rollup import bucket_where, edges, rollup_hours
from profd.store.index import Index
from profd.store.rollups import EXAMPLES

_times = msgspec.json.Decoder(list[int]).decode
_examples = msgspec.json.Decoder(list[str]).decode
SORTABLE = ("sum", "count", "p50", "p75", "p95", "p99")


class ProfileRef(msgspec.Struct, frozen=True):
    project_id: int
    profile_id: str


class FunctionRow(msgspec.Struct):
    fingerprint: int
    function: str
    package: str
    in_app: bool
    count: int
    p50: int
    p75: int
    p95: int
    p99: int
    sum: int
    worst: ProfileRef | None  # the profile with the slowest occurrence
    examples: list[ProfileRef]


def quantile(ordered: list[int], q: float) -> int:
    """Nearest rank: the value at ceil(n*q) - 1 of the sorted values (0 for none)."""
    return ordered[max(0, math.ceil(len(ordered) * q) - 1)] if ordered else 0


class _Function:
    """A function's metrics being summed over buckets and profiles."""

    __slots__ = ("count", "examples", "function", "in_app", "package", "sum", "times", "worst")

    def __init__(self, function: str, package: str, in_app: bool) -> None:
        self.function, self.package, self.in_app = function, package, in_app
        self.count = self.sum = 0
        self.worst: tuple[int, int, str] = (-1, 0, "")
        self.examples: list[ProfileRef] = []
        self.times: histogram.Histogram = {}

    def row(self, fingerprint: int) -> FunctionRow:
        return FunctionRow(
            fingerprint=fingerprint,
            function=self.function,
            package=self.package,
            in_app=self.in_app,
            count=self.count,
            p50=histogram.quantile(self.times, 0.5),
            p75=histogram.quantile(self.times, 0.75),
            p95=histogram.quantile(self.times, 0.95),
            p99=histogram.quantile(self.times, 0.99),
            sum=self.sum,
            worst=ProfileRef(self.worst[1], self.worst[2]) if self.worst[2] else None,
            examples=self.examples,
        )


def function_metrics(index: Index, organization_id: int, where: ProfileFilter) -> dict[int, FunctionRow]:
    """Every function of the selection by fingerprint: rollup buckets for its whole hours,
    per-profile rows for the rest (profd.query.rollup)."""
    found: dict[int, _Function] = {}

    def entry(fingerprint: int, function: str, package: str, in_app: int) -> _Function:
        f = found.get(fingerprint)
        if f is None:
            f = found[fingerprint] = _Function(function, package, bool(in_app))
        return f

    hours = rollup_hours(where)
    if hours is not None:
        sql_where, params = bucket_where(organization_id, where, *hours)
        for row in index.select(
            "SELECT r.fingerprint, r.function, r.package, r.in_app, r.occurrences, r.sum_self_time_ns,"
            " r.worst_ns, r.worst_profile_id, r.examples, r.self_times, b.project_id"
            f" FROM rollup_buckets b JOIN function_rollup r ON r.bucket = b.id WHERE {sql_where}",
            tuple(params),
        ):
            f = entry(*row[:4])
            f.count += row[4]
            f.sum += row[5]
            project = row[10]
            f.worst = max(f.worst, (row[6], project, row[7]))
            f.examples.extend(ProfileRef(project, p) for p in _examples(row[8])[: EXAMPLES - len(f.examples)])
            histogram.merge(f.times, histogram.decode(row[9]))
    for edge in edges(where, hours):
        sql_where, params = edge.where(organization_id, table="p")
        for row in index.select(
            "SELECT f.fingerprint, f.function, f.package, f.in_app, f.self_times_ns, f.max_duration_ns, f.profile_id,"
            " f.project_id"
            " FROM functions f JOIN profiles p ON p.project_id = f.project_id AND p.profile_id = f.profile_id"
            f" WHERE {sql_where}",
            tuple(params),
        ):
            f = entry(*row[:4])
            times = _times(row[4])
            f.count += len(times)
            f.sum += sum(times)
            f.worst = max(f.worst, (row[5], row[7], row[6]))
            example = ProfileRef(row[7], row[6])
            if len(f.examples) < EXAMPLES and example not in f.examples:
                f.examples.append(example)
            histogram.add(f.times, times)
    return {fingerprint: f.row(fingerprint) for fingerprint, f in found.items()}


def function_table(
    index: Index, organization_id: int, where: ProfileFilter, *, sort: str = "sum", limit: int = 100
) -> list[FunctionRow]:
    if sort not in SORTABLE:
        raise ValueError(f"sort must be one of {', '.join(SORTABLE)}")
    table = list(function_metrics(index, organization_id, where).values())
    table.sort(key=lambda f: (-getattr(f, sort), f.fingerprint))
    return table[:limit]
