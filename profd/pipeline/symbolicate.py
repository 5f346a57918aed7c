"""Symbolicate stage: native addresses and minified JS positions become function names.

One pass per platform in the profile (a React Native iOS profile gets a JS pass, then a
cocoa pass).  Each pass narrows ``debug_meta.images`` to that platform's images, prepares
the frames Symbolicator's contract expects, calls the symbolicator and merges what comes
back (`profd.pipeline.symbolicator_results`).  Profilers capture stacks from suspended
threads, so only leaf frames hold exact instruction addresses: each stack gets its own copy
of its leaf frame marked ``adjust_instruction_addr: false``.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from profd.formats import profile_event_id as event_id
from profd.pipeline.symbolicator_results import merge_image, merge_sample_results
from profd.symbols.contract import (
    JsonObject,
    JsRequest,
    NativeRequest,
    Scope,
    SymbolicationTimeout,
    Symbolicator,
)

log = logging.getLogger(__name__)

JS_PLATFORMS = frozenset({"javascript", "node"})
SHOULD_SYMBOLICATE = frozenset({"cocoa", "rust"}) | JS_PLATFORMS
NATIVE_IMAGE_TYPES = frozenset({"apple", "symbolic", "elf", "macho", "pe", "pe_dotnet", "wasm"})

# Node frames worth a source-map lookup: absolute paths and app:/webpack:/drive-letter URLs.
_NODE_PATH = re.compile(r"^((app|webpack|[a-zA-Z]):|/)")


def should_symbolicate(profile: JsonObject) -> bool:
    return profile.get("platform") in SHOULD_SYMBOLICATE and not profile.get("processed_by_symbolicator")


def symbolicate_profile(profile: JsonObject, symbolicator: Symbolicator, project_id: int) -> None:
    """Run every pass; raises on anything unexpected (the task turns that into an outcome)."""
    debug_meta = profile.get("debug_meta")
    if not debug_meta:
        log.debug("profile %s has no debug_meta, nothing to symbolicate", event_id(profile))
        return
    original_images = debug_meta.get("images") or []
    platforms = profile_platforms(profile)
    # Lists are chosen before any pass runs and hold the original image objects, so the
    # fields a pass merges into an image show in the restored list.
    images = {platform: debug_images_for(original_images, platform) for platform in platforms}
    scope = Scope(project_id=project_id, event_id=event_id(profile))
    for platform in platforms:
        debug_meta["images"] = images[platform]
        modules, stacktraces, frames_sent = prepare_frames(profile, platform)
        modules, stacktraces, success = call_symbolicator(
            symbolicator, scope, profile, platform, modules, stacktraces
        )
        if len(modules) != len(images[platform]):
            raise ValueError(
                f"symbolicator returned {len(modules)} modules for {len(images[platform])} images"
            )
        for raw_image, complete_image in zip(images[platform], modules, strict=True):
            merge_image(raw_image, complete_image, profile)
        if success:
            merge_sample_results(profile, stacktraces, frames_sent, platform)
    debug_meta["images"] = original_images
    profile["processed_by_symbolicator"] = True


def profile_platforms(profile: JsonObject) -> list[str]:
    platform = profile["platform"]
    platforms = [platform]
    if "version" in profile and platform in JS_PLATFORMS:
        frames = profile.get("profile", {}).get("frames", [])
        if any(isinstance(f, dict) and f.get("platform") == "cocoa" for f in frames):
            platforms.append("cocoa")
    return platforms


def debug_images_for(images: list[JsonObject], platform: str) -> list[JsonObject]:
    if platform in JS_PLATFORMS:
        # Upstream indexes image["type"] and fails the whole profile on an untyped image.
        return [image for image in images if image.get("type") == "sourcemap"]
    return [
        image
        for image in images
        if image.get("type") in NATIVE_IMAGE_TYPES
        and (image.get("debug_id") or image.get("id") or image.get("uuid"))
    ]


def prepare_frames(profile: JsonObject, platform: str) -> tuple[list[JsonObject], list[JsonObject], set[int]]:
    """Return (modules, stacktraces, frames_sent) for one pass, adding leaf copies in place.

    ``frames_sent`` holds the indices into ``profile.frames`` that were sent when only some
    frames are (JS passes, the cocoa pass of a React Native profile); it is empty when the
    profile's whole frame list is sent.
    """
    modules: list[JsonObject] = profile["debug_meta"]["images"]
    trace = profile["profile"]
    all_frames: list[JsonObject] = trace["frames"]
    root = profile["platform"]
    if platform in JS_PLATFORMS:
        frames_sent = {i for i, frame in enumerate(all_frames) if _is_js_frame(frame, root)}
        return modules, [{"frames": [all_frames[i] for i in sorted(frames_sent)]}], frames_sent

    if root != platform:
        frames_sent = {
            i
            for i, frame in enumerate(all_frames)
            if frame.get("platform") == platform and frame.get("instruction_addr") is not None
        }
        frames = [all_frames[i] for i in sorted(frames_sent)]
    else:
        frames_sent = set()
        frames = all_frames
    for stack in trace["stacks"]:
        if not stack:
            continue
        leaf = copy.deepcopy(all_frames[stack[0]])
        leaf["adjust_instruction_addr"] = False
        if root not in JS_PLATFORMS:
            frames.append(leaf)
            stack[0] = len(frames) - 1
        elif stack[0] in frames_sent:
            all_frames.append(leaf)
            frames.append(leaf)
            stack[0] = len(all_frames) - 1
            frames_sent.add(stack[0])
    return modules, [{"frames": frames}], frames_sent


def _is_js_frame(frame: Any, root_platform: str) -> bool:
    if not frame or not isinstance(frame, dict):
        return False
    abs_path = frame.get("abs_path")
    if not abs_path or not frame.get("lineno") or abs_path in ("native", "[native code]"):
        return False
    return root_platform != "node" or bool(_NODE_PATH.match(abs_path))


def call_symbolicator(
    symbolicator: Symbolicator,
    scope: Scope,
    profile: JsonObject,
    platform: str,
    modules: list[JsonObject],
    stacktraces: list[JsonObject],
) -> tuple[list[JsonObject], list[JsonObject], bool]:
    """Call the endpoint for the pass; a failed or missing answer leaves the frames raw."""
    try:
        if platform in JS_PLATFORMS:
            request = JsRequest(
                platform=platform,
                stacktraces=stacktraces,
                modules=modules,
                release=profile.get("release"),
                dist=profile.get("dist"),
            )
            response = symbolicator.symbolicate_js(scope, request)
        else:
            native = NativeRequest(platform=platform, stacktraces=stacktraces, modules=modules)
            response = symbolicator.symbolicate(scope, native)
    except SymbolicationTimeout:
        log.warning("symbolication of %s timed out", scope.event_id)
        return modules, stacktraces, False
    return interpret_response(profile, response, modules, stacktraces)


def interpret_response(
    profile: JsonObject,
    response: JsonObject | None,
    modules: list[JsonObject],
    stacktraces: list[JsonObject],
) -> tuple[list[JsonObject], list[JsonObject], bool]:
    if not response:
        profile["symbolicator_error"] = {"type": "native_internal_failure"}
        return modules, stacktraces, False
    status = response.get("status")
    if status == "completed":
        return response.get("modules", modules), response.get("stacktraces", stacktraces), True
    if status == "failed":
        profile["symbolicator_error"] = {
            "type": "native_symbolicator_failed",
            "status": "failed",
            "message": response.get("message"),
        }
    else:
        profile["symbolicator_error"] = {"status": status, "type": "native_internal_failure"}
    return modules, stacktraces, False
