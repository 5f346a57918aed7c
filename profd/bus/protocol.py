"""What the rest of profd needs from a bus, whichever carries the messages.

Ingest produces and asks how far the workers are behind (the 429 check), the worker
consumes through Arroyo's `Consumer` and dead-letters with `produce`, `profd dlq` reads the
dead-letter topic with a consumer group of its own, and readiness reads the lag.  The local
queue (`profd.bus.sqlite_queue.SqliteQueue`) and Kafka (`profd.bus.kafka.KafkaBus`) both
satisfy this; neither names it, the type checker matches them by shape.

Every method raises `profd.errors.BackendUnavailable` when the bus cannot do it now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from arroyo.backends.abstract import Consumer
from arroyo.backends.kafka import KafkaPayload

from profd.formats.message import Headers


class Bus(Protocol):
    def produce(self, topic: str, value: bytes, headers: Headers) -> int:
        """Write one message and return once the bus holds it; returns its offset."""
        ...

    def produce_many(self, topic: str, messages: Sequence[tuple[bytes, Headers]]) -> list[int]:
        """Write messages and return once the bus holds them all; returns their offsets."""
        ...

    def pending(self, topic: str, group: str) -> int:
        """Messages of `topic` the consumer group has not committed yet (its lag)."""
        ...

    def consumer(self, group: str) -> Consumer[KafkaPayload]:
        """A member of the consumer group `group`, not yet subscribed."""
        ...

    def close(self) -> None: ...
