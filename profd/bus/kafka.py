"""The bus on Kafka: ingest produces Relay's messages, workers form one consumer group.

``kafka://host:port[,host:port]?topic=profiles`` names the brokers and the profiles topic;
its dead letters go to ``<topic>-dlq``.  Messages go through Arroyo's `KafkaProducer` and
are read through Arroyo's `KafkaConsumer` (confluent-kafka underneath), so the worker runs
the same strategies as on the local queue.

Produce: a message is keyed by a hash of its bytes, so one project's profiles spread over
the partitions, and an envelope an SDK sends again lands where the first copy did.
`produce_many` returns only once the broker acknowledged every message; a broker that does
not answer within `ack_timeout`, or a producer queue that is full, is `BackendUnavailable`
(ingest answers 503 and counts nothing).  librdkafka gives up on a message at the same
moment (``message.timeout.ms``), so a message ingest gave up on is not written later.

Topics: the profiles topic, its dead-letter topic and the topics workers write for Sentry's
storage are created, with `partitions` partitions each, the first time the broker is
reached (a worker as it starts, ingest with its first envelope), so a fresh broker needs no
manual step; a broker that is down then is asked again on the next call.

Lag: the 429 check and readiness read the group's lag (high watermarks minus committed
offsets, from the admin API) at most once per `lag_cache_seconds`; a failed read is
remembered as long, so a broker that is down costs one timeout per period, not one per
request.

Why a rebalance never loses a message or counts one twice:

- A worker commits an offset only after its handler returned, and the handler returns
  only once the profile is stored and its outcomes recorded (profd.bus.worker).  Arroyo
  commits what is done before a partition is revoked, and a partition taken from a worker
  that died or was evicted restarts at its last commit: nothing uncommitted is skipped.
- What was done but not yet committed (at most one commit batch) is handled again by the
  partition's next owner.  That costs nothing twice: blobs are written create-if-absent,
  index rows are keyed by profile id, and each outcome's idempotency key is the message's
  identity ``topic/partition/offset`` plus the outcome's ordinal (profd.bus.worker's
  `message_id`, profd.pipeline.task), which is the same whichever worker reads it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from arroyo.backends.kafka import KafkaConsumer, KafkaPayload, KafkaProducer
from arroyo.backends.kafka.configuration import (
    build_kafka_configuration,
    build_kafka_consumer_configuration,
)
from arroyo.types import BrokerValue, Partition, Topic
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec
from confluent_kafka.cimpl import NewTopic

from profd.errors import BackendUnavailable
from profd.formats.message import TOPIC, Headers

log = logging.getLogger(__name__)

SCHEME = "kafka"
# Without it a group join waits for the broker's default session (about 23 s with tansu).
SESSION_TIMEOUT_MS = 6000
# Relay's messages carry the expanded profile (up to `max_profile_size`, 50 MiB).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class BadKafkaUrl(ValueError):
    """A ``kafka://`` URL that names no broker."""


@dataclass(frozen=True)
class KafkaUrl:
    brokers: tuple[str, ...]
    topic: str

    @classmethod
    def parse(cls, url: str) -> KafkaUrl:
        parts = urlsplit(url)
        brokers = tuple(b.strip() for b in parts.netloc.split(",") if b.strip())
        if parts.scheme.lower() != SCHEME or not brokers:
            raise BadKafkaUrl(f"{url!r} is not a Kafka URL: kafka://host:port[,host:port]?topic=profiles")
        topic = parse_qs(parts.query).get("topic", [TOPIC])[-1]
        return cls(brokers, topic)


class _GroupConsumer(KafkaConsumer):
    """Arroyo's consumer, subscribing to the bus's names for the topics profd asks for."""

    def __init__(self, configuration: Mapping[str, object], topic_name: Callable[[str], str]) -> None:
        super().__init__(configuration)
        self._topic_name = topic_name

    def subscribe(
        self,
        topics: Sequence[Topic],
        on_assign: Callable[[Mapping[Partition, int]], None] | None = None,
        on_revoke: Callable[[Sequence[Partition]], None] | None = None,
    ) -> None:
        named = [Topic(self._topic_name(topic.name)) for topic in topics]
        super().subscribe(named, on_assign, on_revoke)


class _Cached:
    """A value, or the error that came instead, until it expires."""

    def __init__(self, value: int | BackendUnavailable, expires: float) -> None:
        self.value = value
        self.expires = expires


class KafkaBus:
    """The topics of one Kafka cluster.  Thread-safe: ingest produces from many threads."""

    def __init__(
        self,
        url: str,
        *,
        partitions: int = 8,
        ack_timeout: float = 5.0,
        lag_cache_seconds: float = 2.0,
        other_topics: Iterable[str] = (),
    ) -> None:
        self.url = KafkaUrl.parse(url)
        self.partitions = partitions
        self.ack_timeout = ack_timeout
        self.lag_cache_seconds = lag_cache_seconds
        self._names = {TOPIC: self.url.topic, f"{TOPIC}-dlq": f"{self.url.topic}-dlq"}
        self._topics = [*self._names.values(), *other_topics]
        # librdkafka's own messages (a broker that went away ...) go through profd's logging.
        self._common: dict[str, Any] = {"bootstrap.servers": ",".join(self.url.brokers), "logger": log}
        # The clients are made on first use: a command that never touches the bus (`profd
        # profiles list`) neither waits for nor logs about a broker.
        self._clients_lock = threading.Lock()
        self._admin_client: AdminClient | None = None
        self._kafka_producer: KafkaProducer | None = None
        self._lags: dict[tuple[str, str], _Cached] = {}
        self._lag_lock = threading.Lock()
        # The topics are created the first time the broker is reached: by a worker as it
        # starts (`consumer`), by ingest with its first envelope (`pending`, `produce`).
        self._topics_ready = False
        self._topics_lock = threading.Lock()

    @property
    def _admin(self) -> AdminClient:
        with self._clients_lock:
            if self._admin_client is None:
                self._admin_client = AdminClient(self._common)
            return self._admin_client

    @property
    def _producer(self) -> KafkaProducer:
        with self._clients_lock:
            if self._kafka_producer is None:
                self._kafka_producer = KafkaProducer(
                    build_kafka_configuration(
                        self._common,
                        override_params={
                            # librdkafka stops retrying when ingest stops waiting (see the docstring).
                            "message.timeout.ms": int(self.ack_timeout * 1000),
                            "message.max.bytes": MAX_MESSAGE_BYTES,
                            # Profiles are JSON inside msgpack: they shrink several times.
                            "compression.type": "lz4",
                            # An envelope's messages are sent at once; waiting for more only
                            # delays the answer the SDK waits for.
                            "linger.ms": 0,
                        },
                    )
                )
            return self._kafka_producer

    def topic_name(self, topic: str) -> str:
        """The name on the broker of the topic profd calls `topic`."""
        return self._names.get(topic, topic)

    def create_topics(self) -> list[str]:
        """Create the topics the broker lacks; returns their names.  A fresh broker needs no
        manual step."""
        with self._topics_lock:
            try:
                existing = self._admin.list_topics(timeout=self.ack_timeout).topics
                missing = [name for name in self._topics if name not in existing]
                if missing:
                    futures = self._admin.create_topics(
                        [
                            NewTopic(
                                name,
                                num_partitions=self.partitions,
                                replication_factor=-1,
                                config={"max.message.bytes": str(MAX_MESSAGE_BYTES)},
                            )
                            for name in missing
                        ],
                        operation_timeout=self.ack_timeout,
                        request_timeout=self.ack_timeout,
                    )
                    for name, future in futures.items():
                        try:
                            future.result(self.ack_timeout)
                            log.info("created Kafka topic %s (%d partitions)", name, self.partitions)
                        except KafkaException as e:
                            # Another node created it between our look and our create.
                            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                                raise
            except KafkaException as e:
                raise BackendUnavailable("bus", f"Kafka at {','.join(self.url.brokers)}: {e}") from e
            self._topics_ready = True
            return missing

    def _ensure_topics(self) -> None:
        if not self._topics_ready:
            self.create_topics()

    def produce(self, topic: str, value: bytes, headers: Headers) -> int:
        return self.produce_many(topic, [(value, headers)])[0]

    def produce_many(self, topic: str, messages: Sequence[tuple[bytes, Headers]]) -> list[int]:
        """Not all or none as on the local queue: if one message of several fails, the others
        may be written.  The client sends the envelope again; its profiles are stored once
        (create-if-absent, keyed by profile id), as Relay's would be."""
        if not messages:
            return []
        self._ensure_topics()
        destination = Topic(self.topic_name(topic))
        futures: list[Future[BrokerValue[KafkaPayload]]] = []
        producer = self._producer
        try:
            for value, headers in messages:
                key = hashlib.blake2b(value, digest_size=16).digest()
                future = producer.produce(destination, KafkaPayload(key, value, headers))
                assert isinstance(future, Future)  # not asked for arroyo's simple futures
                futures.append(future)
        except BufferError as e:
            raise BackendUnavailable("bus", f"the Kafka producer's queue is full: {e}") from e
        except KafkaException as e:
            raise BackendUnavailable("bus", f"Kafka refused the message: {e}") from e
        # librdkafka fails each message by `ack_timeout`; the second more covers its callback.
        _, waiting = wait(futures, timeout=self.ack_timeout + 1.0)
        if waiting:
            raise BackendUnavailable("bus", f"Kafka did not acknowledge within {self.ack_timeout:g} s")
        offsets = []
        for future in futures:
            error = future.exception()
            if error is not None:
                raise BackendUnavailable("bus", f"Kafka did not take the message: {error}")
            offsets.append(future.result().offset)
        return offsets

    def pending(self, topic: str, group: str) -> int:
        """The group's lag on `topic`, at most `lag_cache_seconds` old."""
        key = (self.topic_name(topic), group)
        with self._lag_lock:
            now = time.monotonic()
            cached = self._lags.get(key)
            if cached is None or cached.expires <= now:
                try:
                    value: int | BackendUnavailable = self._read_lag(*key)
                except BackendUnavailable as e:
                    value = e
                cached = self._lags[key] = _Cached(value, time.monotonic() + self.lag_cache_seconds)
        if isinstance(cached.value, BackendUnavailable):
            raise cached.value
        return cached.value

    def _read_lag(self, topic: str, group: str) -> int:
        self._ensure_topics()
        timeout = self.ack_timeout
        try:
            metadata = self._admin.list_topics(topic, timeout=timeout).topics[topic]
            partitions = [TopicPartition(topic, index) for index in metadata.partitions]
            [committed_future] = self._admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=timeout
            ).values()
            committed = {tp.partition: tp.offset for tp in committed_future.result(timeout).topic_partitions}
            # confluent-kafka leaves these two class methods unannotated.
            ends = self._offsets(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
            starts = self._offsets(partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        except KafkaException as e:
            raise BackendUnavailable("bus", f"Kafka at {','.join(self.url.brokers)}: {e}") from e
        lag = 0
        for index, end in ends.items():
            # A partition the group never committed is read from its start.
            start = committed.get(index, -1)
            lag += max(0, end - (start if start >= 0 else starts[index]))
        return lag

    def _offsets(self, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[int, int]:
        futures = self._admin.list_offsets({tp: spec for tp in partitions}, request_timeout=self.ack_timeout)
        return {tp.partition: future.result(self.ack_timeout).offset for tp, future in futures.items()}

    def consumer(self, group: str) -> KafkaConsumer:
        self._ensure_topics()
        configuration = build_kafka_consumer_configuration(
            {},
            group_id=group,
            auto_offset_reset="earliest",
            bootstrap_servers=self.url.brokers,
            # Offsets are committed by the worker's commit policy, after the store is done.
            enable_auto_commit=False,
            override_params={
                "logger": log,
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": SESSION_TIMEOUT_MS // 3,
                "fetch.max.bytes": MAX_MESSAGE_BYTES,
                "max.partition.fetch.bytes": MAX_MESSAGE_BYTES,
            },
        )
        return _GroupConsumer(configuration, self.topic_name)

    def close(self) -> None:
        # Every message produced was acknowledged or given up on already (produce_many
        # waits), so this only stops the producer's thread.
        with self._clients_lock:
            producer, self._kafka_producer = self._kafka_producer, None
        if producer is None:
            return
        try:
            producer.close().result(timeout=self.ack_timeout + 1.0)
        except TimeoutError:
            log.warning("the Kafka producer did not stop within %g s", self.ack_timeout + 1.0)
