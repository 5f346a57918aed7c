from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from arroyo.types import Partition, Topic

from profd.bus.sqlite_queue import SqliteQueue
from profd.bus.worker import CONSUMER_GROUP
from profd.formats import encode_message
from profd.formats.message import message_headers
from profd.ingest.submit import file_item, to_message
from profd.services import Services
from profd.worker import pipeline_worker

TOPIC = Topic("profiles")


def test_messages_survive_a_new_connection_and_commits_are_kept(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "bus.sqlite3")
    for i in range(3):
        assert queue.produce("profiles", f"m{i}".encode(), [("sampled", b"true")]) == i
    consumer = queue.consumer("g")
    consumer.subscribe([TOPIC])
    first = consumer.poll(0.1)
    assert (
        first is not None and first.payload.value == b"m0" and first.payload.headers == [("sampled", b"true")]
    )
    consumer.stage_offsets({Partition(TOPIC, 0): first.next_offset})
    consumer.commit_offsets()
    queue.close()

    reopened = SqliteQueue(tmp_path / "bus.sqlite3")
    assert reopened.pending("profiles", "g") == 2
    consumer = reopened.consumer("g")
    consumer.subscribe([TOPIC])
    values = [consumer.poll(0.1) for _ in range(3)]
    assert [v.payload.value for v in values if v] == [b"m1", b"m2"]
    assert values[2] is None


def test_offsets_keep_growing_after_pruning(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "bus.sqlite3")
    queue.produce("profiles", b"a", [])
    queue.commit("g", {"profiles": 1})
    assert queue.pending("profiles", "g") == 0
    assert queue.produce("profiles", b"b", []) == 1  # never reuses a committed offset


def test_poll_wakes_up_when_a_message_arrives(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "bus.sqlite3")
    consumer = queue.consumer("g")
    consumer.subscribe([TOPIC])
    assert consumer.poll(0.01) is None
    threading.Timer(0.05, queue.produce, ("profiles", b"late", [])).start()
    message = consumer.poll(5.0)
    assert message is not None and message.payload.value == b"late"


def test_pause_and_unknown_partitions(tmp_path: Path) -> None:
    from arroyo.errors import ConsumerError

    queue = SqliteQueue(tmp_path / "bus.sqlite3")
    queue.produce("profiles", b"a", [])
    consumer = queue.consumer("g")
    consumer.subscribe([TOPIC])
    consumer.poll(0)
    consumer.pause([Partition(TOPIC, 0)])
    assert consumer.paused() == [Partition(TOPIC, 0)]
    with pytest.raises(ConsumerError):
        consumer.pause([Partition(Topic("other"), 0)])


def test_the_worker_processes_and_commits_through_arroyo(tmp_path: Path, services: Services) -> None:
    organization, project = services.default_project()
    queue = services.queue
    example = (Path(__file__).resolve().parents[2] / "examples" / "node-chunk.json").read_bytes()
    message = to_message(
        file_item(example), organization_id=organization.id, project_id=project.id, received=1
    )
    queue.produce("profiles", encode_message(message), message_headers(message, sampled=True))
    queue.produce("profiles", b"garbage", [])
    processor = pipeline_worker(services)
    thread = threading.Thread(target=processor.run)
    thread.start()
    deadline = time.monotonic() + 20
    while queue.pending("profiles", CONSUMER_GROUP) and time.monotonic() < deadline:
        time.sleep(0.05)
    processor.stop()
    thread.join(10)
    assert queue.pending("profiles", CONSUMER_GROUP) == 0
    assert [m.platform for m in services.reads.profiles()] == ["node"]
    assert ("payload", 1) in {(c.reason, c.times) for c in services.reads.outcome_counts()}


def test_a_message_handled_again_after_a_crash_counts_once(services: Services) -> None:
    """A worker killed between storing a profile and committing its offset: the next worker
    gets the same message again, and the index keeps one profile and one set of outcomes."""
    from profd.pipeline.task import process_profile_task

    organization, project = services.default_project()
    example = (Path(__file__).resolve().parents[2] / "examples" / "node-chunk.json").read_bytes()
    message = to_message(
        file_item(example), organization_id=organization.id, project_id=project.id, received=1
    )
    value = encode_message(message)
    [offset] = services.queue.produce_many("profiles", [(value, message_headers(message, sampled=True))])
    # The first worker's whole task, then -9 before the commit: nothing committed.
    first = process_profile_task(value, context=services.task_context(), message_id=f"profiles/0/{offset}")
    assert first.outcomes and services.queue.pending("profiles", CONSUMER_GROUP) == 1
    counted = services.reads.outcome_counts()
    processor = pipeline_worker(services)
    thread = threading.Thread(target=processor.run)
    thread.start()
    deadline = time.monotonic() + 20
    while services.queue.pending("profiles", CONSUMER_GROUP) and time.monotonic() < deadline:
        time.sleep(0.05)
    processor.stop()
    thread.join(10)
    assert services.queue.pending("profiles", CONSUMER_GROUP) == 0
    assert [p.profile_id for p in services.reads.profiles()] == [message_profile_id(value)]
    assert services.reads.outcome_counts() == counted


def message_profile_id(value: bytes) -> str:
    import json

    from profd.formats import decode_message

    return str(json.loads(decode_message(value).payload)["chunk_id"])
