"""Aggregate flamegraphs over any selection of profiles, from the folded call trees indexed
at write time and their hourly rollups (`flame_rollup`); no blob is read.

The result is speedscope-shaped, as Sentry's: ``shared.frames`` (one per name and
package), ``shared.frame_infos`` (occurrences, samples, total and self time, and p75/p95/p99
of the per-profile durations), and one sampled profile whose samples are the stacks where
samples ended, weighted by their sample counts.
"""

from __future__ import annotations

from typing import Any

from profd.formats.histogram import exact_quantile
from profd.query.flame_rollup import path_durations, path_totals
from profd.store.protocols import ProfileReads
from profd.store.records import ProfileFilter


def flamegraph(reads: ProfileReads, organization_id: int, where: ProfileFilter) -> dict[str, Any]:
    totals = path_totals(reads, organization_id, where)
    paths = totals.paths
    frame_index: dict[tuple[str, str], int] = {}
    frames: list[dict[str, Any]] = []
    infos: list[dict[str, Any]] = []
    for node in paths.values():
        key = (node.name, node.package)
        if key not in frame_index:
            frame_index[key] = len(frames)
            frames.append({"name": node.name, "image": node.package, "is_application": node.in_app})
            infos.append({"count": 0, "weight": 0, "sumDuration": 0, "sumSelfTime": 0})
        info = infos[frame_index[key]]
        info["count"] += node.occurrences
        info["weight"] += node.samples
        info["sumDuration"] += node.duration_ns
        info["sumSelfTime"] += node.self_time_ns
    durations: list[list[int]] = [[] for _ in frames]
    for path, values in path_durations(reads, organization_id, where).items():
        found = paths.get(path)
        if found is not None:
            durations[frame_index[(found.name, found.package)]].extend(values)
    for info, values in zip(infos, durations, strict=True):
        values.sort()
        info.update(
            p75Duration=exact_quantile(values, 0.75),
            p95Duration=exact_quantile(values, 0.95),
            p99Duration=exact_quantile(values, 0.99),
        )
    children_samples: dict[int, int] = {}
    for node in paths.values():
        children_samples[node.parent] = children_samples.get(node.parent, 0) + node.samples
    samples, weights = [], []
    for path, node in paths.items():
        ending_here = node.samples - children_samples.get(path, 0)
        if ending_here <= 0:
            continue
        stack = []
        cursor: int | None = path
        while cursor:
            current = paths.get(cursor)
            if current is None:
                break
            stack.append(frame_index[(current.name, current.package)])
            cursor = current.parent
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
        "metadata": {"profiles": totals.profiles},
    }


def frame_totals(
    reads: ProfileReads, organization_id: int, where: ProfileFilter
) -> dict[tuple[str, str], list[int]]:
    """Per frame (name, package): samples, total time and self time over the selection."""
    frames: dict[tuple[str, str], list[int]] = {}
    for node in path_totals(reads, organization_id, where).paths.values():
        found = frames.setdefault((node.name, node.package), [0, 0, 0])
        found[0] += node.samples
        found[1] += node.duration_ns
        found[2] += node.self_time_ns
    return frames


def differential(
    reads: ProfileReads, organization_id: int, before: ProfileFilter, after: ProfileFilter
) -> dict[str, Any]:
    """How each frame's share of self time moved between two selections (releases, windows).

    Shares, not raw times, are compared, so a selection with more profiles does not look
    slower everywhere; `change` is the after share minus the before share.
    """
    old = frame_totals(reads, organization_id, before)
    new = frame_totals(reads, organization_id, after)
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
