"""process_profile_task against the real embedded store (a SQLite file and a blob directory)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import msgspec
import pytest

from profd.formats import ProfileMessage, encode_message
from profd.formats.outcome import DataCategory, Outcome
from profd.pipeline.task import TaskRun, process_profile_task
from profd.services import Services

EVENT_ID = "41fed0925670468bb0457f61a74688ec"


def sample_v1(**overrides: Any) -> dict[str, Any]:
    profile = {
        "version": "1",
        "platform": "python",
        "event_id": EVENT_ID,
        "timestamp": "2026-11-26T10:00:00+00:00",
        "release": "demo@1.0.0",
        "environment": "dev",
        "device": {"architecture": "x86_64"},
        "os": {"name": "Linux", "version": "6.1"},
        "transaction": {
            "id": "9a7e" * 8,
            "name": "checkout",
            "trace_id": "8bb0" * 8,
            "active_thread_id": 1,
            "relative_start_ns": 0,
            "relative_end_ns": 40_000_000,
        },
        "profile": {
            "frames": [
                {"function": "main", "module": "__main__", "abs_path": "/srv/app.py", "lineno": 3},
                {"function": "work", "module": "__main__", "abs_path": "/srv/app.py", "lineno": 9},
            ],
            "stacks": [[1, 0], [0]],
            "samples": [
                {"stack_id": i % 2, "thread_id": 1, "elapsed_since_start_ns": i * 10_000_000}
                for i in range(5)
            ],
            "thread_metadata": {"1": {"name": "MainThread"}},
        },
    }
    profile.update(overrides)
    return profile


def sample_v2(**overrides: Any) -> dict[str, Any]:
    profile = {
        "version": "2",
        "platform": "node",
        "chunk_id": "8e90c6570a6140b38583f1be57512605",
        "profiler_id": "0463d1da1c634a3aa58c961939ae9583",
        "client_sdk": {"name": "sentry.javascript.node", "version": "11.1.0"},
        "profile": {
            "frames": [{"function": "fib", "abs_path": "/srv/prof.js", "lineno": 4, "colno": 2}],
            "stacks": [[0]],
            "samples": [
                {"stack_id": 0, "thread_id": "0", "timestamp": 1795684589.5 + i * 0.01} for i in range(3)
            ],
        },
    }
    profile.update(overrides)
    return profile


def message(
    services: Services, profile: Any, *, project_id: int | None = None, raw: bytes | None = None
) -> bytes:
    organization, project = services.default_project()
    payload = raw if raw is not None else json.dumps(profile).encode()
    return encode_message(
        ProfileMessage(
            organization_id=organization.id,
            project_id=project.id if project_id is None else project_id,
            received=1795684590,
            payload=payload,
        )
    )


def run(services: Services, profile: Any = None, sampled: bool = True, **kwargs: Any) -> TaskRun:
    return process_profile_task(
        message(services, profile, **kwargs), sampled, context=services.task_context()
    )


def summary(task: TaskRun) -> list[tuple[Outcome, str | None, DataCategory]]:
    return [(o.outcome, o.reason, o.category) for o in task.outcomes]


def test_an_accepted_profile_is_stored_and_counted(services: Services) -> None:
    task = run(services, sample_v1())
    assert summary(task) == [
        (Outcome.ACCEPTED, None, DataCategory.PROFILE_DURATION),
        (Outcome.ACCEPTED, None, DataCategory.PROFILE),
        (Outcome.ACCEPTED, None, DataCategory.PROFILE_INDEXED),
    ]
    assert task.outcomes[0].quantity == 40 and task.outcomes[0].event_id is None
    assert task.outcomes[1].event_id == EVENT_ID
    metadata = services.reads.profile(1, EVENT_ID)
    assert metadata is not None and metadata.transaction_name == "checkout"
    stored = services.profiles.load(metadata)
    assert stored["organization_id"] == 1 and stored["project_id"] == 1 and stored["sampled"] is True
    assert stored["normalized"] is True and stored["retention_days"] == 90
    assert [f["platform"] for f in stored["profile"]["frames"]] == ["python", "python"]
    assert services.directory.project(1).has_profiles  # type: ignore[union-attr]


def test_a_chunk_is_stored_under_its_profiler(services: Services) -> None:
    task = run(services, sample_v2())
    assert summary(task) == [
        (Outcome.ACCEPTED, None, DataCategory.PROFILE_DURATION),
        (Outcome.ACCEPTED, None, DataCategory.PROFILE_CHUNK),
    ]
    assert task.outcomes[0].quantity == 20
    metadata = services.reads.profile(1, "8e90c6570a6140b38583f1be57512605")
    assert metadata is not None
    assert metadata.blob_key == "1/1/chunks/0463d1da1c634a3aa58c961939ae9583/8e90c6570a6140b38583f1be57512605"


def test_processing_twice_keeps_one_copy(services: Services) -> None:
    run(services, sample_v1())
    run(services, sample_v1())
    assert len(services.reads.profiles()) == 1
    files = [p for p in (services.settings.data_dir / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 1


def test_unsampled_profiles_are_dropped_unless_enabled(services: Services) -> None:
    task = run(services, sample_v1(), sampled=False)
    assert task.outcomes == [] and services.reads.profiles() == []
    context = dataclasses.replace(services.task_context(), unsampled_profiles_enabled=True)
    task = process_profile_task(message(services, sample_v1()), False, context=context)
    assert summary(task) == [
        (Outcome.ACCEPTED, None, DataCategory.PROFILE),
        (Outcome.FILTERED, "sampled", DataCategory.PROFILE_INDEXED),
    ]
    assert services.reads.profiles() == []  # kept for metrics only, never stored


BAD_INPUTS = {
    "truncated JSON": (b'{"version": "1", "platform": "py', "profiling_invalid_json"),
    "not an object": (b"[1, 2]", "profiling_invalid_json"),
    "wrong types": (json.dumps(sample_v1(device={"architecture": 5})).encode(), "profiling_invalid_json"),
    "stack index out of range": (
        json.dumps(sample_v1(profile={**sample_v1()["profile"], "stacks": [[0, 7], [0]]})).encode(),
        "profiling_malformed_stacks",
    ),
    "sample stack out of range": (
        json.dumps(sample_v1(profile={**sample_v1()["profile"], "stacks": []})).encode(),
        "profiling_malformed_samples",
    ),
    "unknown platform": (
        json.dumps({**sample_v1(), "version": None, "platform": "cobol"}).encode(),
        "profiling_platform_not_supported",
    ),
    "event id is a path": (json.dumps(sample_v1(event_id="../../etc")).encode(), "profiling_invalid_json"),
    "empty profile": (b"{}", "profiling_platform_not_supported"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_profiles_become_one_invalid_outcome(services: Services, case: str, caplog: Any) -> None:
    raw, reason = BAD_INPUTS[case]
    run(services, sample_v1())
    stored_before = services.reads.profiles()
    task = run(services, raw=raw)
    assert {o.outcome for o in task.outcomes} == {Outcome.INVALID}
    assert {o.reason for o in task.outcomes} == {reason}
    assert [o.category for o in task.outcomes] == [DataCategory.PROFILE, DataCategory.PROFILE_INDEXED]
    assert reason in caplog.text
    assert services.reads.profiles() == stored_before


def test_a_huge_profile_is_refused_by_size(services: Services) -> None:
    big = sample_v1()
    big["profile"]["frames"][0]["function"] = "x" * (50 * 1024 * 1024)
    task = run(services, big)
    assert summary(task) == [
        (Outcome.INVALID, "profiling_exceed_size_limit", DataCategory.PROFILE),
        (Outcome.INVALID, "profiling_exceed_size_limit", DataCategory.PROFILE_INDEXED),
    ]


def test_garbage_messages_are_counted_too(services: Services) -> None:
    task = process_profile_task(b"\x00not msgpack", context=services.task_context())
    assert summary(task) == [
        (Outcome.INVALID, "payload", DataCategory.PROFILE),
        (Outcome.INVALID, "payload", DataCategory.PROFILE_INDEXED),
    ]
    assert services.reads.outcome_counts()[0].reason == "payload"


def test_unknown_project_is_invalid(services: Services) -> None:
    task = run(services, sample_v1(), project_id=999)
    assert {(o.outcome, o.reason) for o in task.outcomes} == {(Outcome.INVALID, "project_id")}
    assert services.reads.profiles() == []


def test_a_failing_chunk_is_counted_as_a_chunk(services: Services) -> None:
    chunk = sample_v2()
    chunk["profile"]["stacks"] = [[3]]
    assert summary(run(services, chunk)) == [
        (Outcome.INVALID, "profiling_malformed_stacks", DataCategory.PROFILE_CHUNK)
    ]


class Exploding:
    def symbolicate(self, scope: Any, request: Any) -> Any:
        raise RuntimeError("symbolicator crashed")

    symbolicate_js = symbolicate_jvm = symbolicate


class BrokenStore:
    def push(self, processed: Any) -> None:
        raise OSError("disk full")


def cocoa_profile() -> dict[str, Any]:
    return sample_v1(
        platform="cocoa",
        debug_meta={"images": [{"type": "macho", "debug_id": "d" * 32}]},
        device={"architecture": "arm64e", "model": "iPhone14,3", "is_emulator": False},
        os={"name": "iOS", "version": "17.0", "build_number": "21A"},
    )


@pytest.mark.parametrize(
    ("profile", "change", "reason"),
    [
        (cocoa_profile, {"symbolicator": Exploding()}, "profiling_failed_symbolication"),
        (
            lambda: {
                "platform": "android",
                "profile_id": EVENT_ID,
                "build_id": "6dc7fdb0-d2fb-4c8e-9d6b-bb1aa98929b1",
                "profile": {"methods": [{"id": 0, "name": "a"}], "events": []},
            },
            {"symbolicator": Exploding()},
            "profiling_failed_deobfuscation",
        ),
        (sample_v1, {"store": BrokenStore()}, "profiling_failed_vroom_insertion"),
    ],
)
def test_each_failing_stage_has_its_reason(
    services: Services, profile: Any, change: Any, reason: str
) -> None:
    context = dataclasses.replace(services.task_context(), **change)
    task = process_profile_task(message(services, profile()), context=context)
    assert {(o.outcome, o.reason) for o in task.outcomes} == {(Outcome.INVALID, reason)}
    counts = {(c.reason, c.category) for c in services.reads.outcome_counts()}
    assert (reason, DataCategory.PROFILE_INDEXED) in counts


def test_normalization_failure_has_its_reason(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(profile: Any, retention_days: int) -> None:
        raise KeyError("device")

    monkeypatch.setattr("profd.pipeline.normalize.normalize_profile", broken)
    task = run(services, cocoa_profile())
    assert {(o.outcome, o.reason) for o in task.outcomes} == {
        (Outcome.INVALID, "profiling_failed_normalization")
    }
    assert services.reads.profiles() == []


def test_analysis_failure_is_vroom_insertion(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    # vroom normalizes and builds call trees as it inserts: a failure there is an insertion's.
    def broken(profile: Any, kind: Any, default_retention_days: int) -> None:
        raise IndexError("stack")

    monkeypatch.setattr("profd.pipeline.analyse.analyse_profile", broken)
    task = run(services, sample_v1())
    assert {(o.outcome, o.reason) for o in task.outcomes} == {
        (Outcome.INVALID, "profiling_failed_vroom_insertion")
    }
    assert services.reads.profiles() == []


def test_the_worker_goes_on_after_a_failure(services: Services) -> None:
    outcomes = [run(services, raw=b"{").outcomes[0].outcome, run(services, sample_v1()).outcomes[-1].outcome]
    assert outcomes == [Outcome.INVALID, Outcome.ACCEPTED]


def test_outcomes_survive_a_restart(services: Services, tmp_path: Any) -> None:
    run(services, sample_v1())
    run(services, raw=b"nope")
    services.reads.close()
    from profd.services import open_reads

    reopened = open_reads(services.settings.index_url)
    counts = {(c.outcome, c.reason, c.category): c.quantity for c in reopened.outcome_counts()}
    reopened.close()
    assert counts[(Outcome.ACCEPTED, None, DataCategory.PROFILE_INDEXED)] == 1
    assert counts[(Outcome.INVALID, "profiling_invalid_json", DataCategory.PROFILE)] == 1


def test_a_bus_message_from_relay_is_processed(services: Services) -> None:
    # Relay's own message (sentry-kafka-schemas example): org 1, project 2.
    from tests.conftest import shared_file

    raw = shared_file("fixtures/sdk/kafka-profiles-example.msgpack").read_bytes()
    organization, _ = services.default_project()
    services.directory.create_project(organization.id, "second")
    task = process_profile_task(raw, context=services.task_context())
    assert summary(task)[-1] == (Outcome.ACCEPTED, None, DataCategory.PROFILE_INDEXED)
    metadata = services.reads.profile(2, "f8936d284c98435a8761a72eaab29b76")
    assert metadata is not None and metadata.platform == "python"
    assert msgspec.json.decode(msgspec.json.encode(services.profiles.load(metadata)))["project_id"] == 2
