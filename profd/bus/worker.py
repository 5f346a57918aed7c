"""The worker loop: messages from the bus through a handler, then committed.

Arroyo's strategies, as in Sentry's profiles consumer: run the handler on each message,
then commit its offset.  The bus knows nothing of what the handler does (the command that
starts a worker wires in `process_profile_task`).  Fault semantics:

- A message is committed only once the handler is done with it, so a crash before that
  means it is handled again, which the idempotent store and outcome keys make harmless.
- A backend that is down (`BackendUnavailable`) is retried with exponential backoff, the
  message held meanwhile; after `max_attempts` it is moved to the dead-letter topic with
  the reason and committed, so one message cannot stall the queue for ever.  `profd dlq
  retry` sends dead letters back.
- Bad input never reaches here as an exception: the handler counts it as INVALID.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from arroyo.backends.abstract import Consumer
from arroyo.backends.kafka import KafkaPayload
from arroyo.commit import IMMEDIATE, CommitPolicy
from arroyo.processing import StreamProcessor
from arroyo.processing.strategies import (
    CommitOffsets,
    MessageRejected,
    ProcessingStrategy,
    ProcessingStrategyFactory,
    RunTask,
)
from arroyo.types import BrokerValue, Commit, Message, Partition, Topic

from profd.errors import BackendUnavailable
from profd.formats.message import TOPIC, Headers

log = logging.getLogger(__name__)

CONSUMER_GROUP = "profd-profiles"
DEAD_LETTER_TOPIC = f"{TOPIC}-dlq"

# (value, headers, message id) -> None; the id ("topic/partition/offset") is the message's
# identity on the bus, from which the handler derives idempotency keys.
Handler = Callable[[bytes, Headers, str], None]


class DeadLetterProducer(Protocol):
    def produce(self, topic: str, value: bytes, headers: Headers) -> int: ...


@dataclass(frozen=True)
class Retries:
    """How long a message waits for a backend: `max_attempts` tries, the waits between them
    doubling from `backoff` seconds up to `max_backoff`."""

    max_attempts: int = 8
    backoff: float = 0.5
    max_backoff: float = 30.0

    def wait(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


class HandleMessages(ProcessingStrategyFactory[KafkaPayload]):
    def __init__(
        self,
        handle: Handler,
        dead_letters: DeadLetterProducer,
        retries: Retries,
        stopping: threading.Event,
        on_retry: Callable[[str], None] = lambda _: None,
        on_dead_letter: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.handle = handle
        self.dead_letters = dead_letters
        self.retries = retries
        self.stopping = stopping
        self.on_retry = on_retry
        self.on_dead_letter = on_dead_letter

    def process(self, message: Message[KafkaPayload]) -> None:
        payload = message.payload
        identity = message_id(message)
        attempt = 1
        while True:
            try:
                self.handle(payload.value, list(payload.headers), identity)
                return
            except BackendUnavailable as e:
                if attempt >= self.retries.max_attempts:
                    self._dead_letter(payload, identity, attempt, e)
                    return
                wait = self.retries.wait(attempt)
                log.warning("message %s, attempt %d: %s; retrying in %.1f s", identity, attempt, e, wait)
                self.on_retry(e.backend)
                if self.stopping.wait(wait):
                    # Shutting down: leave the message uncommitted for the next worker.
                    raise MessageRejected() from e
                attempt += 1

    def _dead_letter(
        self, payload: KafkaPayload, identity: str, attempt: int, error: BackendUnavailable
    ) -> None:
        log.error("message %s dead-lettered after %d attempts: %s", identity, attempt, error)
        headers = [
            *payload.headers,
            ("dlq_source", identity.encode()),
            ("dlq_attempts", str(attempt).encode()),
            ("dlq_reason", str(error).encode()[:1000]),
        ]
        # If even the dead-letter topic is down, this raises and nothing is committed.
        self.dead_letters.produce(DEAD_LETTER_TOPIC, payload.value, headers)
        self.on_dead_letter(error.backend)

    def create_with_partitions(
        self, commit: Commit, partitions: Mapping[Partition, int]
    ) -> ProcessingStrategy[KafkaPayload]:
        return RunTask(self.process, CommitOffsets(commit))


def message_id(message: Message[KafkaPayload]) -> str:
    value = message.value
    if isinstance(value, BrokerValue):
        return f"{value.partition.topic.name}/{value.partition.index}/{value.offset}"
    return f"{TOPIC}/?/{id(message)}"


class Worker:
    """A stream processor over `consumer`, and the event that stops its backoff waits."""

    def __init__(
        self,
        consumer: Consumer[KafkaPayload],
        handle: Handler,
        dead_letters: DeadLetterProducer,
        retries: Retries | None = None,
        on_retry: Callable[[str], None] = lambda _: None,
        on_dead_letter: Callable[[str], None] = lambda _: None,
        commit_policy: CommitPolicy = IMMEDIATE,
    ) -> None:
        self.stopping = threading.Event()
        factory = HandleMessages(
            handle, dead_letters, retries or Retries(), self.stopping, on_retry, on_dead_letter
        )
        # Only what the handler finished is ever committed; the policy says how many such
        # offsets are committed at once (IMMEDIATE: each, so a crash repeats one message).
        self.processor = StreamProcessor(consumer, Topic(TOPIC), factory, commit_policy=commit_policy)

    def run(self) -> None:
        self.processor.run()

    def stop(self) -> None:
        self.stopping.set()
        self.processor.signal_shutdown()
