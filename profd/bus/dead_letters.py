"""The dead-letter topic: messages a worker gave up on because a backend stayed down.

Each keeps its original value and headers, plus where it came from (``dlq_source``), how
often it was tried (``dlq_attempts``) and the last error (``dlq_reason``).  An operator
lists them and, once the backend is back, sends them all back to the profiles topic; a
consumer group of its own marks how far that re-drive has got, so a letter is re-driven
once.  The topic is read through the bus's consumer like any other, so this works on the
local queue and on Kafka alike (where joining the group takes a few seconds).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

import msgspec
from arroyo.backends.abstract import Consumer
from arroyo.backends.kafka import KafkaPayload
from arroyo.types import BrokerValue, Partition, Topic

from profd.bus.protocol import Bus
from profd.bus.worker import DEAD_LETTER_TOPIC
from profd.errors import BackendUnavailable
from profd.formats.message import TOPIC

REDRIVE_GROUP = "profd-dlq-redrive"
_DLQ_HEADERS = ("dlq_source", "dlq_attempts", "dlq_reason")
# How long a consumer may take to join its group (Kafka: a few seconds with
# session.timeout.ms at 6 s), and how long the topic must stay quiet to count as read.
JOIN_TIMEOUT = 30.0
QUIET = 1.0


class DeadLetter(msgspec.Struct, frozen=True):
    offset: int
    dead_lettered: datetime
    source: str
    attempts: int
    reason: str
    size: int
    partition: int = 0


def dead_letters(bus: Bus, limit: int = 1000) -> list[DeadLetter]:
    """The letters not yet re-driven, oldest first (per partition).  Reads, commits nothing."""
    letters = []
    with _reading(bus) as consumer:
        for message in _unread(bus, consumer, limit):
            found = {
                name: data.decode(errors="replace")
                for name, data in message.payload.headers
                if name in _DLQ_HEADERS
            }
            letters.append(
                DeadLetter(
                    offset=message.offset,
                    dead_lettered=message.timestamp.replace(tzinfo=UTC)
                    if message.timestamp.tzinfo is None
                    else message.timestamp,
                    source=found.get("dlq_source", ""),
                    attempts=int(found.get("dlq_attempts") or 0),
                    reason=found.get("dlq_reason", ""),
                    size=len(message.payload.value),
                    partition=message.partition.index,
                )
            )
    return letters


def redrive(bus: Bus) -> int:
    """Send every letter not yet re-driven back to the profiles topic; returns how many.

    Produced first, committed after: a crash in between re-drives some twice, which the
    pipeline's idempotent store makes harmless (never once too few)."""
    sent = 0
    with _reading(bus) as consumer:
        batch: list[BrokerValue[KafkaPayload]] = []
        for message in _unread(bus, consumer, limit=None):
            batch.append(message)
            if len(batch) == 100:
                sent += _send_back(bus, consumer, batch)
                batch = []
        sent += _send_back(bus, consumer, batch)
    return sent


def _send_back(bus: Bus, consumer: Consumer[KafkaPayload], batch: list[BrokerValue[KafkaPayload]]) -> int:
    if not batch:
        return 0
    bus.produce_many(
        TOPIC,
        [(m.payload.value, [(n, d) for n, d in m.payload.headers if n not in _DLQ_HEADERS]) for m in batch],
    )
    consumer.stage_offsets({m.partition: m.next_offset for m in batch})
    consumer.commit_offsets()
    return len(batch)


@contextmanager
def _reading(bus: Bus) -> Iterator[Consumer[KafkaPayload]]:
    consumer = bus.consumer(REDRIVE_GROUP)
    try:
        yield consumer
    finally:
        consumer.close()


def _unread(
    bus: Bus, consumer: Consumer[KafkaPayload], limit: int | None
) -> Iterator[BrokerValue[KafkaPayload]]:
    """The group's unread letters: until `limit`, or until the group's lag is read, or until
    the topic has been quiet for `QUIET` seconds after the group was joined."""
    assigned: list[Mapping[Partition, int]] = []
    consumer.subscribe([Topic(DEAD_LETTER_TOPIC)], on_assign=assigned.append)
    expected = bus.pending(DEAD_LETTER_TOPIC, REDRIVE_GROUP)
    read = 0
    joined_by = time.monotonic() + JOIN_TIMEOUT
    quiet_since: float | None = None
    while limit is None or read < limit:
        message = consumer.poll(0.1)
        now = time.monotonic()
        if message is not None:
            read += 1
            quiet_since = None
            yield message
            continue
        if not assigned:
            if now > joined_by:
                raise BackendUnavailable("bus", f"could not join consumer group {REDRIVE_GROUP}")
            continue
        if read >= expected:
            return
        if quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= QUIET:
            return
