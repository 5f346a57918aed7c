"""Relay's validation and expansion of profile items (spec B1-B6), rule by rule.

Every profile here is written by hand; the real upstream fixtures and SDK captures are
read from ../shared and only checked for the verdict Relay gives them.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profd.formats import FormatError, Kind, validate
from profd.ingest import Expanded, expand_profile
from profd.ingest.expand import transaction_metadata
from tests.conftest import SHARED, shared_file

RELAY = SHARED / "fixtures/upstream/getsentry/relay"
SDK = SHARED / "fixtures/sdk"

EVENT_ID = "c" * 32
TX_ID = "a" * 32
TRACE_ID = "b" * 32
CHUNK_ID = "d" * 32
PROFILER_ID = "e" * 32
NIL = "0" * 32
SECOND = 1_000_000_000

Doc = dict[str, Any]


# -- hand-made profiles -------------------------------------------------------------------


def s1(thread: int, stack: int, elapsed: int, **extra: Any) -> Doc:
    """A v1 sample the way SDKs send it: numbers as strings."""
    return {"thread_id": str(thread), "stack_id": stack, "elapsed_since_start_ns": str(elapsed), **extra}


def s2(thread: str, stack: int, timestamp: float) -> Doc:
    return {"thread_id": thread, "stack_id": stack, "timestamp": timestamp}


FRAMES = [{"function": "leaf", "module": "app"}, {"function": "root", "module": "app"}]
# Stack 2 is empty: a sample pointing at it is idle.
STACKS = [[0, 1], [1], []]


def v1(samples: list[Doc] | None = None, **top: Any) -> Doc:
    doc: Doc = {
        "version": "1",
        "platform": "python",
        "event_id": EVENT_ID,
        "timestamp": "2024-01-01T00:00:00.000Z",
        "device": {"architecture": "x86_64"},
        "os": {"name": "Linux", "version": "6.1"},
        "release": "app@1",
        "transactions": [
            {
                "id": TX_ID,
                "name": "checkout",
                "trace_id": TRACE_ID,
                "active_thread_id": "1",
                "relative_end_ns": "0",
            }
        ],
        "profile": {
            "frames": copy.deepcopy(FRAMES),
            "stacks": copy.deepcopy(STACKS),
            "samples": samples
            if samples is not None
            else [s1(1, 0, 0), s1(1, 1, 10_000_000), s1(1, 0, 20_000_000)],
            "thread_metadata": {"1": {"name": "main"}},
        },
    }
    doc.update(top)
    return doc


def cocoa_v1(architecture: str = "arm64e", **top: Any) -> Doc:
    doc = v1(platform="cocoa", **top)
    doc["device"] = {
        "architecture": architecture,
        "is_emulator": False,
        "locale": "en_US",
        "manufacturer": "Apple",
        "model": "iPhone14,3",
    }
    doc["os"] = {"name": "iOS", "version": "17.0", "build_number": "21A"}
    doc["profile"]["frames"] = [
        {"instruction_addr": "0xa722447ffffffffc"},
        {"instruction_addr": "0x0000000102adc700"},
    ]
    doc["debug_meta"] = {
        "images": [
            {
                "type": "macho",
                "debug_id": "32420279-25E2-34E6-8BC7-8A006A8F2425",
                "code_file": "/App",
                "image_addr": "0x000000010258c000",
                "image_size": 1720320,
                "image_vmaddr": "0x0000000100000000",
            }
        ]
    }
    doc["measurements"] = {
        "cpu_usage": {"unit": "percent", "values": [{"elapsed_since_start_ns": "5", "value": "12.5"}]}
    }
    return doc


def v2(samples: list[Doc] | None = None, **top: Any) -> Doc:
    doc: Doc = {
        "version": "2",
        "platform": "python",
        "chunk_id": CHUNK_ID,
        "profiler_id": PROFILER_ID,
        "release": "app@1",
        "client_sdk": {"name": "sentry.python", "version": "2.0.0"},
        "profile": {
            "frames": copy.deepcopy(FRAMES),
            "stacks": copy.deepcopy(STACKS),
            "samples": samples
            if samples is not None
            else [s2("1", 0, 100.0), s2("1", 1, 100.01), s2("1", 0, 100.02)],
            "thread_metadata": {"1": {"name": "main"}, "2": {"name": "idle"}},
        },
    }
    doc.update(top)
    return doc


def micros(us: int) -> Doc:
    return {"secs": us // 1_000_000, "nanos": us % 1_000_000 * 1000}


def event(action: str, thread: int, method: int, wall_us: int) -> Doc:
    return {
        "action": action,
        "thread_id": thread,
        "method_id": method,
        "time": {"Monotonic": {"cpu": micros(wall_us // 2), "wall": micros(wall_us)}},
    }


def trace(events: list[Doc] | None = None, elapsed_us: int = 3000) -> Doc:
    """An already-expanded ART trace (Relay's output shape)."""
    return {
        "clock": "Dual",
        "start_time": 1_000_000,
        "elapsed_time": micros(elapsed_us),
        "threads": [{"id": 1, "name": "main"}, {"id": 2, "name": "worker"}],
        "methods": [
            {"id": 0, "class_name": "a.B", "name": "run", "signature": "()V", "source_file": "B.java"},
            {"id": 1, "class_name": "a.C", "name": "call", "signature": "()V", "source_file": "C.java"},
        ],
        "events": events
        if events is not None
        else [
            event("Enter", 1, 0, 0),
            event("Enter", 1, 1, 1000),
            event("Exit", 1, 1, 2000),
            event("Exit", 1, 0, 3000),
        ],
    }


def android(**top: Any) -> Doc:
    doc: Doc = {
        "platform": "android",
        "profile_id": EVENT_ID,
        "android_api_level": 33,
        "device_cpu_frequencies": [2000],
        "device_is_emulator": False,
        "device_locale": "en_US",
        "device_manufacturer": "Google",
        "device_model": "Pixel",
        "device_os_name": "android",
        "device_os_version": "14",
        "device_physical_memory_bytes": "8000000000",
        "duration_ns": "999",
        "version_code": "1",
        "version_name": "1.0",
        "transaction_name": "MainActivity",
        "transaction_id": TX_ID,
        "trace_id": TRACE_ID,
        "profile": trace(),
    }
    doc.update(top)
    return doc


def android_chunk(**top: Any) -> Doc:
    doc: Doc = {
        "platform": "android",
        "chunk_id": CHUNK_ID,
        "profiler_id": PROFILER_ID,
        "release": "app@1",
        "client_sdk": {"name": "sentry.java.android", "version": "8.0.0"},
        "timestamp": 1_700_000_000.5,
        "profile": trace(),
    }
    doc.update(top)
    return doc


Record = tuple[int, int, str, int]  # thread, method, action, wall µs
ACTIONS = {"Enter": 0, "Exit": 1, "Unwind": 2}


def art_b64(records: Iterable[Record], elapsed_us: int) -> str:
    """A dual-clock ART method trace, base64 without padding as the Android SDK sends it."""
    header = (
        "*version\n3\ndata-file-overflow=false\nclock=dual\n"
        f"elapsed-time-usec={elapsed_us}\nnum-method-calls=2\nclock-call-overhead-nsec=100\nvm=art\npid=1\n"
        "*threads\n1\tmain\n2\tworker\n*methods\n"
        "0x0\ta.B\trun\t()V\tB.java\n0x4\ta.C\tcall\t()V\tC.java\t7\n*end\n"
    ).encode()
    binary = b"SLOW" + struct.pack("<HHQH", 3, 18, 5_000, 14)
    for thread, method, action, wall in records:
        binary += struct.pack("<HIII", thread, method << 2 | ACTIONS[action], wall // 2, wall)
    return base64.b64encode(header + binary).decode().rstrip("=")


RAW_RECORDS: list[Record] = [
    (1, 0, "Enter", 0),
    (1, 1, "Enter", 100),
    (1, 1, "Exit", 200),
    (1, 0, "Exit", 300),
]


def raw_android(records: Iterable[Record] = RAW_RECORDS, elapsed_us: int = 400, **top: Any) -> Doc:
    doc = android()
    del doc["profile"]
    doc["sampled_profile"] = art_b64(records, elapsed_us)
    doc.update(top)
    return doc


def raw_android_chunk(records: Iterable[Record] = RAW_RECORDS, elapsed_us: int = 400, **top: Any) -> Doc:
    doc = android_chunk()
    del doc["profile"]
    doc["sampled_profile"] = art_b64(records, elapsed_us)
    doc.update(top)
    return doc


def txn_event(**top: Any) -> Doc:
    event: Doc = {
        "type": "transaction",
        "event_id": TX_ID,
        "transaction": "GET /checkout",
        "release": "app@2",
        "dist": "42",
        "environment": "prod",
        "platform": "python",
        "start_timestamp": "2024-06-13T21:49:43.229317Z",
        "timestamp": 1718315383.417881,
        "contexts": {
            "trace": {
                "trace_id": TRACE_ID,
                "span_id": "878A623C873E70B6",
                "op": "http.server",
                "status": "ok",
            },
            "app": {"app_identifier": "com.example"},
        },
        "request": {"method": "GET"},
        "sdk": {"name": "sentry.python.django", "version": "2.75.0"},
        "tags": [["http.status_code", "200"], ["level", "info"]],
    }
    event.update(top)
    return event


def expand(doc: Doc, item_type: str = "profile", **kwargs: Any) -> Expanded:
    return expand_profile(json.dumps(doc).encode(), item_type=item_type, **kwargs)  # type: ignore[arg-type]


def rejected(doc: Doc | bytes, reason: str, item_type: str = "profile", **kwargs: Any) -> FormatError:
    payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    with pytest.raises(FormatError) as info:
        expand_profile(payload, item_type=item_type, **kwargs)  # type: ignore[arg-type]
    assert info.value.reason == reason, info.value
    return info.value


def samples_of(result: Expanded) -> list[Doc]:
    samples: list[Doc] = result.doc["profile"]["samples"]
    return samples


def assert_idempotent(result: Expanded, item_type: str = "profile") -> None:
    again = expand_profile(result.payload, item_type=item_type)  # type: ignore[arg-type]
    assert again.doc == result.doc
    validate(result.doc, result.kind)


# -- B2: which format ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "item_type", "kind"),
    [
        (v1(), "profile", Kind.SAMPLE_V1),
        (v1(platform="android"), "profile", Kind.SAMPLE_V1),
        (android(), "profile", Kind.ANDROID),
        (v2(), "profile_chunk", Kind.SAMPLE_V2),
        # Perfetto chunks come out of Relay as android sample chunks.
        (v2(platform="android"), "profile_chunk", Kind.SAMPLE_V2),
        (android_chunk(), "profile_chunk", Kind.ANDROID_CHUNK),
        # The Android SDK labels trace chunks version "2"; the trace decides.
        (raw_android_chunk(version="2"), "profile_chunk", Kind.ANDROID_CHUNK),
    ],
)
def test_detects_the_format(doc: Doc, item_type: str, kind: Kind) -> None:
    assert expand(doc, item_type).kind is kind


@pytest.mark.parametrize(
    ("doc", "item_type"),
    [
        (v1(version="2"), "profile"),
        (v1(version=None), "profile"),
        (v2(), "profile"),
        (v1(), "profile_chunk"),
        (v2(version="1", platform="android"), "profile_chunk"),
        (v2(version="3"), "profile_chunk"),
    ],
)
def test_unknown_formats_are_not_supported(doc: Doc, item_type: str) -> None:
    rejected(doc, "profiling_platform_not_supported", item_type)


@pytest.mark.parametrize(
    "payload", [b"{", b"[]", b'"x"', b"\xff\xfe", b'{"version": "1"}', b'{"platform": 3}']
)
def test_unparseable_payloads_are_invalid_json(payload: bytes) -> None:
    rejected(payload, "profiling_invalid_json")


def test_trailing_comma_is_invalid_json() -> None:
    rejected(json.dumps(v1()).encode()[:-1] + b",}", "profiling_invalid_json")


def test_item_platform_must_match_the_profile_type() -> None:
    # Relay compares the data category (ui/backend) the item header announced.
    rejected(v1(), "profiling_invalid_profile_type", item_platform="cocoa")
    rejected(android_chunk(), "profiling_invalid_profile_type", "profile_chunk", item_platform="python")
    assert expand(v1(), item_platform="python").platform == "python"
    assert expand(v1(), item_platform="node").platform == "python"


def test_unknown_item_type_is_rejected() -> None:
    rejected(v1(), "profiling_invalid_profile_type", "attachment")


def test_expanded_result_carries_routing_facts() -> None:
    result = expand(v1(event_id="C" * 8 + "-" + "c" * 4 + "-" + "c" * 4 + "-" + "c" * 4 + "-" + "c" * 12))
    assert (result.id, result.platform, result.profile_type, result.profiler_id) == (
        EVENT_ID,
        "python",
        "backend",
        None,
    )
    assert json.loads(result.payload) == result.doc
    chunk = expand(v2(), "profile_chunk")
    assert (chunk.id, chunk.profiler_id, chunk.duration_ns) == (CHUNK_ID, PROFILER_ID, 20_000_000)


# -- B3.1 sample v1 -----------------------------------------------------------------------


def test_v1_numbers_sent_as_strings_become_ints() -> None:
    result = expand(v1())
    assert samples_of(result)[1] == {"stack_id": 1, "thread_id": 1, "elapsed_since_start_ns": 10_000_000}
    assert result.doc["transaction"]["active_thread_id"] == 1
    assert_idempotent(result)


def test_v1_id_alias_and_hex_form() -> None:
    doc = v1(profile_id="C" * 32)
    del doc["event_id"]
    assert expand(doc).doc["event_id"] == EVENT_ID
    rejected(v1(event_id="not-a-uuid"), "profiling_invalid_json")


def test_v1_timestamp_is_required_and_normalized() -> None:
    assert expand(v1()).doc["timestamp"] == "2024-01-01T00:00:00Z"
    assert expand(v1(timestamp="2024-01-01T02:00:00.5+02:00")).doc["timestamp"] == "2024-01-01T00:00:00.500Z"
    assert (
        expand(v1(timestamp="2024-01-01T00:00:00.123456789Z")).doc["timestamp"]
        == "2024-01-01T00:00:00.123456789Z"
    )
    rejected(v1(timestamp="yesterday"), "profiling_invalid_json")
    rejected(v1(timestamp="2024-02-30T00:00:00Z"), "profiling_invalid_json")
    doc = v1()
    del doc["timestamp"]
    assert rejected(doc, "profiling_invalid_json").path == "$.timestamp"


def test_v1_empty_release_is_dropped() -> None:
    assert "release" not in expand(v1(release="")).doc


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("os", "build_number"),
        ("device", "is_emulator"),
        ("device", "locale"),
        ("device", "manufacturer"),
        ("device", "model"),
    ],
)
def test_v1_cocoa_needs_device_metadata(section: str, field: str) -> None:
    doc = cocoa_v1()
    del doc[section][field]
    error = rejected(doc, "profiling_invalid_profile_metadata")
    assert error.path == f"$.{section}.{field}"


def test_v1_first_of_transactions_becomes_the_transaction() -> None:
    doc = v1()
    doc["transactions"].append({"id": "f" * 32, "name": "second", "trace_id": TRACE_ID})
    result = expand(doc)
    assert result.doc["transaction"]["name"] == "checkout"
    assert "transactions" not in result.doc


def test_v1_singular_transaction_is_kept() -> None:
    doc = v1(transaction={"id": TX_ID, "name": "single", "trace_id": TRACE_ID, "active_thread_id": 7})
    assert expand(doc).doc["transaction"] == {
        "id": TX_ID,
        "name": "single",
        "trace_id": TRACE_ID,
        "active_thread_id": 7,
        "segment_id": "0000000000000000",  # no transaction event: the segment is unknown
    }


@pytest.mark.parametrize("transactions", [None, []])
def test_v1_without_transaction_is_rejected(transactions: list[Doc] | None) -> None:
    doc = v1(transactions=transactions)
    rejected(doc, "profiling_no_transaction_associated")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("id", NIL, "profiling_invalid_transaction_metadata"),
        ("trace_id", NIL, "profiling_invalid_transaction_metadata"),
        ("name", "", "profiling_invalid_transaction_metadata"),
        ("id", "nope", "profiling_invalid_json"),
        ("active_thread_id", "-1", "profiling_invalid_json"),
    ],
)
def test_v1_transaction_must_be_valid(field: str, value: str, reason: str) -> None:
    doc = v1()
    doc["transactions"][0][field] = value
    rejected(doc, reason)


def test_v1_samples_outside_the_transaction_are_dropped() -> None:
    doc = v1([s1(1, 0, t) for t in (0, 10, 20, 30, 40, 50)])
    doc["transactions"][0].update(relative_start_ns="10", relative_end_ns="40")
    assert [s["elapsed_since_start_ns"] for s in samples_of(expand(doc))] == [10, 20, 30, 40]
    # Without an end (0) there is no window.
    doc["transactions"][0].update(relative_start_ns="10", relative_end_ns="0")
    assert len(samples_of(expand(doc))) == 6


def test_v1_idle_edges_are_trimmed_per_thread() -> None:
    doc = v1(
        [
            s1(1, 2, 0),  # idle before thread 1 starts
            s1(2, 0, 0),
            s1(1, 0, 10),
            s1(2, 2, 10),  # idle between thread 2's active samples: kept
            s1(1, 2, 20),  # idle in the middle of thread 1: kept
            s1(1, 1, 30),
            s1(2, 0, 30),
            s1(1, 2, 40),  # idle after thread 1 ends
            s1(1, 9, 50),  # an unknown stack counts as idle at the edge
            s1(3, 2, 0),  # a thread that never ran
            s1(3, 2, 10),
        ]
    )
    kept = [(s["thread_id"], s["elapsed_since_start_ns"]) for s in samples_of(expand(doc))]
    assert kept == [(2, 0), (1, 10), (2, 10), (1, 20), (1, 30), (2, 30)]


def test_v1_threads_with_one_sample_are_removed() -> None:
    doc = v1([s1(1, 0, 0), s1(1, 1, 10), s1(2, 0, 5)])
    doc["profile"]["thread_metadata"]["2"] = {"name": "lonely"}
    result = expand(doc)
    assert {s["thread_id"] for s in samples_of(result)} == {1}
    assert result.doc["profile"]["thread_metadata"] == {"1": {"name": "main"}}


@pytest.mark.parametrize(
    "samples", [[], [s1(1, 0, 0)], [s1(1, 0, 0), s1(2, 0, 0)], [s1(1, 2, 0), s1(1, 2, 10)]]
)
def test_v1_not_enough_samples(samples: list[Doc]) -> None:
    rejected(v1(samples), "profiling_not_enough_samples")


def test_v1_malformed_sample_stack() -> None:
    error = rejected(v1([s1(1, 0, 0), s1(1, 7, 10), s1(1, 0, 20)]), "profiling_malformed_samples")
    assert error.path == "$.profile.samples[1].stack_id"


def test_v1_malformed_stack_frame() -> None:
    doc = v1()
    doc["profile"]["stacks"].append([0, 5])
    assert rejected(doc, "profiling_malformed_stacks").path == "$.profile.stacks[3][1]"


def test_v1_duration_cap_is_30_seconds() -> None:
    assert expand(v1([s1(1, 0, 0), s1(1, 1, 30 * SECOND)]))
    rejected(v1([s1(1, 0, 0), s1(1, 1, 30 * SECOND + 1)]), "profiling_duration_is_too_long")


def test_v1_duration_cap_uses_the_latest_sample_not_the_last_listed() -> None:
    # Relay only looks at the last sample in list order and would accept this profile;
    # we judge the latest sample, which is what the 30 s limit is about.
    rejected(v1([s1(1, 0, 0), s1(1, 1, 31 * SECOND), s1(1, 0, SECOND)]), "profiling_duration_is_too_long")


@pytest.mark.parametrize("architecture", ["arm64", "arm64e"])
def test_v1_cocoa_arm64_addresses_lose_pointer_auth_bits(architecture: str) -> None:
    frames = expand(cocoa_v1(architecture)).doc["profile"]["frames"]
    assert frames == [{"instruction_addr": "0xffffffffc"}, {"instruction_addr": "0x102adc700"}]


@pytest.mark.parametrize("doc", [cocoa_v1("x86_64"), v1(platform="rust", device={"architecture": "arm64e"})])
def test_v1_other_addresses_keep_their_bits(doc: Doc) -> None:
    doc["profile"]["frames"] = [{"instruction_addr": "0xA722447FFFFFFFFC"}, {"instruction_addr": "0x10"}]
    frames = expand(doc).doc["profile"]["frames"]
    assert frames == [{"instruction_addr": "0xa722447ffffffffc"}, {"instruction_addr": "0x10"}]


def test_v1_bad_address_is_invalid_json() -> None:
    doc = v1()
    doc["profile"]["frames"][0]["instruction_addr"] = "0xnothex"
    assert rejected(doc, "profiling_invalid_json").path == "$.profile.frames[0].instruction_addr"


def test_v1_frames_keep_relay_keys_and_fold_aliases() -> None:
    doc = v1()
    doc["profile"]["frames"] = [
        {"name": "f", "file": "a.py", "line": 3, "column": 4, "in_app": True, "data": {"symbolicated": True}},
        {
            "function": "g",
            "package": "p",
            "abs_path": "/a.py",
            "symbol": "_g",
            "sym_addr": "0x1",
            "status": "ok",
        },
    ]
    frames = expand(doc).doc["profile"]["frames"]
    assert frames == [
        {"function": "f", "filename": "a.py", "lineno": 3, "colno": 4, "in_app": True},
        {"function": "g", "package": "p", "abs_path": "/a.py"},
    ]


def test_v1_unreferenced_thread_and_queue_metadata_are_removed() -> None:
    q1, q2 = "0x0000000102adc700", "0x000000016d8fb180"
    doc = cocoa_v1()
    doc["profile"]["samples"] = [s1(1, 0, 0, queue_address=q1), s1(1, 1, 10, queue_address=q1)]
    doc["profile"]["thread_metadata"] = {"1": {"priority": 31}, "2": {}}
    doc["profile"]["queue_metadata"] = {q1: {"label": "main"}, q2: {"label": "network"}}
    trace_ = expand(doc).doc["profile"]
    assert trace_["thread_metadata"] == {"1": {"priority": 31}}
    assert trace_["queue_metadata"] == {q1: {"label": "main"}}


def test_v1_client_fields_that_belong_to_the_server_are_dropped() -> None:
    doc = v1(
        organization_id=1, project_id=2, retention_days=90, sampled=True, received=1, options={"dsn": "x"}
    )
    result = expand(doc)
    assert not {"organization_id", "project_id", "retention_days", "sampled", "received", "options"} & set(
        result.doc
    )


def test_v1_samples_with_out_of_range_numbers_are_invalid_json() -> None:
    rejected(v1([s1(1, 0, 0), s1(2**64, 0, 10)]), "profiling_invalid_json")
    rejected(v1([s1(1, 0, -5), s1(1, 0, 10)]), "profiling_invalid_json")


# -- B4: transaction metadata -------------------------------------------------------------


def test_v1_merges_the_transaction_event() -> None:
    doc = v1(release=None, dist="1", environment="dev")
    result = expand(doc, transaction=txn_event())
    out = result.doc
    assert out["transaction"]["name"] == "GET /checkout"
    assert out["transaction"]["segment_id"] == "878a623c873e70b6"
    assert (out["release"], out["dist"], out["environment"]) == ("app@2", "42", "prod")
    assert out["client_sdk"] == {"name": "sentry.python.django", "version": "2.75.0"}
    assert out["transaction_metadata"] == {
        "release": "app@2",
        "dist": "42",
        "environment": "prod",
        "transaction": "GET /checkout",
        "transaction.status": "ok",
        "transaction.op": "http.server",
        "http.method": "GET",
        # Relay holds event times as f64 seconds and truncates to nanoseconds.
        "transaction.start": "2024-06-13T21:49:43.229316949+00:00",
        "transaction.end": "2024-06-13T21:49:43.417881011+00:00",
        "app.identifier": "com.example",
        "segment_id": "878a623c873e70b6",
        "client_sdk.name": "sentry.python.django",
        "client_sdk.version": "2.75.0",
    }
    assert out["transaction_tags"] == {"http.status_code": "200", "level": "info"}
    assert_idempotent(result)


def test_v1_keeps_its_own_release() -> None:
    assert expand(v1(), transaction=txn_event()).doc["release"] == "app@1"


def test_metadata_defaults_and_tag_forms() -> None:
    metadata, tags = transaction_metadata(
        {"tags": {"a": "b", "n": 1, "bad": None}, "contexts": {"trace": {}}}
    )
    assert metadata == {"transaction.status": "unknown"}
    assert tags == {"a": "b", "n": "1"}
    assert transaction_metadata({"contexts": "nope", "tags": "nope", "timestamp": "x", "sdk": 3}) == (
        {"transaction.status": "unknown"},
        {},
    )


def test_event_that_is_not_an_object_is_rejected() -> None:
    rejected(v1(), "profiling_invalid_transaction_metadata", transaction=["not", "an", "event"])


def test_client_sdk_defaults_by_platform() -> None:
    assert expand(v1()).doc["client_sdk"] == {"name": "sentry.python", "version": ""}
    assert expand(v1(platform="node")).doc["client_sdk"] == {"name": "sentry.javascript.node", "version": ""}
    assert "client_sdk" not in expand(v1(platform="elixir")).doc
    own = {"name": "sentry.python", "version": "2.1.0"}
    assert expand(v1(client_sdk=own)).doc["client_sdk"] == own
    assert expand(v1(client_sdk=own), transaction=txn_event(sdk=None)).doc["client_sdk"] == own


def test_without_an_event_the_profile_keeps_its_metadata() -> None:
    doc = v1(transaction_metadata={"transaction": "x"}, transaction_tags={"k": "v"})
    out = expand(doc).doc
    assert (out["transaction_metadata"], out["transaction_tags"]) == ({"transaction": "x"}, {"k": "v"})


# -- B3.6 / B3.7: measurements and debug images -------------------------------------------


def test_measurements_accept_numeric_strings_and_unit_aliases() -> None:
    doc = v1(
        measurements={
            "screen_frame_rates": {"unit": "hz", "values": [{"elapsed_since_start_ns": "10", "value": "60"}]},
            "cpu_energy": {"unit": "nj", "values": [{"elapsed_since_start_ns": 20, "value": "1e3"}]},
            "frozen": {"unit": "ns", "values": []},
        }
    )
    assert expand(doc).doc["measurements"] == {
        "screen_frame_rates": {"unit": "hertz", "values": [{"elapsed_since_start_ns": 10, "value": 60.0}]},
        "cpu_energy": {"unit": "nanojoule", "values": [{"elapsed_since_start_ns": 20, "value": 1000.0}]},
        "frozen": {"unit": "nanosecond", "values": []},
    }


@pytest.mark.parametrize(
    "measurement",
    [
        {"unit": "parsec", "values": []},
        {"unit": "byte"},
        {"unit": "byte", "values": [{"value": 1}]},
        {"unit": "byte", "values": [{"elapsed_since_start_ns": "1", "value": "lots"}]},
        {"unit": "byte", "values": [{"elapsed_since_start_ns": "-1", "value": 1}]},
        "nope",
    ],
)
def test_bad_measurements_are_invalid_json(measurement: Any) -> None:
    rejected(v1(measurements={"m": measurement}), "profiling_invalid_json")


def test_chunk_measurements_are_timestamped() -> None:
    ok = {"m": {"unit": "percent", "values": [{"timestamp": "100.5", "value": 3}]}}
    assert expand(v2(measurements=ok), "profile_chunk").doc["measurements"]["m"]["values"] == [
        {"timestamp": 100.5, "value": 3.0}
    ]
    legacy = {"m": {"unit": "percent", "values": [{"elapsed_since_start_ns": 1, "value": 3}]}}
    rejected(v2(measurements=legacy), "profiling_invalid_json", "profile_chunk")


def test_debug_images_are_normalized() -> None:
    images = [
        {
            "type": "macho",
            "id": "32420279-25E2-34E6-8BC7-8A006A8F2425",
            "name": "App",
            "image_addr": "0x000000010258c000",
            "image_size": "1720320",
        },
        {"type": "symbolic", "debug_id": "3242027925E234E68BC78A006A8F24251a", "image_addr": "0x10"},
        {"type": "proguard", "build_id": "607A1D401D134360A2A2069A2E0068FB"},
        {"type": "pe_dotnet", "debug_id": "anything", "extra": 1},
    ]
    out = expand(v1(debug_meta={"images": images})).doc["debug_meta"]["images"]
    assert out == [
        {
            "type": "macho",
            "debug_id": "32420279-25e2-34e6-8bc7-8a006a8f2425",
            "code_file": "App",
            "image_addr": "0x10258c000",
            "image_size": 1720320,
        },
        {"type": "symbolic", "debug_id": "32420279-25e2-34e6-8bc7-8a006a8f2425-1a", "image_addr": "0x10"},
        {"type": "proguard", "uuid": "607a1d40-1d13-4360-a2a2-069a2e0068fb"},
        {"type": "pe_dotnet", "debug_id": "anything", "extra": 1},
    ]


@pytest.mark.parametrize(
    "image",
    [
        {"type": "macho", "debug_id": "zz", "image_addr": "0x1"},
        {"type": "macho", "image_addr": "0x1"},
        {
            "type": "macho",
            "debug_id": "32420279-25E2-34E6-8BC7-8A006A8F2425",
            "image_addr": "0x1",
            "image_size": "big",
        },
        {"type": "proguard", "uuid": "nope"},
        {"type": "sourcemap", "debug_id": "32420279-25E2-34E6-8BC7-8A006A8F2425"},
    ],
)
def test_bad_debug_images_are_invalid_json(image: Doc) -> None:
    rejected(v1(debug_meta={"images": [image]}), "profiling_invalid_json")


# -- B3.3 sample v2 -----------------------------------------------------------------------


def test_v2_threads_need_two_non_idle_samples() -> None:
    samples = [
        s2("1", 0, 1.0),
        s2("1", 1, 1.1),
        s2("2", 0, 1.0),
        s2("2", 2, 1.1),
        s2("2", 2, 1.2),
        s2("2", 9, 1.3),
    ]
    result = expand(v2(samples), "profile_chunk")
    assert {s["thread_id"] for s in samples_of(result)} == {"1"}
    assert result.doc["profile"]["thread_metadata"] == {"1": {"name": "main"}}
    assert_idempotent(result, "profile_chunk")


def test_v2_idle_samples_of_kept_threads_stay() -> None:
    samples = [s2("1", 0, 1.0), s2("1", 2, 1.1), s2("1", 1, 1.2)]
    assert len(samples_of(expand(v2(samples), "profile_chunk"))) == 3


@pytest.mark.parametrize("samples", [[], [s2("1", 0, 1.0)], [s2("1", 2, 1.0), s2("1", 2, 2.0)]])
def test_v2_not_enough_samples(samples: list[Doc]) -> None:
    rejected(v2(samples), "profiling_not_enough_samples", "profile_chunk")


def test_v2_malformed_references() -> None:
    rejected(
        v2([s2("1", 0, 1.0), s2("1", 1, 1.1), s2("1", 8, 1.2)]),
        "profiling_malformed_samples",
        "profile_chunk",
    )
    doc = v2()
    doc["profile"]["stacks"][0] = [0, -1]
    rejected(doc, "profiling_malformed_stacks", "profile_chunk")


def test_v2_samples_are_sorted_by_timestamp() -> None:
    samples = [s2("1", 0, 3.0), s2("1", 1, 1.0), s2("1", 0, 2.0)]
    assert [s["timestamp"] for s in samples_of(expand(v2(samples), "profile_chunk"))] == [1.0, 2.0, 3.0]


def test_v2_duration_cap_is_66_seconds() -> None:
    assert expand(v2([s2("1", 0, 100.0), s2("1", 1, 166.0)]), "profile_chunk")
    rejected(v2([s2("1", 0, 166.5), s2("1", 1, 100.0)]), "profiling_duration_is_too_long", "profile_chunk")


def test_v2_cocoa_addresses_lose_pointer_auth_bits_on_any_architecture() -> None:
    doc = v2(platform="cocoa")
    doc["profile"]["frames"] = [{"instruction_addr": "0xa722447ffffffffc"}, {"instruction_addr": "0x1"}]
    frames = expand(doc, "profile_chunk").doc["profile"]["frames"]
    assert frames == [{"instruction_addr": "0xffffffffc"}, {"instruction_addr": "0x1"}]


def test_v2_thread_ids_are_strings_and_timestamps_finite() -> None:
    samples: list[Doc] = [
        {"thread_id": 5, "stack_id": 0, "timestamp": "1.5"},
        {"thread_id": 5, "stack_id": 1, "timestamp": 2},
    ]
    assert [s["thread_id"] for s in samples_of(expand(v2(samples), "profile_chunk"))] == ["5", "5"]
    samples[0]["timestamp"] = "inf"
    rejected(v2(samples), "profiling_invalid_json", "profile_chunk")


def test_v2_ids_and_client_sdk() -> None:
    rejected(v2(chunk_id="x"), "profiling_invalid_json", "profile_chunk")
    doc = v2(platform="node")
    del doc["client_sdk"]
    assert expand(doc, "profile_chunk").doc["client_sdk"] == {"name": "sentry.javascript.node", "version": ""}


def test_v2_ignores_a_transaction_event() -> None:
    result = expand(v2(), "profile_chunk", transaction=txn_event())
    assert "transaction_metadata" not in result.doc and result.doc["release"] == "app@1"


# -- B3.2 legacy Android ------------------------------------------------------------------


def test_android_expanded_input_passes_through() -> None:
    result = expand(android())
    out = result.doc
    assert out["profile"]["events"] == trace()["events"]
    assert out["duration_ns"] == 3_000_000  # from the trace, not the SDK's "999"
    assert out["transaction"] == {
        "id": TX_ID,
        "name": "MainActivity",
        "trace_id": TRACE_ID,
        "active_thread_id": 0,
        "segment_id": "0000000000000000",
    }
    assert out["device_physical_memory_bytes"] == 8_000_000_000
    assert out["client_sdk"] == {"name": "sentry.java.android", "version": ""}
    assert_idempotent(result)


def test_android_raw_trace_is_decoded() -> None:
    result = expand(raw_android())
    out = result.doc
    assert "sampled_profile" not in out
    assert [m["name"] for m in out["profile"]["methods"]] == ["run", "call"]
    assert out["profile"]["events"][0] == {
        "action": "Enter",
        "thread_id": 1,
        "method_id": 0,
        "time": {"Monotonic": {"cpu": {"secs": 0, "nanos": 0}, "wall": {"secs": 0, "nanos": 0}}},
    }
    assert out["profile"]["start_time"] == 5_000_000
    assert out["duration_ns"] == 400_000
    assert_idempotent(result)


def test_android_bad_sampled_profile() -> None:
    rejected(raw_android(sampled_profile="***"), "profiling_invalid_base64_value")
    rejected(
        raw_android(sampled_profile=base64.b64encode(b"not a trace").decode()),
        "profiling_invalid_sampled_profile",
    )
    rejected(raw_android(sampled_profile=5), "profiling_invalid_json")


def test_android_first_of_transactions_wins() -> None:
    tx = {
        "id": "7D6DB784-355E-4D7D-BF98-671C69CBCC77",
        "name": "transaction1",
        "trace_id": TRACE_ID,
        "active_thread_id": 12345,
    }
    out = expand(android(transactions=[tx])).doc
    assert out["transaction"]["id"] == out["transaction_id"] == "7d6db784355e4d7dbf98671c69cbcc77"
    assert (out["transaction_name"], out["active_thread_id"]) == ("transaction1", 12345)
    assert "transactions" not in out


def test_android_without_transaction() -> None:
    rejected(android(transaction_name=""), "profiling_no_transaction_associated")
    rejected(android(transaction_id=None), "profiling_invalid_transaction_metadata")
    rejected(android(trace_id="nope"), "profiling_invalid_json")


def test_android_without_events() -> None:
    rejected(android(profile=trace(events=[])), "profiling_not_enough_samples")
    doc = android()
    del doc["profile"]
    rejected(doc, "profiling_not_enough_samples")


def test_android_threads_whose_clock_never_moves_lose_their_events() -> None:
    events = [*trace()["events"], event("Enter", 2, 0, 500), event("Enter", 2, 1, 500)]
    kept = expand(android(profile=trace(events))).doc["profile"]["events"]
    assert {e["thread_id"] for e in kept} == {1}
    frozen = [event("Enter", 1, 0, 7), event("Exit", 1, 0, 7), event("Enter", 2, 0, 9)]
    rejected(android(profile=trace(frozen)), "profiling_not_enough_samples")


def test_android_duration_limits() -> None:
    assert expand(android(profile=trace(elapsed_us=30_000_000)))
    rejected(android(profile=trace(elapsed_us=30_000_001)), "profiling_duration_is_too_long")
    rejected(android(profile=trace(elapsed_us=0)), "profiling_duration_is_zero")
    rejected(raw_android(elapsed_us=31_000_000), "profiling_duration_is_too_long")


def test_android_vroom_era_times() -> None:
    # Both clocks tagged, lower-case "global" empty; no elapsed_time: the last event bounds it.
    doc = android()
    for e in doc["profile"]["events"]:
        e["time"] = {"global": {}, "Monotonic": e["time"]["Monotonic"]}
    del doc["profile"]["elapsed_time"]
    assert expand(doc).doc["duration_ns"] == 3_000_000


def test_android_merges_the_event_and_overwrites_release() -> None:
    out = expand(android(release="app@1"), transaction=txn_event()).doc
    assert (out["release"], out["transaction_name"], out["transaction"]["name"]) == (
        "app@2",
        "GET /checkout",
        "GET /checkout",
    )
    assert out["transaction"]["segment_id"] == "878a623c873e70b6"
    assert out["transaction_metadata"]["transaction.op"] == "http.server"


def test_android_build_id_names_the_proguard_mapping() -> None:
    out = expand(android(build_id="607A1D401D134360A2A2069A2E0068FB")).doc
    assert out["debug_meta"] == {
        "images": [{"type": "proguard", "uuid": "607a1d40-1d13-4360-a2a2-069a2e0068fb"}]
    }
    rejected(android(build_id="not-a-uuid"), "invalid_build_id")
    # With debug images already there (React Native source maps) nothing is added or checked.
    sourcemap = {
        "type": "sourcemap",
        "code_file": "app:///index.bundle",
        "debug_id": "32420279-25E2-34E6-8BC7-8A006A8F2425",
    }
    out = expand(android(build_id="not-a-uuid", debug_meta={"images": [sourcemap]})).doc
    assert [i["type"] for i in out["debug_meta"]["images"]] == ["sourcemap"]


def test_android_js_profile_is_normalized_like_v1() -> None:
    js = {
        "frames": [{"function": "[root]"}, {"function": "render", "column": 4}],
        "stacks": [[1, 0], [0]],
        "samples": [s1(9, 0, 0), s1(9, 1, 5), s1(8, 0, 0)],
        "thread_metadata": {"9": {"name": "JavaScriptThread"}, "8": {}},
        "active_thread_id": "9",
    }
    out = expand(android(js_profile=js)).doc["js_profile"]
    assert out["samples"] == [
        {"stack_id": 0, "thread_id": 9, "elapsed_since_start_ns": 0},
        {"stack_id": 1, "thread_id": 9, "elapsed_since_start_ns": 5},
    ]
    assert out["frames"][1] == {"function": "render", "colno": 4}
    assert out["thread_metadata"] == {"9": {"name": "JavaScriptThread"}}
    js["samples"] = [s1(9, 0, 0)]
    assert rejected(android(js_profile=js), "profiling_not_enough_samples").path == "$.js_profile.samples"


def test_android_method_id_zero_is_written() -> None:
    doc = android()
    for e in doc["profile"]["events"]:
        if e["method_id"] == 0:
            del e["method_id"]
    events = expand(doc).doc["profile"]["events"]
    assert [e["method_id"] for e in events] == [0, 1, 1, 0]


# -- B3.4 Android chunks ------------------------------------------------------------------


def test_android_chunk_is_tagged_and_timed() -> None:
    result = expand(android_chunk(), "profile_chunk")
    assert result.doc["version"] == "2.android-trace"
    assert result.duration_ns == result.doc["duration_ns"] == 3_000_000
    assert_idempotent(result, "profile_chunk")


def test_android_chunk_raw_trace_and_66_second_limit() -> None:
    assert expand(raw_android_chunk(elapsed_us=40_000_000), "profile_chunk").duration_ns == 40 * SECOND
    rejected(
        android_chunk(profile=trace(elapsed_us=66_000_001)), "profiling_duration_is_too_long", "profile_chunk"
    )
    rejected(android_chunk(profile=trace(elapsed_us=0)), "profiling_duration_is_zero", "profile_chunk")


def test_android_chunk_js_profile_v2_and_v1_shapes() -> None:
    js2 = {"frames": [{"function": "f"}], "stacks": [[0]], "samples": [s2("7", 0, 2.0), s2("7", 0, 1.0)]}
    out = expand(android_chunk(js_profile=js2), "profile_chunk").doc["js_profile"]
    assert [s["timestamp"] for s in out["samples"]] == [1.0, 2.0]
    # Older React Native SDKs sent a v1-shaped JS profile inside chunks.
    js1 = {"frames": [{"function": "f"}], "stacks": [[0]], "samples": [s1(7, 0, 0), s1(7, 0, 10)]}
    out = expand(android_chunk(js_profile=js1), "profile_chunk").doc["js_profile"]
    assert out["samples"][1]["elapsed_since_start_ns"] == 10


def test_android_chunk_needs_ids() -> None:
    doc = android_chunk()
    del doc["chunk_id"]
    rejected(doc, "profiling_invalid_json", "profile_chunk")


# -- size ---------------------------------------------------------------------------------


def test_expanded_size_limit() -> None:
    result = expand(raw_android())
    assert expand(raw_android(), max_size=len(result.payload)).payload == result.payload
    rejected(raw_android(), "profiling_exceed_size_limit", max_size=len(result.payload) - 1)


# -- real files ---------------------------------------------------------------------------

RELAY_FIXTURES = "relay-profiling/tests/fixtures/"
INVALID = {
    RELAY_FIXTURES + "android/legacy/no_transaction.json": "profiling_invalid_json",  # trailing comma
    RELAY_FIXTURES + "android/legacy/remove_invalid_events.json": "profiling_not_enough_samples",
    # Byte-identical to the legacy file: a transaction profile shape, fed as one.
    RELAY_FIXTURES + "android/chunk/remove_invalid_events.json": "profiling_not_enough_samples",
    # No chunk start `timestamp`, which Relay requires (Android trace times count from it).
    RELAY_FIXTURES + "android/chunk/roundtrip.rn.json": "profiling_invalid_json",
}


def _real_files() -> list[Path]:
    if not RELAY.exists():
        return []
    return sorted(p for p in RELAY.rglob("*") if p.is_file()) + sorted(SDK.glob("profile-*.json"))


def _item_type(payload: bytes) -> str:
    try:
        doc = json.loads(payload)
    except ValueError:
        return "profile"
    return "profile_chunk" if "chunk_id" in doc or "profiler_id" in doc else "profile"


def _name(path: Path) -> str:
    return str(path.relative_to(RELAY if path.is_relative_to(RELAY) else SHARED))


@pytest.mark.parametrize("path", _real_files() or [None], ids=lambda p: _name(p) if p else "absent")
def test_real_files(path: Path | None) -> None:
    if path is None:
        pytest.skip(f"{RELAY} is not here: the reference fixtures live in ../shared")
    payload = path.read_bytes()
    item_type = _item_type(payload)
    name = _name(path)
    if name in INVALID:
        rejected(payload, INVALID[name], item_type)
        return
    result = expand_profile(payload, item_type=item_type)  # type: ignore[arg-type]
    validate(result.doc, result.kind)
    assert_idempotent(result, item_type)


def test_chunk_copy_of_remove_invalid_events_as_a_chunk_item() -> None:
    # Fed as the chunk item its directory suggests, it lacks chunk_id/profiler_id.
    path = shared_file(
        "fixtures/upstream/getsentry/relay/" + RELAY_FIXTURES + "android/chunk/remove_invalid_events.json"
    )
    rejected(path.read_bytes(), "profiling_invalid_json", "profile_chunk")


def test_duplicate_platform_key_last_value_wins() -> None:
    path = shared_file(
        "fixtures/upstream/getsentry/relay/" + RELAY_FIXTURES + "android/chunk/roundtrip.rn.json"
    )
    payload = path.read_bytes().replace(b"{", b'{"timestamp": 1727874243.9,', 1)  # it has none
    assert payload.count(b'"platform"') == 2
    result = expand_profile(payload, item_type="profile_chunk")
    assert (result.kind, result.platform) == (Kind.ANDROID_CHUNK, "android")
    assert result.doc["js_profile"]["samples"][0]["elapsed_since_start_ns"] == 0


def test_relay_v1_fixture_details() -> None:
    path = shared_file("fixtures/upstream/getsentry/relay/" + RELAY_FIXTURES + "sample/v1/segment_id.json")
    out = expand_profile(path.read_bytes()).doc
    assert out["transaction"]["segment_id"] == "bd2eb23da2beb459"
    assert out["profile"]["frames"][0]["instruction_addr"] == "0xffffffffc"
    assert out["profile"]["queue_metadata"] == {"0x0000000102adc700": {"label": "com.apple.main-thread"}}


def test_relay_android_fixture_details() -> None:
    path = shared_file(
        "fixtures/upstream/getsentry/relay/" + RELAY_FIXTURES + "android/legacy/multiple_transactions.json"
    )
    out = expand_profile(path.read_bytes()).doc
    assert (out["transaction_name"], out["transaction_id"], out["active_thread_id"]) == (
        "transaction1",
        "7d6db784355e4d7dbf98671c69cbcc77",
        12345,
    )
    assert out["debug_meta"]["images"] == [
        {"type": "proguard", "uuid": "607a1d40-1d13-4360-a2a2-069a2e0068fb"}
    ]


def test_sdk_python_transaction_with_its_event() -> None:
    profile = shared_file("fixtures/sdk/profile-python-transaction.json")
    event = json.loads(shared_file("fixtures/sdk/transaction-python.json").read_text())
    out = expand_profile(profile.read_bytes(), transaction=event, item_platform="python").doc
    sample = out["profile"]["samples"][0]
    assert all(isinstance(sample[k], int) for k in ("thread_id", "elapsed_since_start_ns"))
    tx = out["transaction"]
    assert (tx["active_thread_id"], tx["relative_end_ns"], tx["segment_id"]) == (
        140065747897216,
        1001819818,
        "905c19222226c8ab",
    )
    assert out["transaction_metadata"]["transaction.start"] == "2026-11-26T09:15:56.337560892+00:00"
    assert out["client_sdk"] == {"name": "sentry.python", "version": "2.75.0"}


def test_sdk_node9_singular_transaction() -> None:
    out = expand_profile(shared_file("fixtures/sdk/profile-node9-transaction.json").read_bytes()).doc
    assert out["transaction"]["active_thread_id"] == 0
    assert out["profile"]["samples"][0]["thread_id"] == 0
    assert not {"contexts", "sdkProcessingMetadata"} & set(out)


def test_relay_output_expands_to_itself() -> None:
    # A real Relay-normalised profile (the `profiles` topic example from sentry-kafka-schemas);
    # only the default client_sdk newer Relay adds is new.
    payload = shared_file("fixtures/sdk/kafka-profiles-example-payload.json").read_bytes()
    out = expand_profile(payload).doc
    assert out.pop("client_sdk") == {"name": "sentry.python", "version": ""}
    assert out == json.loads(payload)


@pytest.mark.parametrize("name", ["profile-python-chunk.json", "profile-node-chunk.json"])
def test_sdk_chunks(name: str) -> None:
    result = expand_profile(shared_file("fixtures/sdk/" + name).read_bytes(), item_type="profile_chunk")
    timestamps = [s["timestamp"] for s in samples_of(result)]
    assert timestamps == sorted(timestamps) and all(
        isinstance(s["thread_id"], str) for s in samples_of(result)
    )


# -- robustness ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
# Values that look like what belongs there, so mutations get past parsing more often.
plausible: st.SearchStrategy[Any] = st.sampled_from(
    [
        "1",
        "0",
        "-1",
        "0x10",
        "",
        "inf",
        "1e3",
        NIL,
        TX_ID,
        "2024-01-01T00:00:00Z",
        0,
        1,
        -1,
        2**64,
        1.5,
        [],
        {},
        [0],
        [[0]],
        None,
    ]
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: Callable[[], Doc]) -> Doc:
    doc = base()
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)[1:]
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "plausible", "delete"]))
        if action == "delete":
            del parent[path[-1]]
        else:
            # Deep copies: a drawn list must not end up inside itself, or in the next example.
            parent[path[-1]] = copy.deepcopy(draw(json_values if action == "replace" else plausible))
    return doc


BASES: list[tuple[Callable[[], Doc], str]] = [
    (v1, "profile"),
    (cocoa_v1, "profile"),
    (v2, "profile_chunk"),
    (
        lambda: android(js_profile={"frames": [{}], "stacks": [[0]], "samples": [s1(1, 0, 0), s1(1, 0, 9)]}),
        "profile",
    ),
    (android_chunk, "profile_chunk"),
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(BASES).flatmap(lambda b: st.tuples(mutated(b[0]), st.just(b[1]))),
    st.none() | mutated(txn_event) | json_values,
)
def test_mutations_only_raise_format_errors(case: tuple[Doc, str], event: Any) -> None:
    doc, item_type = case
    try:
        result = expand_profile(json.dumps(doc).encode(), item_type=item_type, transaction=event)  # type: ignore[arg-type]
    except FormatError as e:
        assert e.reason.startswith(("profiling_", "invalid_build_id"))
        return
    validate(result.doc, result.kind)
    assert_idempotent(result, item_type)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.integers(0, 400))
def test_byte_mutations_only_raise_format_errors(junk: bytes, at: int) -> None:
    payload = json.dumps(v1()).encode()
    payload = payload[:at] + junk + payload[at + len(junk) :]
    with contextlib.suppress(FormatError):
        expand_profile(payload)
