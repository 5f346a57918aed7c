"""From a processed profile to its call trees and function metrics, whatever its format.

Transaction profiles are analysed on the transaction's active thread (a React Native
Android profile on its JavaScript thread); chunks on every thread.  The result is also
shaped as the message Sentry writes to its ``profiles-call-tree`` topic.
"""

from __future__ import annotations

from typing import Any

import msgspec

from profd.analysis.android import android_call_trees, android_profile_call_trees
from profd.analysis.calltree import CallTree, sample_call_trees
from profd.analysis.functions import extract_functions
from profd.formats import Kind
from profd.formats.rows import FunctionMetrics

# Sentry's parameters for the functions it stores.
MIN_DEPTH = 1
MAX_UNIQUE_FUNCTIONS = 100
UNSAMPLED_PROFILE_ID = "0" * 32


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


class CallTreeFunction(msgspec.Struct):
    fingerprint: int
    function: str
    package: str
    in_app: bool
    thread_id: str
    self_times_ns: list[int]


class CallTreeMessage(msgspec.Struct, omit_defaults=True):
    """The body of Sentry's ``profiles-call-tree`` topic (schema profile-functions v1)."""

    functions: list[CallTreeFunction]
    profile_id: str
    platform: str
    project_id: int
    received: int
    retention_days: int
    timestamp: int
    transaction_name: str
    environment: str | None = None
    release: str | None = None
    start_timestamp: float | None = None
    end_timestamp: float | None = None
    profiling_type: str | None = None
    materialization_version: int = 1


def call_tree_message(
    *,
    functions: list[FunctionMetrics],
    profile_id: str,
    chunk: bool,
    sampled: bool,
    platform: str,
    project_id: int,
    received: int,
    retention_days: int,
    start: float,
    end: float,
    transaction_name: str | None,
    environment: str | None,
    release: str | None,
) -> CallTreeMessage:
    """Chunks are reported under their profiler id; unsampled profiles under the zero id."""
    return CallTreeMessage(
        functions=[
            CallTreeFunction(f.fingerprint, f.function, f.package, f.in_app, f.thread_id, f.self_times_ns)
            for f in functions
        ],
        profile_id=profile_id if sampled else UNSAMPLED_PROFILE_ID,
        platform=platform,
        project_id=project_id,
        received=received,
        retention_days=retention_days,
        timestamp=int(start),
        transaction_name="" if chunk else transaction_name or "",
        environment=environment or None,
        release=release or None,
        start_timestamp=start if chunk else None,
        end_timestamp=end if chunk else None,
        profiling_type="continuous" if chunk else None,
    )
