from __future__ import annotations

from typing import Any

import pytest

from profd.pipeline.deobfuscate import (
    deobfuscate_profile,
    merge_jvm_frames,
    methods_to_jvm_frames,
    proguard_uuid,
    should_deobfuscate,
)
from profd.symbols.contract import EmptySymbolStore, JvmRequest, Scope


class JvmAnswer:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[JvmRequest] = []

    def symbolicate(self, scope: Scope, request: Any) -> Any:
        raise AssertionError

    def symbolicate_js(self, scope: Scope, request: Any) -> Any:
        raise AssertionError

    def symbolicate_jvm(self, scope: Scope, request: JvmRequest) -> Any:
        self.requests.append(request)
        return self.answer


def android(build_id: str | None, methods: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "platform": "android",
        "profile_id": "9bd24eb4fd814a008ddefd035d363570",
        "build_id": build_id,
        "transaction_metadata": {"app.identifier": "io.sentry.sample"},
        "profile": {"methods": methods, "events": []},
    }


def test_without_a_build_id_only_signatures_are_decoded() -> None:
    profile = android(
        "",
        [
            {"class_name": "a.b", "name": "c", "signature": "()V"},
            {"class_name": "a.b", "name": "d", "signature": "()Z"},
            {"name": "e"},
        ],
    )
    deobfuscate_profile(profile, JvmAnswer(None), project_id=1)
    assert [m.get("signature") for m in profile["profile"]["methods"]] == ["()", "(): boolean", None]
    assert profile["deobfuscated"] is True
    assert not should_deobfuscate(profile)


def test_inlined_methods_keep_the_outermost_frame_and_list_the_chain() -> None:
    method = {
        "class_name": "e.a.c",
        "name": "t",
        "signature": "()V",
        "source_file": "MainActivity.java",
        "source_line": 1,
        "id": 7,
    }
    frames = [
        {
            "index": 0,
            "module": "io.sentry.sample.MainActivity",
            "function": name,
            "lineno": line,
            "filename": "MainActivity.java",
            "signature": "()",
        }
        for name, line in (("onClickHandler", 40), ("foo", 44), ("bar", 54))
    ]
    profile = android("d748e578-b3d1-5be5-b0e5-a42e8c9bf8e0", [method])
    symbolicator = JvmAnswer({"status": "completed", "stacktraces": [{"frames": frames}]})
    deobfuscate_profile(profile, symbolicator, project_id=1)
    request = symbolicator.requests[0]
    assert request.modules == [{"uuid": "d748e578b3d15be5b0e5a42e8c9bf8e0", "type": "proguard"}]
    assert request.release_package == "io.sentry.sample"
    assert request.stacktraces[0]["frames"] == [
        {
            "function": "t",
            "index": 0,
            "module": "e.a.c",
            "signature": "()V",
            "lineno": 1,
            "filename": "MainActivity.java",
        }
    ]
    merged = profile["profile"]["methods"][0]
    assert (merged["name"], merged["source_line"], merged["class_name"]) == (
        "onClickHandler",
        40,
        "io.sentry.sample.MainActivity",
    )
    assert merged["data"] == {"deobfuscation_status": "deobfuscated"}
    assert [(f["name"], f["source_line"]) for f in merged["inline_frames"]] == [
        ("onClickHandler", 40),
        ("foo", 44),
        ("bar", 54),
    ]
    assert all(
        f["signature"] == "()" and f["source_file"] == "MainActivity.java" for f in merged["inline_frames"]
    )


def test_a_zero_line_does_not_overwrite_the_known_line() -> None:
    methods = [{"class_name": "a", "name": "b", "source_line": 12}]
    merge_jvm_frames([{"index": 0, "module": "A", "function": "B", "lineno": 0}], methods)
    assert methods[0]["source_line"] == 12 and methods[0]["name"] == "B"


def test_methods_become_jvm_frames_with_only_the_keys_they_have() -> None:
    methods = [
        {
            "name": "onCreate",
            "class_name": "com.example.MainActivity",
            "signature": "()V",
            "source_line": 42,
            "source_file": "MainActivity.java",
        },
        {"name": "run", "class_name": "java.lang.Thread"},
    ]
    assert methods_to_jvm_frames(methods) == [
        {
            "function": "onCreate",
            "index": 0,
            "module": "com.example.MainActivity",
            "signature": "()V",
            "lineno": 42,
            "filename": "MainActivity.java",
        },
        {"function": "run", "index": 1, "module": "java.lang.Thread"},
    ]


def test_missing_mapping_keeps_names_but_decodes_signatures() -> None:
    # Upstream leaves the descriptors raw too when the symbolicator cannot deobfuscate.
    profile = android(
        "6dc7fdb0-d2fb-4c8e-9d6b-bb1aa98929b1",
        [{"class_name": "org.a.b.g$a", "name": "a", "signature": "()Z", "source_line": 67}],
    )
    deobfuscate_profile(profile, EmptySymbolStore(), project_id=1)
    method = profile["profile"]["methods"][0]
    assert (method["class_name"], method["name"], method["signature"]) == ("org.a.b.g$a", "a", "(): boolean")
    assert "data" not in method


def test_frames_for_unknown_methods_are_an_error() -> None:
    with pytest.raises(ValueError, match="method index"):
        merge_jvm_frames([{"index": 3, "module": "a", "function": "b"}], [{"name": "x"}])


@pytest.mark.parametrize(
    ("build_id", "expected"),
    [
        (None, None),
        ("", None),
        ("not-a-uuid", None),
        ("6DC7FDB0-D2FB-4C8E-9D6B-BB1AA98929B1", "6dc7fdb0d2fb4c8e9d6bbb1aa98929b1"),
        (42, None),
    ],
)
def test_proguard_uuid(build_id: Any, expected: str | None) -> None:
    assert proguard_uuid(build_id) == expected


def test_profile_without_a_trace_is_left_alone() -> None:
    profile = {"platform": "android", "profile": {}}
    deobfuscate_profile(profile, JvmAnswer(None), project_id=1)
    assert "deobfuscated" not in profile
