from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from profd.analysis.metadata import extract_metadata
from profd.formats import Kind
from profd.formats.outcome import DataCategory, Outcome, OutcomeRecord
from profd.pipeline.analyse import analyse_profile
from profd.pipeline.outcomes import OutcomeTracker
from profd.store import BlobStore, ProfileStore
from profd.store.profiles import decompress
from profd.store.records import ProfileFilter
from profd.store.sqlite import SqliteBackend


def test_the_tracker_records_outcomes_and_marks_the_project(tmp_path: Path) -> None:
    index = SqliteBackend(tmp_path / "i.sqlite3")
    project = index.create_project(index.create_organization("o").id, "p")
    tracker = OutcomeTracker(index)
    tracker.track_outcome(1, project.id, None, Outcome.ACCEPTED, category=DataCategory.PROFILE)
    tracker.track_outcome(
        1, project.id, None, Outcome.INVALID, "profiling_failed_normalization", category=DataCategory.PROFILE
    )
    counts = index.outcome_counts(project.id)
    assert [(c.outcome, c.reason, c.quantity) for c in counts] == [
        (Outcome.ACCEPTED, None, 1),
        (Outcome.INVALID, "profiling_failed_normalization", 1),
    ]
    assert index.project(project.id).has_profiles  # type: ignore[union-attr]


def test_profiles_are_stored_compressed_and_indexed_once(tmp_path: Path) -> None:
    index = SqliteBackend(tmp_path / "i.sqlite3")
    store = ProfileStore(BlobStore((tmp_path / "b").as_uri()), index)
    profile = {
        "version": "2",
        "platform": "python",
        "organization_id": 1,
        "project_id": 2,
        "received": 10,
        "chunk_id": "8e90c657-0a61-40b3-8583-f1be57512605",
        "profiler_id": "0463d1da1c634a3aa58c961939ae9583",
        "profile": {
            "samples": [
                {"timestamp": t, "stack_id": 0, "thread_id": "1"} for t in (100.0, 100.5, 101.0, 101.5)
            ],
            "stacks": [[0, 1]],
            "frames": [{"function": "work", "module": "app"}, {"function": "main", "module": "app"}],
        },
    }
    first = store.push(analyse_profile(profile, Kind.SAMPLE_V2, 90))
    again = store.push(analyse_profile(profile, Kind.SAMPLE_V2, 90))
    assert first == again and first is not None
    assert first.profile_id == "8e90c6570a6140b38583f1be57512605"
    assert (
        first.blob_key == "1/2/chunks/0463d1da1c634a3aa58c961939ae9583/8e90c657-0a61-40b3-8583-f1be57512605"
    )
    assert (first.start, first.end, first.duration_ns) == (100.0, 101.5, 1_500_000_000)
    assert index.profiles() == [first]
    assert store.load(first) == profile  # normalized in place before it was stored
    assert profile["profile"]["frames"][0]["in_app"] is True
    [work] = index.functions(2, first.profile_id)
    assert (work.function, work.package, work.sample_count, work.self_times_ns) == (
        "work",
        "app",
        3,
        [1_500_000_000],
    )
    raw = (tmp_path / "b" / first.blob_key).read_bytes()
    assert raw[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    assert b"python" in decompress(raw)


def test_unsampled_profiles_keep_only_their_functions(tmp_path: Path) -> None:
    index = SqliteBackend(tmp_path / "i.sqlite3")
    store = ProfileStore(BlobStore((tmp_path / "b").as_uri()), index)
    profile = {
        "version": "1",
        "platform": "python",
        "organization_id": 1,
        "project_id": 2,
        "received": 5,
        "sampled": False,
        "event_id": "41fed0925670468bb0457f61a74688ec",
        "transaction": {"name": "t", "id": "9a7e" * 8, "trace_id": "8bb0" * 8, "active_thread_id": 7},
        "profile": {
            "frames": [{"function": "f", "module": "app"}, {"function": "main", "module": "app"}],
            "stacks": [[0, 1]],
            "samples": [{"stack_id": 0, "thread_id": 7, "elapsed_since_start_ns": t} for t in (0, 10, 20)],
        },
    }
    metadata = store.push(analyse_profile(profile, Kind.SAMPLE_V1, 90))
    assert not metadata.sampled
    assert index.profiles() == []
    assert not list((tmp_path / "b").rglob("*"))
    assert [f.function for f in index.functions(2, metadata.profile_id)] == ["f"]


def test_v1_metadata_reads_the_transaction() -> None:
    profile = {
        "version": "1",
        "platform": "cocoa",
        "organization_id": 1,
        "project_id": 2,
        "received": 5,
        "event_id": "41FED092-5670-468B-B045-7F61A74688EC",
        "timestamp": "2024-03-20T18:15:03.629Z",
        "transaction": {
            "name": "t",
            "id": "9a7e" * 8,
            "trace_id": "8bb0" * 8,
            "relative_start_ns": 500500,
            "relative_end_ns": 50500500,
        },
        "device": {"classification": "high", "model": "iPhone14,3"},
        "os": {"name": "iOS", "version": "17"},
        "client_sdk": {"name": "sentry.cocoa", "version": "8.0.0"},
        "profile": {"samples": []},
    }
    meta = extract_metadata(profile, Kind.SAMPLE_V1, 90)
    assert meta.profile_id == "41fed0925670468bb0457f61a74688ec"
    assert meta.blob_key == "1/2/41fed0925670468bb0457f61a74688ec"
    assert meta.duration_ns == 50_000_000 and meta.start == 1710958503.629
    assert (meta.device_class, meta.os_name, meta.sdk_name, meta.retention_days) == (
        "high",
        "iOS",
        "sentry.cocoa",
        90,
    )


def test_retention_deletes_old_profiles_and_their_rows(tmp_path: Path) -> None:
    index = SqliteBackend(tmp_path / "i.sqlite3")
    blobs = BlobStore((tmp_path / "b").as_uri())
    store = ProfileStore(blobs, index)

    def chunk(chunk_id: str, start: float, retention: int) -> dict[str, object]:
        return {
            "version": "2",
            "platform": "python",
            "organization_id": 1,
            "project_id": 2,
            "received": 10,
            "retention_days": retention,
            "chunk_id": chunk_id,
            "profiler_id": "0463d1da1c634a3aa58c961939ae9583",
            "profile": {
                "samples": [{"timestamp": start + t, "stack_id": 0, "thread_id": "1"} for t in (0, 1, 2)],
                "stacks": [[0, 1]],
                "frames": [{"function": "work", "module": "app"}, {"function": "main", "module": "app"}],
            },
        }

    old = store.push(
        analyse_profile(chunk("8e90c6570a6140b38583f1be57512605", 1_000_000.0, 1), Kind.SAMPLE_V2, 90)
    )
    new = store.push(
        analyse_profile(chunk("8e90c6570a6140b38583f1be57512606", 1_000_000.0, 30), Kind.SAMPLE_V2, 90)
    )
    assert index.functions(2, old.profile_id)
    assert store.expire(now=1_000_000.0 + 2 * 86400) == 1
    assert index.profiles() == [new]
    assert index.functions(2, old.profile_id) == []
    assert [t.occurrences.tolist() for t in index.flame_trees(1, ProfileFilter())] == [
        [1, 1]
    ]  # the new one's
    assert not (tmp_path / "b" / old.blob_key).exists() and (tmp_path / "b" / new.blob_key).exists()
    assert store.expire(now=1_000_000.0 + 2 * 86400) == 0


def test_outcomes_expire_with_their_organizations_retention(tmp_path: Path) -> None:
    """Outcomes used to be kept for ever."""
    index = SqliteBackend(tmp_path / "i.sqlite3")
    store = ProfileStore(BlobStore((tmp_path / "b").as_uri()), index, default_retention_days=90)
    short = index.create_organization("short", retention_days=7)
    day = 86400.0
    now = 1_000 * day

    def outcome(org_id: int, age_days: float) -> OutcomeRecord:
        return OutcomeRecord(
            timestamp=datetime.fromtimestamp(now - age_days * day, UTC),
            org_id=org_id,
            project_id=1,
            key_id=None,
            outcome=Outcome.ACCEPTED,
            reason=None,
            event_id=None,
            category=DataCategory.PROFILE,
            quantity=1,
        )

    index.record_outcomes([outcome(short.id, 8), outcome(short.id, 6), outcome(99, 91), outcome(99, 89)])
    store.expire(now=now)
    left = [
        (org_id, round((now - bucket.bucket) / day))
        for org_id in (short.id, 99)
        for bucket in index.outcome_series(org_id, start=None, end=None, interval=86400)
    ]
    assert left == [(short.id, 6), (99, 89)]
