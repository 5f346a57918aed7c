"""A durable local topic on SQLite, and an Arroyo consumer reading it.

Ingest appends a message and commits it before answering the client, so a message that
got a 200 survives kill -9.  The worker reads through Arroyo's `Consumer` interface, the
one Kafka's consumer implements, so the same strategies (process, then commit) run on
both.  Committed offsets are kept per consumer group in the same file; messages every
group has committed are pruned.  One partition per topic: one machine, one writer.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from arroyo.backends.abstract import Consumer
from arroyo.backends.kafka import KafkaPayload
from arroyo.errors import ConsumerError
from arroyo.types import BrokerValue, Partition, Topic

from profd.errors import BackendUnavailable
from profd.formats.message import Headers


@contextmanager
def _unavailable() -> Iterator[None]:
    """SQLite's operational errors (full disk, I/O error, locked past the busy timeout) are
    the queue being unavailable, not a bad message."""
    try:
        yield
    except sqlite3.OperationalError as e:
        raise BackendUnavailable("queue", str(e)) from e


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    topic TEXT NOT NULL,
    offset INTEGER NOT NULL,
    value BLOB NOT NULL,
    headers BLOB NOT NULL,
    timestamp REAL NOT NULL,
    PRIMARY KEY (topic, offset)
);
CREATE TABLE IF NOT EXISTS committed (
    consumer_group TEXT NOT NULL,
    topic TEXT NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (consumer_group, topic)
);
"""


class SqliteQueue:
    """The topics of one data directory.  Thread-safe; other processes may share the file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._arrived = threading.Condition(self._lock)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A committed append survives the process being killed; only an OS crash could lose
        # the last transactions, which is what WAL with NORMAL sync trades for speed.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def produce(self, topic: str, value: bytes, headers: Headers) -> int:
        """Append a message durably; returns its offset."""
        return self.produce_many(topic, [(value, headers)])[0]

    def produce_many(self, topic: str, messages: Sequence[tuple[bytes, Headers]]) -> list[int]:
        """Append messages durably in one transaction: all or none.  Returns their offsets.
        BackendUnavailable if they could not be (a full disk, a locked or broken file)."""
        if not messages:
            return []
        rows = [(value, msgspec.msgpack.encode([[n, d] for n, d in headers])) for value, headers in messages]
        with self._lock, _unavailable():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT MAX(offset) FROM messages WHERE topic = ?", (topic,)
                ).fetchone()
                committed = self._db.execute(
                    "SELECT MAX(offset) FROM committed WHERE topic = ?", (topic,)
                ).fetchone()
                # Offsets are never reused, even once pruned: they name a message for good.
                first = max(row[0] + 1 if row[0] is not None else 0, committed[0] or 0)
                now = time.time()
                self._db.executemany(
                    "INSERT INTO messages (topic, offset, value, headers, timestamp) VALUES (?, ?, ?, ?, ?)",
                    [(topic, first + i, value, packed, now) for i, (value, packed) in enumerate(rows)],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self._arrived.notify_all()
        return list(range(first, first + len(rows)))

    def _rollback(self) -> None:
        # SQLite rolls back by itself on some errors (a full disk): a second ROLLBACK would
        # fail with "no transaction is active" and hide the error that matters.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def pending(self, topic: str, group: str) -> int:
        """Messages the group has not committed yet."""
        with self._lock, _unavailable():
            start = self.committed(topic, group)
            row = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE topic = ? AND offset >= ?", (topic, start)
            ).fetchone()
        return int(row[0])

    def committed(self, topic: str, group: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT offset FROM committed WHERE consumer_group = ? AND topic = ?", (group, topic)
            ).fetchone()
        return int(row[0]) if row else 0

    def commit(self, group: str, offsets: Mapping[str, int]) -> None:
        with self._lock, _unavailable():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for topic, offset in offsets.items():
                    self._db.execute(
                        "INSERT INTO committed (consumer_group, topic, offset) VALUES (?, ?, ?)"
                        " ON CONFLICT (consumer_group, topic) DO UPDATE SET offset = MAX(offset, excluded.offset)",
                        (group, topic, offset),
                    )
                    # What every group has read is never read again.
                    self._db.execute(
                        "DELETE FROM messages WHERE topic = ? AND offset < "
                        "(SELECT MIN(offset) FROM committed WHERE topic = ?)",
                        (topic, topic),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def messages(
        self, topic: str, offset: int = 0, limit: int = 1000
    ) -> list[tuple[int, bytes, Headers, float]]:
        """Up to `limit` messages from `offset` on: (offset, value, headers, timestamp)."""
        found: list[tuple[int, bytes, Headers, float]] = []
        while len(found) < limit and (message := self.read(topic, offset)) is not None:
            found.append(message)
            offset = message[0] + 1
        return found

    def read(self, topic: str, offset: int) -> tuple[int, bytes, Headers, float] | None:
        """The first message at or after `offset`."""
        with self._lock:
            row = self._db.execute(
                "SELECT offset, value, headers, timestamp FROM messages WHERE topic = ? AND offset >= ?"
                " ORDER BY offset LIMIT 1",
                (topic, offset),
            ).fetchone()
        if row is None:
            return None
        headers = [(str(name), bytes(data)) for name, data in msgspec.msgpack.decode(row[2])]
        return int(row[0]), bytes(row[1]), headers, float(row[3])

    def wait(self, timeout: float) -> None:
        """Sleep until a message is produced in this process, or `timeout` passes."""
        with self._arrived:
            self._arrived.wait(timeout)

    def consumer(self, group: str) -> SqliteConsumer:
        return SqliteConsumer(self, group)


class SqliteConsumer(Consumer[KafkaPayload]):
    """Arroyo's consumer interface over a `SqliteQueue` (partition 0 of each topic)."""

    # Other processes may produce; without a notification, look again this often.
    POLL_INTERVAL = 0.05

    def __init__(self, queue: SqliteQueue, group: str) -> None:
        self._queue = queue
        self._group = group
        self._offsets: dict[Partition, int] = {}
        self._staged: dict[Partition, int] = {}
        self._paused: set[Partition] = set()
        self._pending_assignment: Callable[[], None] | None = None
        self._closed = False

    def subscribe(
        self,
        topics: Sequence[Topic],
        on_assign: Callable[[Mapping[Partition, int]], None] | None = None,
        on_revoke: Callable[[Sequence[Partition]], None] | None = None,
    ) -> None:
        self._check_open()
        offsets = {Partition(topic, 0): self._queue.committed(topic.name, self._group) for topic in topics}

        def assign() -> None:
            self._offsets = dict(offsets)
            if on_assign is not None:
                on_assign(offsets)

        self._pending_assignment = assign

    def unsubscribe(self) -> None:
        self._check_open()
        self._offsets.clear()
        self._staged.clear()

    def poll(self, timeout: float | None = None) -> BrokerValue[KafkaPayload] | None:
        self._check_open()
        if self._pending_assignment is not None:
            assign, self._pending_assignment = self._pending_assignment, None
            assign()
        deadline = time.monotonic() + (timeout or 0.0)
        while True:
            for partition, offset in sorted(self._offsets.items()):
                if partition in self._paused:
                    continue
                try:
                    found = self._queue.read(partition.topic.name, offset)
                except sqlite3.Error as e:
                    raise ConsumerError(f"reading {partition} failed: {e}") from e
                if found is not None:
                    at, value, headers, timestamp = found
                    self._offsets[partition] = at + 1
                    payload = KafkaPayload(None, value, headers)
                    return BrokerValue(payload, partition, at, datetime.fromtimestamp(timestamp, UTC))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._queue.wait(min(remaining, self.POLL_INTERVAL))

    def pause(self, partitions: Sequence[Partition]) -> None:
        self._check_assigned(partitions)
        self._paused.update(partitions)

    def resume(self, partitions: Sequence[Partition]) -> None:
        self._check_assigned(partitions)
        self._paused.difference_update(partitions)

    def paused(self) -> Sequence[Partition]:
        return list(self._paused)

    def tell(self) -> Mapping[Partition, int]:
        return dict(self._offsets)

    def seek(self, offsets: Mapping[Partition, int]) -> None:
        self._check_assigned(list(offsets))
        self._offsets.update(offsets)

    def stage_offsets(self, offsets: Mapping[Partition, int]) -> None:
        self._check_assigned(list(offsets))
        self._staged.update(offsets)

    def commit_offsets(self) -> Mapping[Partition, int] | None:
        self._check_open()
        staged, self._staged = self._staged, {}
        if staged:
            self._queue.commit(
                self._group, {partition.topic.name: offset for partition, offset in staged.items()}
            )
        return staged

    def close(self, timeout: float | None = None) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def member_id(self) -> str:
        return f"{self._group}-{id(self):x}"

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("consumer is closed")

    def _check_assigned(self, partitions: Sequence[Partition] | Any) -> None:
        self._check_open()
        if set(partitions) - self._offsets.keys():
            raise ConsumerError("partitions are not assigned to this consumer")
