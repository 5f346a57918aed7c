"""The symbolicator contract: requests and responses shaped like Sentry's Symbolicator.

The symbolicate and deobfuscate stages speak to a `Symbolicator` through three calls that
mirror Symbolicator's endpoints (``symbolicate``, ``symbolicate-js``, ``symbolicate-jvm``).
Requests are typed; responses stay plain JSON objects (``status``, ``modules``,
``stacktraces`` whose frames carry ``original_index``), because the merge logic copies
returned frames wholesale into the profile.  Any implementation - the in-process one over
profd's symbol store, or an external Symbolicator over HTTP - plugs in unchanged.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

import msgspec

JsonObject = dict[str, Any]


class SymbolicationTimeout(Exception):
    """The symbolicator did not answer within the hard timeout; the profile goes on unsymbolicated."""


class Scope(msgspec.Struct, frozen=True):
    """Sent as the ``x-sentry-project-id`` / ``x-sentry-event-id`` headers and ``scope`` query."""

    project_id: int
    event_id: str | None


class NativeRequest(msgspec.Struct, omit_defaults=True):
    platform: str
    stacktraces: list[JsonObject]
    modules: list[JsonObject]
    sources: list[JsonObject] = []
    options: JsonObject = msgspec.field(
        default_factory=lambda: {"dif_candidates": True, "apply_source_context": False}
    )


class JsRequest(msgspec.Struct, omit_defaults=True):
    platform: str
    stacktraces: list[JsonObject]
    modules: list[JsonObject]
    release: str | None = None
    dist: str | None = None
    options: JsonObject = msgspec.field(default_factory=lambda: {"apply_source_context": False})


class JvmRequest(msgspec.Struct, omit_defaults=True):
    platform: str
    stacktraces: list[JsonObject]
    modules: list[JsonObject]
    exceptions: list[JsonObject] = []
    classes: list[JsonObject] = []
    release_package: str | None = None
    options: JsonObject = msgspec.field(default_factory=lambda: {"apply_source_context": False})


class Symbolicator(Protocol):
    def symbolicate(self, scope: Scope, request: NativeRequest) -> JsonObject | None: ...

    def symbolicate_js(self, scope: Scope, request: JsRequest) -> JsonObject | None: ...

    def symbolicate_jvm(self, scope: Scope, request: JvmRequest) -> JsonObject | None: ...


class EmptySymbolStore:
    """What Symbolicator answers when it holds no debug files, source maps or mappings.

    Native frames come back raw with ``status: missing`` (``unknown_image`` when no image
    covers the address) and every image gets ``debug_status: missing``; JS frames come back
    unsymbolicated; a JVM request fails because the mapping it names is absent, so Android
    methods keep their obfuscated names.  This is the answer of a real Symbolicator over an
    empty store, and profd's own store answers it until symbols are uploaded.
    """

    def symbolicate(self, scope: Scope, request: NativeRequest) -> JsonObject:
        frames = []
        for stacktrace in request.stacktraces:
            for i, frame in enumerate(stacktrace.get("frames", [])):
                returned = copy.deepcopy(frame)
                returned["original_index"] = i
                covered = _image_for(request.modules, frame.get("instruction_addr"))
                returned["status"] = "missing" if covered else "unknown_image"
                frames.append(returned)
        modules = [{**module, "debug_status": "missing"} for module in request.modules]
        return {"status": "completed", "stacktraces": [{"frames": frames}], "modules": modules}

    def symbolicate_js(self, scope: Scope, request: JsRequest) -> JsonObject:
        frames = []
        for stacktrace in request.stacktraces:
            for i, frame in enumerate(stacktrace.get("frames", [])):
                returned = copy.deepcopy(frame)
                returned["original_index"] = i
                returned["data"] = {**(returned.get("data") or {}), "symbolicated": False}
                frames.append(returned)
        return {"status": "completed", "stacktraces": [{"frames": frames}]}

    def symbolicate_jvm(self, scope: Scope, request: JvmRequest) -> JsonObject:
        missing = ", ".join(str(m.get("uuid")) for m in request.modules)
        return {"status": "failed", "message": f"ProGuard mapping not found: {missing}"}


def parse_address(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


def _image_for(modules: list[JsonObject], instruction_addr: Any) -> JsonObject | None:
    address = parse_address(instruction_addr)
    if address is None:
        return None
    for module in modules:
        start = parse_address(module.get("image_addr"))
        size = parse_address(module.get("image_size"))
        if start is not None and size and start <= address < start + size:
            return module
    return None
