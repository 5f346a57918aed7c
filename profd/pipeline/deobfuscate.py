"""Deobfuscate stage: Android methods renamed by R8/ProGuard get their source names back.

Methods are sent to the symbolicator's JVM endpoint as frames (``index`` = position in
``profile.methods``) with the ProGuard mapping named by ``build_id``.  Inlined callees come
back as several frames with the same index, caller first; the method keeps the outermost
frame and lists the whole chain in ``inline_frames``.  Without a mapping only the JVM
descriptors are made readable.
"""

from __future__ import annotations

import logging
import uuid

from profd.formats import profile_event_id as event_id
from profd.formats.jvm_signature import decode_signature
from profd.symbols.contract import JsonObject, JvmRequest, Scope, SymbolicationTimeout, Symbolicator

log = logging.getLogger(__name__)

SHOULD_DEOBFUSCATE = frozenset({"android"})


def should_deobfuscate(profile: JsonObject) -> bool:
    return profile.get("platform") in SHOULD_DEOBFUSCATE and not profile.get("deobfuscated")


def deobfuscate_profile(profile: JsonObject, symbolicator: Symbolicator, project_id: int) -> None:
    trace = profile.get("profile")
    if not trace:
        log.debug("profile %s has no trace to deobfuscate", event_id(profile))
        return
    methods: list[JsonObject] = trace.get("methods") or []
    debug_file_id = proguard_uuid(profile.get("build_id"))
    deobfuscated = debug_file_id is not None and deobfuscate_with_symbolicator(
        profile, methods, debug_file_id, symbolicator, project_id
    )
    if not deobfuscated:
        # Upstream leaves descriptors raw when the symbolicator fails; readable signatures
        # cost nothing and help whoever reads the flamegraph, so they are decoded anyway.
        decode_signatures(methods)
    profile["deobfuscated"] = True


def proguard_uuid(build_id: object) -> str | None:
    """The mapping's id as 32 lowercase hex digits, or None when there is no usable id."""
    if isinstance(build_id, uuid.UUID):
        return build_id.hex
    if not isinstance(build_id, str) or not build_id:
        return None
    try:
        return uuid.UUID(build_id).hex
    except ValueError:
        return None


def decode_signatures(methods: list[JsonObject]) -> None:
    for method in methods:
        if method.get("signature"):
            method["signature"] = decode_signature(method["signature"])


def deobfuscate_with_symbolicator(
    profile: JsonObject,
    methods: list[JsonObject],
    debug_file_id: str,
    symbolicator: Symbolicator,
    project_id: int,
) -> bool:
    metadata = profile.get("transaction_metadata") or {}
    request = JvmRequest(
        platform=profile["platform"],
        stacktraces=[{"frames": methods_to_jvm_frames(methods)}],
        modules=[{"uuid": debug_file_id, "type": "proguard"}],
        release_package=metadata.get("app.identifier"),
    )
    scope = Scope(project_id=project_id, event_id=event_id(profile))
    try:
        response = symbolicator.symbolicate_jvm(scope, request)
    except SymbolicationTimeout:
        log.warning("deobfuscation of %s timed out", scope.event_id)
        return False
    if not response:
        log.warning("no response from the symbolicator for %s", scope.event_id)
        return False
    stacktraces = response.get("stacktraces")
    if not stacktraces:
        log.info("deobfuscation of %s failed: %s", scope.event_id, response.get("message"))
        return False
    merge_jvm_frames(stacktraces[0].get("frames") or [], methods)
    return True


def methods_to_jvm_frames(methods: list[JsonObject]) -> list[JsonObject]:
    frames = []
    for index, method in enumerate(methods):
        frame: JsonObject = {
            "function": method.get("name"),
            "index": index,
            "module": method.get("class_name"),
        }
        if "signature" in method:
            frame["signature"] = method["signature"]
        if "source_line" in method:
            frame["lineno"] = method["source_line"]
        if "source_file" in method:
            frame["filename"] = method["source_file"]
        frames.append(frame)
    return frames


def merge_jvm_frames(frames: list[JsonObject], methods: list[JsonObject]) -> None:
    for frame in frames:
        index = frame["index"]
        if not isinstance(index, int) or not 0 <= index < len(methods):
            raise ValueError(f"symbolicator returned a frame for method index {index!r}")
        method = methods[index]
        if (method.get("data") or {}).get("deobfuscation_status") != "deobfuscated":
            _apply_frame(frame, method)
            continue
        if "inline_frames" not in method:
            method["inline_frames"] = [dict(method)]
        inlined: JsonObject = {}
        _apply_frame(frame, inlined)
        method["inline_frames"].append(inlined)


def _apply_frame(frame: JsonObject, method: JsonObject) -> None:
    method["class_name"] = frame.get("module")
    method["data"] = {"deobfuscation_status": "deobfuscated"}
    method["name"] = frame.get("function")
    if "signature" in frame:
        method["signature"] = frame["signature"]
    if "filename" in frame:
        method["source_file"] = frame["filename"]
    if frame.get("lineno"):
        method["source_line"] = frame["lineno"]
    if "in_app" in frame:
        method["in_app"] = frame["in_app"]
