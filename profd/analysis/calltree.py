"""Call trees of sample-format profiles, as flat arrays of node instances.

A node instance is a frame on a path from the root that stays on the stack through a run
of consecutive samples: vroom merges consecutive samples sharing a path prefix into one
node, so the same path sampled again later is a new instance (which is why a function has
a list of self times).  Samples are taken in time order per thread; each sample lasts until
the next one on its thread, so a thread's last sample carries no time.

The work is done once per unique stack (paths, application flags) and then for all
samples at once with numpy, instead of walking every frame of every sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from profd.analysis.frames import Frame, module_or_package, should_aggregate

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CallTree:
    """Node instances of one thread, in pre-order (a parent before its children)."""

    thread_id: str
    frames: list[Frame]
    frame: IntArray  # index into `frames` of the node's frame
    parent: IntArray  # index of the parent instance, -1 for roots
    depth: IntArray  # 0 for roots
    duration_ns: IntArray
    self_time_ns: IntArray
    sample_count: IntArray

    def __len__(self) -> int:
        return len(self.frame)


def frame_identity(frame: Frame) -> tuple[str, str, str]:
    """What makes two frames one node: package (or file), function and address, not line."""
    where = module_or_package(frame) or frame.get("filename") or "-"
    return where, frame.get("function") or "-", frame.get("instruction_addr") or ""


def sample_call_trees(
    trace: dict[str, Any],
    thread_ids: set[str] | None,
    timestamps: str,
    platform: str,
    min_depth: int = 1,
) -> list[CallTree]:
    """Call trees per thread of a sample-format trace.

    `timestamps` names the sample field holding the time (``elapsed_since_start_ns`` for
    v1, ``timestamp`` in float seconds for v2); `thread_ids` limits the threads (None: all).
    Self times follow vroom's function rule: an application frame's self time is its time
    minus the time of application functions below it (at `min_depth` or deeper).
    """
    frames: list[Frame] = trace["frames"]
    stacks: list[list[int]] = trace["stacks"]
    per_thread: dict[str, tuple[list[int], list[int]]] = {}
    for sample in trace["samples"]:
        thread = str(sample["thread_id"])
        if thread_ids is not None and thread not in thread_ids:
            continue
        value = sample[timestamps]
        time_ns = int(value * 1e9) if timestamps == "timestamp" else int(value)
        entry = per_thread.setdefault(thread, ([], []))
        entry[0].append(time_ns)
        entry[1].append(sample["stack_id"])
    if not per_thread:
        return []
    paths = _Paths(frames, stacks, platform, min_depth)
    trees = []
    for thread in sorted(per_thread, key=_thread_order):
        times, stack_ids = per_thread[thread]
        order = np.argsort(np.asarray(times, dtype=np.int64), kind="stable")
        time_sorted = np.asarray(times, dtype=np.int64)[order]
        if len(time_sorted) < 2:
            continue
        tree = paths.tree(thread, np.asarray(stack_ids, dtype=np.int64)[order][:-1], np.diff(time_sorted))
        if len(tree):
            trees.append(tree)
    return trees


def _thread_order(thread: str) -> tuple[int, int | str]:
    return (0, int(thread)) if thread.isdigit() else (1, thread)


class _Paths:
    """Per unique stack: the path-prefix ids root first, and where self time lands."""

    def __init__(self, frames: list[Frame], stacks: list[list[int]], platform: str, min_depth: int) -> None:
        self.frames = frames
        identity: dict[tuple[str, str, str], int] = {}
        frame_key = [identity.setdefault(frame_identity(f), len(identity)) for f in frames]
        application = [f.get("in_app") is not False for f in frames]
        # Time counts as an application function's only where that frame can be one.
        counted = [app and should_aggregate(f, platform) for app, f in zip(application, frames, strict=True)]
        prefix_ids: dict[tuple[int, int], int] = {}
        self.prefix_frame: list[int] = []
        depth = max((len(s) for s in stacks), default=0)
        self.prefix = np.full((len(stacks) + 1, max(depth, 1)), -1, dtype=np.int64)
        self.owns_time = np.zeros((len(stacks) + 1, max(depth, 1)), dtype=bool)
        for s, stack in enumerate(stacks):
            parent = -1
            deepest_counted = -1
            for k, index in enumerate(reversed(stack)):
                key = (parent, frame_key[index])
                prefix = prefix_ids.get(key)
                if prefix is None:
                    prefix = prefix_ids[key] = len(self.prefix_frame)
                    self.prefix_frame.append(index)
                self.prefix[s, k] = parent = prefix
                if k >= min_depth and counted[self.prefix_frame[prefix]]:
                    deepest_counted = k
            length = len(stack)
            for k in range(length):
                # An application frame owns the time no deeper application function claims;
                # a system frame owns only the time it is the leaf.
                if application[self.prefix_frame[self.prefix[s, k]]]:
                    self.owns_time[s, k] = deepest_counted <= k
                else:
                    self.owns_time[s, k] = k == length - 1
        self.prefix_frame_array = np.asarray(self.prefix_frame, dtype=np.int64)

    def tree(self, thread: str, stack_ids: IntArray, durations: IntArray) -> CallTree:
        path = self.prefix[stack_ids]  # samples x depth
        owns = self.owns_time[stack_ids]
        n, max_depth = path.shape
        cumulative = np.concatenate(([0], np.cumsum(durations)))
        starts_by_depth: list[IntArray] = []
        columns: dict[str, list[IntArray]] = {key: [] for key in ("frame", "depth", "start", "end", "self")}
        for k in range(max_depth):
            column = path[:, k]
            valid = column >= 0
            if not valid.any():
                break
            changed = np.ones(n, dtype=bool)
            changed[1:] = column[1:] != column[:-1]
            starts = np.flatnonzero(valid & changed)
            ends = np.append(starts[1:], n)
            # A run also ends where the path stops being this deep.
            invalid = np.append(np.flatnonzero(~valid), n)
            ends = np.minimum(ends, invalid[np.searchsorted(invalid, starts)])
            owned = np.concatenate(([0], np.cumsum(np.where(owns[:, k], durations, 0))))
            columns["frame"].append(self.prefix_frame_array[column[starts]])
            columns["depth"].append(np.full(len(starts), k, dtype=np.int64))
            columns["start"].append(starts)
            columns["end"].append(ends)
            columns["self"].append(owned[ends] - owned[starts])
            starts_by_depth.append(starts)
        depth = np.concatenate(columns["depth"])
        start = np.concatenate(columns["start"])
        end = np.concatenate(columns["end"])
        # Pre-order: by start sample, then shallower first.
        order = np.lexsort((depth, start))
        offsets = np.cumsum([0] + [len(s) for s in starts_by_depth])
        parent = np.full(len(depth), -1, dtype=np.int64)
        for k in range(1, len(starts_by_depth)):
            above = np.searchsorted(starts_by_depth[k - 1], starts_by_depth[k], side="right") - 1
            parent[offsets[k] : offsets[k + 1]] = offsets[k - 1] + above
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        parent_sorted = np.where(parent[order] >= 0, position[np.maximum(parent[order], 0)], -1)
        return CallTree(
            thread_id=thread,
            frames=self.frames,
            frame=np.concatenate(columns["frame"])[order],
            parent=parent_sorted,
            depth=depth[order],
            duration_ns=(cumulative[end] - cumulative[start])[order],
            self_time_ns=np.concatenate(columns["self"])[order],
            sample_count=(end - start)[order],
        )
