"""Small index rows for query tests: what the store would write for a profile."""

from __future__ import annotations

import dataclasses

import numpy as np

from profd.formats.flame_tree import FlameTree, frame_id, of_instances, stack_path
from profd.formats.rows import FunctionMetrics, ProfileMetadata


def function_ran(fingerprint: int, self_times_ns: list[int], package: str = "app") -> FunctionMetrics:
    """A function that ran `len(self_times_ns)` times on one thread, named f<fingerprint>."""
    return FunctionMetrics(
        fingerprint=fingerprint,
        function=f"f{fingerprint}",
        package=package,
        in_app=True,
        thread_id="1",
        self_times_ns=self_times_ns,
        total_times_ns=self_times_ns,
        sum_self_time_ns=sum(self_times_ns),
        sample_count=len(self_times_ns),
        max_duration=max(self_times_ns),
    )


def indexed_profile(
    project_id: int,
    profile_id: str,
    start: float,
    *,
    transaction: str | None,
    release: str | None,
    environment: str = "prod",
    sampled: bool = True,
) -> ProfileMetadata:
    """A one-second python profile of organization 1 as the index keeps it."""
    return ProfileMetadata(
        organization_id=1,
        project_id=project_id,
        profile_id=profile_id,
        kind="sample_v2",
        platform="python",
        transaction_name=transaction,
        release=release,
        environment=environment,
        start=start,
        end=start + 1,
        duration_ns=10**9,
        retention_days=90,
        received=int(start),
        blob_key="k",
        sampled=sampled,
    )


def flame_of(stacks: dict[tuple[str, ...], int], package: str = "pkg") -> FlameTree:
    """One profile's flame tree from the samples that ended in each stack of function names
    (frames in `package`, in app): a node's samples are those of every stack through it,
    its duration 10 ns a sample, its self time that of the samples ending in it."""
    rows: dict[tuple[str, ...], list[int]] = {}
    for stack, samples in stacks.items():
        for depth in range(1, len(stack) + 1):
            row = rows.setdefault(stack[:depth], [0, 0])
            row[0] += samples
            if depth == len(stack):
                row[1] += samples * 10
    paths = {prefix: stack_path([frame_id(name, package) for name in prefix]) for prefix in rows}
    ordered = sorted(rows, key=len)
    tree = of_instances(
        np.array([paths[p] for p in ordered], np.int64),
        np.array([paths[p[:-1]] if len(p) > 1 else 0 for p in ordered], np.int64),
        np.array([len(p) - 1 for p in ordered], np.int32),
        np.array([frame_id(p[-1], package) for p in ordered], np.int64),
        np.array([rows[p][0] for p in ordered], np.int64),
        np.array([rows[p][0] * 10 for p in ordered], np.int64),
        np.array([rows[p][1] for p in ordered], np.int64),
    )
    names = {frame_id(p[-1], package): (p[-1], package, True) for p in ordered}
    return dataclasses.replace(tree, names=names)


def by_path(tree: FlameTree) -> dict[int, tuple[int, int, int, int, int]]:
    """A tree's nodes by path: (frame, occurrences, samples, duration, self time)."""
    return {
        int(path): (int(f), int(o), int(s), int(d), int(t))
        for path, f, o, s, d, t in zip(
            tree.path,
            tree.frame,
            tree.occurrences,
            tree.samples,
            tree.duration_ns,
            tree.self_time_ns,
            strict=True,
        )
    }
