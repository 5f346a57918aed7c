"""Function metrics: per profile, how long each function ran on its own ("self time").

What Sentry's "slowest functions" and function regressions are built from: for every
function (keyed by a fingerprint of package and name) the self time of each node instance,
its total time, how many samples saw it, and the thread where it was slowest.  Same rules
and fingerprints as vroomrs, so the numbers match Sentry's.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import msgspec

from profd.analysis.calltree import CallTree
from profd.analysis.frames import module_or_package, should_aggregate

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF


class FunctionMetrics(msgspec.Struct, kw_only=True):
    fingerprint: int
    function: str
    package: str
    in_app: bool
    thread_id: str
    self_times_ns: list[int]
    total_times_ns: list[int]
    sum_self_time_ns: int
    sample_count: int
    max_duration: int
    depth: int | None = None
    stack_fingerprint: int | None = None
    parent_fingerprint: int | None = None


def fnv1a_64(data: bytes, seed: int = _FNV_OFFSET) -> int:
    value = seed
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & _MASK64
    return value


def function_fingerprint(package: str, function: str) -> int:
    return fnv1a_64(f"{package}:{function}".encode()) & 0xFFFFFFFF


def stack_fingerprint(package: str, function: str, parent: int) -> int:
    return fnv1a_64(f"{package}:{function}".encode() + struct.pack("<I", parent)) & 0xFFFFFFFF


def extract_functions(
    trees: Iterable[CallTree],
    platform: str,
    *,
    min_depth: int = 1,
    filter_system_frames: bool = True,
    max_unique_functions: int | None = 100,
    generate_stack_fingerprints: bool = False,
) -> list[FunctionMetrics]:
    """vroomrs's extract_functions_metrics.

    With `generate_stack_fingerprints`, a function is keyed by its path too: its stack
    fingerprint hashes its own name with its parent's stack fingerprint (the closest
    application parent when system frames are filtered), and it carries its depth.
    """
    found: dict[int, FunctionMetrics] = {}
    for tree in trees:
        stacks = (
            _stack_fingerprints(tree, platform, filter_system_frames) if generate_stack_fingerprints else None
        )
        _collect(tree, platform, min_depth, found, stacks)
    functions = [f for f in found.values() if f.sample_count > 1]
    if filter_system_frames:
        functions = [f for f in functions if f.in_app]
    functions.sort(key=lambda f: (-f.sum_self_time_ns, -sum(f.total_times_ns)))
    return functions[:max_unique_functions] if max_unique_functions is not None else functions


def _stack_fingerprints(
    tree: CallTree, platform: str, filter_system_frames: bool
) -> tuple[list[int], list[int | None]]:
    """Per node: its stack fingerprint and its chain parent's (None for a chain root)."""
    count = len(tree)
    own: list[int] = [0] * count
    parent_of: list[int | None] = [None] * count
    # The stack fingerprint a child links to: its own for nodes in the chain, else inherited.
    link: list[int | None] = [None] * count
    frames = tree.frames
    parents = tree.parent.tolist()
    for node, frame_index in enumerate(tree.frame.tolist()):
        frame = frames[frame_index]
        package, function = module_or_package(frame), frame.get("function") or ""
        parent = parents[node]
        above = link[parent] if parent >= 0 else None
        own[node] = (
            function_fingerprint(package, function)
            if above is None
            else stack_fingerprint(package, function, above)
        )
        parent_of[node] = above
        # Only frames that can be functions link the chain (roots included, whatever the depth).
        in_chain = not filter_system_frames or frame.get("in_app") is not False
        link[node] = own[node] if in_chain else above
    return own, parent_of


def _collect(
    tree: CallTree,
    platform: str,
    min_depth: int,
    found: dict[int, FunctionMetrics],
    stacks: tuple[list[int], list[int | None]] | None,
) -> None:
    frames = tree.frames
    aggregate: dict[int, tuple[bool, str, str, int, bool]] = {}
    # Post-order: children before their parent, as vroom walks the tree.
    for node in _post_order(tree):
        if int(tree.depth[node]) < min_depth:
            continue
        index = int(tree.frame[node])
        info = aggregate.get(index)
        if info is None:
            frame = frames[index]
            ok = should_aggregate(frame, platform)
            package = module_or_package(frame)
            function = frame.get("function") or ""
            info = aggregate[index] = (
                ok,
                package,
                function,
                function_fingerprint(package, function),
                frame.get("in_app") is not False,
            )
        ok, package, function, fingerprint, in_app = info
        if not ok:
            continue
        self_time = int(tree.self_time_ns[node])
        if self_time <= 0:
            # Only where the function itself was on CPU: a frame that merely calls others
            # is not a slow function there (vroomrs's filter_non_leaf_functions).
            continue
        total = int(tree.duration_ns[node])
        count = int(tree.sample_count[node])
        key = fingerprint if stacks is None else stacks[0][node]
        metrics = found.get(key)
        if metrics is None:
            found[key] = FunctionMetrics(
                fingerprint=fingerprint,
                function=function,
                package=package,
                in_app=in_app,
                thread_id=tree.thread_id,
                self_times_ns=[self_time],
                total_times_ns=[total],
                sum_self_time_ns=self_time,
                sample_count=count,
                max_duration=self_time,
            )
            if stacks is not None:
                found[key].depth = int(tree.depth[node])
                found[key].stack_fingerprint = key
                found[key].parent_fingerprint = stacks[1][node]
            continue
        metrics.self_times_ns.append(self_time)
        metrics.total_times_ns.append(total)
        metrics.sum_self_time_ns += self_time
        metrics.sample_count += count
        if self_time > metrics.max_duration:
            metrics.max_duration = self_time
            metrics.thread_id = tree.thread_id


def _post_order(tree: CallTree) -> list[int]:
    children: list[list[int]] = [[] for _ in range(len(tree))]
    roots = []
    for node, parent in enumerate(tree.parent.tolist()):
        if parent < 0:
            roots.append(node)
        else:
            children[parent].append(node)
    order: list[int] = []
    stack: list[tuple[int, bool]] = [(root, False) for root in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(children[node]))
    return order
