"""Android method-trace profiles: legacy transaction profiles and trace chunks.

Android SDKs record ART method traces (enter/exit events), not stack samples.  Ingest
decodes the base64 trace (`profd.formats.art_trace`) into ``profile.methods`` and
``profile.events``; these structs describe that expanded shape.  An event's ``time`` is
kept as a plain object because producers disagree on its casing
(``{"Monotonic": {"wall": ...}}`` from Relay, ``{"global": {}}`` from older vroom data).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from profd.formats.common import ProfileDocument
from profd.formats.errors import FormatError
from profd.formats.sample import Transaction


class AndroidMethod(msgspec.Struct, omit_defaults=True):
    id: int
    class_name: str = ""
    name: str = ""
    signature: str | None = None
    source_file: str | None = None
    source_line: int | None = None
    in_app: bool | None = None
    platform: str | None = None
    data: dict[str, Any] | None = None
    inline_frames: list[dict[str, Any]] | None = None


class AndroidEvent(msgspec.Struct, omit_defaults=True):
    action: Literal["Enter", "Exit", "Unwind"]
    thread_id: int
    time: dict[str, Any]
    # The trace's first method has id 0, which some producers omit.
    method_id: int = 0


class AndroidThread(msgspec.Struct, omit_defaults=True):
    id: int
    name: str = ""


class AndroidTrace(msgspec.Struct):
    # Defaults are written out: readers of the stored profile (vroom) require clock and start_time.

    methods: list[AndroidMethod]
    events: list[AndroidEvent]
    threads: list[AndroidThread] = []
    clock: Literal["Dual", "Cpu", "Wall", "Global"] = "Dual"
    start_time: int = 0
    # The rest of the decoded trace header; ingest takes the profile duration from
    # `elapsed_time` (a serde Duration, ``{"secs", "nanos"}``).
    elapsed_time: dict[str, int] | None = None
    data_file_overflow: bool | None = None
    total_method_calls: int | None = None
    clock_call_overhead: dict[str, int] | None = None
    vm: str | None = None
    pid: int | None = None
    gc_trace: dict[str, int] | None = None


class AndroidProfile(ProfileDocument, kw_only=True, omit_defaults=True):
    """Legacy Android transaction profile (no ``version``)."""

    profile_id: str
    profile: AndroidTrace
    timestamp: str | None = None
    active_thread_id: int | None = None
    android_api_level: int | None = None
    build_id: str | None = None
    device_cpu_frequencies: list[int] | None = None
    device_is_emulator: bool | None = None
    device_locale: str | None = None
    device_manufacturer: str | None = None
    device_model: str | None = None
    device_os_build_number: str | None = None
    device_os_name: str | None = None
    device_os_version: str | None = None
    device_physical_memory_bytes: int | None = None
    duration_ns: int | None = None
    dist: str | None = None
    trace_id: str | None = None
    transaction_id: str | None = None
    transaction_name: str | None = None
    transaction: Transaction | None = None
    transactions: list[Transaction] | None = None
    transaction_metadata: dict[str, str] | None = None
    transaction_tags: dict[str, str] | None = None
    version_code: str | None = None
    version_name: str | None = None
    js_profile: dict[str, Any] | None = None
    sampled: bool | None = None


class AndroidChunk(ProfileDocument, kw_only=True, omit_defaults=True):
    """A continuous-profiling chunk carrying an Android method trace."""

    chunk_id: str
    profiler_id: str
    profile: AndroidTrace
    # Chunk start (unix seconds): Android trace times count from it.
    timestamp: float
    duration_ns: int | None = None
    version: str | None = None
    build_id: str | None = None
    js_profile: dict[str, Any] | None = None
    retention_days: int | None = None


def check_trace(trace: AndroidTrace) -> None:
    """Method ids are unique, so events resolve to one method each."""
    seen: set[int] = set()
    for i, method in enumerate(trace.methods):
        if method.id in seen:
            raise FormatError(
                f"duplicate method id {method.id}", f"$.profile.methods[{i}].id", "profiling_malformed_stacks"
            )
        seen.add(method.id)
