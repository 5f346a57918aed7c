"""The functions table: per function, how often and how long it ran across profiles.

Built from the function rows the store wrote for every profile (never from blobs): for a
filter and time range, per fingerprint the number of occurrences, percentiles of their
self times (nearest rank, as vroom computes them), the total, the profile where it was
slowest and a few example profiles.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from profd.query.profiles import ProfileFilter
from profd.store.index import Index

EXAMPLES = 5
SORTABLE = ("sum", "count", "p50", "p75", "p95", "p99")


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
    worst: str
    examples: list[str]


def quantile(ordered: list[int], q: float) -> int:
    """Nearest rank: the value at ceil(n*q) - 1 of the sorted values (0 for none)."""
    return ordered[max(0, math.ceil(len(ordered) * q) - 1)] if ordered else 0


def function_table(
    index: Index, organization_id: int, where: ProfileFilter, *, sort: str = "sum", limit: int = 100
) -> list[FunctionRow]:
    if sort not in SORTABLE:
        raise ValueError(f"sort must be one of {', '.join(SORTABLE)}")
    sql_where, params = where.where(organization_id, table="p")
    rows = index.select(
        "SELECT f.fingerprint, f.function, f.package, f.in_app, f.self_times_ns, f.max_duration_ns, f.profile_id"
        " FROM functions f JOIN profiles p ON p.project_id = f.project_id AND p.profile_id = f.profile_id"
        f" WHERE {sql_where}",
        tuple(params),
    )
    grouped: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = grouped.setdefault(
            row["fingerprint"],
            {"row": row, "times": [], "worst": (-1, ""), "examples": []},
        )
        entry["times"].extend(msgspec.json.decode(row["self_times_ns"]))
        entry["worst"] = max(entry["worst"], (row["max_duration_ns"], row["profile_id"]))
        if len(entry["examples"]) < EXAMPLES:
            entry["examples"].append(row["profile_id"])
    table = []
    for fingerprint, entry in grouped.items():
        times = sorted(entry["times"])
        first = entry["row"]
        table.append(
            FunctionRow(
                fingerprint=fingerprint,
                function=first["function"],
                package=first["package"],
                in_app=bool(first["in_app"]),
                count=len(times),
                p50=quantile(times, 0.5),
                p75=quantile(times, 0.75),
                p95=quantile(times, 0.95),
                p99=quantile(times, 0.99),
                sum=sum(times),
                worst=entry["worst"][1],
                examples=entry["examples"],
            )
        )
    table.sort(key=lambda f: (-getattr(f, sort), f.fingerprint))
    return table[:limit]
