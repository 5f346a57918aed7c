"""Normalize stage: retention and device class, the facts the task adds before storing.

Device class comes from the SDK's ``device.class`` transaction tag (``"1"``-``"3"``) as in
current Sentry; profiles without the tag (older SDKs) are classified from their hardware
as Sentry did before.  Frame platforms are filled in afterwards (`set_frames_platform`).
"""

from __future__ import annotations

from profd.pipeline.device import DeviceClass, class_from_tag, classify_device
from profd.symbols.contract import JsonObject

CLASSIFIED_PLATFORMS = frozenset({"cocoa", "android"})


def normalize_profile(profile: JsonObject, retention_days: int) -> None:
    profile["retention_days"] = retention_days
    if profile.get("platform") not in CLASSIFIED_PLATFORMS or profile.get("profiler_id") is not None:
        return
    if profile.get("version") == "1":
        device = profile.setdefault("device", {})
        classification = device_class(profile, device.get("classification"))
        if classification is not None:
            device["classification"] = classification.value
    elif profile.get("version") in (None, ""):
        classification = device_class(profile, profile.get("device_classification"))
        if classification is not None:
            profile["device_classification"] = classification.value


def device_class(profile: JsonObject, current: str | None) -> DeviceClass | None:
    tags = profile.get("transaction_tags") or {}
    from_tag = class_from_tag(tags.get("device.class"))
    if from_tag is not None:
        return from_tag
    if current:
        return None
    if profile.get("version") == "1":
        device = profile.get("device") or {}
        return classify_device(
            device.get("model"), (profile.get("os") or {}).get("name"), device.get("is_emulator")
        )
    return classify_device(
        profile.get("device_model"),
        profile.get("device_os_name"),
        profile.get("device_is_emulator"),
        profile.get("device_cpu_frequencies"),
        profile.get("device_physical_memory_bytes"),
    )


def set_frames_platform(profile: JsonObject) -> None:
    """Every frame (Android: method) without a platform gets the profile's."""
    platform = profile["platform"]
    trace = profile.get("profile") or {}
    # Android traces list methods; Android sample-v2 chunks have frames like any other.
    items = trace["methods"] if "methods" in trace else trace.get("frames", [])
    for item in items:
        if "platform" not in item:
            item["platform"] = platform
