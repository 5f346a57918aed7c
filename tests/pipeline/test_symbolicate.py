from __future__ import annotations

import copy
from typing import Any

import pytest

from profd.pipeline.symbolicate import (
    debug_images_for,
    interpret_response,
    prepare_frames,
    profile_platforms,
    should_symbolicate,
    symbolicate_profile,
)
from profd.pipeline.symbolicator_results import merge_image, merge_sample_results
from profd.symbols.contract import EmptySymbolStore, JsRequest, NativeRequest, Scope

JsonObject = dict[str, Any]


class Scripted:
    """A symbolicator answering with hand-made responses, recording what it was asked."""

    def __init__(self, native: Any = None, js: Any = None) -> None:
        self.native, self.js = native, js
        self.requests: list[Any] = []

    def symbolicate(self, scope: Scope, request: NativeRequest) -> Any:
        self.requests.append(copy.deepcopy(request))
        return self.native(request) if callable(self.native) else self.native

    def symbolicate_js(self, scope: Scope, request: JsRequest) -> Any:
        self.requests.append(copy.deepcopy(request))
        return self.js(request) if callable(self.js) else self.js

    def symbolicate_jvm(self, scope: Scope, request: Any) -> Any:
        raise AssertionError("not a JVM profile")


def sample_profile(
    platform: str, frames: list[JsonObject], stacks: list[list[int]], images: Any = None
) -> JsonObject:
    return {
        "version": "1",
        "platform": platform,
        "event_id": "41fed0925670468bb0457f61a74688ec",
        "debug_meta": {"images": images if images is not None else [{"type": "macho", "debug_id": "d" * 32}]},
        "profile": {
            "frames": frames,
            "stacks": stacks,
            "samples": [
                {"stack_id": i, "thread_id": 1, "elapsed_since_start_ns": i} for i in range(len(stacks))
            ],
        },
    }


def echo(request: NativeRequest | JsRequest) -> JsonObject:
    frames = [dict(frame, original_index=i) for i, frame in enumerate(request.stacktraces[0]["frames"])]
    return {"status": "completed", "stacktraces": [{"frames": frames}], "modules": request.modules}


def test_leaf_frames_get_their_own_unadjusted_copy_per_stack() -> None:
    addrs = ["0xdeadbeef", "0xbeefdead", "0xfeedface"]
    profile = sample_profile("cocoa", [{"instruction_addr": a} for a in addrs], [[1, 0], [0, 1, 2]])
    _, stacktraces, frames_sent = prepare_frames(profile, "cocoa")
    assert profile["profile"]["stacks"] == [[3, 0], [4, 1, 2]]
    assert frames_sent == set()
    assert stacktraces[0]["frames"] == [
        {"instruction_addr": "0xdeadbeef"},
        {"instruction_addr": "0xbeefdead"},
        {"instruction_addr": "0xfeedface"},
        {"instruction_addr": "0xbeefdead", "adjust_instruction_addr": False},
        {"instruction_addr": "0xdeadbeef", "adjust_instruction_addr": False},
    ]
    # The profile's own list is what was sent, so it grew too.
    assert stacktraces[0]["frames"] is profile["profile"]["frames"]


def test_rust_inlined_frames_expand_the_stack_callee_first() -> None:
    raw = [{"instruction_addr": a} for a in ("0x55bd050e168d", "0x89bf050e178a", "0x88ad050d167e")]
    profile = sample_profile("rust", raw, [[0, 1, 2]])
    returned = [
        {"function": "C_inline_1", "original_index": 0},
        {"function": "C", "original_index": 0},
        {"function": "B", "original_index": 1},
        {"function": "A_inline_1", "original_index": 2},
        {"function": "A_inline_2", "original_index": 2},
        {"function": "A", "original_index": 2},
    ]
    merge_sample_results(profile, [{"frames": returned}], set(), "rust")
    assert [f["function"] for f in profile["profile"]["frames"]] == [f["function"] for f in returned]
    assert profile["profile"]["stacks"] == [[0, 1, 2, 3, 4, 5]]
    assert all("platform" not in f for f in profile["profile"]["frames"])


def test_rust_signal_handler_and_unnamed_bottom_frames_are_cut() -> None:
    names = ["perf_signal_handler", "sigtramp", "work", "main", "", "start"]
    profile = sample_profile("rust", [{"instruction_addr": hex(i)} for i in range(6)], [[0, 1, 2, 3, 4, 5]])
    returned = [{"function": n, "original_index": i} for i, n in enumerate(names)]
    merge_sample_results(profile, [{"frames": returned}], set(), "rust")
    assert profile["profile"]["stacks"] == [[2, 3]]


def test_cocoa_sentinel_bottom_frames_are_cut() -> None:
    profile = sample_profile(
        "cocoa",
        [{"instruction_addr": a} for a in ("0x1", "0x2", "0x3", "0xffffffffc")],
        [[0, 1, 2, 3], [0, 1]],
    )
    merge_sample_results(profile, [{"frames": echo_frames(profile)}], set(), "cocoa")
    assert profile["profile"]["stacks"] == [[0, 1], [0, 1]]


def echo_frames(profile: JsonObject) -> list[JsonObject]:
    return [dict(f, original_index=i) for i, f in enumerate(profile["profile"]["frames"])]


def test_js_frames_without_lineno_are_not_sent() -> None:
    frames = [
        {"abs_path": "http://x/a.js", "lineno": 1, "function": "A"},
        {"abs_path": "http://x/b.js", "function": "B"},
        {"abs_path": "[native code]", "lineno": 3},
        {"function": "D"},
    ]
    profile = sample_profile("javascript", frames, [[0, 1, 2, 3]], images=[])
    _, stacktraces, frames_sent = prepare_frames(profile, "javascript")
    assert frames_sent == {0}
    assert stacktraces == [{"frames": [frames[0]]}]
    assert profile["profile"]["stacks"] == [[0, 1, 2, 3]]  # no leaf copies in a JS pass


@pytest.mark.parametrize(
    ("abs_path", "sent"),
    [
        ("/srv/app.js", True),
        ("app:///main.js", True),
        ("webpack:///x.js", True),
        ("C:\\app\\x.js", True),
        ("node:internal/timers", False),
        ("internal/process.js", False),
    ],
)
def test_node_frames_need_a_resolvable_path(abs_path: str, sent: bool) -> None:
    profile = sample_profile("node", [{"abs_path": abs_path, "lineno": 1}], [[0]], images=[])
    assert prepare_frames(profile, "node")[2] == ({0} if sent else set())


def test_js_example_with_nothing_sent_keeps_unsent_frames() -> None:
    frames = [{"abs_path": "a", "function": n} for n in "ABC"] + [{"function": "D"}]
    profile = sample_profile("javascript", frames, [[0, 1, 2, 3]], images=[])
    returned = [{"function": f"{n}'", "original_index": i} for i, n in enumerate("ABC")]
    merge_sample_results(profile, [{"frames": returned}], set(), "javascript")
    assert profile["profile"]["stacks"] == [[0, 1, 2, 3]]
    # Upstream replaces the list wholesale, dropping D and leaving index 3 dangling.
    assert [f["function"] for f in profile["profile"]["frames"]] == ["A'", "B'", "C'", "D"]


def test_partial_send_maps_stack_indices_through_the_sent_list() -> None:
    # Frame 0 is not sent, frame 1 is; its answer inlines a callee.  Upstream would apply
    # the answer's original_index 0 to raw frame 0 and point stacks into the returned list.
    frames = [{"function": "native"}, {"abs_path": "http://x/a.js", "lineno": 9, "function": "min"}]
    profile = sample_profile("javascript", frames, [[1, 0]], images=[])
    returned = [{"function": "inner", "original_index": 0}, {"function": "outer", "original_index": 0}]
    merge_sample_results(profile, [{"frames": returned}], {1}, "javascript")
    names = [f["function"] for f in profile["profile"]["frames"]]
    assert names == ["native", "inner", "outer"]
    assert profile["profile"]["stacks"] == [[1, 2, 0]]
    assert [f.get("platform") for f in profile["profile"]["frames"]] == [None, "javascript", "javascript"]


def test_answers_for_frames_never_sent_fail_the_pass() -> None:
    profile = sample_profile("cocoa", [{"instruction_addr": "0x1"}], [[0]])
    with pytest.raises(ValueError, match="never sent"):
        merge_sample_results(profile, [{"frames": [{"original_index": 7}]}], set(), "cocoa")


def test_react_native_ios_gets_a_js_pass_then_a_cocoa_pass() -> None:
    frames = [
        {"abs_path": "app:///index.bundle", "lineno": 4, "function": "render"},
        {"platform": "cocoa", "instruction_addr": "0x1000"},
        {"platform": "cocoa", "instruction_addr": "0x2000"},
    ]
    images = [
        {"type": "sourcemap", "code_file": "app:///index.bundle"},
        {"type": "macho", "debug_id": "d" * 32},
    ]
    profile = sample_profile("javascript", frames, [[1, 2, 0]], images=images)
    assert profile_platforms(profile) == ["javascript", "cocoa"]
    symbolicator = Scripted(native=echo, js=echo)
    symbolicate_profile(profile, symbolicator, project_id=1)
    js_request, native_request = symbolicator.requests
    assert js_request.modules == [images[0]]
    assert [f["function"] for f in js_request.stacktraces[0]["frames"]] == ["render"]
    # The cocoa pass sends the cocoa frames plus a leaf copy of the stack's cocoa leaf.
    sent = native_request.stacktraces[0]["frames"]
    assert [f["instruction_addr"] for f in sent] == ["0x1000", "0x2000", "0x1000"]
    assert sent[-1]["adjust_instruction_addr"] is False
    assert native_request.modules == [images[1]]
    assert profile["debug_meta"]["images"] == images
    assert profile["processed_by_symbolicator"] is True
    assert profile["profile"]["stacks"] == [[3, 2, 0]]


def test_untyped_images_are_skipped_not_fatal() -> None:
    # Upstream indexes image["type"] in the JS pass and fails the whole profile.
    images = [{"code_file": "x"}, {"type": "sourcemap", "code_file": "a.js"}]
    assert debug_images_for(images, "javascript") == [images[1]]
    assert debug_images_for([{"type": "macho"}, {"type": "elf", "code_id": "1"}], "cocoa") == []


def test_profile_without_debug_meta_is_left_alone() -> None:
    profile = sample_profile("cocoa", [{"instruction_addr": "0x1"}], [[0]])
    del profile["debug_meta"]
    symbolicate_profile(profile, Scripted(), project_id=1)
    assert "processed_by_symbolicator" not in profile
    assert should_symbolicate(profile)


def test_symbolicated_profiles_are_not_symbolicated_twice() -> None:
    profile = sample_profile("cocoa", [{"instruction_addr": "0x1"}], [[0]])
    symbolicate_profile(profile, Scripted(native=echo), project_id=1)
    assert not should_symbolicate(profile)
    assert not should_symbolicate({"platform": "python"})


def test_module_count_mismatch_is_an_error() -> None:
    profile = sample_profile("cocoa", [{"instruction_addr": "0x1"}], [[0]])
    answer = {"status": "completed", "modules": [], "stacktraces": [{"frames": []}]}
    with pytest.raises(ValueError, match="modules"):
        symbolicate_profile(profile, Scripted(native=answer), project_id=1)


@pytest.mark.parametrize(
    ("response", "success", "error"),
    [
        (None, False, {"type": "native_internal_failure"}),
        ({}, False, {"type": "native_internal_failure"}),
        (
            {"status": "failed", "message": "boom"},
            False,
            {"type": "native_symbolicator_failed", "status": "failed", "message": "boom"},
        ),
        ({"status": "pending"}, False, {"status": "pending", "type": "native_internal_failure"}),
        ({"status": "completed"}, True, None),
    ],
)
def test_symbolicator_answers(response: Any, success: bool, error: Any) -> None:
    profile: JsonObject = {}
    modules, stacktraces = [{"m": 1}], [{"frames": []}]
    assert interpret_response(profile, response, modules, stacktraces) == (modules, stacktraces, success)
    assert profile.get("symbolicator_error") == error


def test_failed_symbolication_keeps_raw_frames_and_leaf_marks() -> None:
    profile = sample_profile("cocoa", [{"instruction_addr": "0x1"}, {"instruction_addr": "0x2"}], [[0, 1]])
    symbolicate_profile(profile, Scripted(native={"status": "failed", "message": "down"}), project_id=1)
    assert profile["processed_by_symbolicator"] is True
    assert profile["profile"]["stacks"] == [[2, 1]]
    assert profile["profile"]["frames"][2] == {"instruction_addr": "0x1", "adjust_instruction_addr": False}
    assert profile["symbolicator_error"]["message"] == "down"


def test_merge_image_copies_fields_and_records_missing_debug_files() -> None:
    profile: JsonObject = {}
    image = {"type": "macho", "code_file": "/private/var/containers/App.app/App", "debug_id": "abc"}
    merge_image(
        image,
        {
            "debug_status": "missing",
            "arch": "unknown",
            "type": "unknown",
            "candidates": None,
            "features": {"has_symbols": False},
        },
        profile,
    )
    assert image["debug_status"] == "missing" and image["type"] == "macho" and "arch" not in image
    assert image["features"] == {"has_symbols": False} and "candidates" not in image
    assert profile["errors"][0]["type"] == "native_missing_dsym"
    assert profile["errors"][0]["image_path"] == image["code_file"]
    assert profile["_metrics"] == {"flag.processing.fatal": True}


@pytest.mark.parametrize(
    ("status", "code_file", "error", "metrics"),
    [
        ("found", "/app/App", None, {}),
        ("missing", "/usr/lib/system/libsystem_c.dylib", None, {}),
        ("missing", "", None, {}),
        ("missing", "/App.app/Frameworks/libswiftCore.dylib", "native_optionally_bundled_dsym", {}),
        ("malformed", "/app/App", "native_bad_dsym", {"flag.processing.fatal": True}),
        ("unsupported", "/app/App", None, {"flag.processing.error": True}),
        ("too_large", "/app/App", None, {"flag.processing.error": True}),
    ],
)
def test_image_statuses(status: str, code_file: str, error: str | None, metrics: JsonObject) -> None:
    profile: JsonObject = {}
    merge_image({"code_file": code_file, "type": "macho"}, {"debug_status": status}, profile)
    assert [e["type"] for e in profile.get("errors", [])] == ([error] if error else [])
    assert profile.get("_metrics", {}) == metrics


def test_empty_symbol_store_marks_images_missing_and_leaves_frames_raw() -> None:
    images = [
        {
            "type": "elf",
            "debug_id": "d" * 32,
            "code_file": "/srv/app",
            "image_addr": "0x1000",
            "image_size": 4096,
        }
    ]
    profile = sample_profile(
        "rust", [{"instruction_addr": "0x1800"}, {"instruction_addr": "0x9000"}], [[0, 1]], images=images
    )
    symbolicate_profile(profile, EmptySymbolStore(), project_id=1)
    frames = profile["profile"]["frames"]
    assert [f["status"] for f in frames] == ["missing", "unknown_image", "missing"]
    assert [f["instruction_addr"] for f in frames] == ["0x1800", "0x9000", "0x1800"]
    assert images[0]["debug_status"] == "missing"
    assert profile["errors"][0]["type"] == "native_missing_dsym"
