"""Expand a profile item the way Relay's ``relay-profiling`` does before producing it.

`expand_profile` takes the payload of a ``profile`` or ``profile_chunk`` envelope item
and returns the JSON Relay would put into the Kafka message: parsed, validated,
normalized, merged with its transaction's metadata and serialized again.  Every rejection
is a `FormatError` whose ``reason`` is Relay's discard reason.  Pure: no I/O.

This module only tells the formats apart and dispatches: each format's module
(`expand_sample` for v1 profiles and v2 chunks, `expand_android` for Android traces) is
called once and returns the `Expanded` profile; the fields they share are decoded by
`profd.ingest.fields`.  The order of checks follows Relay (parse, metadata, transaction,
samples, duration), so a profile with several faults is rejected for the same reason
Relay would give.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from profd.formats import Kind
from profd.gc_pause import gc_paused
from profd.ingest import expand_android, expand_sample
from profd.ingest.fields import Expanded, decode_typed, profile_type, reject, transaction_metadata

__all__ = ["DEFAULT_MAX_SIZE", "Expanded", "expand_profile", "profile_type", "transaction_metadata"]

DEFAULT_MAX_SIZE = 50 * 1024 * 1024
ItemType = Literal["profile", "profile_chunk"]


class _Header(msgspec.Struct):
    platform: str
    version: Any = None
    sampled_profile: Any = None


def expand_profile(
    payload: bytes,
    *,
    item_type: ItemType = "profile",
    transaction: dict[str, Any] | None = None,
    item_platform: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
) -> Expanded:
    """Validate and expand one item payload; `transaction` is the envelope's transaction
    event (a JSON object), whose metadata is merged into transaction profiles."""
    header = decode_typed(payload, _Header)
    kind = _detect(item_type, header)
    if item_platform is not None and profile_type(item_platform) != profile_type(header.platform):
        raise reject(
            "profiling_invalid_profile_type",
            f"item header says {item_platform!r}, payload says {header.platform!r}",
            "$.platform",
        )
    if transaction is not None and not isinstance(transaction, dict):
        raise reject("profiling_invalid_transaction_metadata", "the transaction event is not an object")
    with gc_paused():
        if kind is Kind.SAMPLE_V1:
            expanded = expand_sample.expand_v1(payload, transaction)
        elif kind is Kind.SAMPLE_V2:
            expanded = expand_sample.expand_v2(payload)
        elif kind is Kind.ANDROID:
            expanded = expand_android.expand_profile(payload, transaction)
        else:
            expanded = expand_android.expand_chunk(payload)
    if len(expanded.payload) > max_size:
        raise reject(
            "profiling_exceed_size_limit",
            f"expanded profile is {len(expanded.payload)} bytes (max {max_size})",
        )
    return expanded


def _detect(item_type: str, header: _Header) -> Kind:
    version, platform = header.version, header.platform
    if item_type == "profile":
        if version == "1":
            return Kind.SAMPLE_V1
        if platform == "android":
            return Kind.ANDROID
    elif item_type == "profile_chunk":
        # The Android SDK sends trace chunks with version "2", so a trace decides.
        if platform == "android" and (version not in ("1", "2") or header.sampled_profile is not None):
            return Kind.ANDROID_CHUNK
        if version == "2":
            return Kind.SAMPLE_V2
    else:
        raise reject("profiling_invalid_profile_type", f"{item_type!r} is not a profile item type")
    raise reject(
        "profiling_platform_not_supported",
        f"no {item_type} format for version {str(version)[:20]!r} on platform {platform[:40]!r}",
        "$.version",
    )
