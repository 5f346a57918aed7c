"""profd on a Kafka bus, against a real broker (tansu on loopback): ingest produces, workers
in one consumer group store each profile once through rebalances, transient failures are
retried and then dead-lettered to ``<topic>-dlq``, the 429 check reads the group's lag, and
a broker that is down is a 503 with nothing counted."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from fastapi.testclient import TestClient

from profd.bus.dead_letters import dead_letters, redrive
from profd.bus.kafka import KafkaBus
from profd.bus.worker import CONSUMER_GROUP, DEAD_LETTER_TOPIC, Retries, Worker
from profd.errors import BackendUnavailable, Refused
from profd.formats.message import TOPIC, Headers
from profd.formats.outcome import DataCategory, Outcome
from profd.services import Services, open_services
from profd.settings import Settings
from profd.web.app import create_app
from profd.worker import pipeline_worker
from tests.bus.test_worker import run_until
from tests.ingest.test_endpoint import endpoint
from tests.kafka_broker import KafkaBroker, free_port

pytestmark = pytest.mark.kafka

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def fresh_topic() -> str:
    # The broker is shared by the session's tests: each test has topics of its own.
    return f"profiles-{uuid.uuid4().hex[:12]}"


def kafka_services(tmp_path: Path, url: str, **settings: object) -> Services:
    # The lag read fresh each time unless a test says otherwise, so that it sees each commit.
    chosen = {"bus_partitions": 2, "bus_lag_cache_seconds": 0, **settings}
    return open_services(Settings.load(data_dir=tmp_path / "data", bus_url=url, **chosen))


@pytest.fixture
def services_on_kafka(tmp_path: Path, kafka_broker: KafkaBroker) -> Iterator[Services]:
    services = kafka_services(tmp_path, kafka_broker.url(fresh_topic()))
    yield services
    services.close()


def envelope() -> tuple[bytes, str]:
    """An envelope of one profile chunk, and the chunk's id (its profile id once stored)."""
    chunk_id = uuid.uuid4().hex
    payload = json.dumps({**json.loads((EXAMPLES / "node-chunk.json").read_text()), "chunk_id": chunk_id})
    lines = [
        json.dumps({"event_id": uuid.uuid4().hex}),
        json.dumps({"type": "profile_chunk", "length": len(payload.encode())}),
        payload,
    ]
    return ("\n".join(lines) + "\n").encode(), chunk_id


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_bus_creates_the_topics_a_fresh_broker_lacks(kafka_broker: KafkaBroker) -> None:
    topic = fresh_topic()
    output = [f"{topic}-processed", f"{topic}-outcomes"]
    bus = KafkaBus(kafka_broker.url(topic), partitions=3, other_topics=output)
    try:
        assert sorted(bus.create_topics()) == sorted([topic, f"{topic}-dlq", *output])
        found = AdminClient({"bootstrap.servers": kafka_broker.address}).list_topics(timeout=5).topics
        for name in (topic, f"{topic}-dlq", *output):
            assert len(found[name].partitions) == 3
        # Another node starting on the same broker has nothing to create.
        other = KafkaBus(kafka_broker.url(topic), partitions=3, other_topics=output)
        assert other.create_topics() == []
        other.close()
    finally:
        bus.close()


def test_ingest_to_workers_stores_each_profile_once_through_rebalances(services_on_kafka: Services) -> None:
    """Two workers of one group; the second joins mid-stream and the first leaves mid-stream,
    each a rebalance.  Every profile ingest accepted is stored, and counted, once."""
    services = services_on_kafka
    ingest, sender = endpoint(services)
    sent: list[str] = []

    def send(count: int) -> None:
        for _ in range(count):
            data, chunk_id = envelope()
            ingest.accept(sender, data)
            sent.append(chunk_id)

    def stored() -> int:
        return len(services.reads.profiles(None, 1000))

    first, second = pipeline_worker(services), pipeline_worker(services)
    threads = [threading.Thread(target=w.run) for w in (first, second)]
    threads[0].start()
    try:
        send(6)
        threads[1].start()
        send(6)
        wait_for(lambda: stored() >= 8)
        first.stop()
        threads[0].join(30)
        send(6)
        wait_for(lambda: stored() == 18 and services.queue.pending(TOPIC, CONSUMER_GROUP) == 0)
    finally:
        for worker in (first, second):
            worker.stop()
        for thread in threads:
            thread.join(30)
    assert sorted(p.profile_id for p in services.reads.profiles(None, 1000)) == sorted(sent)
    chunk_outcomes = {
        (c.outcome, c.reason): c.times
        for c in services.reads.outcome_counts()
        if c.category is DataCategory.PROFILE_CHUNK
    }
    assert chunk_outcomes == {(Outcome.ACCEPTED, None): 18}


class FailsFor:
    """A handler whose backend is down for `doomed` always, and for the others' first try."""

    def __init__(self, doomed: bytes) -> None:
        self.doomed = doomed
        self.tried: set[bytes] = set()
        self.handled: list[bytes] = []

    def __call__(self, value: bytes, headers: Headers, message_id: str) -> None:
        first_try = value not in self.tried
        self.tried.add(value)
        if value == self.doomed or first_try:
            raise BackendUnavailable("blob store", "connection refused")
        self.handled.append(value)


def test_a_transient_failure_is_retried_then_dead_lettered_and_redriven(kafka_broker: KafkaBroker) -> None:
    topic = fresh_topic()
    bus = KafkaBus(kafka_broker.url(topic), partitions=2, lag_cache_seconds=0)
    try:
        bus.produce(TOPIC, b"doomed", [("sampled", b"true")])
        bus.produce(TOPIC, b"fine", [])
        handler, retried = FailsFor(b"doomed"), []
        worker = Worker(bus.consumer(CONSUMER_GROUP), handler, bus, Retries(3, 0.01), on_retry=retried.append)
        run_until(worker, lambda: bus.pending(TOPIC, CONSUMER_GROUP) == 0, timeout=60)
        assert bus.pending(TOPIC, CONSUMER_GROUP) == 0
        assert handler.handled == [b"fine"]
        assert retried.count("blob store") == 3  # fine once, doomed twice before its last try

        [letter] = dead_letters(bus)
        assert letter.source.startswith(f"{topic}/") and letter.attempts == 3 and letter.size == 6
        assert "blob store is unavailable" in letter.reason
        assert bus.pending(DEAD_LETTER_TOPIC, "profd-dlq-redrive") == 1
        assert redrive(bus) == 1
        assert dead_letters(bus) == [] and redrive(bus) == 0

        healed: list[tuple[bytes, Headers]] = []
        run_until(
            Worker(
                bus.consumer(CONSUMER_GROUP), lambda v, h, _: healed.append((v, h)), bus, Retries(2, 0.01)
            ),
            lambda: bus.pending(TOPIC, CONSUMER_GROUP) == 0 and bool(healed),
            timeout=60,
        )
        # Re-driven with its own headers, not the dead letter's.
        assert healed == [(b"doomed", [("sampled", b"true")])]
    finally:
        bus.close()


def test_the_queue_check_reads_the_groups_lag(tmp_path: Path, kafka_broker: KafkaBroker) -> None:
    services = kafka_services(tmp_path, kafka_broker.url(fresh_topic()), queue_max_depth=3)
    try:
        ingest, sender = endpoint(services)
        for _ in range(3):
            ingest.accept(sender, envelope()[0])
        with pytest.raises(Refused) as full:
            ingest.accept(sender, envelope()[0])
        assert full.value.status == 429 and full.value.headers["Retry-After"] == "5"
        limited = [c for c in services.reads.outcome_counts() if c.outcome is Outcome.RATE_LIMITED]
        assert [(c.reason, c.times) for c in limited] == [("queue_full", 1)]
    finally:
        services.close()


def test_the_lag_is_read_at_most_once_per_period(kafka_broker: KafkaBroker) -> None:
    bus = KafkaBus(kafka_broker.url(fresh_topic()), partitions=2, lag_cache_seconds=1.0)
    try:
        assert bus.pending(TOPIC, CONSUMER_GROUP) == 0
        bus.produce(TOPIC, b"one", [])
        assert bus.pending(TOPIC, CONSUMER_GROUP) == 0  # the read of a moment ago
        time.sleep(1.1)
        assert bus.pending(TOPIC, CONSUMER_GROUP) == 1
    finally:
        bus.close()


def post(client: TestClient, project_id: int, key: str) -> tuple[int, dict[str, str]]:
    response = client.post(
        f"/api/{project_id}/envelope/",
        content=envelope()[0],
        headers={"X-Sentry-Auth": f"Sentry sentry_key={key}"},
    )
    return response.status_code, dict(response.headers)


def test_a_broker_that_goes_down_is_a_503_and_nothing_is_counted(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "tansu.log")
    broker.start()
    # The lag is remembered for a minute, so the second envelope gets as far as producing.
    services = kafka_services(tmp_path, broker.url("profiles"), bus_ack_timeout=1.0, bus_lag_cache_seconds=60)
    try:
        _, project = services.default_project()
        key = services.directory.keys(project.id)[0].public_key
        client = TestClient(create_app(services))
        assert post(client, project.id, key)[0] == 200
        broker.stop()
        started = time.monotonic()
        status, headers = post(client, project.id, key)
        assert status == 503 and headers["retry-after"] == "10"
        assert time.monotonic() - started < 5  # bounded by bus_ack_timeout, not librdkafka's 5 minutes
        assert services.reads.outcome_counts() == []
    finally:
        broker.stop()
        services.close()


def test_a_broker_that_is_not_there_is_a_503_and_nothing_is_counted(tmp_path: Path) -> None:
    """Down from the start: the lag cannot be read, so nothing is produced."""
    url = f"kafka://127.0.0.1:{free_port()}?topic=profiles"
    services = kafka_services(tmp_path, url, bus_ack_timeout=1.0)
    try:
        _, project = services.default_project()
        key = services.directory.keys(project.id)[0].public_key
        status, headers = post(TestClient(create_app(services)), project.id, key)
        assert status == 503 and headers["retry-after"] == "10"
        assert services.reads.outcome_counts() == []
    finally:
        services.close()
