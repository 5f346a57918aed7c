"""Decode an Android ART method trace ("dmtrace") into the JSON Relay makes of it.

Android SDKs send the output of ``Debug.startMethodTracingSampling`` base64-encoded in
``sampled_profile``.  Relay expands it with the ``android_trace_log`` crate and stores the
serde form of that crate's structs as ``profile``; vroom and our pipeline read that form.
This module produces the same shape, so a trace expanded here and one expanded by Relay
are interchangeable:

* ids: a method's id is the header's id shifted right by the two action bits, and an
  event's ``method_id`` is its record's id shifted the same way, so events and methods join;
* times are serde ``Duration``s ``{"secs", "nanos"}`` since the trace start, wrapped as
  ``{"Monotonic": {"cpu": d | None, "wall": d | None}}`` or ``{"Global": d}``;
* ``start_time`` is the binary header's start (µs) in nanoseconds, as an integer;
* enums keep their Rust variant names (``"Dual"``, ``"Art"``, ``"Enter"``).

File layout: a text header (``*version``, ``key=value`` lines, ``*threads``,
``*methods``, ``*end``) followed by a little-endian binary part: magic ``SLOW``, u16
version, u16 offset of the first record, u64 start time in µs, u16 record size (version
3 only), then fixed-size records of thread id (u8 in version 1, else u16), u32 method id
with the action in its two low bits, and one u32 µs delta (two, cpu then wall, for the
dual clock).
"""

from __future__ import annotations

import binascii
import re
import struct
from collections.abc import Callable
from typing import Any

from profd.formats.errors import FormatError

__all__ = ["decode_art_trace", "decode_art_trace_base64"]

_PATH = "$.sampled_profile"
_REASON = "profiling_invalid_sampled_profile"

_END = b"\n*end\n"
_MAGIC = b"SLOW"
_CLOCKS = {"global": "Global", "thread-cpu": "Cpu", "wall": "Wall", "dual": "Dual"}
_VMS = {"dalvik": "Dalvik", "art": "Art"}
_ACTIONS = ("Enter", "Exit", "Unwind")
_SECTIONS = ("version", "threads", "methods")
_GC_KEYS = {"alloc-count": "alloc_count", "alloc-size": "alloc_size", "gc-count": "gc_count"}
# The header's numbers are hex with a 0x prefix or decimal, nothing else (no sign, no spaces).
_NUMBER = re.compile(r"0x[0-9a-fA-F]{1,16}|[0-9]{1,20}")
_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF
_I64_MAX = 0x7FFF_FFFF_FFFF_FFFF

_Duration = dict[str, int]


def decode_art_trace(data: bytes) -> dict[str, Any]:
    """Expand a raw ART method trace; any malformed input raises `FormatError`."""
    end = data.find(_END)
    if not data.startswith(b"*version\n") or end < 0:
        raise _invalid("not an ART method trace (no *version ... *end header)")
    try:
        lines = data[:end].decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise _invalid("trace header is not UTF-8") from None
    trace = _parse_header(lines)
    trace["events"] = _parse_records(data[end + len(_END) :], trace)
    return trace


def decode_art_trace_base64(text: str) -> dict[str, Any]:
    """Decode ``sampled_profile``: standard base64, padded or not, then the trace."""
    try:
        raw = text.encode("ascii")
        # SDKs send it unpadded; Relay decodes without padding, older clients pad.
        if not raw.endswith(b"="):
            raw += b"=" * (-len(raw) % 4)
        # strict_mode still lets surplus padding through ("QUJD==").
        if len(raw) % 4:
            raise binascii.Error("padding does not complete a 4-character group")
        data = binascii.a2b_base64(raw, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise FormatError(
            f"sampled_profile is not valid base64: {exc}", path=_PATH, reason="profiling_invalid_base64_value"
        ) from None
    return decode_art_trace(data)


def _invalid(message: str) -> FormatError:
    return FormatError(message, path=_PATH, reason=_REASON)


def _number(text: str, what: str, limit: int) -> int:
    if _NUMBER.fullmatch(text) is None:
        raise _invalid(f"{what} is not a number: {text[:40]!r}")
    value = int(text, 16) if text.startswith("0x") else int(text)
    if value > limit:
        raise _invalid(f"{what} is out of range: {text!r}")
    return value


def _micros(value: int) -> _Duration:
    return {"secs": value // 1_000_000, "nanos": value % 1_000_000 * 1000}


def _nanos(value: int) -> _Duration:
    return {"secs": value // 1_000_000_000, "nanos": value % 1_000_000_000}


def _parse_header(lines: list[str]) -> dict[str, Any]:
    # Defaults are what android_trace_log assumes when a key is missing.
    trace: dict[str, Any] = {
        "data_file_overflow": False,
        "clock": "Global",
        "elapsed_time": _micros(0),
        "total_method_calls": 0,
        "clock_call_overhead": _nanos(0),
        "vm": "Dalvik",
        "start_time": 0,
        "pid": None,
        "gc_trace": None,
        "threads": [],
        "methods": [],
    }
    version = lines[1] if len(lines) > 1 else ""
    if version not in ("1", "2", "3"):
        raise _invalid(f"unsupported trace version {version[:20]!r}")
    section = "version"
    for line in lines[2:]:
        if line.startswith("*"):
            section = line[1:]
            if section not in _SECTIONS:
                raise _invalid(f"unknown trace section {line[:40]!r}")
        elif section == "version":
            _parse_option(line, trace)
        elif section == "threads":
            trace["threads"].append(_parse_thread(line))
        else:
            trace["methods"].append(_parse_method(line))
    return trace


def _parse_option(line: str, trace: dict[str, Any]) -> None:
    key, sep, value = line.partition("=")
    if not sep:
        raise _invalid(f"bad trace header line {line[:40]!r}")
    if key == "data-file-overflow":
        if value not in ("true", "false"):
            raise _invalid(f"bad data-file-overflow {value[:20]!r}")
        trace["data_file_overflow"] = value == "true"
    elif key == "clock":
        if value not in _CLOCKS:
            raise _invalid(f"unknown clock {value[:20]!r}")
        trace["clock"] = _CLOCKS[value]
    elif key == "vm":
        if value not in _VMS:
            raise _invalid(f"unknown vm {value[:20]!r}")
        trace["vm"] = _VMS[value]
    elif key == "elapsed-time-usec":
        trace["elapsed_time"] = _micros(_number(value, key, _U64))
    elif key == "num-method-calls":
        trace["total_method_calls"] = _number(value, key, _U64)
    elif key == "clock-call-overhead-nsec":
        trace["clock_call_overhead"] = _nanos(_number(value, key, _U64))
    elif key == "pid":
        trace["pid"] = _number(value, key, _U32)
    elif key in _GC_KEYS:
        if trace["gc_trace"] is None:
            trace["gc_trace"] = {"alloc_count": 0, "alloc_size": 0, "gc_count": 0}
        trace["gc_trace"][_GC_KEYS[key]] = _number(value, key, _U64)
    # Other keys are skipped: newer runtimes may add some, and nothing downstream reads them.


def _parse_thread(line: str) -> dict[str, Any]:
    tid, sep, name = line.partition("\t")
    if not sep:
        raise _invalid(f"bad thread line {line[:40]!r}")
    # ART lists full Linux tids here but writes only their low 16 bits into records;
    # truncating the same way keeps names joinable to events (the crate rejects such tids).
    return {"id": _number(tid, "thread id", _U32) & 0xFFFF, "name": name}


def _parse_method(line: str) -> dict[str, Any]:
    fields = line.split("\t")
    # id, class, name, signature, then source file (ART) and line (Dalvik) when known.
    if not 4 <= len(fields) <= 6:
        raise _invalid(f"bad method line {line[:60]!r}")
    line_number = fields[5] if len(fields) == 6 else ""
    return {
        "id": _number(fields[0], "method id", _U32) >> 2,
        "name": fields[2],
        "class_name": fields[1],
        "signature": fields[3],
        "source_file": fields[4] if len(fields) > 4 else "",
        "source_line": _number(line_number, "source line", _U32) if line_number else None,
    }


def _parse_records(binary: bytes, trace: dict[str, Any]) -> list[dict[str, Any]]:
    if len(binary) < 16 or not binary.startswith(_MAGIC):
        raise _invalid("trace data does not start with SLOW")
    version, offset, start_us = struct.unpack_from("<HHQ", binary, 4)
    if version not in (1, 2, 3):
        raise _invalid(f"unsupported trace data version {version}")
    # Relay's nanosecond timestamps are signed 64-bit; a later start cannot be expressed.
    if start_us * 1000 > _I64_MAX:
        raise _invalid("trace start time is out of range")
    trace["start_time"] = start_us * 1000

    clock = trace["clock"]
    if version == 1:
        # Version 1 (Dalvik) has one-byte thread ids and only the global clock.
        clock = trace["clock"] = "Global"
    elif clock == "Dual" and version == 2:
        raise _invalid("a dual-clock trace needs data version 3")
    fmt = "<BII" if version == 1 else "<HIII" if clock == "Dual" else "<HII"
    size = struct.calcsize(fmt)
    header_end = 16
    if version == 3:
        if len(binary) < 18:
            raise _invalid("trace data header is truncated")
        (record_size,) = struct.unpack_from("<H", binary, 16)
        header_end = 18
        if 0 < record_size < size:
            raise _invalid(f"record size {record_size} is too small for a {clock} clock trace")
        # The format allows wider records; bytes past the fields we know are skipped.
        if record_size > size:
            fmt += f"{record_size - size}x"
            size = record_size

    start = max(offset, header_end)
    records = binary[start:]
    if start > len(binary) or len(records) % size:
        raise _invalid("trace records are truncated")
    return _events(records, fmt, clock)


def _events(records: bytes, fmt: str, clock: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    add = events.append

    def event(thread_id: int, tmid: int, time: dict[str, Any]) -> None:
        action = tmid & 3
        if action == 3:
            raise _invalid(f"event {len(events)} has an unknown action")
        add({"action": _ACTIONS[action], "thread_id": thread_id, "method_id": tmid >> 2, "time": time})

    if clock == "Dual":
        for thread_id, tmid, cpu, wall in struct.iter_unpack(fmt, records):
            event(thread_id, tmid, {"Monotonic": {"cpu": _micros(cpu), "wall": _micros(wall)}})
        return events

    wrap: Callable[[_Duration], dict[str, Any]]
    if clock == "Global":
        wrap = lambda d: {"Global": d}  # noqa: E731
    elif clock == "Cpu":
        wrap = lambda d: {"Monotonic": {"cpu": d, "wall": None}}  # noqa: E731
    else:
        wrap = lambda d: {"Monotonic": {"cpu": None, "wall": d}}  # noqa: E731
    for thread_id, tmid, delta in struct.iter_unpack(fmt, records):
        event(thread_id, tmid, wrap(_micros(delta)))
    return events
