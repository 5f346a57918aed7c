"""The searchable facts of a processed profile: what the index keeps per profile
(`profd.formats.rows.ProfileMetadata`), extracted here.

Mirrors what Sentry writes to ``processed-profiles`` / ``snuba-profile-chunks`` (ids,
platform, transaction, release, environment, time span, device, SDK, retention), computed
from the profile alone so the index never needs to re-read a blob.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from profd.formats import Kind
from profd.formats.rows import ProfileMetadata


def extract_metadata(profile: dict[str, Any], kind: Kind, default_retention_days: int) -> ProfileMetadata:
    org = int(profile["organization_id"])
    project = int(profile["project_id"])
    received = int(profile.get("received") or 0)
    sdk = profile.get("client_sdk") or {}
    common: dict[str, Any] = {
        "organization_id": org,
        "project_id": project,
        "kind": kind.value,
        "platform": profile["platform"],
        "release": profile.get("release") or None,
        "environment": profile.get("environment") or None,
        "sdk_name": sdk.get("name"),
        "sdk_version": sdk.get("version"),
        "retention_days": int(profile.get("retention_days") or default_retention_days),
        "received": received,
        "sampled": profile.get("sampled") is not False,
    }
    if kind.is_chunk:
        chunk_id = _hex(profile["chunk_id"])
        start, end = _chunk_span(profile, kind)
        return ProfileMetadata(
            **common,
            profile_id=chunk_id,
            profiler_id=_hex(profile["profiler_id"]),
            start=start,
            end=end,
            duration_ns=max(0, round((end - start) * 1e9)),
            # vroom keeps chunks at {org}/{project}/{profiler_id}/{chunk_id}, beside profiles at
            # {org}/{project}/{profile_id}: on a file system a profiler id equal to a profile id
            # would make one path both a file and a directory.  "chunks/" keeps them apart.
            blob_key=f"{org}/{project}/chunks/{profile['profiler_id']}/{profile['chunk_id']}",
        )
    profile_id = _hex(profile.get("event_id") or profile["profile_id"])
    if kind is Kind.SAMPLE_V1:
        transaction = profile.get("transaction") or {}
        device = profile.get("device") or {}
        os = profile.get("os") or {}
        described: dict[str, Any] = {
            "transaction_name": transaction.get("name"),
            "transaction_id": transaction.get("id"),
            "trace_id": transaction.get("trace_id"),
            "device_class": device.get("classification"),
            "device_model": device.get("model"),
            "os_name": os.get("name"),
            "os_version": os.get("version"),
        }
        duration_ns = _v1_duration_ns(profile)
    else:
        # Legacy Android profiles keep the same facts flat, under their own names.
        described = {
            "transaction_name": profile.get("transaction_name"),
            "transaction_id": profile.get("transaction_id"),
            "trace_id": profile.get("trace_id"),
            "device_class": profile.get("device_classification"),
            "device_model": profile.get("device_model"),
            "os_name": profile.get("device_os_name"),
            "os_version": profile.get("device_os_version"),
        }
        duration_ns = int(profile.get("duration_ns") or 0)
    described["transaction_id"] = _hex_or_none(described["transaction_id"])
    described["trace_id"] = _hex_or_none(described["trace_id"])
    start = _timestamp(profile.get("timestamp"), received)
    return ProfileMetadata(
        **common,
        **described,
        profile_id=profile_id,
        start=start,
        end=start + duration_ns / 1e9,
        duration_ns=duration_ns,
        blob_key=f"{org}/{project}/{profile_id}",
    )


def _v1_duration_ns(profile: dict[str, Any]) -> int:
    transaction = profile.get("transaction") or {}
    duration = int(transaction.get("relative_end_ns") or 0) - int(transaction.get("relative_start_ns") or 0)
    if duration > 0:
        return duration
    elapsed = [int(s["elapsed_since_start_ns"]) for s in profile["profile"]["samples"]]
    return max(elapsed) - min(elapsed) if elapsed else 0


def _chunk_span(profile: dict[str, Any], kind: Kind) -> tuple[float, float]:
    if kind is Kind.SAMPLE_V2:
        timestamps = [float(s["timestamp"]) for s in profile["profile"]["samples"]]
        if timestamps:
            return min(timestamps), max(timestamps)
        received = float(profile.get("received") or 0)
        return received, received
    start = float(profile.get("timestamp") or profile.get("received") or 0)
    return start, start + int(profile.get("duration_ns") or 0) / 1e9


def _timestamp(value: Any, fallback: int) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
            # RFC 3339 without an offset means UTC, not this machine's local time.
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
        except ValueError:
            pass
    return float(fallback)


def _hex(value: str) -> str:
    return uuid.UUID(str(value)).hex


def _hex_or_none(value: Any) -> str | None:
    try:
        return uuid.UUID(str(value)).hex if value else None
    except ValueError:
        return None
