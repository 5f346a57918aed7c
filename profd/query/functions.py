"""The functions table: per function, how often and how long it ran across profiles.

Built from the daily and hourly function rollups and the function rows the store wrote for every
profile (never from blobs): for a filter and time range, per fingerprint the number of
occurrences, percentiles of their self times (nearest rank over log histograms, within 1%
of the exact value: profd.formats.histogram), the total, the profile where it was slowest
and a few example profiles.
"""

from __future__ import annotations

import msgspec

from profd.formats import histogram
from profd.query.rollup import split
from profd.store.protocols import ProfileReads
from profd.store.records import EXAMPLES, ProfileFilter, Span

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


def function_metrics(
    reads: ProfileReads, organization_id: int, where: ProfileFilter
) -> dict[int, FunctionRow]:
    """Every function of the selection by fingerprint: rollup buckets for its whole days and
    hours, per-profile rows for the rest (profd.query.rollup)."""
    found: dict[int, _Function] = {}

    def entry(fingerprint: int, function: str, package: str, in_app: bool) -> _Function:
        f = found.get(fingerprint)
        if f is None:
            f = found[fingerprint] = _Function(function, package, in_app)
        return f

    parts = split(where)
    periods: list[tuple[ProfileFilter, Span]] = [(hours, "hour") for hours in parts.hours]
    if parts.days is not None:
        periods.append((parts.days, "day"))
    for selection, span in periods:
        for bucket in reads.rollup_functions(organization_id, selection, span):
            f = entry(bucket.fingerprint, bucket.function, bucket.package, bucket.in_app)
            f.count += bucket.occurrences
            f.sum += bucket.sum_self_time_ns
            project = bucket.project_id
            f.worst = max(f.worst, (bucket.worst_ns, project, bucket.worst_profile_id))
            f.examples.extend(ProfileRef(project, p) for p in bucket.examples[: EXAMPLES - len(f.examples)])
            histogram.merge(f.times, bucket.self_times)
    for edge in parts.edges:
        for row in reads.profile_functions(organization_id, edge):
            f = entry(row.fingerprint, row.function, row.package, row.in_app)
            times = row.self_times_ns
            f.count += len(times)
            f.sum += sum(times)
            f.worst = max(f.worst, (row.max_duration_ns, row.project_id, row.profile_id))
            example = ProfileRef(row.project_id, row.profile_id)
            if len(f.examples) < EXAMPLES and example not in f.examples:
                f.examples.append(example)
            histogram.add(f.times, times)
    return {fingerprint: f.row(fingerprint) for fingerprint, f in found.items()}


def function_table(
    reads: ProfileReads, organization_id: int, where: ProfileFilter, *, sort: str = "sum", limit: int = 100
) -> list[FunctionRow]:
    if sort not in SORTABLE:
        raise ValueError(f"sort must be one of {', '.join(SORTABLE)}")
    table = list(function_metrics(reads, organization_id, where).values())
    table.sort(key=lambda f: (-getattr(f, sort), f.fingerprint))
    return table[:limit]
