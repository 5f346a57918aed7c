"""Relay's rules for Android method-trace profiles: legacy transaction profiles and chunks.

`expand_profile` and `expand_chunk` are this format's way through ingest, called once per
item by `profd.ingest.expand`.  The SDK sends the ART trace base64-encoded in
``sampled_profile``; ingest replaces it with the decoded trace in ``profile``
(`profd.formats.art_trace`).  A payload that already has a decoded ``profile`` and no
``sampled_profile`` (Relay's own output) is checked the same way, so expanding twice
changes nothing.  The fields every format shares are `profd.ingest.fields`; React
Native's ``js_profile`` is a sample trace, judged by `profd.ingest.expand_sample`.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, TypeVar

from profd.formats import Kind, android
from profd.formats.android import AndroidChunk, AndroidProfile, AndroidTrace
from profd.formats.art_trace import decode_art_trace_base64
from profd.formats.common import DebugMeta
from profd.formats.sample import Transaction
from profd.ingest.expand_sample import js_profile
from profd.ingest.fields import (
    MAX_CHUNK_DURATION_NS,
    MAX_PROFILE_DURATION_NS,
    Expanded,
    check_transaction,
    decode_object,
    decode_typed,
    default_sdk,
    document,
    finish,
    hex_id,
    merge_event,
    normalize_timestamp,
    reject,
    shared_fields,
)

_NIL = uuid.UUID(int=0).hex

A = TypeVar("A", AndroidProfile, AndroidChunk)


def expand_profile(payload: bytes, event: dict[str, Any] | None) -> Expanded:
    """A legacy Android transaction profile, merged with its transaction `event` if any."""
    p, sampled = _decode(decode_object(payload), AndroidProfile)
    p.profile_id = hex_id(p.profile_id, "$.profile_id")
    if p.timestamp is not None:
        p.timestamp = normalize_timestamp(p.timestamp, "$.timestamp")
    shared_fields(p, by_timestamp=False)

    tx = _pick_transaction(p)
    if p.js_profile is not None:
        p.js_profile = js_profile(p.js_profile, chunk=False)
    _expand_trace(p, sampled, chunk=False)
    merge_event(p, tx, event, overwrite_release=True)
    p.debug_meta = _proguard_image(p.build_id, p.debug_meta)
    return finish(Kind.ANDROID, _document(p), p.profile_id, p.platform)


def expand_chunk(payload: bytes) -> Expanded:
    """An Android trace chunk of a continuous profile; its duration is the trace's."""
    c, sampled = _decode(decode_object(payload), AndroidChunk)
    c.chunk_id = hex_id(c.chunk_id, "$.chunk_id")
    c.profiler_id = hex_id(c.profiler_id, "$.profiler_id")
    if not math.isfinite(c.timestamp):
        raise reject("profiling_invalid_json", "timestamp is not a finite number", "$.timestamp")
    shared_fields(c, by_timestamp=True)

    if c.js_profile is not None:
        c.js_profile = js_profile(c.js_profile, chunk=True)
    duration = _expand_trace(c, sampled, chunk=True)
    c.debug_meta = _proguard_image(c.build_id, c.debug_meta)
    c.client_sdk = c.client_sdk or default_sdk(c.platform)
    # vroom tells trace chunks from sample chunks by this version.
    c.version = "2.android-trace"
    return finish(Kind.ANDROID_CHUNK, _document(c), c.chunk_id, c.platform, c.profiler_id, duration)


def _document(profile: AndroidProfile | AndroidChunk) -> dict[str, Any]:
    doc = document(profile)
    # `AndroidEvent` leaves out a ``method_id`` of 0 (its default); Relay always writes
    # it, so a reader written against Relay's output may expect it.
    for event in doc["profile"]["events"]:
        if "method_id" not in event:
            event["method_id"] = 0
    return doc


def _decode(doc: dict[str, Any], type_: type[A]) -> tuple[A, str | None]:
    """Type-check everything but the trace; return the still-encoded ``sampled_profile``."""
    sampled = doc.pop("sampled_profile", None)
    if sampled is not None and not isinstance(sampled, str):
        raise reject("profiling_invalid_json", "sampled_profile must be a base64 string", "$.sampled_profile")
    if sampled or "profile" not in doc:
        # Stands in until the trace is decoded; a profile with no trace at all ends up
        # with no events, which Relay reports as not enough samples.
        doc["profile"] = {"methods": [], "events": []}
    return decode_typed(doc, type_), sampled or None


def _pick_transaction(profile: AndroidProfile) -> Transaction:
    """B3.2 step 2: the first of ``transactions``, else one made of the flat fields."""
    if profile.transactions:
        tx, path = profile.transactions[0], "$.transactions[0]"
    elif profile.transaction is not None:
        tx, path = profile.transaction, "$.transaction"
    elif profile.transaction_name:
        tx = Transaction(
            id=hex_id(profile.transaction_id or _NIL, "$.transaction_id"),
            name=profile.transaction_name,
            trace_id=hex_id(profile.trace_id or _NIL, "$.trace_id"),
            active_thread_id=profile.active_thread_id or 0,
        )
        path = "$"
    else:
        raise reject(
            "profiling_no_transaction_associated", "the profile names no transaction", "$.transaction_name"
        )
    check_transaction(tx, path)
    profile.transaction, profile.transactions = tx, None
    profile.transaction_id, profile.transaction_name, profile.trace_id = tx.id, tx.name, tx.trace_id
    profile.active_thread_id = tx.active_thread_id
    return tx


def _expand_trace(target: AndroidProfile | AndroidChunk, sampled: str | None, *, chunk: bool) -> int:
    """B3.2 steps 4-6: decode the trace, drop frozen threads, bound the duration; returns it in ns."""
    if sampled is not None:
        target.profile = decode_typed(decode_art_trace_base64(sampled), AndroidTrace, "$.sampled_profile")
    trace = target.profile
    android.check_trace(trace)
    latest = _drop_frozen_threads(trace)
    if not trace.events:
        raise reject("profiling_not_enough_samples", "the trace has no events", "$.profile.events")
    if trace.elapsed_time is None:
        # Traces stored by vroom before Relay kept the header: the last event bounds it.
        elapsed = latest
    else:
        elapsed_ns = _duration_ns(trace.elapsed_time)
        if elapsed_ns is None:
            raise reject("profiling_invalid_json", "elapsed_time is not a duration", "$.profile.elapsed_time")
        elapsed = elapsed_ns
    limit = MAX_CHUNK_DURATION_NS if chunk else MAX_PROFILE_DURATION_NS
    if elapsed > limit:
        raise reject(
            "profiling_duration_is_too_long",
            f"the trace lasts {elapsed} ns (max {limit // 10**9} s)",
            "$.profile",
        )
    if elapsed == 0:
        raise reject("profiling_duration_is_zero", "the trace lasts 0 ns", "$.profile.elapsed_time")
    target.duration_ns = elapsed
    return elapsed


def _drop_frozen_threads(trace: AndroidTrace) -> int:
    """Remove the events of threads whose clock never moved (older Relay's rule): such a
    thread has no measurable call, and a trace of only those is empty.  Returns the
    latest event time in ns."""
    tag = "global" if trace.clock == "Global" else "monotonic"
    wall_first = trace.clock != "Cpu"
    relay_tag, relay_clock = (
        ("Global", "") if tag == "global" else ("Monotonic", "wall" if wall_first else "cpu")
    )
    times: dict[int, set[int]] = {}
    latest = 0
    for i, event in enumerate(trace.events):
        # Relay's own shape inline (traces have 10^5 events); anything else the long way.
        d = event.time.get(relay_tag)
        if relay_clock and type(d) is dict:
            d = d.get(relay_clock)
        if type(d) is dict and type(secs := d.get("secs")) is int and type(nanos := d.get("nanos")) is int:
            ns: int | None = secs * 1_000_000_000 + nanos if secs >= 0 and nanos >= 0 else None
        else:
            ns = _event_ns(event.time, tag, wall_first)
        if ns is None:
            raise reject("profiling_invalid_json", "unknown event time", f"$.profile.events[{i}].time")
        times.setdefault(event.thread_id, set()).add(ns)
        if ns > latest:
            latest = ns
    frozen = {thread for thread, seen in times.items() if len(seen) <= 1}
    if frozen:
        trace.events = [e for e in trace.events if e.thread_id not in frozen]
    return latest


def _event_ns(time: dict[str, Any], tag: str, wall_first: bool) -> int | None:
    """The event's time on the trace's clock.  Relay writes ``{"Monotonic": {"cpu",
    "wall"}}`` or ``{"Global": d}``; vroom-era data writes both, with lower-case tags that
    Go's JSON matched case-insensitively."""
    value = next((v for k, v in time.items() if k.lower() == tag), None)
    if value is None:
        value = next((v for v in time.values() if v is not None), None)
        tag = "monotonic" if isinstance(value, dict) and ("wall" in value or "cpu" in value) else "global"
    if tag == "global":
        return _duration_ns(value)
    if not isinstance(value, dict):
        return None
    wall, cpu = value.get("wall"), value.get("cpu")
    first, second = (wall, cpu) if wall_first else (cpu, wall)
    return _duration_ns(first if first is not None else second)


def _duration_ns(value: object) -> int | None:
    """A serde ``Duration``; zero fields may be omitted."""
    if not isinstance(value, dict):
        return None
    secs, nanos = value.get("secs", 0), value.get("nanos", 0)
    if type(secs) is not int or type(nanos) is not int or secs < 0 or nanos < 0:
        return None
    return secs * 1_000_000_000 + nanos


def _proguard_image(build_id: str | None, debug_meta: DebugMeta | None) -> DebugMeta | None:
    """B3.2 step 8: without debug images, ``build_id`` names the ProGuard mapping."""
    if not build_id or debug_meta is not None:
        return debug_meta
    try:
        mapping = uuid.UUID(build_id)
    except ValueError:
        raise reject("invalid_build_id", f"build_id {build_id[:64]!r} is not a UUID", "$.build_id") from None
    return DebugMeta(images=[{"type": "proguard", "uuid": str(mapping)}])
