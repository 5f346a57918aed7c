"""Function regressions: functions that got slower between two windows (or releases).

Sentry finds them with breakpoint detection over hourly p95 series; profd compares two
selections the user names.  A function regressed when it ran often enough in both (at
least `min_count` occurrences each) and its p95 self time (or its self time per profile,
for `metric="sum"`, so a busier window does not look slower) rose by at least
`threshold` (relative) and by at least 10 µs, the resolution Sentry reports changes at.
The histograms' percentiles are within 1%, well under any threshold worth asking for.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from profd.query.functions import FunctionRow, ProfileRef, function_metrics
from profd.store.protocols import ProfileReads
from profd.store.records import ProfileFilter

MIN_CHANGE_NS = 10_000


class Window(msgspec.Struct):
    count: int
    p95: int
    sum: int
    per_profile: int  # self time per profile of the window


class Regression(msgspec.Struct):
    fingerprint: int
    name: str
    package: str
    in_app: bool
    before: Window
    after: Window
    change: float  # relative change of the compared metric, 0.25 = 25% slower
    examples: list[ProfileRef]  # the slowest profile of the after window first


def _window(row: FunctionRow, profiles: int) -> Window:
    return Window(count=row.count, p95=row.p95, sum=row.sum, per_profile=row.sum // max(profiles, 1))


def _value(window: Window, metric: str) -> int:
    return window.p95 if metric == "p95" else window.per_profile


def regressions(
    reads: ProfileReads,
    organization_id: int,
    before: ProfileFilter,
    after: ProfileFilter,
    *,
    metric: Literal["p95", "sum"] = "p95",
    threshold: float = 0.1,
    min_count: int = 10,
    limit: int = 50,
) -> list[Regression]:
    """The regressed functions, the biggest increase in total time first."""
    old = function_metrics(reads, organization_id, before)
    new = function_metrics(reads, organization_id, after)
    old_profiles, new_profiles = (
        reads.count_profiles(organization_id, before),
        reads.count_profiles(organization_id, after),
    )
    found = []
    for fingerprint, now in new.items():
        was = old.get(fingerprint)
        if was is None or was.count < min_count or now.count < min_count:
            continue
        then_w, now_w = _window(was, old_profiles), _window(now, new_profiles)
        then_v, now_v = _value(then_w, metric), _value(now_w, metric)
        if now_v - then_v < MIN_CHANGE_NS or now_v < then_v * (1 + threshold):
            continue
        examples = ([now.worst] if now.worst else []) + [e for e in now.examples if e != now.worst]
        found.append(
            Regression(
                fingerprint=fingerprint,
                name=now.function,
                package=now.package,
                in_app=now.in_app,
                before=then_w,
                after=now_w,
                change=round((now_v - then_v) / then_v, 4) if then_v else float("inf"),
                examples=examples,
            )
        )
    # Impact: how much more time the slower function costs over the after window.
    found.sort(key=lambda r: -(_value(r.after, metric) - _value(r.before, metric)) * r.after.count)
    return found[:limit]
