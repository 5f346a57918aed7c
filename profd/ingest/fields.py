"""What every profile format shares at ingest: the field decoders and the result.

The format modules (`expand_sample` for v1 profiles and v2 chunks, `expand_android` for
Android traces) call these for the fields they have in common: ids, timestamps,
measurements, debug images, the transaction and its event's metadata, the fields a client
must not set, and the `Expanded` result each of them returns.  Every rejection is a
`FormatError` whose ``reason`` is Relay's discard reason (`reject`).  Pure: no I/O, and no
format's own rules (those live in the format's module).
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import msgspec

from profd.formats import FormatError, Kind, decode_json
from profd.formats.android import AndroidChunk, AndroidProfile
from profd.formats.common import ClientSdk, DebugMeta
from profd.formats.outcome import UI_PROFILE_PLATFORMS
from profd.formats.sample import SampleChunk, SampleProfile, Transaction

# A transaction profile's samples must fall within 30 s (sample and Android alike).
MAX_PROFILE_DURATION_NS = 30_000_000_000
# A chunk's, within 66 s: chunks are cut every 60 s, and Relay allows some slack on top.
MAX_CHUNK_DURATION_NS = 66_000_000_000
U64_MAX = 2**64 - 1
UNKNOWN_SPAN_ID = "0" * 16
_HEX = re.compile(r"(?:0[xX])?0*[0-9a-fA-F]{1,16}")

T = TypeVar("T")


# -- decoding and rejecting -------------------------------------------------------------------


def reject(reason: str, message: str, path: str = "$") -> FormatError:
    """The error for a rejected profile; `reason` is Relay's discard reason."""
    return FormatError(message, path, reason)


def decode_typed(data: bytes | Any, type_: type[T], prefix: str = "$") -> T:
    """Bytes are decoded as JSON, anything else converted; both lax about numbers in strings."""
    try:
        if isinstance(data, bytes):
            return msgspec.json.decode(data, type=type_, strict=False)
        return msgspec.convert(data, type_, strict=False)
    except msgspec.ValidationError as e:
        message, _, path = str(e).partition(" - at ")
        raise reject("profiling_invalid_json", message, prefix + path.strip("`")[1:]) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as e:
        # msgspec reports bad UTF-8 inside a string as a UnicodeDecodeError, and JSON nested
        # deeper than its guard (about 1,000 levels) as a RecursionError.
        raise reject("profiling_invalid_json", f"invalid JSON: {e}") from None


def decode_object(payload: bytes) -> dict[str, Any]:
    """A JSON object, untyped (`profd.formats.decode_json`), rejected as Relay does."""
    try:
        return decode_json(payload)
    except FormatError as e:
        raise reject("profiling_invalid_json", e.message, e.path) from None
    except UnicodeDecodeError as e:
        raise reject("profiling_invalid_json", f"invalid JSON: {e}") from None


# -- ids and numbers --------------------------------------------------------------------------


def hex_id(value: str | None, path: str) -> str:
    """Relay's ids are UUIDs, written back as 32 lowercase hex digits."""
    if value is None:
        raise reject("profiling_invalid_json", "missing id", path)
    try:
        return uuid.UUID(value).hex
    except ValueError:
        raise reject("profiling_invalid_json", f"{value[:64]!r} is not a UUID", path) from None


def parse_addr(value: object, path: str) -> int:
    """An address as SDKs write it: a hex string (any case, zero-padded or not) or a number."""
    if isinstance(value, str) and _HEX.fullmatch(value):
        return int(value, 16)
    if type(value) is int and 0 <= value <= U64_MAX:
        return value
    raise reject("profiling_invalid_json", f"{str(value)[:64]!r} is not a hex address", path)


def check_u64(value: int, path: str) -> None:
    if not 0 <= value <= U64_MAX:
        raise reject("profiling_invalid_json", f"{value} is not an unsigned 64-bit number", path)


def _u64(value: object, path: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise reject("profiling_invalid_json", f"{str(value)[:40]!r} is not an integer", path)
    check_u64(value, path)
    return value


# What Rust's f64 parser accepts (Android SDK 6.8.0 sent values as strings).
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.I)


def _f64(value: object, path: str) -> float:
    if isinstance(value, str) and _FLOAT.fullmatch(value):
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            pass
    raise reject("profiling_invalid_json", f"{str(value)[:40]!r} is not a number", path)


# -- timestamps -------------------------------------------------------------------------------

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


def normalize_timestamp(text: str, path: str) -> str:
    """An RFC 3339 timestamp written as Relay (chrono) writes it, in UTC."""
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


# -- the transaction and its event's metadata (B4) --------------------------------------------


def check_transaction(tx: Transaction, path: str) -> None:
    """Ids become UUID hex; a nil id or trace id, or an empty name, is not a transaction."""
    tx.id = hex_id(tx.id, f"{path}.id")
    tx.trace_id = hex_id(tx.trace_id, f"{path}.trace_id")
    for name in ("active_thread_id", "relative_start_ns", "relative_end_ns"):
        check_u64(getattr(tx, name), f"{path}.{name}")
    nil = uuid.UUID(int=0).hex
    if tx.id == nil or tx.trace_id == nil or not tx.name:
        raise reject(
            "profiling_invalid_transaction_metadata", "transaction needs an id, a trace_id and a name", path
        )


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


def default_sdk(platform: str) -> ClientSdk | None:
    """The SDK Relay names for a platform when neither the profile nor its event does."""
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


def merge_event(
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
    profile.client_sdk = sdk or profile.client_sdk or default_sdk(profile.platform)


# -- measurements and debug images (B3.6, B3.7) -----------------------------------------------

_UNITS = {
    "nanosecond": "nanosecond",
    "ns": "nanosecond",
    "hertz": "hertz",
    "hz": "hertz",
    "byte": "byte",
    "percent": "percent",
    "nanojoule": "nanojoule",
    "nj": "nanojoule",
}
_IMAGE_TYPES = ("macho", "symbolic", "sourcemap", "proguard")
_IMAGE_REQUIRED = {"proguard": ("uuid",), "sourcemap": ("code_file", "debug_id")}
_IMAGE_ALIASES = (("name", "code_file"), ("id", "debug_id"), ("build_id", "uuid"))
_DEBUG_ID = re.compile(
    r"([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})(?:[-.]?([0-9a-f]{1,8}))?",
    re.I,
)


def measurements(raw: dict[str, Any] | None, *, by_timestamp: bool) -> dict[str, Any] | None:
    if raw is None:
        return None
    out: dict[str, Any] = {}
    for name, measurement in raw.items():
        path = f"$.measurements.{name}"
        unit = measurement.get("unit") if isinstance(measurement, dict) else None
        values = measurement.get("values") if isinstance(measurement, dict) else None
        if not isinstance(unit, str) or unit not in _UNITS or not isinstance(values, list):
            raise reject("profiling_invalid_json", "a measurement needs a known unit and values", path)
        normalized = []
        for i, value in enumerate(values):
            at = f"{path}.values[{i}]"
            if not isinstance(value, dict):
                raise reject("profiling_invalid_json", "a measurement value is an object", at)
            key = "timestamp" if by_timestamp else "elapsed_since_start_ns"
            if key not in value:
                raise reject("profiling_invalid_json", f"missing field `{key}`", at)
            entry: dict[str, Any] = {}
            if "elapsed_since_start_ns" in value:
                entry["elapsed_since_start_ns"] = _u64(value["elapsed_since_start_ns"], at)
            if "timestamp" in value:
                entry["timestamp"] = _f64(value["timestamp"], f"{at}.timestamp")
            # A value that was infinite is written as null (serde_json does too); keep it
            # readable so that expanding twice gives the same result.
            v = value.get("value")
            entry["value"] = None if v is None and "value" in value else _f64(v, f"{at}.value")
            normalized.append(entry)
        out[name] = {"unit": _UNITS[unit], "values": normalized}
    return out


def debug_images(debug_meta: DebugMeta | None) -> None:
    """Canonical keys and spellings for the image types Relay knows; other types (SDKs
    add new ones before ingest learns them) pass through untouched."""
    if debug_meta is None:
        return
    for i, image in enumerate(debug_meta.images):
        kind = image.get("type")
        if kind not in _IMAGE_TYPES:
            continue
        path = f"$.debug_meta.images[{i}]"
        for alias, key in _IMAGE_ALIASES:
            if alias in image:
                value = image.pop(alias)
                image.setdefault(key, value)
        for key in ("image_addr", "image_vmaddr"):
            if key in image:
                image[key] = hex(parse_addr(image[key], f"{path}.{key}"))
        if "image_size" in image:
            image["image_size"] = _u64(image["image_size"], f"{path}.image_size")
        if "debug_id" in image:
            image["debug_id"] = _debug_id(image["debug_id"], f"{path}.debug_id")
        if "uuid" in image:
            image["uuid"] = _uuid(image["uuid"], f"{path}.uuid")
        for key in _IMAGE_REQUIRED.get(kind, ("debug_id",)):
            if not isinstance(image.get(key), str):
                raise reject("profiling_invalid_json", f"missing field `{key}`", path)


def _debug_id(value: object, path: str) -> str:
    m = _DEBUG_ID.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise reject("profiling_invalid_json", f"{str(value)[:64]!r} is not a debug id", path)
    text = "-".join(m.group(1, 2, 3, 4, 5)).lower()
    appendix = int(m[6], 16) if m[6] else 0
    return f"{text}-{appendix:x}" if appendix else text


def _uuid(value: object, path: str) -> str:
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise reject("profiling_invalid_json", f"{str(value)[:64]!r} is not a UUID", path)


# -- the fields every format carries in the same shape ----------------------------------------


def shared_fields(
    profile: SampleProfile | SampleChunk | AndroidProfile | AndroidChunk, *, by_timestamp: bool
) -> None:
    """What every format carries in the same shape: measurements (on a chunk's clock,
    `by_timestamp`, else in ns since the profile's start), debug images, and the fields a
    client must not set."""
    profile.measurements = measurements(profile.measurements, by_timestamp=by_timestamp)
    debug_images(profile.debug_meta)
    strip_server_fields(profile)


def strip_server_fields(profile: SampleProfile | SampleChunk | AndroidProfile | AndroidChunk) -> None:
    """Relay's structs have no such fields: the tenant and retention come from the Kafka
    message, never from what a client wrote into its payload."""
    profile.organization_id = profile.project_id = profile.retention_days = None
    if isinstance(profile, SampleProfile | AndroidProfile):
        profile.sampled = None


# -- the result -------------------------------------------------------------------------------


def profile_type(platform: str | None) -> Literal["ui", "backend"]:
    """Relay's data-category split (must match Sentry's task)."""
    return "ui" if platform in UI_PROFILE_PLATFORMS else "backend"


@dataclass(frozen=True, slots=True)
class Expanded:
    """One expanded profile: its JSON bytes, and what routing needs."""

    kind: Kind
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

    @property
    def doc(self) -> dict[str, Any]:
        """The expanded profile as a JSON object, decoded from `payload` on each call."""
        return decode_json(self.payload)


def as_written(profile: msgspec.Struct) -> msgspec.Struct | dict[str, Any]:
    """What to encode for `profile`: the struct itself when `document` would add nothing
    to it (its JSON is then the same bytes), else `document`."""
    transaction = getattr(profile, "transaction", None)
    if isinstance(transaction, Transaction) and (
        transaction.active_thread_id == 0 or transaction.segment_id is None
    ):
        return document(profile)
    return profile


def document(profile: msgspec.Struct) -> dict[str, Any]:
    """The expanded profile as the JSON object Relay writes."""
    doc: dict[str, Any] = msgspec.to_builtins(profile)
    if "transaction" in doc:
        # `Transaction` leaves out a zero thread id (Node's main thread is "0"), but Relay
        # writes it and vroomrs requires it.
        doc["transaction"].setdefault("active_thread_id", 0)
        # Relay takes the segment (root span) id from the transaction event; a profile that
        # comes without its event has none, and Sentry's stored format requires one.
        doc["transaction"].setdefault("segment_id", UNKNOWN_SPAN_ID)
    return doc


def finish(
    kind: Kind,
    doc: msgspec.Struct | dict[str, Any],
    id: str,
    platform: str,
    profiler_id: str | None = None,
    duration: int | None = None,
) -> Expanded:
    return Expanded(kind, msgspec.json.encode(doc), id, platform, profiler_id, duration)
