"""profd's own symbolicator: Symbolicator's contract answered from the debug-file store.

JVM requests are answered with the project's ProGuard mapping (symbolic's mapper): each
frame becomes its original class, method, file and line, and a frame R8 inlined several
methods into comes back as several frames with the same ``index``, caller first, as
Symbolicator answers.  Native requests go to `profd.symbols.native`, JavaScript ones to
`profd.symbols.javascript`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from profd.formats.jvm_signature import decode_signature
from profd.symbols.contract import (
    EmptySymbolStore,
    JsonObject,
    JsRequest,
    JvmRequest,
    NativeRequest,
    Scope,
)
from profd.symbols.javascript import JavaScriptSymbolicator
from profd.symbols.native import NativeSymbolicator
from profd.symbols.store import DebugFile, SymbolStore

# Opening a large mapping takes most of a second; keep the recent ones open.
MAPPERS_KEPT = 16


class LocalSymbolicator(EmptySymbolStore):
    def __init__(self, store: SymbolStore) -> None:
        self.store = store
        self.native = NativeSymbolicator(store)
        self.javascript = JavaScriptSymbolicator(store)
        self._mappers: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def symbolicate(self, scope: Scope, request: NativeRequest) -> JsonObject:
        return self.native.symbolicate(scope, request)

    def symbolicate_js(self, scope: Scope, request: JsRequest) -> JsonObject:
        return self.javascript.symbolicate_js(scope, request)

    def symbolicate_jvm(self, scope: Scope, request: JvmRequest) -> JsonObject:
        files = [
            found
            for module in request.modules
            if module.get("type") == "proguard"
            and (found := self.store.by_debug_id(scope.project_id, str(module.get("uuid")))) is not None
        ]
        if not files:
            return super().symbolicate_jvm(scope, request)
        mapper = self._mapper(files[0])
        frames: list[JsonObject] = []
        for stacktrace in request.stacktraces:
            for frame in stacktrace.get("frames", []):
                frames.extend(remap(mapper, frame))
        return {
            "status": "completed",
            "stacktraces": [{"frames": frames}],
            "modules": [{**m, "debug_status": "found" if files else "missing"} for m in request.modules],
        }

    def _mapper(self, file: DebugFile) -> Any:
        from symbolic.proguard import ProguardMapper

        with self._lock:
            mapper = self._mappers.get(file.checksum)
            if mapper is None:
                mapper = ProguardMapper.open(str(self.store.path(file)))
                self._mappers[file.checksum] = mapper
                while len(self._mappers) > MAPPERS_KEPT:
                    self._mappers.popitem(last=False)
            else:
                self._mappers.move_to_end(file.checksum)
            return mapper


def remap(mapper: Any, frame: JsonObject) -> list[JsonObject]:
    """One obfuscated frame as its original frames (caller first), or as it was."""
    class_name = str(frame.get("module") or "")
    method = str(frame.get("function") or "")
    signature = (
        decode_signature(frame.get("signature"), mapper.remap_class) if frame.get("signature") else None
    )
    mapped = mapper.remap_frame(class_name, method, int(frame.get("lineno") or 0))
    if not mapped:
        readable = {**frame, "signature": signature} if signature is not None else dict(frame)
        original_class = mapper.remap_class(class_name)
        if original_class:
            readable["module"] = original_class
        return [readable]
    out = []
    for java in reversed(mapped):  # symbolic answers innermost first
        remapped: JsonObject = {"index": frame["index"], "function": java.method, "module": java.class_name}
        if java.file:
            remapped["filename"] = java.file
        if java.line:
            remapped["lineno"] = java.line
        if signature is not None:
            remapped["signature"] = signature
        out.append(remapped)
    return out
