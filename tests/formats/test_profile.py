from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profd.formats import FormatError, Kind, decode_json, detect_kind, profile_event_id, validate
from tests.conftest import shared_file


def v1() -> dict[str, Any]:
    return {
        "version": "1",
        "platform": "python",
        "event_id": "41fed0925670468bb0457f61a74688ec",
        "device": {"architecture": "x86_64"},
        "os": {"name": "Linux", "version": "6.1"},
        "profile": {
            "frames": [{"function": "f"}],
            "stacks": [[0]],
            "samples": [{"stack_id": 0, "thread_id": "7", "elapsed_since_start_ns": "10"}],
        },
    }


@pytest.mark.parametrize(
    ("doc", "kind"),
    [
        ({"version": "1", "platform": "cocoa"}, Kind.SAMPLE_V1),
        ({"version": "2", "platform": "python", "profiler_id": "p"}, Kind.SAMPLE_V2),
        ({"version": "2", "platform": "android", "profiler_id": "p"}, Kind.SAMPLE_V2),
        ({"platform": "android", "profiler_id": "p"}, Kind.ANDROID_CHUNK),
        ({"version": "2.android-trace", "platform": "android", "profiler_id": "p"}, Kind.ANDROID_CHUNK),
        (
            {"version": "2", "platform": "android", "profiler_id": "p", "sampled_profile": "x"},
            Kind.ANDROID_CHUNK,
        ),
        ({"platform": "android"}, Kind.ANDROID),
    ],
)
def test_detect_kind(doc: dict[str, Any], kind: Kind) -> None:
    assert detect_kind(doc) is kind


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"platform": "cocoa"},
        {"version": "3"},
        {"version": "2", "profiler_id": "p", "platform": "cocoa", "sampled_profile": "x"},
    ],
)
def test_unsupported_shapes_are_named(doc: dict[str, Any]) -> None:
    with pytest.raises(FormatError) as error:
        detect_kind(doc)
    assert error.value.reason == "profiling_platform_not_supported"


def test_numbers_sent_as_strings_are_accepted() -> None:
    kind, typed = validate(v1())
    assert kind is Kind.SAMPLE_V1
    assert typed.profile.samples[0].thread_id == 7  # type: ignore[union-attr]


def test_errors_say_what_and_where() -> None:
    doc = v1()
    doc["profile"]["samples"][0]["stack_id"] = "x"
    with pytest.raises(FormatError) as error:
        validate(doc)
    assert error.value.path == "$.profile.samples[0].stack_id"
    assert "int" in error.value.message
    assert str(error.value).endswith("- at $.profile.samples[0].stack_id")


def test_missing_required_fields_are_named() -> None:
    doc = v1()
    del doc["os"]
    with pytest.raises(FormatError, match="missing required field `os`"):
        validate(doc)


def test_ids_must_be_uuids() -> None:
    doc = v1()
    doc["event_id"] = "../../../etc/passwd"
    with pytest.raises(FormatError) as error:
        validate(doc)
    assert error.value.path == "$.event_id"


def test_transaction_profiles_need_an_id() -> None:
    doc = v1()
    del doc["event_id"]
    with pytest.raises(FormatError, match="event_id or profile_id"):
        validate(doc)


def test_decode_json_wants_an_object() -> None:
    assert decode_json(b'{"a": 1}') == {"a": 1}
    for bad in (b"[]", b"1", b"", b"{", b"\xff"):
        with pytest.raises(FormatError) as error:
            decode_json(bad)
        assert error.value.reason == "profiling_invalid_json"


def test_event_id_prefers_chunk_then_profile_then_event() -> None:
    assert profile_event_id({"event_id": "e", "profile_id": "p", "chunk_id": "c"}) == "c"
    assert profile_event_id({"event_id": "e", "profile_id": "p"}) == "p"
    assert profile_event_id({"event_id": "e"}) == "e"
    assert profile_event_id({}) is None


def test_android_method_ids_are_unique() -> None:
    doc = {
        "platform": "android",
        "profile_id": "9bd24eb4fd814a008ddefd035d363570",
        "profile": {"methods": [{"id": 1}, {"id": 1}], "events": []},
    }
    with pytest.raises(FormatError, match="duplicate method id"):
        validate(doc)


@pytest.mark.parametrize(
    ("relative", "kind"),
    [
        ("fixtures/sdk/kafka-profiles-example-payload.json", Kind.SAMPLE_V1),
        ("fixtures/sdk/profile-python-chunk.json", Kind.SAMPLE_V2),
        ("fixtures/sdk/profile-node-chunk.json", Kind.SAMPLE_V2),
        ("fixtures/upstream/getsentry/vroomrs/tests/fixtures/android/profile/valid.json", Kind.ANDROID),
        ("fixtures/upstream/getsentry/vroomrs/tests/fixtures/android/chunk/valid.json", Kind.ANDROID_CHUNK),
        ("fixtures/upstream/getsentry/vroomrs/tests/fixtures/sample/v2/valid_android.json", Kind.SAMPLE_V2),
    ],
)
def test_real_profiles_validate(relative: str, kind: Kind) -> None:
    assert validate(decode_json(shared_file(relative).read_bytes()))[0] is kind


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    path=st.lists(
        st.sampled_from(["profile", "samples", "stacks", "frames", 0, "stack_id", "device", "os"]),
        min_size=1,
        max_size=4,
    ),
    value=json_values,
)
def test_any_mutation_gives_a_format_error_or_passes(path: list[Any], value: Any) -> None:
    doc: Any = v1()
    target = doc
    for step in path[:-1]:
        try:
            target = target[step]
        except (KeyError, IndexError, TypeError):
            return
    try:
        target[path[-1]] = value
    except (IndexError, TypeError):
        return
    try:
        kind, _ = validate(json.loads(json.dumps(doc)))
    except FormatError as error:
        assert error.reason.startswith("profiling_") and error.path.startswith("$")
    else:
        assert kind is Kind.SAMPLE_V1


def test_invalid_utf8_is_a_format_error() -> None:
    with pytest.raises(FormatError):
        decode_json(b'{"platform": "\xff"}')
    with pytest.raises(FormatError):
        decode_json(b"\x9a")
