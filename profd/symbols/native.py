"""Native symbolication: instruction addresses to functions, files and lines (with inlines).

An address is looked up in the image that contains it, in a symcache built once from the
uploaded debug file (stored beside it for every node, and the most recent ones in memory).  A frame
that is not a stack's leaf holds a return address, so the call instruction before it is
looked up, as Symbolicator does unless told ``adjust_instruction_addr: false``.  Inlined
callees come back as extra frames before their caller, sharing the frame's
``original_index``.  C++ and Rust names are demangled.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from profd.metrics import METRICS
from profd.symbols.contract import JsonObject, NativeRequest, Scope, parse_address
from profd.symbols.store import DebugFile, SymbolStore

SYMCACHES_KEPT = 32


@functools.lru_cache(maxsize=65536)
def demangle(name: str) -> str:
    try:
        if name.startswith("_R") or (name.startswith("_ZN") and name.endswith("E") and "17h" in name):
            import rust_demangler

            return str(rust_demangler.demangle(name))
        if name.startswith("_Z"):
            import cpp_demangle

            return str(cpp_demangle.demangle(name))
    except Exception:  # a name that only looks mangled stays as it is
        return name
    return name


class NativeSymbolicator:
    def __init__(self, store: SymbolStore) -> None:
        self.store = store
        self._symcaches: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def symbolicate(self, scope: Scope, request: NativeRequest) -> JsonObject:
        images = []
        modules = []
        for module in request.modules:
            debug_id = module.get("debug_id") or module.get("id") or module.get("uuid")
            found = self.store.by_debug_id(scope.project_id, str(debug_id)) if debug_id else None
            images.append((module, found))
            modules.append({**module, "debug_status": "found" if found else "missing"})
        frames: list[JsonObject] = []
        for stacktrace in request.stacktraces:
            for index, frame in enumerate(stacktrace.get("frames", [])):
                frames.extend(self._frame(index, frame, images, request.platform))
        return {"status": "completed", "stacktraces": [{"frames": frames}], "modules": modules}

    def _frame(
        self, index: int, frame: JsonObject, images: list[tuple[JsonObject, DebugFile | None]], platform: str
    ) -> list[JsonObject]:
        address = parse_address(frame.get("instruction_addr"))
        image = _containing(images, address)
        if address is None or image is None:
            return [{**frame, "original_index": index, "status": "unknown_image"}]
        module, file = image
        if file is None:
            return [
                {**frame, "original_index": index, "status": "missing", "package": module.get("code_file")}
            ]
        from symbolic.symcache import find_best_instruction

        arch = file.arch or "unknown"
        if frame.get("adjust_instruction_addr") is not False:
            address = find_best_instruction(address, arch)
        relative = (
            address
            - (parse_address(module.get("image_addr")) or 0)
            + (parse_address(module.get("image_vmaddr")) or 0)
        )
        locations = self._symcache(file).lookup(relative)
        if not locations:
            return [
                {**frame, "original_index": index, "status": "missing", "package": module.get("code_file")}
            ]
        return [
            {
                **frame,
                "original_index": index,
                "function": demangle(location.symbol),
                "raw_function": location.symbol,
                "filename": (location.full_path or "").rsplit("/", 1)[-1] or None,
                "abs_path": location.full_path or None,
                "lineno": location.line or None,
                "package": module.get("code_file"),
                "sym_addr": hex(location.sym_addr) if location.sym_addr != 0xFFFFFFFF else None,
                "status": "symbolicated",
                "data": {**(frame.get("data") or {}), "symbolicator_status": "symbolicated"},
            }
            for location in locations
        ]

    def _symcache(self, file: DebugFile) -> Any:
        from symbolic import debuginfo, symcache

        with self._lock:
            cached = self._symcaches.get(file.checksum)
            if cached is not None:
                METRICS.symbol_cache.labels("symcache", "hit").inc()
                self._symcaches.move_to_end(file.checksum)
                return cached
            # Built once, by whichever node needs it first, and stored beside its debug file.
            version = symcache.SYMCACHE_LATEST_VERSION
            path = self.store.symcache(file, version)
            METRICS.symbol_cache.labels("symcache", "miss" if path is None else "disk").inc()
            if path is None:
                archive = debuginfo.Archive.open(str(self.store.path(file)))
                obj = archive.get_object(debug_id=file.debug_id) or next(iter(archive.iter_objects()))
                with self.store.objects.temporary() as out:
                    obj.make_symcache().dump_into(out)
                path = self.store.keep_symcache(file, version, Path(out.name))
            cached = symcache.SymCache.open(str(path))
            self._symcaches[file.checksum] = cached
            while len(self._symcaches) > SYMCACHES_KEPT:
                self._symcaches.popitem(last=False)
            return cached


def _containing(
    images: list[tuple[JsonObject, DebugFile | None]], address: int | None
) -> tuple[JsonObject, DebugFile | None] | None:
    if address is None:
        return None
    for module, file in images:
        start = parse_address(module.get("image_addr"))
        size = parse_address(module.get("image_size"))
        # symbolic answers the nearest symbol even past the end of the code: bounds first.
        if start is not None and size and start <= address < start + size:
            return module, file
    return None
