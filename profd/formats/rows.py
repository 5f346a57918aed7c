"""What a processed profile becomes in the index: its rows, as the analysis stage computes
them (profd.analysis) and the store keeps them (profd.store).  Pure data.

Per profile: one `ProfileMetadata` (what Sentry writes to ``processed-profiles`` /
``snuba-profile-chunks``), its `FunctionMetrics` (self times per function, the "slowest
functions" and regressions are built from) and its call tree folded by stack within a node
budget (`FlameTree`, what aggregate flamegraphs merge); `ProcessedProfile` carries them with
the blob's document.
"""

from __future__ import annotations

from typing import Any

import msgspec

from profd.formats.flame_tree import FlameTree


class ProfileMetadata(msgspec.Struct, kw_only=True, frozen=True):
    organization_id: int
    project_id: int
    # Transaction profiles: the profile (event) id; chunks: the chunk id.  32 hex digits.
    profile_id: str
    kind: str
    profiler_id: str | None = None
    platform: str
    transaction_name: str | None = None
    transaction_id: str | None = None
    trace_id: str | None = None
    release: str | None = None
    environment: str | None = None
    # Unix seconds (float): when profiling started and ended.
    start: float
    end: float
    duration_ns: int
    device_class: str | None = None
    device_model: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    sdk_name: str | None = None
    sdk_version: str | None = None
    retention_days: int
    received: int
    blob_key: str
    # Unsampled profiles are indexed for their function metrics; their blob is not kept.
    sampled: bool = True


class FunctionMetrics(msgspec.Struct, kw_only=True):
    """One function (keyed by a fingerprint of package and name) in one profile."""

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


class ProcessedProfile(msgspec.Struct, frozen=True):
    """What the analysis stage hands the store: the blob's document (the normalized profile)
    and the index's rows, finished."""

    document: dict[str, Any]
    metadata: ProfileMetadata
    functions: list[FunctionMetrics]
    flame: FlameTree
