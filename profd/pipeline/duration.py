"""How much profiling a profile represents, for the duration outcome (billing's unit).

Transaction profiles are capped at 30 s and chunks at 66 s (a 60 s chunk plus slack), the
limits ingest enforces, so a clock glitch cannot bill an hour.
"""

from __future__ import annotations

import logging

from profd.pipeline.outcomes import UI_PROFILE_PLATFORMS, DataCategory
from profd.symbols.contract import JsonObject

log = logging.getLogger(__name__)

MAX_DURATION_SAMPLE_V1_MS = 30_000
MAX_DURATION_CHUNK_MS = 66_000


def duration_category(profile: JsonObject) -> DataCategory:
    if profile.get("platform") in UI_PROFILE_PLATFORMS:
        return DataCategory.PROFILE_DURATION_UI
    return DataCategory.PROFILE_DURATION


def profile_duration_ms(profile: JsonObject) -> int:
    version = profile.get("version")
    samples = (profile.get("profile") or {}).get("samples") or []
    if version == "1":
        transaction = profile.get("transaction") or {}
        duration_ns = int(transaction.get("relative_end_ns") or 0) - int(
            transaction.get("relative_start_ns") or 0
        )
        if duration_ns <= 0:
            elapsed = sorted(int(s["elapsed_since_start_ns"]) for s in samples)
            if len(elapsed) < 2:
                return 0
            duration_ns = elapsed[-1] - elapsed[0]
        return min(int(duration_ns * 1e-6), MAX_DURATION_SAMPLE_V1_MS)
    if version == "2":
        timestamps = [float(s["timestamp"]) for s in samples]
        if not timestamps:
            return 0
        # Upstream truncates, so float noise turns 20 ms into 19; rounding keeps 20.
        return _capped_chunk_ms(round((max(timestamps) - min(timestamps)) * 1e3), profile)
    if profile.get("platform") == "android":
        duration_ms = int(int(profile.get("duration_ns") or 0) * 1e-6)
        if profile.get("profiler_id") is not None:
            # Upstream bills Android trace chunks nothing (their "2.android-trace" version
            # matches no rule); they cover duration_ns of profiling like any chunk.
            return _capped_chunk_ms(duration_ms, profile)
        return duration_ms
    return 0


def _capped_chunk_ms(duration_ms: int, profile: JsonObject) -> int:
    if duration_ms > MAX_DURATION_CHUNK_MS:
        log.warning(
            "chunk %s spans %d ms, above the %d ms limit",
            profile.get("chunk_id"),
            duration_ms,
            MAX_DURATION_CHUNK_MS,
        )
        return MAX_DURATION_CHUNK_MS
    return duration_ms
