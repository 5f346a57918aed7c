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

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from profd.analysis.frames import FrameFacts

IntArray = npt.NDArray[np.int64]
_PATH_PRIME = np.uint64(0x100000001B3)


@dataclass(frozen=True)
class CallTree:
    """Node instances of one thread, in pre-order (a parent before its children)."""

    thread_id: str
    facts: FrameFacts
    frame: IntArray  # index into `facts.frames` of the node's frame
    parent: IntArray  # index of the parent instance, -1 for roots
    depth: IntArray  # 0 for roots
    duration_ns: IntArray
    self_time_ns: IntArray
    sample_count: IntArray
    # A hash of the path root -> node (same frames, same path in any profile); int64.
    path: IntArray

    def __len__(self) -> int:
        return len(self.frame)


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
    samples: list[dict[str, Any]] = trace["samples"]
    threads = [str(sample["thread_id"]) for sample in samples]
    wanted = sorted(set(threads) if thread_ids is None else set(threads) & thread_ids, key=_thread_order)
    if not wanted:
        return []
    stack_ids = np.fromiter((sample["stack_id"] for sample in samples), np.int64, len(samples))
    if timestamps == "timestamp":
        # Float seconds to integer nanoseconds, truncating as vroom does.
        seconds = np.fromiter((sample["timestamp"] for sample in samples), np.float64, len(samples))
        times = (seconds * 1e9).astype(np.int64)
    else:
        times = np.fromiter((sample[timestamps] for sample in samples), np.int64, len(samples))
    thread_of = np.asarray(threads)
    paths = _Paths(FrameFacts.of(trace["frames"], platform), trace["stacks"], min_depth)
    trees = []
    for thread in wanted:
        mine = np.flatnonzero(thread_of == thread) if len(wanted) > 1 or thread_ids is not None else None
        thread_times = times if mine is None else times[mine]
        thread_stacks = stack_ids if mine is None else stack_ids[mine]
        if len(thread_times) < 2:
            continue
        order = np.argsort(thread_times, kind="stable")
        tree = paths.tree(thread, thread_stacks[order][:-1], np.diff(thread_times[order]))
        if len(tree):
            trees.append(tree)
    return trees


def _thread_order(thread: str) -> tuple[int, int | str]:
    return (0, int(thread)) if thread.isdigit() else (1, thread)


class _Paths:
    """Per unique stack: the path-prefix ids root first, and where self time lands."""

    def __init__(self, facts: FrameFacts, stacks: list[list[int]], min_depth: int) -> None:
        """A path prefix is the sequence of frame identities from the root: prefixes are
        numbered by sorting the stacks' identity rows lexicographically (a new prefix at a
        depth wherever a row differs from the previous one at that depth or above), and
        each prefix keeps the frame of its first occurrence (stack order, root first)."""
        self.facts = facts
        lengths = np.fromiter(map(len, stacks), np.int64, len(stacks))
        width = max(int(lengths.max(initial=0)), 1)
        # Frame indices, root first, one row per stack (and a last row of none); -1 past a
        # stack's end.
        frame = np.full((len(stacks) + 1, width), -1, dtype=np.int64)
        self.prefix = np.full(frame.shape, -1, dtype=np.int64)
        self.prefix_frame = np.zeros(1, dtype=np.int64)
        self.prefix_path = np.ones(1, dtype=np.int64)
        total = int(lengths.sum())
        if total:
            rows = np.repeat(np.arange(len(stacks)), lengths)
            # Stacks are leaf first: entry j of a stack of length n sits in column n - 1 - j.
            columns = np.repeat(np.cumsum(lengths) - 1, lengths) - np.arange(total)
            frame[rows, columns] = np.fromiter(itertools.chain.from_iterable(stacks), np.int64, total)
            self._number(frame, facts)
        self.owns_time = self._owned(min_depth)

    def _number(self, frame: IntArray, facts: FrameFacts) -> None:
        valid = frame >= 0
        somewhere = np.maximum(frame, 0)
        identity = np.where(valid, np.asarray(facts.identity, dtype=np.int64)[somewhere], -1)
        # Rows sorted by identity, column 0 first, put equal prefixes next to each other.
        order = np.lexsort(identity.T[::-1])
        ranked = identity[order]
        changed = np.ones(ranked.shape, dtype=bool)
        changed[1:] = np.logical_or.accumulate(ranked[1:] != ranked[:-1], axis=1)
        # Prefixes numbered column by column, in sorted order within a column: a column's
        # rows of one prefix are adjacent, and those that end before it sort first.
        present = (ranked >= 0).T.ravel()
        starts = changed.T.ravel()[present]
        rows = np.broadcast_to(order, ranked.T.shape).ravel()[present]
        columns = np.repeat(np.arange(frame.shape[1]), len(order))[present]
        self.prefix[rows, columns] = np.cumsum(starts) - 1
        # Each prefix's frame is the one in its first stack.
        group_starts = np.flatnonzero(starts)
        first = (np.minimum.reduceat(rows, group_starts), columns[group_starts])
        self.prefix_frame = frame[first]
        # Each prefix's path hash (`frames.path_step`), column by column in 64-bit arithmetic.
        hashes = np.asarray(facts.identity_hash, dtype=np.uint64)[somewhere]
        paths = np.empty(frame.shape, dtype=np.uint64)
        above = np.zeros(len(frame), dtype=np.uint64)
        for column in range(frame.shape[1]):
            above = paths[:, column] = ((above * _PATH_PRIME) ^ hashes[:, column]) | np.uint64(1)
        self.prefix_path = paths[first].view(np.int64)

    def _owned(self, min_depth: int) -> npt.NDArray[np.bool_]:
        """Where a sample's time is the self time of the node at each depth.

        An application frame owns the time no deeper application function claims (time in
        system code below it counts as its own); a system frame owns only the time it is
        the leaf.  Only frames that can be functions claim time.
        """
        application = np.append(self.facts.application, True)
        counted = application & np.append(self.facts.aggregatable, False)
        valid = self.prefix >= 0
        frame = self.prefix_frame[np.where(valid, self.prefix, 0)]
        depth = np.arange(self.prefix.shape[1])
        claims = valid & counted[frame] & (depth >= min_depth)
        deepest_claim = np.where(claims, depth, -1).max(axis=1, keepdims=True)
        leaf = valid.sum(axis=1, keepdims=True) - 1
        is_application = application[frame]
        owned: npt.NDArray[np.bool_] = valid & np.where(is_application, deepest_claim <= depth, depth == leaf)
        return owned

    def tree(self, thread: str, stack_ids: IntArray, durations: IntArray) -> CallTree:
        """Node instances are runs of one path prefix at one depth over consecutive samples.

        The samples x depth matrix of prefix ids is walked column by column in one flat
        array (a sentinel row keeps runs from crossing columns): a run starts wherever the
        id changes and ends at the next change.
        """
        n = len(stack_ids)
        rows = n + 1
        path = np.vstack([self.prefix[stack_ids], np.full((1, self.prefix.shape[1]), -1, dtype=np.int64)])
        flat = path.T.ravel()
        changed = np.ones(len(flat), dtype=bool)
        changed[1:] = flat[1:] != flat[:-1]
        boundaries = np.flatnonzero(changed)
        starts = boundaries[flat[boundaries] >= 0]
        ends = boundaries[np.searchsorted(boundaries, starts, side="right")]
        depth = starts // rows
        first = starts % rows
        last = ends - depth * rows
        elapsed = np.concatenate(([0], np.cumsum(durations)))
        owned = np.vstack([self.owns_time[stack_ids], np.zeros((1, self.prefix.shape[1]), dtype=bool)])
        owned_time = np.where(owned, np.append(durations, 0)[:, None], 0).T.ravel()
        owned_elapsed = np.concatenate(([0], np.cumsum(owned_time)))
        # A node's parent is the run one column to the left that covers its first sample.
        parent = np.searchsorted(starts, starts - rows, side="right") - 1
        parent[depth == 0] = -1
        # Pre-order (by first sample, then depth) puts every parent before its children.
        order = np.lexsort((depth, first))
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        ordered_parent = parent[order]
        return CallTree(
            thread_id=thread,
            facts=self.facts,
            frame=self.prefix_frame[flat[starts]][order],
            path=self.prefix_path[flat[starts]][order],
            parent=np.where(ordered_parent >= 0, position[np.maximum(ordered_parent, 0)], -1),
            depth=depth[order],
            duration_ns=(elapsed[last] - elapsed[first])[order],
            self_time_ns=(owned_elapsed[ends] - owned_elapsed[starts])[order],
            sample_count=(last - first)[order],
        )
