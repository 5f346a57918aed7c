"""Relay's rules for the sample format: v1 transaction profiles and v2 chunks.

Decoding turns the SDK's loose JSON (numbers as strings, frame key aliases, addresses in
any hex spelling) into the typed structs of `profd.formats.sample`; normalizing applies
Relay's clean-up (idle edges, single-sample threads, duration caps, pointer-auth bits)
and its rejections.  The Android module reuses the trace rules for React Native's
``js_profile``, which is a sample trace.  Measurements and debug images, which every
format carries in the same shape, are normalized here too.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter
from typing import Any, TypeVar

import msgspec

from profd.formats.common import DebugMeta
from profd.formats.errors import FormatError
from profd.formats.sample import (
    Frame,
    SampleProfile,
    SampleV2,
    TraceV1,
    TraceV2,
    Transaction,
    check_trace,
)

MAX_PROFILE_DURATION_NS = 30_000_000_000
# Chunks are cut every 60 s; Relay allows some slack on top.
MAX_CHUNK_DURATION_S = 66.0
# arm64e return addresses carry pointer-authentication bits above bit 36.
PAC_MASK = 0x0000_000F_FFFF_FFFF
U64_MAX = 2**64 - 1
_HEX = re.compile(r"(?:0[xX])?0*[0-9a-fA-F]{1,16}")

T = TypeVar("T")


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


def canonical_frames(frames: list[Frame], path: str, *, pac: bool) -> list[Frame]:
    """Keep the keys Relay keeps, folding its aliases; fields a client must not set
    (``data``, ``status``, ``symbol``...) belong to symbolication and are dropped."""
    out = []
    for i, f in enumerate(frames):
        addr = f.instruction_addr
        if addr is not None:
            number = parse_addr(addr, f"{path}[{i}].instruction_addr")
            addr = hex(number & PAC_MASK if pac else number)
        out.append(
            Frame(
                function=f.function if f.function is not None else f.name,
                module=f.module,
                package=f.package,
                filename=f.filename if f.filename is not None else f.file,
                abs_path=f.abs_path,
                lineno=f.lineno if f.lineno is not None else f.line,
                colno=f.colno if f.colno is not None else f.column,
                in_app=f.in_app,
                instruction_addr=addr,
                platform=f.platform,
            )
        )
    return out


def decode_trace_v1(trace: TraceV1, path: str, *, pac: bool) -> None:
    for i, s in enumerate(trace.samples):
        check_u64(s.thread_id, f"{path}.samples[{i}].thread_id")
        check_u64(s.elapsed_since_start_ns, f"{path}.samples[{i}].elapsed_since_start_ns")
        # `state` is vroom's annotation, never an SDK's.
        s.state = None
    trace.frames = canonical_frames(trace.frames, f"{path}.frames", pac=pac)


def decode_trace_v2(trace: TraceV2, path: str, *, pac: bool) -> None:
    for i, s in enumerate(trace.samples):
        if not math.isfinite(s.timestamp):
            raise reject(
                "profiling_invalid_json", "timestamp is not a finite number", f"{path}.samples[{i}].timestamp"
            )
        if not isinstance(s.thread_id, str):
            s.thread_id = str(s.thread_id)
    trace.frames = canonical_frames(trace.frames, f"{path}.frames", pac=pac)


def uses_pac(platform: str, architecture: str | None) -> bool:
    return platform == "cocoa" and architecture in ("arm64", "arm64e")


def check_cocoa_metadata(profile: SampleProfile) -> None:
    """Cocoa profiles feed device classification, so Relay insists on the device fields."""
    if profile.platform != "cocoa":
        return
    device, os = profile.device, profile.os
    missing = [
        path
        for path, value in (
            ("$.os.build_number", os.build_number),
            ("$.device.is_emulator", device.is_emulator),
            ("$.device.locale", device.locale),
            ("$.device.manufacturer", device.manufacturer),
            ("$.device.model", device.model),
        )
        if value is None
    ]
    if missing:
        raise reject(
            "profiling_invalid_profile_metadata", f"cocoa profiles need {', '.join(missing)}", missing[0]
        )


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


def pick_transaction(profile: SampleProfile) -> Transaction:
    """SDKs send a one-element ``transactions`` list; Relay keeps its first element."""
    path = "$.transaction"
    if profile.transaction is None and profile.transactions:
        profile.transaction, path = profile.transactions[0], "$.transactions[0]"
    profile.transactions = None
    if profile.transaction is None:
        raise reject(
            "profiling_no_transaction_associated", "the profile names no transaction", "$.transaction"
        )
    check_transaction(profile.transaction, path)
    return profile.transaction


def _active(stack_id: int, nonempty: list[bool]) -> bool:
    return 0 <= stack_id < len(nonempty) and nonempty[stack_id]


def normalize_v1(trace: TraceV1, *, window: tuple[int, int] | None = None, path: str = "$.profile") -> None:
    """B3.1 steps 5-13 on a decoded v1 trace (frames already canonical, PAC already masked)."""
    samples = trace.samples
    if window is not None:
        start, end = window
        samples = [s for s in samples if start <= s.elapsed_since_start_ns <= end]

    # Idle samples before a thread's first and after its last real stack carry no information.
    nonempty = [bool(stack) for stack in trace.stacks]
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, s in enumerate(samples):
        if _active(s.stack_id, nonempty):
            first.setdefault(s.thread_id, i)
            last[s.thread_id] = i
    samples = [
        s
        for i, s in enumerate(samples)
        if s.thread_id in first and first[s.thread_id] <= i <= last[s.thread_id]
    ]

    counts = Counter(s.thread_id for s in samples)
    samples = [s for s in samples if counts[s.thread_id] > 1]
    if not samples:
        raise reject("profiling_not_enough_samples", "no thread has more than one sample", f"{path}.samples")
    trace.samples = samples
    check_trace(trace, path)

    # Relay judges the *last listed* sample, so an unsorted profile whose longest sample is
    # not last slips through; the maximum is what the 30 s limit means.
    longest = max(s.elapsed_since_start_ns for s in samples)
    if longest > MAX_PROFILE_DURATION_NS:
        raise reject(
            "profiling_duration_is_too_long", f"a sample is {longest} ns into the profile (max 30 s)", path
        )

    threads = {str(s.thread_id) for s in samples}
    if trace.thread_metadata is not None:
        trace.thread_metadata = {k: v for k, v in trace.thread_metadata.items() if k in threads}
    if trace.queue_metadata is not None:
        queues = {s.queue_address for s in samples}
        trace.queue_metadata = {k: v for k, v in trace.queue_metadata.items() if k in queues}


def normalize_v2(trace: TraceV2, *, path: str = "$.profile") -> float:
    """B3.3 steps 1-7 on a decoded v2 trace; returns the chunk's span in seconds."""
    nonempty = [bool(stack) for stack in trace.stacks]
    active = Counter(s.thread_id for s in trace.samples if _active(s.stack_id, nonempty))
    samples = [s for s in trace.samples if active[s.thread_id] > 1]
    if not samples:
        raise reject(
            "profiling_not_enough_samples", "no thread has more than one non-idle sample", f"{path}.samples"
        )
    samples.sort(key=_timestamp)
    trace.samples = samples
    check_trace(trace, path)
    span = samples[-1].timestamp - samples[0].timestamp
    if span > MAX_CHUNK_DURATION_S:
        raise reject("profiling_duration_is_too_long", f"the chunk spans {span:.3f} s (max 66 s)", path)
    if trace.thread_metadata is not None:
        threads = {s.thread_id for s in samples}
        trace.thread_metadata = {k: v for k, v in trace.thread_metadata.items() if k in threads}
    return span


def _timestamp(sample: SampleV2) -> float:
    return sample.timestamp


# -- measurements and debug images (B3.6, B3.7), the same in every format -----------------

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
# What Rust's f64 parser accepts (Android SDK 6.8.0 sent values as strings).
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.I)
_IMAGE_TYPES = ("macho", "symbolic", "sourcemap", "proguard")
_IMAGE_REQUIRED = {"proguard": ("uuid",), "sourcemap": ("code_file", "debug_id")}
_IMAGE_ALIASES = (("name", "code_file"), ("id", "debug_id"), ("build_id", "uuid"))
_DEBUG_ID = re.compile(
    r"([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})(?:[-.]?([0-9a-f]{1,8}))?",
    re.I,
)


def _u64(value: object, path: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise reject("profiling_invalid_json", f"{str(value)[:40]!r} is not an integer", path)
    check_u64(value, path)
    return value


def _f64(value: object, path: str) -> float:
    if isinstance(value, str) and _FLOAT.fullmatch(value):
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            pass
    raise reject("profiling_invalid_json", f"{str(value)[:40]!r} is not a number", path)


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
