"""The messages Sentry's storage layer reads, built from what the task produced.

After storing a profile vroom wrote its metadata to ``processed-profiles`` (sampled
transaction profiles) or ``snuba-profile-chunks`` (chunks), its function metrics to
``profiles-call-tree``, and Sentry's task wrote outcomes to ``outcomes``.  With a Kafka bus
profd's workers write the same JSON, field for field (empty optional fields omitted, as
vroom's Go structs did), so an existing Snuba can consume profd's output.  The shapes are
checked against sentry-kafka-schemas in the tests.

Every message carries the header ``idempotency_key``: a consumer that must not count a
redelivered message twice (at-least-once, profd.pipeline.outcomes) deduplicates on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import msgspec

from profd.formats.message import Headers
from profd.formats.outcome import OutcomeRecord
from profd.formats.rows import FunctionMetrics, ProcessedProfile, ProfileMetadata

UNSAMPLED_PROFILE_ID = "0" * 32


class OutputMessage(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


class OutputProducer(Protocol):
    def publish(self, messages: Sequence[OutputMessage]) -> None:
        """Write the messages and wait until the broker has them all; BackendUnavailable if
        it could not, and then the caller retries the whole task."""
        ...


@dataclass(frozen=True)
class TopicNames:
    processed_profiles: str = "processed-profiles"
    call_trees: str = "profiles-call-tree"
    profile_chunks: str = "snuba-profile-chunks"
    outcomes: str = "outcomes"


class CallTreeFunction(msgspec.Struct):
    fingerprint: int
    function: str
    package: str
    in_app: bool
    thread_id: str
    self_times_ns: list[int]


class CallTreeMessage(msgspec.Struct, omit_defaults=True):
    """``profiles-call-tree`` (schema profile-functions v1)."""

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


class ProfileMetadataMessage(msgspec.Struct, omit_defaults=True):
    """``processed-profiles`` (schema profile-metadata v1): one per sampled transaction
    profile.  The required strings are sent even when empty."""

    device_locale: str
    device_manufacturer: str
    device_model: str
    device_os_name: str
    device_os_version: str
    duration_ns: int
    profile_id: str
    organization_id: int
    platform: str
    project_id: int
    received: int
    retention_days: int
    trace_id: str
    transaction_id: str
    transaction_name: str
    version_code: str
    version_name: str
    android_api_level: int = 0
    architecture: str = ""
    device_classification: str = ""
    device_os_build_number: str = ""
    environment: str = ""
    sdk_name: str = ""
    sdk_version: str = ""


class ChunkMessage(msgspec.Struct, omit_defaults=True):
    """``snuba-profile-chunks`` (schema snuba-profile-chunks v1)."""

    project_id: int
    profiler_id: str
    chunk_id: str
    start_timestamp: float
    end_timestamp: float
    duration_ms: int
    received: int
    retention_days: int
    platform: str
    environment: str | None = None
    release: str | None = None
    sdk_name: str | None = None
    sdk_version: str | None = None


class OutcomeMessage(msgspec.Struct):
    """``outcomes``: Sentry's outcome, its timestamp as RFC 3339 with microseconds."""

    timestamp: str
    org_id: int
    project_id: int
    key_id: int | None
    outcome: int
    reason: str | None
    event_id: str | None
    category: int
    quantity: int


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


def metadata_call_tree_message(
    metadata: ProfileMetadata, functions: list[FunctionMetrics]
) -> CallTreeMessage:
    chunk = metadata.profiler_id is not None
    return call_tree_message(
        functions=functions,
        profile_id=metadata.profiler_id if chunk and metadata.profiler_id else metadata.profile_id,
        chunk=chunk,
        sampled=metadata.sampled,
        platform=metadata.platform,
        project_id=metadata.project_id,
        received=metadata.received,
        retention_days=metadata.retention_days,
        start=metadata.start,
        end=metadata.end,
        transaction_name=metadata.transaction_name,
        environment=metadata.environment,
        release=metadata.release,
    )


def profile_metadata_message(metadata: ProfileMetadata, document: dict[str, Any]) -> ProfileMetadataMessage:
    """The device facts the index does not keep come from the normalized profile: nested
    under ``device``/``os`` in sample profiles, flat in legacy Android ones."""
    if "device" in document or "os" in document:
        device = document.get("device") or {}
        os = document.get("os") or {}
        facts = {
            "device_locale": device.get("locale"),
            "device_manufacturer": device.get("manufacturer"),
            "device_model": device.get("model"),
            "device_os_name": os.get("name"),
            "device_os_version": os.get("version"),
            "device_os_build_number": os.get("build_number"),
            "architecture": device.get("architecture"),
            "device_classification": device.get("classification"),
            "version_name": document.get("release"),
            "version_code": "",
            "android_api_level": 0,
        }
    else:
        facts = {
            name: document.get(name)
            for name in (
                "device_locale",
                "device_manufacturer",
                "device_model",
                "device_os_name",
                "device_os_version",
                "device_os_build_number",
                "device_classification",
                "version_name",
                "version_code",
            )
        }
        facts["architecture"] = document.get("architecture") or "unknown"
        facts["android_api_level"] = int(document.get("android_api_level") or 0)
    strings = {name: str(value or "") for name, value in facts.items() if name != "android_api_level"}
    return ProfileMetadataMessage(
        **strings,
        android_api_level=int(facts["android_api_level"] or 0),
        duration_ns=metadata.duration_ns,
        profile_id=metadata.profile_id,
        organization_id=metadata.organization_id,
        platform=metadata.platform,
        project_id=metadata.project_id,
        received=metadata.received,
        retention_days=metadata.retention_days,
        trace_id=metadata.trace_id or "",
        transaction_id=metadata.transaction_id or "",
        transaction_name=metadata.transaction_name or "",
        environment=metadata.environment or "",
        sdk_name=metadata.sdk_name or "",
        sdk_version=metadata.sdk_version or "",
    )


def chunk_message(metadata: ProfileMetadata) -> ChunkMessage:
    assert metadata.profiler_id is not None
    return ChunkMessage(
        project_id=metadata.project_id,
        profiler_id=metadata.profiler_id,
        chunk_id=metadata.profile_id,
        start_timestamp=metadata.start,
        end_timestamp=metadata.end,
        duration_ms=round((metadata.end - metadata.start) * 1000),
        received=metadata.received,
        retention_days=metadata.retention_days,
        platform=metadata.platform,
        environment=metadata.environment,
        release=metadata.release,
        sdk_name=metadata.sdk_name,
        sdk_version=metadata.sdk_version,
    )


def outcome_message(record: OutcomeRecord) -> OutcomeMessage:
    return OutcomeMessage(
        timestamp=record.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        org_id=record.org_id,
        project_id=record.project_id,
        key_id=record.key_id,
        outcome=int(record.outcome),
        reason=record.reason,
        event_id=record.event_id,
        category=int(record.category),
        quantity=record.quantity,
    )


def profile_messages(processed: ProcessedProfile, topics: TopicNames, identity: str) -> list[OutputMessage]:
    """What vroom wrote for one stored profile; keyed by profile (or profiler) id, so one
    profile's messages stay in order on one partition."""
    metadata = processed.metadata
    key = (metadata.profiler_id or metadata.profile_id).encode()
    found: list[tuple[str, msgspec.Struct]] = []
    if metadata.profiler_id is not None:
        found.append((topics.profile_chunks, chunk_message(metadata)))
    elif metadata.sampled:
        found.append((topics.processed_profiles, profile_metadata_message(metadata, processed.document)))
    if processed.functions:
        found.append((topics.call_trees, metadata_call_tree_message(metadata, processed.functions)))
    return [
        OutputMessage(
            topic, key, msgspec.json.encode(body), [("idempotency_key", f"{identity}/{topic}".encode())]
        )
        for topic, body in found
    ]


def outcome_messages(records: Sequence[OutcomeRecord], topic: str) -> list[OutputMessage]:
    return [
        OutputMessage(
            topic,
            None,
            msgspec.json.encode(outcome_message(record)),
            [("idempotency_key", record.key.encode())] if record.key else [],
        )
        for record in records
    ]
