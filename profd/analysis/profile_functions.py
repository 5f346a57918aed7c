"""From a processed profile to its call trees and function metrics, whatever its format.

Transaction profiles are analysed on the transaction's active thread (a React Native
Android profile on its JavaScript thread); chunks on every thread.
"""

from __future__ import annotations

from typing import Any

from profd.analysis.android import android_call_trees, android_profile_call_trees
from profd.analysis.calltree import CallTree, sample_call_trees
from profd.analysis.functions import extract_functions
from profd.formats import Kind
from profd.formats.rows import FunctionMetrics

# Sentry's parameters for the functions it stores.
MIN_DEPTH = 1
MAX_UNIQUE_FUNCTIONS = 100


def call_trees(profile: dict[str, Any], kind: Kind, min_depth: int = MIN_DEPTH) -> list[CallTree]:
    if kind is Kind.SAMPLE_V1:
        active = str((profile.get("transaction") or {}).get("active_thread_id") or 0)
        return sample_call_trees(
            profile["profile"], {active}, "elapsed_since_start_ns", profile["platform"], min_depth
        )
    if kind is Kind.SAMPLE_V2:
        return sample_call_trees(profile["profile"], None, "timestamp", profile["platform"], min_depth)
    if kind is Kind.ANDROID:
        return android_profile_call_trees(profile, min_depth)
    return android_call_trees(profile, int(float(profile.get("timestamp") or 0) * 1e9), min_depth)


def profile_functions(
    profile: dict[str, Any],
    kind: Kind,
    *,
    filter_system_frames: bool = True,
    max_unique_functions: int | None = MAX_UNIQUE_FUNCTIONS,
    generate_stack_fingerprints: bool = False,
    trees: list[CallTree] | None = None,
) -> list[FunctionMetrics]:
    """Function metrics of a normalized profile, with Sentry's parameters by default."""
    return extract_functions(
        call_trees(profile, kind) if trees is None else trees,
        min_depth=MIN_DEPTH,
        filter_system_frames=filter_system_frames,
        max_unique_functions=max_unique_functions,
        generate_stack_fingerprints=generate_stack_fingerprints,
    )
