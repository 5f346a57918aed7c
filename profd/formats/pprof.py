"""Sample-format profiles as pprof files: a gzipped ``perftools.profiles.Profile`` protobuf.

pprof's format (google/pprof, ``proto/profile.proto``) is what ``go tool pprof``, Pyroscope,
Parca and Grafana read.  Samples point at locations, leaf first; locations at functions;
every string is an index into one table whose entry 0 is "".  The message classes are built
at import from a descriptor declared here, so there is no generated code and no protoc step,
and the field numbers below are the wire contract: they must match profile.proto exactly.

Sample timing is shared with the speedscope export (``thread_samples``, ``sample_durations``),
so the wall time of a stack is the same in both files.
"""

from __future__ import annotations

import bisect
import gzip
import statistics
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from profd.formats.speedscope import frame_name, sample_durations, thread_samples

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"int64": _F.TYPE_INT64, "uint64": _F.TYPE_UINT64, "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING}

# (field name, number, type, repeated) per message; a type that is not a scalar is a message
# of this file.  Profile fields from 15 on differ between pprof versions and profd writes none.
_MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
    "Profile": [
        ("sample_type", 1, "ValueType", True),
        ("sample", 2, "Sample", True),
        ("mapping", 3, "Mapping", True),
        ("location", 4, "Location", True),
        ("function", 5, "Function", True),
        ("string_table", 6, "string", True),
        ("drop_frames", 7, "int64", False),
        ("keep_frames", 8, "int64", False),
        ("time_nanos", 9, "int64", False),
        ("duration_nanos", 10, "int64", False),
        ("period_type", 11, "ValueType", False),
        ("period", 12, "int64", False),
        ("comment", 13, "int64", True),
        ("default_sample_type", 14, "int64", False),
    ],
    "ValueType": [("type", 1, "int64", False), ("unit", 2, "int64", False)],
    "Sample": [
        ("location_id", 1, "uint64", True),
        ("value", 2, "int64", True),
        ("label", 3, "Label", True),
    ],
    "Label": [
        ("key", 1, "int64", False),
        ("str", 2, "int64", False),
        ("num", 3, "int64", False),
        ("num_unit", 4, "int64", False),
    ],
    "Mapping": [
        ("id", 1, "uint64", False),
        ("memory_start", 2, "uint64", False),
        ("memory_limit", 3, "uint64", False),
        ("file_offset", 4, "uint64", False),
        ("filename", 5, "int64", False),
        ("build_id", 6, "int64", False),
        ("has_functions", 7, "bool", False),
        ("has_filenames", 8, "bool", False),
        ("has_line_numbers", 9, "bool", False),
        ("has_inline_frames", 10, "bool", False),
    ],
    "Location": [
        ("id", 1, "uint64", False),
        ("mapping_id", 2, "uint64", False),
        ("address", 3, "uint64", False),
        ("line", 4, "Line", True),
        ("is_folded", 5, "bool", False),
    ],
    "Line": [("function_id", 1, "uint64", False), ("line", 2, "int64", False)],
    "Function": [
        ("id", 1, "uint64", False),
        ("name", 2, "int64", False),
        ("system_name", 3, "int64", False),
        ("filename", 4, "int64", False),
        ("start_line", 5, "int64", False),
    ],
}

PACKAGE = "perftools.profiles"


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="profile.proto", package=PACKAGE, syntax="proto3")
    for message_name, fields in _MESSAGES.items():
        message = file.message_type.add(name=message_name)
        for name, number, kind, repeated in fields:
            field = message.field.add(
                name=name,
                number=number,
                label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
            )
            if kind in _SCALARS:
                field.type = _SCALARS[kind]
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{PACKAGE}.{kind}"
    return file


# A pool of our own: another library registering perftools.profiles in the default pool
# (with its own idea of the fields) cannot clash with ours.
_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file_descriptor())
Profile: Any = message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{PACKAGE}.Profile"))


class _Strings:
    """pprof's string table: each distinct string once, "" at index 0 as the format requires."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._index: dict[str, int] = {}
        self[""]

    def __getitem__(self, text: str) -> int:
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self._table)
            self._table.append(text)
        return found


def _address(value: Any) -> int | None:
    """An address as SDKs send it: "0x…" text or a number."""
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 0)
    except ValueError:
        return None


def _add_mappings(profile: dict[str, Any], message: Any, strings: _Strings) -> list[tuple[int, int, int]]:
    """One Mapping per loaded image with an address range; (start, end, id) sorted by start."""
    ranges = []
    for image in (profile.get("debug_meta") or {}).get("images") or []:
        start = _address(image.get("image_addr"))
        size = _address(image.get("image_size"))
        if start is None or not size:
            continue
        mapping = message.mapping.add(
            id=len(message.mapping) + 1,
            memory_start=start,
            memory_limit=start + size,
            filename=strings[str(image.get("code_file") or "")],
            build_id=strings[str(image.get("debug_id") or image.get("code_id") or "")],
            # Frames reach the export symbolicated (or as raw as they will ever be), so
            # pprof must not try to symbolize them again from these binaries.
            has_functions=True,
        )
        ranges.append((start, start + size, mapping.id))
    ranges.sort()
    return ranges


def _mapping_of(ranges: list[tuple[int, int, int]], address: int) -> int:
    at = bisect.bisect_right(ranges, (address, float("inf"))) - 1
    return ranges[at][2] if at >= 0 and address < ranges[at][1] else 0


def to_pprof(
    profile: dict[str, Any], time_nanos: int | None = None, duration_nanos: int | None = None
) -> bytes:
    """The profile as a gzipped pprof file (FormatError for profiles that are not sample-shaped).

    `time_nanos` and `duration_nanos` are the index's start and duration of the profile; by
    default they are read off the samples (a v1 profile's samples carry no wall clock, so its
    start is then 0).
    """
    trace = profile["profile"]
    threads = thread_samples(profile)
    message = Profile()
    strings = _Strings(message.string_table)
    # Index 0 is the count, as pprof's convention asks; the last is pprof's default view.
    message.sample_type.add(type=strings["samples"], unit=strings["count"])
    message.sample_type.add(type=strings["wall"], unit=strings["nanoseconds"])
    message.period_type.type = strings["wall"]
    message.period_type.unit = strings["nanoseconds"]

    ranges = _add_mappings(profile, message, strings)
    functions: dict[tuple[str, str, str], int] = {}
    # Location i + 1 is frame i: stacks index frames, so ids need no lookup table.
    for position, frame in enumerate(trace["frames"]):
        name = frame_name(frame)
        system_name = str(frame.get("raw_function") or frame.get("symbol") or name)
        filename = str(frame.get("abs_path") or frame.get("filename") or frame.get("package") or "")
        key = (name, system_name, filename)
        if key not in functions:
            functions[key] = len(functions) + 1
            message.function.add(
                id=functions[key],
                name=strings[name],
                system_name=strings[system_name],
                filename=strings[filename],
            )
        address = _address(frame.get("instruction_addr")) if frame.get("instruction_addr") else None
        location = message.location.add(id=position + 1)
        if address is not None:
            location.address = address
            location.mapping_id = _mapping_of(ranges, address)
        location.line.add(function_id=functions[key], line=int(frame.get("lineno") or 0))

    # One pprof Sample per (thread, stack), not per SDK sample: pprof has no per-sample
    # timestamps to keep, every reader sums equal stacks anyway, and the file then grows
    # with the number of distinct stacks rather than with the profile's length.
    names = {str(k): (v or {}).get("name") for k, v in (trace.get("thread_metadata") or {}).items()}
    gaps: list[int] = []
    for thread, samples in sorted(threads.items()):
        durations = sample_durations(samples)
        gaps += durations[:-1]
        totals: dict[int, list[int]] = {}
        for (_, stack_id), duration in zip(samples, durations, strict=True):
            total = totals.setdefault(stack_id, [0, 0])
            total[0] += 1
            total[1] += duration
        labels = [("thread_id", thread)] + ([("thread_name", names[thread])] if names.get(thread) else [])
        for stack_id, (count, wall) in totals.items():
            sample = message.sample.add(
                location_id=[frame + 1 for frame in trace["stacks"][stack_id]], value=[count, wall]
            )
            for key_name, value in labels:
                sample.label.add(key=strings[key_name], str=strings[str(value)])

    times = [time for samples in threads.values() for time, _ in samples]
    # Samples of v2 chunks carry the wall clock; v1 samples count from the profile's start.
    absolute = any("timestamp" in s for s in trace["samples"][:1])
    message.time_nanos = time_nanos if time_nanos is not None else (min(times) if times and absolute else 0)
    message.duration_nanos = (
        duration_nanos if duration_nanos is not None else max(times, default=0) - min(times, default=0)
    )
    positive = [gap for gap in gaps if gap > 0]
    message.period = int(statistics.median(positive)) if positive else 0
    return gzip.compress(message.SerializeToString(), mtime=0)
