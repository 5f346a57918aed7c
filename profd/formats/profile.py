"""Which format a profile is in, and checking that it follows it.

`detect_kind` follows Sentry's current rules: a ``profiler_id`` makes a chunk (sample v2,
or an Android trace chunk), otherwise ``version == "1"`` is a sample v1 transaction
profile and a version-less ``android`` profile is a legacy Android one.  Everything else
(the 2022 cocoa/rust shapes no SDK sends any more) is not supported.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

import msgspec

from profd.formats import android, sample
from profd.formats.errors import FormatError


class Kind(StrEnum):
    SAMPLE_V1 = "sample_v1"
    SAMPLE_V2 = "sample_v2"
    ANDROID = "android"
    ANDROID_CHUNK = "android_chunk"

    @property
    def is_chunk(self) -> bool:
        return self in (Kind.SAMPLE_V2, Kind.ANDROID_CHUNK)


Typed = sample.SampleProfile | sample.SampleChunk | android.AndroidProfile | android.AndroidChunk

_TYPES: dict[Kind, type[Typed]] = {
    Kind.SAMPLE_V1: sample.SampleProfile,
    Kind.SAMPLE_V2: sample.SampleChunk,
    Kind.ANDROID: android.AndroidProfile,
    Kind.ANDROID_CHUNK: android.AndroidChunk,
}

_json = msgspec.json.Decoder()


def decode_json(data: bytes | str) -> dict[str, Any]:
    """Decode a profile document; anything but a JSON object is a format error."""
    try:
        doc = _json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as e:
        # RecursionError: nested deeper than msgspec's guard (about 1,000 levels).
        raise FormatError(f"invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise FormatError(f"a profile is a JSON object, got {type(doc).__name__}")
    return doc


def detect_kind(doc: dict[str, Any]) -> Kind:
    version = doc.get("version")
    platform = doc.get("platform")
    if doc.get("profiler_id") is not None:
        if version == "2" and "sampled_profile" not in doc:
            return Kind.SAMPLE_V2
        if platform == "android":
            return Kind.ANDROID_CHUNK
    elif version == "1":
        return Kind.SAMPLE_V1
    elif version in (None, "") and platform == "android":
        return Kind.ANDROID
    raise FormatError(
        f"unsupported profile format (version {version!r}, platform {platform!r})",
        "$.version",
        "profiling_platform_not_supported",
    )


def validate(doc: dict[str, Any], kind: Kind | None = None) -> tuple[Kind, Typed]:
    """Check `doc` against its format: types, required fields, ids and index ranges."""
    kind = kind or detect_kind(doc)
    try:
        typed = msgspec.convert(doc, _TYPES[kind], strict=False)
    except msgspec.ValidationError as e:
        message, _, path = str(e).partition(" - at ")
        raise FormatError(message, path.strip("`") or "$") from None
    if isinstance(typed, sample.SampleProfile | sample.SampleChunk):
        sample.check_trace(typed.profile)
    else:
        android.check_trace(typed.profile)
    for field in ("event_id", "profile_id", "chunk_id", "profiler_id"):
        value = getattr(typed, field, None)
        if value is not None:
            check_id(value, f"$.{field}")
    if (
        not kind.is_chunk
        and getattr(typed, "event_id", None) is None
        and getattr(typed, "profile_id", None) is None
    ):
        raise FormatError("a transaction profile needs an event_id or profile_id", "$.event_id")
    return kind, typed


def profile_event_id(doc: dict[str, Any]) -> str | None:
    """The id Sentry reports a profile under: its chunk id, else profile id, else event id."""
    for key in ("chunk_id", "profile_id", "event_id"):
        value = doc.get(key)
        if value:
            return str(value)
    return None


def check_id(value: str, path: str) -> str:
    """Ids become storage keys, so they must be UUIDs (hex, with or without dashes)."""
    try:
        return uuid.UUID(value).hex
    except ValueError:
        raise FormatError(f"{value!r} is not a UUID", path) from None
