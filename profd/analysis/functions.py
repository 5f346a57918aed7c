"""Function metrics: per profile, how long each function ran on its own ("self time").

What Sentry's "slowest functions" and function regressions are built from: for every
function (keyed by a fingerprint of package and name) the self time of each node instance,
its total time, how many samples saw it, and the thread where it was slowest.  Same rules
and fingerprints as vroomrs, so the numbers match Sentry's.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable

import numpy as np

from profd.analysis.calltree import CallTree
from profd.formats.rows import FunctionMetrics

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF


def fnv1a_64(data: bytes, seed: int = _FNV_OFFSET) -> int:
    value = seed
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & _MASK64
    return value


# Functions recur across profiles; hashing byte by byte in Python is worth remembering.
_fingerprints: dict[tuple[str, str], int] = {}


def function_fingerprint(package: str, function: str) -> int:
    key = (package, function)
    fingerprint = _fingerprints.get(key)
    if fingerprint is None:
        if len(_fingerprints) > 200_000:
            _fingerprints.clear()
        fingerprint = _fingerprints[key] = fnv1a_64(f"{package}:{function}".encode()) & 0xFFFFFFFF
    return fingerprint


def stack_fingerprint(package: str, function: str, parent: int) -> int:
    return fnv1a_64(f"{package}:{function}".encode() + struct.pack("<I", parent)) & 0xFFFFFFFF


def extract_functions(
    trees: Iterable[CallTree],
    *,
    min_depth: int = 1,
    filter_system_frames: bool = True,
    max_unique_functions: int | None = 100,
    generate_stack_fingerprints: bool = False,
) -> list[FunctionMetrics]:
    """vroomrs's extract_functions_metrics.

    A node instance counts for its function where the function itself ran (self time > 0),
    at `min_depth` or deeper, if its frame can be a function (named, symbolicated ...).
    Functions seen in a single sample are dropped; with `filter_system_frames` only the
    application's functions are kept; the slowest `max_unique_functions` are returned.

    With `generate_stack_fingerprints`, a function is keyed by its path too: its stack
    fingerprint hashes its own name with its parent's stack fingerprint (the closest
    application parent when system frames are filtered), and it carries its depth.
    """
    found: dict[int, FunctionMetrics] = {}
    for tree in trees:
        _collect(tree, min_depth, found, filter_system_frames if generate_stack_fingerprints else None)
    functions = [f for f in found.values() if f.sample_count > 1]
    if filter_system_frames:
        functions = [f for f in functions if f.in_app]
    functions.sort(key=lambda f: (-f.sum_self_time_ns, -sum(f.total_times_ns)))
    return functions[:max_unique_functions] if max_unique_functions is not None else functions


def _collect(
    tree: CallTree, min_depth: int, found: dict[int, FunctionMetrics], stack_chain: bool | None
) -> None:
    """Group the tree's counting node instances by function (or stack) fingerprint."""
    facts = tree.facts
    counting = np.flatnonzero(
        (tree.depth >= min_depth) & facts.aggregatable[tree.frame] & (tree.self_time_ns > 0)
    )
    if not len(counting):
        return
    if stack_chain is None:
        frames = tree.frame[counting]
        used = np.unique(frames)
        by_frame = np.zeros(len(facts.frames), dtype=np.int64)
        by_frame[used] = [function_fingerprint(facts.package[f], facts.function[f]) for f in used.tolist()]
        keys = by_frame[frames]
        parents: list[int | None] | None = None
    else:
        own, parent_of = _stack_fingerprints(tree, stack_chain)
        keys = np.asarray(own, dtype=np.int64)[counting]
        parents = [parent_of[n] for n in counting.tolist()]
    order = np.argsort(keys, kind="stable")
    nodes = counting[order]
    sorted_keys = keys[order]
    group_starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    bounds = np.r_[group_starts, len(nodes)].tolist()
    self_times = tree.self_time_ns[nodes]
    totals = tree.duration_ns[nodes]
    counts = np.add.reduceat(tree.sample_count[nodes], group_starts).tolist()
    sums = np.add.reduceat(self_times, group_starts).tolist()
    maxima = np.maximum.reduceat(self_times, group_starts).tolist()
    self_list, total_list = self_times.tolist(), totals.tolist()
    for g, (begin, end) in enumerate(itertools.pairwise(bounds)):
        key = int(sorted_keys[begin])
        metrics = found.get(key)
        if metrics is None:
            frame = int(tree.frame[nodes[begin]])
            metrics = found[key] = FunctionMetrics(
                fingerprint=function_fingerprint(facts.package[frame], facts.function[frame]),
                function=facts.function[frame],
                package=facts.package[frame],
                in_app=bool(facts.application[frame]),
                thread_id=tree.thread_id,
                self_times_ns=self_list[begin:end],
                total_times_ns=total_list[begin:end],
                sum_self_time_ns=sums[g],
                sample_count=counts[g],
                max_duration=maxima[g],
            )
            if parents is not None:
                metrics.depth = int(tree.depth[nodes[begin]])
                metrics.stack_fingerprint = key
                metrics.parent_fingerprint = parents[int(order[begin])]
            continue
        metrics.self_times_ns += self_list[begin:end]
        metrics.total_times_ns += total_list[begin:end]
        metrics.sum_self_time_ns += sums[g]
        metrics.sample_count += counts[g]
        if maxima[g] > metrics.max_duration:
            metrics.max_duration = maxima[g]
            metrics.thread_id = tree.thread_id


def _stack_fingerprints(tree: CallTree, filter_system_frames: bool) -> tuple[list[int], list[int | None]]:
    """Per node: its stack fingerprint and its chain parent's (None for a chain root).

    Every node is hashed onto the chain; when system frames are filtered only application
    frames link it for the nodes below.
    """
    facts = tree.facts
    count = len(tree)
    own: list[int] = [0] * count
    parent_of: list[int | None] = [None] * count
    link: list[int | None] = [None] * count
    links = facts.application if filter_system_frames else np.ones(len(facts.frames), dtype=bool)
    parents = tree.parent.tolist()
    for node, frame in enumerate(tree.frame.tolist()):
        parent = parents[node]
        above = link[parent] if parent >= 0 else None
        package, function = facts.package[frame], facts.function[frame]
        own[node] = (
            function_fingerprint(package, function)
            if above is None
            else stack_fingerprint(package, function, above)
        )
        parent_of[node] = above
        link[node] = own[node] if links[frame] else above
    return own, parent_of
