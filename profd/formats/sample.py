"""Sample format: v1 transaction profiles and v2 continuous-profiling chunks.

Both share one trace layout: ``frames`` (a flat list), ``stacks`` (lists of frame
indices, **leaf first**) and ``samples`` (each points at a stack).  v1 samples carry
``elapsed_since_start_ns`` relative to the transaction start and numeric thread ids;
v2 samples carry a float unix ``timestamp`` and string thread ids.

These structs describe a profile after ingest (Relay's output shape, which is also what
the store keeps).  They tolerate unknown keys, because symbolication and the pipeline add
fields, and they are decoded with ``strict=False`` so numbers sent as strings still parse.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec

from profd.formats.common import ProfileDocument
from profd.formats.errors import FormatError


class Frame(msgspec.Struct, omit_defaults=True):
    function: str | None = None
    module: str | None = None
    package: str | None = None
    filename: str | None = None
    abs_path: str | None = None
    lineno: int | None = None
    colno: int | None = None
    in_app: bool | None = None
    instruction_addr: str | None = None
    sym_addr: str | None = None
    symbol: str | None = None
    platform: str | None = None
    status: str | None = None
    data: dict[str, Any] | None = None
    # Aliases SDKs may send for function/filename/lineno/colno; ingest folds them into
    # the canonical keys, so they never reach the pipeline.
    name: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None


class ThreadMetadata(msgspec.Struct, omit_defaults=True):
    name: str | None = None
    priority: int | None = None


class Device(msgspec.Struct, omit_defaults=True):
    architecture: str
    is_emulator: bool | None = None
    locale: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    classification: str | None = None


class OS(msgspec.Struct, omit_defaults=True):
    name: str
    version: str
    build_number: str | None = None


class Runtime(msgspec.Struct, omit_defaults=True):
    name: str | None = None
    version: str | None = None


class Transaction(msgspec.Struct, omit_defaults=True):
    id: str
    name: str
    trace_id: str
    active_thread_id: int = 0
    relative_start_ns: int = 0
    relative_end_ns: int = 0
    relative_cpu_start_ms: float | None = None
    relative_cpu_end_ms: float | None = None
    segment_id: str | None = None


class SampleV1(msgspec.Struct, omit_defaults=True):
    stack_id: int
    thread_id: int
    elapsed_since_start_ns: int
    queue_address: str | None = None
    state: str | None = None


class SampleV2(msgspec.Struct, omit_defaults=True):
    stack_id: int
    thread_id: str | int
    timestamp: float


class TraceV1(msgspec.Struct, omit_defaults=True):
    samples: list[SampleV1]
    stacks: list[list[int]]
    frames: list[Frame]
    thread_metadata: dict[str, ThreadMetadata] | None = None
    queue_metadata: dict[str, dict[str, Any]] | None = None


class TraceV2(msgspec.Struct, omit_defaults=True):
    samples: list[SampleV2]
    stacks: list[list[int]]
    frames: list[Frame]
    thread_metadata: dict[str, ThreadMetadata] | None = None


class SampleProfile(ProfileDocument, kw_only=True, omit_defaults=True):
    """Sample format v1: one transaction's profile."""

    version: str
    device: Device
    os: OS
    profile: TraceV1
    event_id: str | None = None
    profile_id: str | None = None
    timestamp: str | None = None
    dist: str | None = None
    runtime: Runtime | None = None
    transaction: Transaction | None = None
    transactions: list[Transaction] | None = None
    transaction_metadata: dict[str, str] | None = None
    transaction_tags: dict[str, str] | None = None
    sampled: bool | None = None


class SampleChunk(ProfileDocument, kw_only=True, omit_defaults=True):
    """Sample format v2: one chunk of a continuous profiling session."""

    version: str
    chunk_id: str
    profiler_id: str
    profile: TraceV2
    # Relay marks chunks it converted from a Perfetto trace with "perfetto".
    content_type: str | None = None


def check_trace(trace: TraceV1 | TraceV2, path: str = "$.profile") -> None:
    """Every sample names an existing stack and every stack existing frames."""
    n_stacks = len(trace.stacks)
    stack_ids: list[int] = [sample.stack_id for sample in trace.samples]
    # Each check looks for where it fails only once it knows that it does.
    if stack_ids and (min(stack_ids) < 0 or max(stack_ids) >= n_stacks):
        _check_stack_ids(stack_ids, n_stacks, path)
    n_frames = len(trace.frames)
    indices = set(itertools.chain.from_iterable(trace.stacks))
    if indices and (min(indices) < 0 or max(indices) >= n_frames):
        _check_frame_indices(trace.stacks, n_frames, path)


def _check_stack_ids(stack_ids: list[int], n_stacks: int, path: str) -> None:
    for i, stack_id in enumerate(stack_ids):
        if not 0 <= stack_id < n_stacks:
            raise FormatError(
                f"stack_id {stack_id} out of range (profile has {n_stacks} stacks)",
                f"{path}.samples[{i}].stack_id",
                "profiling_malformed_samples",
            )


def _check_frame_indices(stacks: list[list[int]], n_frames: int, path: str) -> None:
    for i, stack in enumerate(stacks):
        for j, frame_index in enumerate(stack):
            if not 0 <= frame_index < n_frames:
                raise FormatError(
                    f"frame index {frame_index} out of range (profile has {n_frames} frames)",
                    f"{path}.stacks[{i}][{j}]",
                    "profiling_malformed_stacks",
                )
