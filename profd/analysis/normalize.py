"""vroom's normalization of a processed profile, before it is stored and analysed.

Frames get their platform, status and in_app flag; the frames a runtime adds under the
user's code are trimmed (dyld's callers of ``main`` on cocoa, ``<string>:<module>`` on
python); idle samples between two active ones get the stack their neighbours share, so
time spent waiting inside a function still counts for it; Android methods are classified
as application or system.  Normalizing twice changes nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from profd.analysis.frames import (
    Frame,
    is_android_application,
    is_application,
    is_symbolicated,
    module_or_package,
)
from profd.formats import Kind

Profile = dict[str, Any]

# How far from the root `main` may sit for the frames below it to be dyld's.
_MAIN_SEARCH_DEPTH = 10

# Frames Android's runtime adds to sampled native stacks; they say nothing about the app.
_ANDROID_SYSTEM_PATHS = ("system/", "vendor/", "apex/")
_ANDROID_SYSTEM_MAPPINGS = ("[vdso]", "[stack]")
_ANDROID_SYSTEM_MODULES = (
    "java.",
    "javax.",
    "kotlin.",
    "kotlinx.",
    "android.",
    "com.android.",
    "dalvik.",
    "libcore.",
    "sun.",
    "jdk.",
    "io.sentry.",
)


def normalize(profile: Profile, kind: Kind) -> None:
    if kind is Kind.SAMPLE_V1:
        normalize_frames(profile)
        if profile["platform"] == "cocoa":
            trim_cocoa_stacks(profile["profile"])
        if profile["platform"] == "python":
            trim_python_stacks(profile["profile"])
        replace_idle_stacks(profile["profile"])
    elif kind is Kind.SAMPLE_V2:
        if profile["platform"] == "android":
            normalize_android_frames(profile["profile"])
        normalize_frames(profile)
        if profile["platform"] == "python":
            trim_python_stacks(profile["profile"])
    elif kind is Kind.ANDROID_CHUNK:
        normalize_android_methods(profile)
    elif kind is Kind.ANDROID:
        normalize_android_methods(profile)
        js_profile = profile.get("js_profile")
        if js_profile and isinstance(js_profile.get("profile"), dict):
            normalize_frames({"platform": "javascript", "profile": js_profile["profile"]})
        if profile.get("build_id"):
            images = profile.setdefault("debug_meta", {}).setdefault("images", [])
            image = {"type": "proguard", "uuid": profile["build_id"]}
            # Ingest (Relay) may have listed the mapping already; vroom appends regardless.
            if image not in images:
                images.append(image)
            profile["build_id"] = ""


def normalize_frames(profile: Profile) -> None:
    platform = profile["platform"]
    for frame in profile["profile"]["frames"]:
        status = (frame.get("data") or {}).get("symbolicator_status")
        if status:
            frame["status"] = status
        if not frame.get("platform"):
            frame["platform"] = platform
        # An SDK's own verdict stands for its own frames; frames of another platform in a
        # mixed (React Native) profile are judged by the rules.
        if frame.get("in_app") is None or frame["platform"] != platform:
            frame["in_app"] = is_application(frame, frame["platform"])


def trim_cocoa_stacks(trace: dict[str, Any]) -> None:
    frames: list[Frame] = trace["frames"]
    main = next((i for i, frame in enumerate(frames) if frame.get("function") == "main"), None)
    if main is None:
        return
    for s, stack in enumerate(trace["stacks"]):
        tail = max(0, len(stack) - _MAIN_SEARCH_DEPTH)
        position = next((p for p in range(len(stack) - 1, tail - 1, -1) if stack[p] == main), None)
        if position is None or position == len(stack) - 1:
            continue
        callers = [index for index in stack[position + 1 :] if is_symbolicated(frames[index])]
        trace["stacks"][s] = stack[: position + 1] + callers


def trim_python_stacks(trace: dict[str, Any]) -> None:
    frames: list[Frame] = trace["frames"]
    entry = None
    for i, frame in enumerate(frames):
        if frame.get("filename") == "<string>" and frame.get("function") == "<module>":
            entry = i
    if entry is None:
        return
    for s, stack in enumerate(trace["stacks"]):
        if stack and stack[-1] == entry:
            trace["stacks"][s] = stack[:-1]


def frame_id(frame: Frame) -> str:
    """vroom's frame identity: file, function, line and address."""
    text = "{}:{}:{}:{}".format(
        frame.get("filename") or "",
        frame.get("function") or "",
        frame.get("lineno") or 0,
        frame.get("instruction_addr") or "",
    )
    return hashlib.md5(text.encode()).hexdigest()


def replace_idle_stacks(trace: dict[str, Any]) -> None:
    samples: list[dict[str, Any]] = trace["samples"]
    stacks: list[list[int]] = trace["stacks"]
    frames: list[Frame] = trace["frames"]
    by_thread: dict[int, list[int]] = {}
    for i, sample in enumerate(samples):
        by_thread.setdefault(int(sample["thread_id"]), []).append(i)
    for thread_id in sorted(by_thread):
        previous_active: int | None = None
        idle_run: list[int] = []
        for i in by_thread[thread_id]:
            sample = samples[i]
            if stacks[sample["stack_id"]]:
                if previous_active is not None and idle_run:
                    common = _common_root(
                        stacks[samples[previous_active]["stack_id"]], stacks[sample["stack_id"]], frames
                    )
                    if common:
                        stacks.append(common)
                        for idle in idle_run:
                            samples[idle]["stack_id"] = len(stacks) - 1
                            samples[idle].pop("state", None)
                previous_active, idle_run = i, []
            else:
                sample["state"] = "idle"
                idle_run.append(i)


def _common_root(a: list[int], b: list[int], frames: list[Frame]) -> list[int]:
    """The frames two leaf-first stacks share from the root end (as indices of `a`)."""
    shared = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x != y and frame_id(frames[x]) != frame_id(frames[y]):
            break
        shared += 1
    return a[len(a) - shared :] if shared else []


def normalize_android_methods(profile: Profile) -> None:
    # vroomrs keeps an SDK's verdict and judges the rest by the system package list alone;
    # vroom (Go) preferred the app identifier.  profd follows vroomrs, as Sentry does now.
    for method in profile["profile"].get("methods") or []:
        for target in [method, *(method.get("inline_frames") or [])]:
            if target.get("in_app") is None and (target.get("data") or {}).get("orig_in_app") is None:
                target["in_app"] = is_android_application(target.get("class_name") or "", None)


def normalize_android_frames(trace: dict[str, Any]) -> None:
    """Android sample-v2 chunks mix Java and native frames: classify and drop ART's own."""
    frames: list[Frame] = trace["frames"]
    synthetic = set()
    for i, frame in enumerate(frames):
        package = frame.get("package") or ""
        if package.endswith("libart.so") or (package.startswith("<anonymous") and not frame.get("function")):
            synthetic.add(i)
        elif frame.get("in_app") is None and _is_android_system_frame(frame):
            frame["in_app"] = False
    if synthetic:
        trace["stacks"] = [[i for i in stack if i not in synthetic] for stack in trace["stacks"]]


def _is_android_system_frame(frame: Frame) -> bool:
    package = (frame.get("package") or "").lstrip("/")
    if package.startswith(_ANDROID_SYSTEM_PATHS) or package in _ANDROID_SYSTEM_MAPPINGS:
        return True
    if package.startswith("[anon:dalvik-"):
        return True
    name = module_or_package(frame) if frame.get("module") else frame.get("function") or ""
    return name.startswith(_ANDROID_SYSTEM_MODULES)
