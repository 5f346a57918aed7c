from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from profd.formats import FormatError
from profd.formats.pprof import Profile, to_pprof

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def v1_profile() -> dict[str, Any]:
    frames = [{"function": "main", "abs_path": "/app/main.py", "lineno": 3}]
    frames += [{"function": "work", "abs_path": "/app/work.py", "lineno": 10}]
    frames += [{"function": "work", "abs_path": "/app/work.py", "lineno": 12}]
    frames += [{"function": "sleep", "filename": "time"}]
    return {
        "version": "1",
        "platform": "python",
        "transaction": {"name": "job"},
        "profile": {
            "frames": frames,
            # Leaf first, as Sentry stores stacks.
            "stacks": [[0], [1, 0], [3, 2, 0]],
            "samples": [
                {"stack_id": 1, "thread_id": 1, "elapsed_since_start_ns": 10},
                {"stack_id": 2, "thread_id": 1, "elapsed_since_start_ns": 30},
                {"stack_id": 1, "thread_id": 1, "elapsed_since_start_ns": 20},
                {"stack_id": 1, "thread_id": 1, "elapsed_since_start_ns": 60},
                {"stack_id": 0, "thread_id": 2, "elapsed_since_start_ns": 15},
            ],
            "thread_metadata": {"1": {"name": "MainThread"}},
        },
    }


def v2_chunk() -> dict[str, Any]:
    return {
        "version": "2",
        "platform": "node",
        "chunk_id": "c" * 32,
        "debug_meta": {
            "images": [
                {"code_file": "/lib/libc.so", "debug_id": "abc", "image_addr": "0x1000", "image_size": 256}
            ]
        },
        "profile": {
            "frames": [{"function": "loop"}, {"instruction_addr": "0x1010"}],
            "stacks": [[1, 0], [0]],
            "samples": [
                {"stack_id": 0, "thread_id": "7", "timestamp": 100.0},
                {"stack_id": 1, "thread_id": "7", "timestamp": 100.01},
                {"stack_id": 0, "thread_id": "7", "timestamp": 100.02},
            ],
        },
    }


def decode(data: bytes) -> Any:
    assert data[:2] == b"\x1f\x8b"  # pprof files are gzipped on disk and over the wire
    return Profile.FromString(gzip.decompress(data))


def wire_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Top-level (field number, value) pairs read straight off the protobuf wire format.

    Independent of the descriptor that wrote the bytes, so a wrong field number there shows.
    """

    def varint(at: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = data[at]
            value |= (byte & 0x7F) << shift
            at, shift = at + 1, shift + 7
            if byte < 0x80:
                return value, at

    fields: list[tuple[int, int | bytes]] = []
    at = 0
    while at < len(data):
        tag, at = varint(at)
        if tag & 7 == 0:
            value, at = varint(at)
            fields.append((tag >> 3, value))
        else:
            assert tag & 7 == 2, f"unexpected wire type in tag {tag}"
            length, at = varint(at)
            fields.append((tag >> 3, data[at : at + length]))
            at += length
    return fields


def names_of(profile: Any, location_ids: list[int]) -> list[str]:
    locations = {loc.id: loc for loc in profile.location}
    functions = {f.id: f for f in profile.function}
    return [profile.string_table[functions[locations[i].line[0].function_id].name] for i in location_ids]


def test_v1_profile_as_pprof() -> None:
    profile = decode(to_pprof(v1_profile()))
    strings = list(profile.string_table)
    assert strings[0] == "" and len(strings) == len(set(strings))
    assert [(strings[t.type], strings[t.unit]) for t in profile.sample_type] == [
        ("samples", "count"),
        ("wall", "nanoseconds"),
    ]
    # Ids are 1-based (0 means "none" in pprof) and every reference resolves.
    assert [loc.id for loc in profile.location] == [1, 2, 3, 4]
    function_ids = {f.id for f in profile.function}
    assert 0 not in function_ids and len(function_ids) == len(profile.function)
    assert all(line.function_id in function_ids for loc in profile.location for line in loc.line)
    # Two lines of `work` are two locations but one function.
    assert sorted(strings[f.name] for f in profile.function) == ["main", "sleep", "work"]

    by_stack = {
        (dict((strings[lb.key], strings[lb.str]) for lb in s.label)["thread_id"], tuple(s.location_id)): list(
            s.value
        )
        for s in profile.sample
    }
    # Thread 1: stack 1 at 10, 20 and 60 ns, stack 2 at 30 ns; each lasts until the next sample.
    assert by_stack == {
        ("1", (2, 1)): [3, 10 + 10 + 0],
        ("1", (4, 3, 1)): [1, 30],
        ("2", (1,)): [1, 0],
    }
    assert sum(s.value[0] for s in profile.sample) == 5
    leaf_first = next(s for s in profile.sample if len(s.location_id) == 3)
    assert names_of(profile, list(leaf_first.location_id)) == ["sleep", "work", "main"]
    labels = {strings[lb.key]: strings[lb.str] for lb in leaf_first.label}
    assert labels == {"thread_id": "1", "thread_name": "MainThread"}
    assert (profile.time_nanos, profile.duration_nanos, profile.period) == (0, 50, 10)


def test_the_index_times_are_used_when_given() -> None:
    profile = decode(to_pprof(v1_profile(), time_nanos=1_700_000_000_000_000_000, duration_nanos=99))
    assert (profile.time_nanos, profile.duration_nanos) == (1_700_000_000_000_000_000, 99)


def test_v2_chunk_keeps_wall_clock_and_native_addresses() -> None:
    profile = decode(to_pprof(v2_chunk()))
    strings = profile.string_table
    assert abs(profile.time_nanos - 100_000_000_000) < 1000
    assert abs(profile.duration_nanos - 20_000_000) < 1000
    assert [s.value[0] for s in profile.sample] == [2, 1]
    (mapping,) = profile.mapping
    assert (mapping.id, mapping.memory_start, mapping.memory_limit) == (1, 0x1000, 0x1100)
    assert strings[mapping.filename] == "/lib/libc.so" and mapping.has_functions
    native = profile.location[1]
    assert (native.address, native.mapping_id) == (0x1010, 1)
    assert profile.location[0].mapping_id == 0
    # A frame with only an address is named by it, like the other exports do.
    assert names_of(profile, [2]) == ["0x1010"]


def test_field_numbers_match_profile_proto() -> None:
    data = gzip.decompress(to_pprof(v1_profile()))
    fields = wire_fields(data)
    numbers = {number for number, _ in fields}
    # sample_type, sample, location, function, string_table, duration_nanos, period_type, period;
    # time_nanos is 0 here, which proto3 leaves out.
    assert numbers == {1, 2, 4, 5, 6, 10, 11, 12}
    strings = [value for number, value in fields if number == 6]
    assert strings[:5] == [b"", b"samples", b"count", b"wall", b"nanoseconds"]
    assert dict(fields)[12] == 10 and dict(fields)[10] == 50
    # Sample: packed location ids (1) and values (2), then labels (3).
    first_sample = next(value for number, value in fields if number == 2)
    assert isinstance(first_sample, bytes)
    sample_fields = [number for number, _ in wire_fields(first_sample)]
    assert sample_fields[:2] == [1, 2] and set(sample_fields[2:]) == {3}


def test_example_profile_converts() -> None:
    profile = json.loads((EXAMPLES / "python-transaction.json").read_text())
    decoded = decode(to_pprof(profile))
    assert sum(s.value[0] for s in decoded.sample) == len(profile["profile"]["samples"])
    referenced = {i for s in decoded.sample for i in s.location_id}
    assert referenced <= {loc.id for loc in decoded.location}


def test_android_traces_are_refused() -> None:
    with pytest.raises(FormatError):
        to_pprof(json.loads((EXAMPLES / "android-transaction.json").read_text()))
