"""Expand a profile item the way Relay's ``relay-profiling`` does before producing it.

`expand_profile` takes the payload of a ``profile`` or ``profile_chunk`` envelope item
and returns the JSON Relay would put into the Kafka message: parsed, validated,
normalized, merged with its transaction's metadata and serialized again.  Every rejection
is a `FormatError` whose ``reason`` is Relay's discard reason.  Pure: no I/O.

The order of checks follows Relay (parse, metadata, transaction, samples, duration), so a
profile with several faults is rejected for the same reason Relay would give.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec

from profd.formats import FormatError, Kind, decode_json
from profd.formats.android import AndroidChunk, AndroidProfile
from profd.formats.common import ClientSdk
from profd.formats.outcome import UI_PROFILE_PLATFORMS
from profd.formats.sample import SampleChunk, SampleProfile, Transaction
from profd.gc_pause import gc_paused
from profd.ingest import expand_android, expand_sample
from profd.ingest.expand_sample import decode_typed, hex_id, reject

__all__ = ["DEFAULT_MAX_SIZE", "Expanded", "expand_profile", "profile_type"]

DEFAULT_MAX_SIZE = 50 * 1024 * 1024
UNKNOWN_SPAN_ID = "0" * 16
ItemType = Literal["profile", "profile_chunk"]


@dataclass(frozen=True, slots=True)
class Expanded:
    """One expanded profile: the document, its JSON bytes, and what routing needs."""

    kind: Kind
    doc: dict[str, Any]
    payload: bytes
    # The event id of a transaction profile, the chunk id of a chunk (32 hex digits).
    id: str
    platform: str
    profiler_id: str | None = None
    # Chunks only: what Relay bills as profile duration.
    duration_ns: int | None = None

    @property
    def profile_type(self) -> Literal["ui", "backend"]:
        return profile_type(self.platform)


def profile_type(platform: str | None) -> Literal["ui", "backend"]:
    """Relay's data-category split (must match Sentry's task)."""
    return "ui" if platform in UI_PROFILE_PLATFORMS else "backend"


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
            expanded = _expand_v1(payload, transaction)
        elif kind is Kind.SAMPLE_V2:
            expanded = _expand_v2(payload)
        elif kind is Kind.ANDROID:
            expanded = _expand_android(payload, transaction)
        else:
            expanded = _expand_android_chunk(payload)
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


def _finish(
    kind: Kind,
    profile: msgspec.Struct,
    id: str,
    platform: str,
    profiler_id: str | None = None,
    duration: int | None = None,
) -> Expanded:
    doc: dict[str, Any] = msgspec.to_builtins(profile)
    if isinstance(profile, AndroidProfile | AndroidChunk):
        expand_android.write_method_ids(doc["profile"]["events"])
    if "transaction" in doc:
        # `Transaction` leaves out a zero thread id (Node's main thread is "0"), but Relay
        # writes it and vroomrs requires it.
        doc["transaction"].setdefault("active_thread_id", 0)
        # Relay takes the segment (root span) id from the transaction event; a profile that
        # comes without its event has none, and Sentry's stored format requires one.
        doc["transaction"].setdefault("segment_id", UNKNOWN_SPAN_ID)
    return Expanded(kind, doc, msgspec.json.encode(doc), id, platform, profiler_id, duration)


def _expand_v1(payload: bytes, event: dict[str, Any] | None) -> Expanded:
    p = decode_typed(payload, SampleProfile)
    p.event_id = hex_id(p.event_id or p.profile_id, "$.event_id")
    p.profile_id = None
    if p.timestamp is None:
        raise reject("profiling_invalid_json", "missing field `timestamp`", "$.timestamp")
    p.timestamp = _normalize_timestamp(p.timestamp, "$.timestamp")
    p.release = p.release or None
    p.measurements = expand_sample.measurements(p.measurements, by_timestamp=False)
    expand_sample.debug_images(p.debug_meta)
    _strip_server_fields(p)
    pac = expand_sample.uses_pac(p.platform, p.device.architecture)
    expand_sample.decode_trace_v1(p.profile, "$.profile", pac=pac)

    expand_sample.check_cocoa_metadata(p)
    tx = expand_sample.pick_transaction(p)
    window = (tx.relative_start_ns, tx.relative_end_ns) if tx.relative_end_ns > 0 else None
    expand_sample.normalize_v1(p.profile, window=window)
    _merge_event(p, tx, event, overwrite_release=False)
    return _finish(Kind.SAMPLE_V1, p, p.event_id, p.platform)


def _expand_v2(payload: bytes) -> Expanded:
    c = decode_typed(payload, SampleChunk)
    c.chunk_id = hex_id(c.chunk_id, "$.chunk_id")
    c.profiler_id = hex_id(c.profiler_id, "$.profiler_id")
    c.release = c.release or None
    c.measurements = expand_sample.measurements(c.measurements, by_timestamp=True)
    expand_sample.debug_images(c.debug_meta)
    _strip_server_fields(c)
    expand_sample.decode_trace_v2(c.profile, "$.profile", pac=c.platform == "cocoa")
    span = expand_sample.normalize_v2(c.profile)
    c.client_sdk = c.client_sdk or _default_sdk(c.platform)
    return _finish(Kind.SAMPLE_V2, c, c.chunk_id, c.platform, c.profiler_id, round(span * 1e9))


def _expand_android(payload: bytes, event: dict[str, Any] | None) -> Expanded:
    p, sampled = expand_android.decode(_decode_json(payload), AndroidProfile)
    p.profile_id = hex_id(p.profile_id, "$.profile_id")
    if p.timestamp is not None:
        p.timestamp = _normalize_timestamp(p.timestamp, "$.timestamp")
    p.measurements = expand_sample.measurements(p.measurements, by_timestamp=False)
    expand_sample.debug_images(p.debug_meta)
    _strip_server_fields(p)

    tx = expand_android.pick_transaction(p)
    if p.js_profile is not None:
        p.js_profile = expand_android.normalize_js_profile(p.js_profile, chunk=False)
    expand_android.expand_trace(p, sampled, chunk=False)
    _merge_event(p, tx, event, overwrite_release=True)
    p.debug_meta = expand_android.proguard_image(p.build_id, p.debug_meta)
    return _finish(Kind.ANDROID, p, p.profile_id, p.platform)


def _expand_android_chunk(payload: bytes) -> Expanded:
    c, sampled = expand_android.decode(_decode_json(payload), AndroidChunk)
    c.chunk_id = hex_id(c.chunk_id, "$.chunk_id")
    c.profiler_id = hex_id(c.profiler_id, "$.profiler_id")
    if not math.isfinite(c.timestamp):
        raise reject("profiling_invalid_json", "timestamp is not a finite number", "$.timestamp")
    c.measurements = expand_sample.measurements(c.measurements, by_timestamp=True)
    expand_sample.debug_images(c.debug_meta)
    _strip_server_fields(c)

    if c.js_profile is not None:
        c.js_profile = expand_android.normalize_js_profile(c.js_profile, chunk=True)
    duration = expand_android.expand_trace(c, sampled, chunk=True)
    c.debug_meta = expand_android.proguard_image(c.build_id, c.debug_meta)
    c.client_sdk = c.client_sdk or _default_sdk(c.platform)
    # vroom tells trace chunks from sample chunks by this version.
    c.version = "2.android-trace"
    return _finish(Kind.ANDROID_CHUNK, c, c.chunk_id, c.platform, c.profiler_id, duration)


def _decode_json(payload: bytes) -> dict[str, Any]:
    try:
        return decode_json(payload)
    except FormatError as e:
        raise reject("profiling_invalid_json", e.message, e.path) from None
    except UnicodeDecodeError as e:
        raise reject("profiling_invalid_json", f"invalid JSON: {e}") from None


def _strip_server_fields(profile: SampleProfile | SampleChunk | AndroidProfile | AndroidChunk) -> None:
    # Relay's structs have no such fields: the tenant and retention come from the Kafka
    # message, never from what a client wrote into its payload.
    profile.organization_id = profile.project_id = profile.retention_days = None
    if isinstance(profile, SampleProfile | AndroidProfile):
        profile.sampled = None


# -- timestamps ---------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:[Zz]|([+-])(\d\d):?(\d\d))?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _parse_rfc3339(text: str) -> tuple[int, int] | None:
    """Unix seconds and nanoseconds; a missing offset means UTC, as Sentry reads it."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    secs = int((moment - _EPOCH).total_seconds())
    if m[8]:
        offset = (int(m[9]) * 60 + int(m[10])) * 60
        secs += -offset if m[8] == "+" else offset
    return secs, int((m[7] or "")[:9].ljust(9, "0"))


def _format_rfc3339(secs: int, nanos: int, *, relay_event: bool = False) -> str | None:
    try:
        moment = _EPOCH + timedelta(seconds=secs)
    except OverflowError:
        return None
    if not 1 <= moment.year <= 9999:
        return None
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if relay_event:
        return f"{base}.{nanos:09d}+00:00"
    # chrono's serde form: as many digit groups of three as needed, and "Z".
    if nanos == 0:
        return base + "Z"
    if nanos % 1_000_000 == 0:
        return f"{base}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{base}.{nanos // 1000:06d}Z"
    return f"{base}.{nanos:09d}Z"


def _normalize_timestamp(text: str, path: str) -> str:
    parsed = _parse_rfc3339(text)
    formatted = _format_rfc3339(*parsed) if parsed else None
    if formatted is None:
        raise reject("profiling_invalid_json", f"{text[:64]!r} is not an RFC 3339 timestamp", path)
    return formatted


def _event_timestamp(value: object) -> str | None:
    """An event timestamp as Relay writes it into transaction metadata.  Relay holds event
    times as f64 seconds and truncates to whole nanoseconds, so ``…43.229317Z`` becomes
    ``…43.229316949+00:00``; doing the same keeps the strings identical."""
    if isinstance(value, str):
        parsed = _parse_rfc3339(value)
        if parsed is None:
            return None
        seconds = parsed[0] + parsed[1] / 1e9
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        return None
    if not math.isfinite(seconds) or abs(seconds) > 1e12:
        return None
    whole = math.floor(seconds)
    return _format_rfc3339(whole, int((seconds - whole) * 1e9), relay_event=True)


# -- transaction metadata (B4) ------------------------------------------------------------

_DEFAULT_SDKS = {
    "android": "sentry.java.android",
    "cocoa": "sentry.cocoa",
    "csharp": "sentry.dotnet",
    "go": "sentry.go",
    "javascript": "sentry.javascript",
    "node": "sentry.javascript.node",
    "php": "sentry.php",
    "python": "sentry.python",
    "ruby": "sentry.ruby",
    "rust": "sentry.rust",
}
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")


def _default_sdk(platform: str) -> ClientSdk | None:
    name = _DEFAULT_SDKS.get(platform)
    return ClientSdk(name=name, version="") if name else None


def _span_id(value: object) -> str | None:
    return value.lower() if isinstance(value, str) and _SPAN_ID.fullmatch(value) else None


def _obj(parent: object, key: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def transaction_metadata(event: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The ``transaction_metadata`` and ``transaction_tags`` maps Relay attaches to a profile."""
    trace, request = _obj(_obj(event, "contexts"), "trace"), _obj(event, "request")
    app, sdk = _obj(_obj(event, "contexts"), "app"), _obj(event, "sdk")
    candidates = {
        "release": event.get("release"),
        "dist": event.get("dist"),
        "environment": event.get("environment"),
        "transaction": event.get("transaction"),
        "transaction.status": trace.get("status") or "unknown",
        "transaction.op": trace.get("op"),
        "http.method": request.get("method"),
        "transaction.start": _event_timestamp(event.get("start_timestamp")),
        "transaction.end": _event_timestamp(event.get("timestamp")),
        "app.identifier": app.get("app_identifier"),
        "segment_id": _span_id(trace.get("span_id")),
        "client_sdk.name": sdk.get("name"),
        "client_sdk.version": sdk.get("version"),
    }
    metadata = {k: v for k, v in candidates.items() if isinstance(v, str) and v}
    raw_tags = event.get("tags")
    pairs = raw_tags.items() if isinstance(raw_tags, dict) else raw_tags if isinstance(raw_tags, list) else ()
    tags: dict[str, str] = {}
    for pair in pairs:
        if isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str):
            value = pair[1]
            if isinstance(value, str):
                tags[pair[0]] = value
            elif isinstance(value, int | float) and not isinstance(value, bool):
                tags[pair[0]] = str(value)
    return metadata, tags


def _merge_event(
    profile: SampleProfile | AndroidProfile,
    tx: Transaction,
    event: dict[str, Any] | None,
    *,
    overwrite_release: bool,
) -> None:
    """B3.1 step 14 / B3.2 step 7.  Without an event the profile keeps what it carries."""
    sdk: ClientSdk | None = None
    if event is not None:
        metadata, tags = transaction_metadata(event)
        if "transaction" in metadata:
            tx.name = metadata["transaction"]
            if isinstance(profile, AndroidProfile):
                profile.transaction_name = tx.name
        if "release" in metadata and (overwrite_release or not profile.release):
            profile.release = metadata["release"]
        profile.dist = metadata.get("dist", profile.dist)
        profile.environment = metadata.get("environment", profile.environment)
        tx.segment_id = metadata.get("segment_id", tx.segment_id)
        if "client_sdk.name" in metadata and "client_sdk.version" in metadata:
            sdk = ClientSdk(name=metadata["client_sdk.name"], version=metadata["client_sdk.version"])
        profile.transaction_metadata, profile.transaction_tags = metadata, tags
    profile.client_sdk = sdk or profile.client_sdk or _default_sdk(profile.platform)
