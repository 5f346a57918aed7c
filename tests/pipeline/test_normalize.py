from __future__ import annotations

from typing import Any

from profd.pipeline.normalize import normalize_profile, set_frames_platform
from profd.pipeline.react_native import needs_js_pass, unwrap_js_profile, wrap_js_profile


def ios_v1(**tags: str) -> dict[str, Any]:
    return {
        "version": "1",
        "platform": "cocoa",
        "device": {"architecture": "arm64e", "model": "iPhone14,3", "is_emulator": False},
        "os": {"name": "iOS", "version": "17.0", "build_number": "21A329"},
        "transaction_tags": tags,
    }


def android_legacy(**extra: Any) -> dict[str, Any]:
    return {
        "platform": "android",
        "device_model": "POCO F2 Pro",
        "device_os_name": "android",
        "device_is_emulator": False,
        "device_cpu_frequencies": [2841, 2419, 1804, 1804, 2419, 2419, 1804, 1804],
        "device_physical_memory_bytes": "8014073856",
        **extra,
    }


def test_retention_is_set_on_every_profile() -> None:
    profile: dict[str, Any] = {"platform": "python", "version": "2", "profiler_id": "x"}
    normalize_profile(profile, 30)
    assert profile == {"platform": "python", "version": "2", "profiler_id": "x", "retention_days": 30}


def test_device_class_comes_from_the_sdk_tag() -> None:
    profile = ios_v1(**{"device.class": "1"})
    normalize_profile(profile, 90)
    assert profile["device"]["classification"] == "low"
    assert profile["os"]["build_number"] == "21A329"
    profile = android_legacy(transaction_tags={"device.class": "2"})
    normalize_profile(profile, 90)
    assert profile["device_classification"] == "medium"


def test_unknown_tag_values_are_unknown() -> None:
    profile = ios_v1(**{"device.class": "9"})
    normalize_profile(profile, 90)
    assert profile["device"]["classification"] == "unknown"


def test_without_the_tag_the_hardware_decides() -> None:
    profile = ios_v1()
    normalize_profile(profile, 90)
    assert profile["device"]["classification"] == "high"
    profile = android_legacy()
    normalize_profile(profile, 90)
    assert profile["device_classification"] == "high"
    emulator = android_legacy(device_is_emulator=True)
    normalize_profile(emulator, 90)
    assert emulator["device_classification"] == "unclassified"


def test_a_classification_already_there_is_kept_without_a_tag() -> None:
    profile = android_legacy(device_classification="low")
    normalize_profile(profile, 90)
    assert profile["device_classification"] == "low"


def test_backend_platforms_and_chunks_are_not_classified() -> None:
    python: dict[str, Any] = {"platform": "python", "version": "1", "device": {"architecture": "x86_64"}}
    normalize_profile(python, 90)
    assert "classification" not in python["device"]
    chunk = android_legacy(profiler_id="a" * 32)
    normalize_profile(chunk, 90)
    assert "device_classification" not in chunk


def test_frames_without_a_platform_get_the_profiles() -> None:
    profile = {
        "platform": "javascript",
        "profile": {"frames": [{"function": "a"}, {"function": "b", "platform": "cocoa"}, {"function": "c"}]},
    }
    set_frames_platform(profile)
    assert [f["platform"] for f in profile["profile"]["frames"]] == ["javascript", "cocoa", "javascript"]
    android = {"platform": "android", "profile": {"methods": [{"name": "a"}], "events": []}}
    set_frames_platform(android)
    assert android["profile"]["methods"][0]["platform"] == "android"


def test_react_native_js_profile_is_wrapped_and_unwrapped() -> None:
    outer = {
        "platform": "android",
        "profile_id": "p" * 32,
        "js_profile": {"samples": [], "stacks": [], "frames": []},
        "debug_meta": {"images": []},
    }
    assert needs_js_pass(outer)
    wrapped = wrap_js_profile(outer)
    assert wrapped["platform"] == "javascript" and wrapped["version"] == "1"
    assert wrapped["debug_meta"] is outer["debug_meta"]
    assert wrapped["event_id"] == "p" * 32
    # Upstream indexes release and dist and fails profiles without them.
    assert wrapped["release"] is None and wrapped["dist"] is None
    wrapped["processed_by_symbolicator"] = True
    outer["js_profile"] = unwrap_js_profile(wrapped)
    assert outer["js_profile"] == {
        "profile": {"samples": [], "stacks": [], "frames": []},
        "processed_by_symbolicator": True,
    }
    # Processing the same profile again must not wrap it twice.
    assert not needs_js_pass(outer)
