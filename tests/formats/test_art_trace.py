"""ART method-trace decoding: synthetic traces decoded exactly, real SDK traces checked."""

from __future__ import annotations

import base64
import contextlib
import json
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profd.formats.art_trace import decode_art_trace, decode_art_trace_base64
from profd.formats.errors import FormatError

ENTER, EXIT, UNWIND = 0, 1, 2
METHODS = (
    "0x0\tcom.example.App\tonCreate\t(Landroid/os/Bundle;)V\tApp.java",
    "0x4\tcom.example.App\trun\t(I)V\tApp.java\t42",
)

Record = tuple[int, int, int, tuple[int, ...]]


def encode(
    *,
    version: int = 3,
    clock: str = "dual",
    options: dict[str, object] | None = None,
    threads: Iterable[tuple[int, str]] = ((100, "main"),),
    methods: Iterable[str] = METHODS,
    records: Sequence[Record] = (),
    start_us: int = 1_000,
    record_size: int | None = None,
    offset: int = 32,
    text_version: int | None = None,
) -> bytes:
    """A trace as ART (version 2/3) or Dalvik (version 1) writes it.

    A record is (thread id, method index, action, times); times are (cpu, wall) for the
    dual clock and one delta otherwise, in µs.
    """
    header: dict[str, object] = {
        "data-file-overflow": "false",
        "clock": clock,
        "elapsed-time-usec": 2_000,
        "num-method-calls": len(records),
        "clock-call-overhead-nsec": 300,
        "vm": "art",
        "pid": 100,
    }
    header.update(options or {})
    lines = ["*version", str(text_version or version)]
    lines += [f"{key}={value}" for key, value in header.items()]
    lines += ["*threads", *(f"{tid}\t{name}" for tid, name in threads)]
    lines += ["*methods", *methods, "*end"]
    fmt = "<" + ("B" if version == 1 else "H") + "II" + ("I" if clock == "dual" and version == 3 else "")
    size = struct.calcsize(fmt) if record_size is None else record_size
    binary = b"SLOW" + struct.pack("<HHQ", version, offset, start_us)
    if version == 3:
        binary += struct.pack("<H", size)
    binary = binary.ljust(offset, b"\0")
    for tid, method, action, times in records:
        binary += struct.pack(fmt, tid, method << 2 | action, *times).ljust(size, b"\0")
    return ("\n".join(lines) + "\n").encode() + binary


def duration(micros: int) -> dict[str, int]:
    return {"secs": micros // 1_000_000, "nanos": micros % 1_000_000 * 1000}


EXPECTED_METHODS = [
    {
        "id": 0,
        "name": "onCreate",
        "class_name": "com.example.App",
        "signature": "(Landroid/os/Bundle;)V",
        "source_file": "App.java",
        "source_line": None,
    },
    {
        "id": 1,
        "name": "run",
        "class_name": "com.example.App",
        "signature": "(I)V",
        "source_file": "App.java",
        "source_line": 42,
    },
]


def test_dual_clock_trace_decodes_to_relays_shape() -> None:
    records = [
        (100, 0, ENTER, (0, 25_106)),
        (100, 1, ENTER, (7, 1_000_012)),
        (101, 1, ENTER, (3, 1_000_020)),
        (100, 1, EXIT, (9, 2_500_000)),
        (100, 0, UNWIND, (11, 2_600_000)),
    ]
    data = encode(
        threads=[(100, "main"), (101, "worker")],
        records=records,
        start_us=147_859_329_257,
        options={"elapsed-time-usec": 35_728, "clock-call-overhead-nsec": 1_000_000_456, "pid": 23047},
    )

    def event(action: str, tid: int, method: int, cpu: int, wall: int) -> dict[str, Any]:
        time = {"Monotonic": {"cpu": duration(cpu), "wall": duration(wall)}}
        return {"action": action, "thread_id": tid, "method_id": method, "time": time}

    assert decode_art_trace(data) == {
        "data_file_overflow": False,
        "clock": "Dual",
        "elapsed_time": {"secs": 0, "nanos": 35_728_000},
        "total_method_calls": 5,
        "clock_call_overhead": {"secs": 1, "nanos": 456},
        "vm": "Art",
        "start_time": 147_859_329_257_000,
        "pid": 23047,
        "gc_trace": None,
        "threads": [{"id": 100, "name": "main"}, {"id": 101, "name": "worker"}],
        "methods": EXPECTED_METHODS,
        "events": [
            event("Enter", 100, 0, 0, 25_106),
            event("Enter", 100, 1, 7, 1_000_012),
            event("Enter", 101, 1, 3, 1_000_020),
            event("Exit", 100, 1, 9, 2_500_000),
            event("Unwind", 100, 0, 11, 2_600_000),
        ],
    }


@pytest.mark.parametrize(
    ("version", "clock", "name", "wrap"),
    [
        (3, "wall", "Wall", lambda d: {"Monotonic": {"cpu": None, "wall": d}}),
        (2, "wall", "Wall", lambda d: {"Monotonic": {"cpu": None, "wall": d}}),
        (3, "thread-cpu", "Cpu", lambda d: {"Monotonic": {"cpu": d, "wall": None}}),
        (2, "thread-cpu", "Cpu", lambda d: {"Monotonic": {"cpu": d, "wall": None}}),
        (3, "global", "Global", lambda d: {"Global": d}),
        # Dalvik's version 1 has one-byte thread ids and always the global clock.
        (1, "global", "Global", lambda d: {"Global": d}),
    ],
)
def test_single_clock_traces(version: int, clock: str, name: str, wrap: Any) -> None:
    records = [(7, 1, ENTER, (1_500_000,)), (7, 1, EXIT, (2_000_001,))]
    trace = decode_art_trace(encode(version=version, clock=clock, threads=[(7, "main")], records=records))
    assert trace["clock"] == name
    assert trace["events"] == [
        {"action": "Enter", "thread_id": 7, "method_id": 1, "time": wrap({"secs": 1, "nanos": 500_000_000})},
        {"action": "Exit", "thread_id": 7, "method_id": 1, "time": wrap({"secs": 2, "nanos": 1000})},
    ]


def test_version_1_reports_global_clock_whatever_the_header_says() -> None:
    trace = decode_art_trace(encode(version=1, clock="wall", records=[(1, 0, ENTER, (5,))]))
    assert trace["clock"] == "Global"
    assert trace["events"][0]["time"] == {"Global": duration(5)}


def test_events_on_unknown_threads_and_methods_are_kept() -> None:
    records = [(100, 0, ENTER, (1, 1)), (9, 77, ENTER, (2, 2))]
    events = decode_art_trace(encode(records=records))["events"]
    assert [(e["thread_id"], e["method_id"]) for e in events] == [(100, 0), (9, 77)]


def test_wider_records_and_later_data_offset_are_skipped_over() -> None:
    records = [(100, 1, ENTER, (3, 4)), (100, 1, EXIT, (5, 6))]
    plain = decode_art_trace(encode(records=records))
    assert decode_art_trace(encode(records=records, record_size=20, offset=48)) == plain


def test_text_version_may_differ_from_binary_version() -> None:
    records = [(100, 1, ENTER, (3, 4))]
    mismatched = encode(records=records, text_version=2)
    assert decode_art_trace(mismatched) == decode_art_trace(encode(records=records))


def test_missing_header_keys_take_defaults_and_unknown_keys_are_ignored() -> None:
    data = (
        b"*version\n3\nclock=wall\nsome-future-key=1\nalloc-size=64\n*threads\n*methods\n*end\n"
        + b"SLOW"
        + struct.pack("<HHQH", 3, 32, 0, 10).ljust(28, b"\0")
    )
    assert decode_art_trace(data) == {
        "data_file_overflow": False,
        "clock": "Wall",
        "elapsed_time": {"secs": 0, "nanos": 0},
        "total_method_calls": 0,
        "clock_call_overhead": {"secs": 0, "nanos": 0},
        "vm": "Dalvik",
        "start_time": 0,
        "pid": None,
        "gc_trace": {"alloc_count": 0, "alloc_size": 64, "gc_count": 0},
        "threads": [],
        "methods": [],
        "events": [],
    }


def test_header_details() -> None:
    trace = decode_art_trace(
        encode(
            options={"data-file-overflow": "true", "vm": "dalvik", "alloc-count": 3, "gc-count": "0x10"},
            # Real tids can exceed 16 bits; records carry only the low 16.
            threads=[(70_000, "big\ttid"), (0x2A, "")],
            methods=["0x10\tA\tb\t()V", "0x14\tA\tc\t()V\t\t", "8\tA\td\t()V\tA.kt\t7"],
        )
    )
    assert trace["data_file_overflow"] is True
    assert trace["vm"] == "Dalvik"
    assert trace["gc_trace"] == {"alloc_count": 3, "alloc_size": 0, "gc_count": 16}
    assert trace["threads"] == [{"id": 70_000 & 0xFFFF, "name": "big\ttid"}, {"id": 42, "name": ""}]
    assert [(m["id"], m["source_file"], m["source_line"]) for m in trace["methods"]] == [
        (4, "", None),
        (5, "", None),
        (2, "A.kt", 7),
    ]


def _valid() -> bytes:
    return encode(records=[(100, 0, ENTER, (1, 2)), (100, 0, EXIT, (3, 4))])


def _header_with(option: str) -> bytes:
    return _valid().replace(b"vm=art\n", option.encode() + b"\n")


BAD_INPUTS = {
    "empty": b"",
    "not a trace": b"PK\x03\x04 zip file",
    "no end line": _valid().split(b"*end")[0],
    "bad magic": _valid().replace(b"SLOW", b"SLOX"),
    "truncated data header": _valid().split(b"SLOW")[0] + b"SLOW\x03\x00",
    "no record size": _valid().split(b"SLOW")[0] + b"SLOW" + struct.pack("<HHQ", 3, 32, 0),
    "truncated record": _valid()[:-1],
    "data offset past the end": encode(offset=64)[:-20],
    "unknown clock": _header_with("clock=tsc"),
    "unknown vm": _header_with("vm=hotspot"),
    "bad overflow flag": _header_with("data-file-overflow=maybe"),
    "line without =": _header_with("pid"),
    "signed number": _header_with("pid=-1"),
    "spaced number": _header_with("pid= 1"),
    "huge number": _header_with("num-method-calls=" + "9" * 30),
    "pid over 32 bits": _header_with("pid=4294967296"),
    "unknown section": _header_with("*frames"),
    "unsupported text version": _valid().replace(b"*version\n3\n", b"*version\n4\n"),
    "unsupported data version": _valid().replace(b"SLOW\x03", b"SLOW\x04"),
    "short method line": encode(methods=["0x0\tA\tb"]),
    "long method line": encode(methods=["0x0\tA\tb\t()V\tA.java\t1\textra"]),
    "method id not hex": encode(methods=["0xZZ\tA\tb\t()V\tA.java"]),
    "method id over 32 bits": encode(methods=["0x100000000\tA\tb\t()V\tA.java"]),
    "source line not a number": encode(methods=["0x0\tA\tb\t()V\tA.java\tten"]),
    "thread id not a number": encode(threads=[(100, "main")]).replace(b"100\tmain", b"t100\tmain"),
    "thread line without tab": encode(threads=[(100, "main")]).replace(b"100\tmain", b"100 main"),
    "record size too small": encode(record_size=10, records=[(100, 0, ENTER, (1, 2))]),
    "dual clock in version 2": encode(version=2, clock="dual"),
    "unknown action": encode(records=[(100, 0, 3, (1, 2))]),
    "header not utf-8": encode(threads=[(100, "main")]).replace(b"main", b"m\xffin"),
    "start time out of range": encode(start_us=2**63 // 1000 + 1),
}


@pytest.mark.parametrize("data", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_malformed_traces_raise_format_error(data: bytes) -> None:
    with pytest.raises(FormatError) as info:
        decode_art_trace(data)
    assert info.value.path == "$.sampled_profile"
    assert info.value.reason == "profiling_invalid_sampled_profile"


@pytest.mark.parametrize("name_length", [1, 2, 3])  # no, two and one padding characters
def test_base64_with_and_without_padding(name_length: int) -> None:
    data = encode(threads=[(100, "m" * name_length)], records=[(100, 0, ENTER, (1, 2))])
    padded = base64.b64encode(data).decode()
    assert (
        decode_art_trace_base64(padded)
        == decode_art_trace_base64(padded.rstrip("="))
        == decode_art_trace(data)
    )


@pytest.mark.parametrize(
    "text", ["not base64!", "QUJD\nREVG", "QUJDR", "QUJD==", "QUJD=", "QQ=", "QU=JD", "ÄÖÜ", "QUJD-_"]
)
def test_invalid_base64(text: str) -> None:
    with pytest.raises(FormatError) as info:
        decode_art_trace_base64(text)
    assert info.value.reason == "profiling_invalid_base64_value"
    assert info.value.path == "$.sampled_profile"


def test_valid_base64_of_a_non_trace() -> None:
    with pytest.raises(FormatError) as info:
        decode_art_trace_base64(base64.b64encode(b"hello").decode())
    assert info.value.reason == "profiling_invalid_sampled_profile"


SAMPLE = encode(
    threads=[(100, "main"), (101, "worker")],
    records=[
        (100, 0, ENTER, (1, 2)),
        (101, 1, ENTER, (3, 4)),
        (101, 1, EXIT, (5, 6)),
        (100, 0, UNWIND, (7, 8)),
    ],
)


def _decode_or_format_error(data: bytes) -> None:
    with contextlib.suppress(FormatError):
        decode_art_trace(data)


@given(st.integers(min_value=0, max_value=len(SAMPLE)))
def test_truncated_traces_only_raise_format_error(cut: int) -> None:
    _decode_or_format_error(SAMPLE[:cut])


@given(st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_garbled_traces_only_raise_format_error(changes: list[tuple[int, int]]) -> None:
    garbled = bytearray(SAMPLE)
    for index, value in changes:
        garbled[index] = value
    _decode_or_format_error(bytes(garbled))


@settings(max_examples=200)
@given(st.binary(max_size=200), st.sampled_from([b"", b"*version\n3\n", SAMPLE.split(b"SLOW")[0]]))
def test_random_bytes_only_raise_format_error(tail: bytes, prefix: bytes) -> None:
    _decode_or_format_error(prefix + tail)


@given(st.text(max_size=60))
def test_random_base64_text_only_raises_format_error(text: str) -> None:
    with contextlib.suppress(FormatError):
        decode_art_trace_base64(text)


# --- Real traces sent by Android SDKs (Relay's test fixtures) ----------------------------

from tests.conftest import SHARED  # noqa: E402

ANDROID = SHARED / "fixtures/upstream/getsentry/relay/relay-profiling/tests/fixtures/android"
REAL = [
    "legacy/valid.json",
    "legacy/roundtrip.json",
    "legacy/multiple_transactions.json",
    "legacy/roundtrip.rn.json",
    "chunk/valid.json",
    "chunk/valid-rn.json",
    "chunk/roundtrip.rn.json",
]
# The roundtrip trace's header lists no method line for these ids, yet 12 events (6
# enter/exit pairs on worker threads and main) name them: the ids fill exactly the gaps in
# 0..4016.  ART dropped their descriptions; the events are real and are kept.
UNDESCRIBED = {1116, 1823, 1926, 2094, 3658}


def _fixture(name: str) -> dict[str, Any]:
    path = ANDROID / name
    if not path.is_file():
        pytest.skip(f"reference fixtures not found at {path} (needs /work/shared next to the repo)")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _raw_header(text: str) -> tuple[dict[str, str], int]:
    """The header's key=value lines and the binary start time, read independently."""
    data = base64.b64decode(text + "=" * (-len(text) % 4))
    head, _, binary = data.partition(b"\n*end\n")
    options = dict(line.split("=", 1) for line in head.decode().split("\n") if "=" in line)
    assert binary[:4] == b"SLOW"
    return options, struct.unpack_from("<Q", binary, 8)[0]


def _ns(d: dict[str, int]) -> int:
    return d["secs"] * 1_000_000_000 + d["nanos"]


@pytest.mark.parametrize("name", REAL)
def test_real_sdk_traces(name: str) -> None:
    text = _fixture(name)["sampled_profile"]
    options, start_us = _raw_header(text)
    trace = decode_art_trace_base64(text)

    # Every fixture is a complete dual-clock trace: one record per counted call.
    assert options["data-file-overflow"] == "false"
    assert len(trace["events"]) == trace["total_method_calls"] == int(options["num-method-calls"])
    assert _ns(trace["elapsed_time"]) == int(options["elapsed-time-usec"]) * 1000
    assert trace["start_time"] == start_us * 1000
    assert trace["pid"] == int(options["pid"])
    assert (trace["clock"], trace["vm"]) == ("Dual", "Art")
    assert trace["threads"] and trace["methods"]

    thread_ids = {t["id"] for t in trace["threads"]}
    method_ids = {m["id"] for m in trace["methods"]}
    assert len(method_ids) == len(trace["methods"])
    assert {e["thread_id"] for e in trace["events"]} <= thread_ids
    undescribed = {e["method_id"] for e in trace["events"]} - method_ids
    assert undescribed == (UNDESCRIBED if "roundtrip.json" in name or "multiple" in name else set())

    # Both clocks only move forward on a thread, and wall time stays inside the recording.
    last: dict[int, tuple[int, int]] = {}
    for event in trace["events"]:
        now = (_ns(event["time"]["Monotonic"]["cpu"]), _ns(event["time"]["Monotonic"]["wall"]))
        before = last.get(event["thread_id"], (0, 0))
        assert now[0] >= before[0] and now[1] >= before[1]
        assert now[1] <= _ns(trace["elapsed_time"])
        last[event["thread_id"]] = now
    main = next(t["id"] for t in trace["threads"] if t["name"] == "main")
    assert main == trace["pid"]


def test_real_trace_has_the_keys_of_relays_expanded_fixture() -> None:
    relay = _fixture("legacy/remove_invalid_events.json")["profile"]
    ours = decode_art_trace_base64(_fixture("legacy/valid.json")["sampled_profile"])
    assert ours.keys() == relay.keys()
    assert ours["methods"][0].keys() == relay["methods"][0].keys()
    assert ours["threads"][0].keys() == relay["threads"][0].keys()
    for mine, theirs in zip(ours["events"][:3], relay["events"][:3], strict=True):
        assert mine.keys() == theirs.keys()
        assert mine["time"]["Monotonic"].keys() == theirs["time"]["Monotonic"].keys()
        assert mine["time"]["Monotonic"]["wall"].keys() == theirs["time"]["Monotonic"]["wall"].keys()
    for key in ("clock", "vm", "data_file_overflow", "gc_trace"):
        assert ours[key] == relay[key]
    assert type(ours["start_time"]) is type(relay["start_time"]) is int
