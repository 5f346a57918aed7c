"""React Native on Android: the JavaScript half of the profile is symbolicated on its own.

A React Native Android profile carries the Hermes sample profile in ``js_profile``.  It is
wrapped as a standalone javascript sample profile (sharing the outer ``debug_meta``, so
source-map images apply), symbolicated, and unwrapped to ``{"profile": ...,
"processed_by_symbolicator": true}``, the shape the store expects.
"""

from __future__ import annotations

from profd.formats import profile_event_id as event_id
from profd.symbols.contract import JsonObject

_WRAPPER_KEYS = ("platform", "debug_meta", "version", "event_id", "release", "dist")


def needs_js_pass(profile: JsonObject) -> bool:
    js_profile = profile.get("js_profile")
    # Once unwrapped the trace sits under "profile"; wrapping it again would nest it.
    return isinstance(js_profile, dict) and "profile" not in js_profile


def wrap_js_profile(profile: JsonObject) -> JsonObject:
    # Upstream indexes release/dist directly, failing profiles that lack them.
    return {
        "profile": profile["js_profile"],
        "platform": "javascript",
        "debug_meta": profile.get("debug_meta"),
        "version": "1",
        "event_id": event_id(profile),
        "release": profile.get("release"),
        "dist": profile.get("dist"),
    }


def unwrap_js_profile(wrapped: JsonObject) -> JsonObject:
    for key in _WRAPPER_KEYS:
        wrapped.pop(key, None)
    return wrapped
