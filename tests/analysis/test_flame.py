"""A profile's flame tree: folded by stack of (function, package), cut to its node budget and
to MAX_DEPTH frames, with every sample still counted."""

from __future__ import annotations

from typing import Any

import numpy as np

from profd.analysis.calltree import sample_call_trees
from profd.analysis.flame import MAX_DEPTH, fold
from profd.formats.flame_tree import OTHER_FRAME, PROFILE_NODES, frame_id, stack_path


def trace(stacks: list[list[int]], frames: list[dict[str, Any]], samples: int) -> dict[str, Any]:
    """A v1 trace sampling `stacks` (leaf first, as SDKs list them) in turn, every 10 ms."""
    return {
        "frames": frames,
        "stacks": stacks,
        "samples": [
            {"stack_id": n % len(stacks), "thread_id": "1", "elapsed_since_start_ns": n * 10_000_000}
            for n in range(samples)
        ],
    }


def test_a_stack_deeper_than_max_depth_keeps_its_time_in_the_deepest_frame_kept() -> None:
    depth = 5000
    frames = [{"function": f"f{n}", "module": "app", "in_app": True} for n in range(depth)]
    deep = list(range(depth))[::-1]
    trees = sample_call_trees(trace([deep, deep[1:]], frames, 101), None, "elapsed_since_start_ns", "python")
    tree = fold(trees)
    assert int(tree.depth.max()) == MAX_DEPTH - 1 and len(tree) == MAX_DEPTH
    # Every sample ran through the root; the last one carries no time.
    assert tree.total_samples == 100 and int(tree.duration_ns[0]) == 100 * 10_000_000
    deepest = int(np.flatnonzero(tree.depth == MAX_DEPTH - 1)[0])
    assert int(tree.self_time_ns[deepest]) == int(tree.duration_ns[deepest]) == 100 * 10_000_000
    assert int(tree.self_time_ns.sum()) == 100 * 10_000_000
    assert int(tree.path[deepest]) == stack_path([frame_id(f"f{n}", "app") for n in range(MAX_DEPTH)])


def test_many_stacks_fold_into_the_budget_with_exact_totals() -> None:
    frames = [{"function": f"f{n}", "module": f"m{n % 7}", "in_app": n % 2 == 0} for n in range(900)]
    # 300 distinct leaves under three handlers: far more nodes than the budget.
    stacks = [[300 + n, 600 + n % 3, 899] for n in range(300)]
    trees = sample_call_trees(trace(stacks, frames, 3001), None, "elapsed_since_start_ns", "python")
    tree = fold(trees)
    whole = fold(trees, budget=10_000)
    assert len(whole) == 1 + 3 + 300 and whole.lost == 0
    assert len(tree) <= PROFILE_NODES and tree.lost > 0
    assert tree.total_samples == whole.total_samples == 3000
    assert int(tree.self_time_ns.sum()) == int(whole.self_time_ns.sum())
    assert OTHER_FRAME in tree.frame.tolist()
    # Only the frames kept are named, each as the profile has it.
    assert set(tree.names) == set(tree.frame.tolist()) - {OTHER_FRAME}
    assert tree.names[frame_id("f899", "m3")] == ("f899", "m3", False)
