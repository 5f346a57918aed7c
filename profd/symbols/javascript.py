"""JavaScript symbolication: minified positions to original file, line, column and function.

The source map is found by the debug id sentry-cli injects (the profile's ``sourcemap``
images name it per file), else by release, dist and the frame's URL.  Lookups go through
symbolic's SourceMapCache, as current Sentry does; caches are kept for recent maps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from profd.metrics import METRICS
from profd.symbols.contract import JsonObject, JsRequest, Scope
from profd.symbols.store import ArtifactFile, SymbolStore

CACHES_KEPT = 64


class JavaScriptSymbolicator:
    def __init__(self, store: SymbolStore) -> None:
        self.store = store
        self._caches: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def symbolicate_js(self, scope: Scope, request: JsRequest) -> JsonObject:
        debug_ids = {
            str(m.get("code_file")): str(m.get("debug_id")) for m in request.modules if m.get("debug_id")
        }
        frames = [
            self._frame(scope.project_id, index, frame, debug_ids.get(str(frame.get("abs_path"))), request)
            for stacktrace in request.stacktraces
            for index, frame in enumerate(stacktrace.get("frames", []))
        ]
        return {"status": "completed", "stacktraces": [{"frames": frames}]}

    def _frame(
        self, project_id: int, index: int, frame: JsonObject, debug_id: str | None, request: JsRequest
    ) -> JsonObject:
        unsymbolicated = {
            **frame,
            "original_index": index,
            "data": {**(frame.get("data") or {}), "symbolicated": False},
        }
        url = str(frame.get("abs_path") or "")
        find = {"debug_id": debug_id, "release": request.release, "dist": request.dist, "url": url}
        source = self.store.artifact(project_id, "minified_source", **find)
        source_map = self.store.artifact(project_id, "source_map", **find)
        if source_map is None and source is not None and source.sourcemap:
            mapped_url = url.rsplit("/", 1)[0] + "/" + source.sourcemap
            source_map = self.store.artifact(
                project_id, "source_map", release=source.release, dist=source.dist, url=mapped_url
            )
        if source is None or source_map is None or not frame.get("lineno"):
            return unsymbolicated
        token = self._cache(source, source_map).lookup(int(frame["lineno"]), int(frame.get("colno") or 1), 0)
        if token is None:
            return unsymbolicated
        original = str(token.src or url)
        return {
            **frame,
            "original_index": index,
            "function": token.function_name or token.name or frame.get("function"),
            "filename": original.rsplit("/", 1)[-1],
            "abs_path": original,
            "lineno": token.line,
            "colno": token.col,
            "data": {**(frame.get("data") or {}), "symbolicated": True},
        }

    def _cache(self, source: ArtifactFile, source_map: ArtifactFile) -> Any:
        from symbolic.sourcemapcache import SourceMapCache

        key = (f"{source.bundle}/{source.path}", f"{source_map.bundle}/{source_map.path}")
        with self._lock:
            cache = self._caches.get(key)
            METRICS.symbol_cache.labels("sourcemap", "miss" if cache is None else "hit").inc()
            if cache is None:
                cache = SourceMapCache.from_bytes(
                    self.store.artifact_bytes(source), self.store.artifact_bytes(source_map)
                )
                self._caches[key] = cache
                while len(self._caches) > CACHES_KEPT:
                    self._caches.popitem(last=False)
            else:
                self._caches.move_to_end(key)
            return cache
