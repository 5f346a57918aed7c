from typing import Any

from profd.pipeline.duration import duration_category, profile_duration_ms
from profd.pipeline.outcomes import DataCategory


def v1(**transaction: Any) -> dict[str, Any]:
    samples = [
        {"stack_id": 0, "thread_id": 1, "elapsed_since_start_ns": t} for t in (35500500, 10500500, 20500500)
    ]
    return {"version": "1", "platform": "cocoa", "transaction": transaction, "profile": {"samples": samples}}


def v2(*timestamps: float) -> dict[str, Any]:
    samples = [{"stack_id": 0, "thread_id": "1", "timestamp": t} for t in timestamps]
    return {"version": "2", "platform": "python", "profile": {"samples": samples}}


def test_v1_uses_the_transaction_span() -> None:
    assert profile_duration_ms(v1(relative_start_ns=500500, relative_end_ns=50500500)) == 50


def test_v1_without_transaction_span_uses_sorted_samples() -> None:
    assert profile_duration_ms(v1()) == 25


def test_v1_numbers_may_be_strings() -> None:
    assert profile_duration_ms(v1(relative_start_ns="500500", relative_end_ns="50500500")) == 50


def test_v1_is_capped_at_30_seconds() -> None:
    assert profile_duration_ms(v1(relative_start_ns=0, relative_end_ns=50_000_000_000)) == 30_000


def test_v1_with_one_sample_has_no_duration() -> None:
    profile = v1()
    profile["profile"]["samples"] = profile["profile"]["samples"][:1]
    assert profile_duration_ms(profile) == 0


def test_v2_spans_its_samples() -> None:
    base = 1710958503.629
    assert profile_duration_ms(v2(base, base + 1, base + 2, base + 3)) == 3000


def test_v2_is_capped_at_66_seconds_whatever_the_sample_order() -> None:
    base = 1710958503.629
    assert profile_duration_ms(v2(base, base + 1, base + 300)) == 66_000
    assert profile_duration_ms(v2(base + 300, base, base + 1)) == 66_000


def test_v2_single_sample_is_zero() -> None:
    assert profile_duration_ms(v2(1710958503.629)) == 0


def test_android_legacy_uses_duration_ns() -> None:
    assert profile_duration_ms({"platform": "android", "duration_ns": 2020293488}) == 2020


def test_android_chunk_counts_its_duration() -> None:
    # Upstream gives Android trace chunks ("2.android-trace") no duration at all.
    chunk = {"platform": "android", "version": "2.android-trace", "profiler_id": "a" * 32, "duration_ns": 5e9}
    assert profile_duration_ms(chunk) == 5000


def test_unknown_shapes_have_no_duration() -> None:
    assert profile_duration_ms({"platform": "cocoa"}) == 0


def test_ui_platforms_are_billed_as_ui() -> None:
    assert duration_category({"platform": "cocoa"}) is DataCategory.PROFILE_DURATION_UI
    assert duration_category({"platform": "javascript"}) is DataCategory.PROFILE_DURATION_UI
    assert duration_category({"platform": "android"}) is DataCategory.PROFILE_DURATION_UI
    assert duration_category({"platform": "python"}) is DataCategory.PROFILE_DURATION
    assert duration_category({"platform": "node"}) is DataCategory.PROFILE_DURATION


def test_v2_rounds_float_noise() -> None:
    # Upstream's int() gives 19 here: 0.02 s between float timestamps is 19.99999... ms.
    assert profile_duration_ms(v2(1795684589.5, 1795684589.51, 1795684589.52)) == 20
