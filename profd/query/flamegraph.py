"""Aggregate flamegraphs over any selection of profiles, from the folded call trees indexed
at write time (one GROUP BY; no blob is read).

The result is speedscope-shaped, as Sentry's: ``shared.frames`` (one per name and
package), ``shared.frame_infos`` (occurrences, samples, total and self time, and p75/p95/p99
of the per-profile durations), and one sampled profile whose samples are the stacks where
samples ended, weighted by their sample counts.
"""

from __future__ import annotations

from typing import Any

from profd.query.functions import quantile
from profd.query.profiles import ProfileFilter
from profd.store.index import Index


def flamegraph(index: Index, organization_id: int, where: ProfileFilter) -> dict[str, Any]:
    sql_where, params = where.where(organization_id, table="p")
    rows = index.select(
        "SELECT f.path, f.parent, f.name, f.package, f.in_app, f.depth, f.sample_count, f.duration_ns,"
        " f.self_time_ns, f.profile_id"
        " FROM flame_nodes f JOIN profiles p ON p.project_id = f.project_id AND p.profile_id = f.profile_id"
        f" WHERE {sql_where}",
        tuple(params),
    )
    paths: dict[int, dict[str, Any]] = {}
    profiles: set[str] = set()
    for row in rows:
        profiles.add(row["profile_id"])
        node = paths.setdefault(
            row["path"],
            {
                "parent": row["parent"],
                "name": row["name"],
                "package": row["package"],
                "in_app": bool(row["in_app"]),
                "samples": 0,
                "duration": 0,
                "self": 0,
                "durations": [],
            },
        )
        node["samples"] += row["sample_count"]
        node["duration"] += row["duration_ns"]
        node["self"] += row["self_time_ns"]
        node["durations"].append(row["duration_ns"])
    frame_index: dict[tuple[str, str], int] = {}
    frames: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    durations: list[list[int]] = []
    for node in paths.values():
        key = (node["name"], node["package"])
        if key not in frame_index:
            frame_index[key] = len(frames)
            frames.append({"name": node["name"], "image": node["package"], "is_application": node["in_app"]})
            infos.append({"count": 0, "weight": 0, "sumDuration": 0, "sumSelfTime": 0})
            durations.append([])
        info = infos[frame_index[key]]
        info["count"] += len(node["durations"])
        info["weight"] += node["samples"]
        info["sumDuration"] += node["duration"]
        info["sumSelfTime"] += node["self"]
        durations[frame_index[key]].extend(node["durations"])
    for info, values in zip(infos, durations, strict=True):
        values.sort()
        info.update(
            p75Duration=quantile(values, 0.75),
            p95Duration=quantile(values, 0.95),
            p99Duration=quantile(values, 0.99),
        )
    children_samples: dict[int, int] = {}
    for node in paths.values():
        children_samples[node["parent"]] = children_samples.get(node["parent"], 0) + node["samples"]
    samples, weights = [], []
    for path, node in paths.items():
        ending_here = node["samples"] - children_samples.get(path, 0)
        if ending_here <= 0:
            continue
        stack = []
        cursor: int | None = path
        while cursor:
            current = paths.get(cursor)
            if current is None:
                break
            stack.append(frame_index[(current["name"], current["package"])])
            cursor = current["parent"]
        samples.append(stack[::-1])
        weights.append(ending_here)
    return {
        "shared": {"frames": frames, "frame_infos": infos},
        "profiles": [
            {
                "type": "sampled",
                "unit": "count",
                "name": "aggregate",
                "isMainThread": True,
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
        "metadata": {"profiles": len(profiles)},
    }


def frame_totals(
    index: Index, organization_id: int, where: ProfileFilter
) -> dict[tuple[str, str], list[int]]:
    """Per frame (name, package): samples, total time and self time over the selection."""
    sql_where, params = where.where(organization_id, table="p")
    rows = index.select(
        "SELECT f.name, f.package, SUM(f.sample_count), SUM(f.duration_ns), SUM(f.self_time_ns)"
        " FROM flame_nodes f JOIN profiles p ON p.project_id = f.project_id AND p.profile_id = f.profile_id"
        f" WHERE {sql_where} GROUP BY f.name, f.package",
        tuple(params),
    )
    return {(row[0], row[1]): [int(row[2]), int(row[3]), int(row[4])] for row in rows}


def differential(
    index: Index, organization_id: int, before: ProfileFilter, after: ProfileFilter
) -> dict[str, Any]:
    """How each frame's share of self time moved between two selections (releases, windows).

    Shares, not raw times, are compared, so a selection with more profiles does not look
    slower everywhere; `change` is the after share minus the before share.
    """
    old = frame_totals(index, organization_id, before)
    new = frame_totals(index, organization_id, after)
    old_total = sum(v[2] for v in old.values()) or 1
    new_total = sum(v[2] for v in new.values()) or 1
    frames: list[dict[str, Any]] = []
    for name, package in sorted(old.keys() | new.keys()):
        was, now = old.get((name, package), [0, 0, 0]), new.get((name, package), [0, 0, 0])
        change = now[2] / new_total - was[2] / old_total
        frames.append(
            {
                "name": name,
                "package": package,
                "before": {"samples": was[0], "duration_ns": was[1], "self_time_ns": was[2]},
                "after": {"samples": now[0], "duration_ns": now[1], "self_time_ns": now[2]},
                "change": round(change, 6),
            }
        )
    frames.sort(key=lambda f: -abs(f["change"]))
    return {"frames": frames, "before": {"self_time_ns": old_total}, "after": {"self_time_ns": new_total}}
