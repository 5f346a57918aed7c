"""The Bus protocol's conformance suite: the local SQLite queue and Kafka (a real tansu
broker on loopback, two partitions per topic) must behave alike for what profd relies on:
messages come back as they were produced, a group's commits are kept, what a group did not
commit is read again by its next member, and the lag counts what is not committed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from arroyo.backends.abstract import Consumer
from arroyo.backends.kafka import KafkaPayload
from arroyo.types import BrokerValue, Topic

from profd.bus.protocol import Bus
from profd.formats.message import TOPIC
from profd.services import open_bus
from profd.settings import Settings, sqlite_url
from tests.kafka_broker import KafkaBroker

HEADERS = [("sampled", b"true"), ("project_id", b"7")]


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=pytest.mark.kafka)])
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bus]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "bus.sqlite3")
    else:
        broker: KafkaBroker = request.getfixturevalue("kafka_broker")
        # Topics of its own: the broker is shared by the session's tests.
        url = broker.url(f"profiles-{uuid.uuid4().hex[:12]}")
    # The lag read fresh each time, so that the tests see each commit at once.
    opened = open_bus(url, Settings(bus_partitions=2, bus_lag_cache_seconds=0))
    yield opened
    opened.close()


def subscribed(bus: Bus, group: str) -> Consumer[KafkaPayload]:
    consumer = bus.consumer(group)
    consumer.subscribe([Topic(TOPIC)])
    return consumer


def read(
    consumer: Consumer[KafkaPayload], count: int, timeout: float = 30.0
) -> list[BrokerValue[KafkaPayload]]:
    """`count` messages (a Kafka consumer first joins its group, a few seconds), then makes
    sure no more come."""
    found: list[BrokerValue[KafkaPayload]] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None:
            found.append(message)
    assert len(found) == count, f"read {len(found)} messages of {count}"
    quiet = time.monotonic() + 1.0
    while time.monotonic() < quiet:
        assert consumer.poll(0.2) is None, "more messages than were produced"
    return found


def produce(bus: Bus, count: int) -> list[bytes]:
    # One at a time: tansu reports a partition's high watermark as its last *batch's* first
    # offset + 1, so the lag of a many-message batch would read low (a real Kafka counts
    # records).  One message, one batch, and both agree.
    values = [f"message {i} {uuid.uuid4().hex}".encode() for i in range(count)]
    for value in values:
        bus.produce(TOPIC, value, HEADERS)
    return values


def test_a_message_comes_back_as_it_was_produced(bus: Bus) -> None:
    values = produce(bus, 5)
    consumer = subscribed(bus, "g")
    try:
        found = read(consumer, 5)
    finally:
        consumer.close()
    assert sorted(m.payload.value for m in found) == sorted(values)
    assert all(list(m.payload.headers) == HEADERS for m in found)
    assert all(m.partition.topic.name.startswith(TOPIC) for m in found)


def test_produce_many_returns_once_every_message_is_held(bus: Bus) -> None:
    offsets = bus.produce_many(TOPIC, [(b"a", HEADERS), (b"b", HEADERS), (b"c", HEADERS)])
    assert len(offsets) == 3 and all(offset >= 0 for offset in offsets)
    assert bus.produce_many(TOPIC, []) == []
    consumer = subscribed(bus, "g")
    try:
        found = read(consumer, 3)
    finally:
        consumer.close()
    assert sorted(m.offset for m in found) == sorted(offsets)


def test_what_a_group_did_not_commit_is_read_again_by_its_next_member(bus: Bus) -> None:
    produce(bus, 6)
    first = subscribed(bus, "workers")
    try:
        found = read(first, 6)
        # Commit one partition's messages; a member "dies" with the rest uncommitted.
        kept = found[0].partition
        done = [m for m in found if m.partition == kept]
        first.stage_offsets({kept: max(m.next_offset for m in done)})
        first.commit_offsets()
    finally:
        first.close()
    second = subscribed(bus, "workers")
    try:
        again = read(second, 6 - len(done))
    finally:
        second.close()
    assert {m.payload.value for m in again} == {m.payload.value for m in found} - {
        m.payload.value for m in done
    }


def test_the_lag_counts_what_the_group_has_not_committed(bus: Bus) -> None:
    assert bus.pending(TOPIC, "workers") == 0
    produce(bus, 4)
    assert bus.pending(TOPIC, "workers") == 4
    consumer = subscribed(bus, "workers")
    try:
        found = read(consumer, 4)
        last: dict[object, int] = {}
        for message in found:
            last[message.partition] = max(last.get(message.partition, 0), message.next_offset)
        consumer.stage_offsets({found[0].partition: last[found[0].partition]})
        consumer.commit_offsets()
        committed_first = sum(1 for m in found if m.partition == found[0].partition)
        assert bus.pending(TOPIC, "workers") == 4 - committed_first
        consumer.stage_offsets({m.partition: last[m.partition] for m in found})
        consumer.commit_offsets()
    finally:
        consumer.close()
    assert bus.pending(TOPIC, "workers") == 0
