"""Merging a symbolicator's answer back into a sample-format profile.

Symbolicator returns one frame per frame sent, plus extra frames for inlined callees; all
frames from one sent frame share its ``original_index`` and come callee first.  Frames are
rebuilt in place of the raw ones and every stack index is rewritten to the positions its
frame now occupies, so a frame with inlined callees expands into several stack entries.
"""

from __future__ import annotations

from typing import Any

from profd.symbols.contract import JsonObject

JS_PLATFORMS = frozenset({"javascript", "node"})

# Relay masks cocoa addresses to 36 bits, so the SDK's bottom-of-stack sentinel
# (0x...ffffffffc) arrives as this; it and the frame above it are not user code.
COCOA_STACK_SENTINEL = "0xffffffffc"

# Images a user cannot and need not upload symbols for (OS libraries).
_SYSTEM_IMAGE_PREFIXES = (
    "/System/",
    "/usr/lib/",
    "/usr/libexec/",
    "/Library/Developer/",
    "/Developer/",
    "/private/preboot/",
    "/lib/",
    "/lib64/",
    "/system/",
    "/apex/",
    "/vendor/",
)

_STATUS_ERRORS = {
    "unsupported": "native_unsupported_dsym",
    "malformed": "native_bad_dsym",
    "too_large": "fetch_too_large",
    "fetching_failed": "fetch_generic_error",
    "other": "unknown_error",
}
# Errors the user can fix by uploading or re-uploading a debug file.
_USER_FIXABLE = frozenset({"native_missing_dsym", "native_optionally_bundled_dsym", "native_bad_dsym"})
_FATAL = frozenset({"native_missing_dsym", "native_bad_dsym"})


def merge_image(raw_image: JsonObject, complete_image: JsonObject, profile: JsonObject) -> None:
    """Copy what the symbolicator learned about an image into it, and record its errors."""
    statuses = set()
    for key, value in complete_image.items():
        if key in ("unwind_status", "debug_status"):
            statuses.add(value)
        if value is None or (key in ("arch", "type") and value == "unknown"):
            continue
        raw_image[key] = value
    for status in sorted(s for s in statuses if s):
        error = _status_error(status, raw_image)
        if error is None:
            continue
        if error in _USER_FIXABLE:
            entry: JsonObject = {"type": error}
            if raw_image.get("code_file"):
                entry["image_path"] = raw_image["code_file"]
            if raw_image.get("debug_id"):
                entry["image_uuid"] = raw_image["debug_id"]
            if raw_image.get("arch"):
                entry["image_arch"] = raw_image["arch"]
            entry["message"] = f"{error.replace('_', ' ')} for {entry.get('image_path', 'an image')}"
            profile.setdefault("errors", []).append(entry)
        else:
            profile.setdefault("_metrics", {})["flag.processing.error"] = True
        if error in _FATAL:
            profile.setdefault("_metrics", {})["flag.processing.fatal"] = True


def _status_error(status: str, image: JsonObject) -> str | None:
    if status in ("found", "unused"):
        return None
    if status == "missing":
        code_file = image.get("code_file") or ""
        if not code_file or image.get("type") == "pe_dotnet" or is_system_image(code_file):
            return None
        if is_optional_image(code_file):
            return "native_optionally_bundled_dsym"
        return "native_missing_dsym"
    return _STATUS_ERRORS.get(status, "unknown_error")


def is_system_image(code_file: str) -> bool:
    path = code_file.replace("\\", "/")
    return path.startswith(_SYSTEM_IMAGE_PREFIXES) or path.lower().startswith("c:/windows/")


def is_optional_image(code_file: str) -> bool:
    # Swift runtime libraries copied into an app bundle come with the toolchain's symbols.
    name = code_file.replace("\\", "/").rsplit("/", 1)[-1]
    return name.startswith("libswift") and name.endswith(".dylib")


def frame_index_map(frames: list[JsonObject]) -> dict[int, list[int]]:
    """``original_index`` -> positions in the returned list (a frame without one stands for itself)."""
    index_map: dict[int, list[int]] = {}
    for position, frame in enumerate(frames):
        original = frame.get("original_index", position)
        index_map.setdefault(original, []).append(position)
    return index_map


def merge_sample_results(
    profile: JsonObject, stacktraces: list[JsonObject], frames_sent: set[int], platform: str
) -> None:
    """Replace sent frames by their symbolicated (and inline-expanded) frames; rewrite stacks.

    Upstream applies the ``original_index`` map, whose keys are positions in the list
    *sent*, directly to raw frame indices and positions in the *returned* list; the two
    agree only when every frame was sent.  Here each raw index is translated through the
    list that was actually sent, which gives the same result in that case and the right one
    when only some frames were sent.
    """
    returned: list[JsonObject] = stacktraces[0]["frames"] if stacktraces else []
    if not returned:
        return
    index_map = frame_index_map(returned)
    trace = profile["profile"]
    raw_frames: list[JsonObject] = trace["frames"]
    partial = bool(frames_sent)
    sent_order = sorted(frames_sent) if partial else range(len(raw_frames))
    sent_position = {raw_index: k for k, raw_index in enumerate(sent_order)}
    unknown = [k for k in index_map if not 0 <= k < len(sent_order)]
    if unknown:
        raise ValueError(f"symbolicator returned frames for original_index {unknown[:5]} never sent")

    new_frames: list[JsonObject] = []
    new_positions: list[list[int]] = []
    for raw_index, raw_frame in enumerate(raw_frames):
        k = sent_position.get(raw_index)
        if k is None or k not in index_map:
            new_positions.append([len(new_frames)])
            new_frames.append(raw_frame)
            continue
        positions = []
        for position in index_map[k]:
            frame = returned[position]
            if partial:
                frame["platform"] = platform
            positions.append(len(new_frames))
            new_frames.append(frame)
        new_positions.append(positions)
    trace["frames"] = new_frames

    stacks: list[list[int]] = trace["stacks"]
    for s, stack in enumerate(stacks):
        rewritten = [position for index in stack for position in new_positions[index]]
        stacks[s] = truncate_stack(rewritten, new_frames, platform)


def truncate_stack(stack: list[int], frames: list[JsonObject], platform: str) -> list[int]:
    """Drop frames the profiler itself put on the stack (signal handler, cocoa sentinel)."""
    if len(stack) < 2:
        return stack
    if platform == "rust":
        if _function(frames[stack[0]]) == "perf_signal_handler":
            stack = stack[2:]
        if len(stack) >= 2 and not _function(frames[stack[-2]]):
            stack = stack[:-2]
    elif platform == "cocoa" and frames[stack[-1]].get("instruction_addr") == COCOA_STACK_SENTINEL:
        stack = stack[:-2]
    return stack


def _function(frame: Any) -> str | None:
    return frame.get("function") if isinstance(frame, dict) else None
