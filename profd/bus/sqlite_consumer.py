"""Arroyo's `Consumer` over the local queue: one member of a consumer group, by claims.

`poll` claims the lowest message no member holds (profd.bus.sqlite_queue says why claims
and not partitions), and the group's commit marks done what this member has handled.
Arroyo commits in the order it polled: committing offset X of a partition means the
message at X - 1 and every one this member polled before it are handled.  Claims do not
come in offset order (a dead member's message may be claimed after higher ones), so that
prefix is found in this member's own poll order, not by comparing offsets.

A thread heartbeats while the member lives, so a long message (a backend retried with
backoff for minutes) keeps its claim; kill -9 stops the heartbeats and the pid, and the
other members take the message over.  `close` hands back what was claimed and not done.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arroyo.backends.abstract import Consumer
from arroyo.backends.kafka import KafkaPayload
from arroyo.errors import ConsumerError
from arroyo.types import BrokerValue, Partition, Topic

from profd.errors import BackendUnavailable

if TYPE_CHECKING:
    from profd.bus.sqlite_queue import SqliteQueue

log = logging.getLogger(__name__)

# Well under the queue's member timeout: a few missed beats (a busy disk) are not death.
HEARTBEAT_INTERVAL = 1.0
# How often a member looks for dead ones whose claims it could take over.
EXPIRY_INTERVAL = 0.5


class SqliteConsumer(Consumer[KafkaPayload]):
    """A member of consumer group `group` on `queue` (partition 0 of each topic)."""

    # Other processes may produce; without a notification, look again this often.
    POLL_INTERVAL = 0.05

    def __init__(self, queue: SqliteQueue, group: str) -> None:
        self._queue = queue
        self._group = group
        self._member = f"{group}-{uuid.uuid4().hex}"
        # Per partition: where claiming starts (a seek), and what this member polled, in
        # the order it polled it, not yet done.
        self._floors: dict[Partition, int] = {}
        self._polled: dict[Partition, list[int]] = {}
        self._staged: dict[Partition, int] = {}
        self._highest_staged: dict[Partition, int] = {}
        self._paused: set[Partition] = set()
        self._pending_assignment: Callable[[], None] | None = None
        self._expired_at = 0.0
        self._closed = False
        self._stop_heartbeat = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def subscribe(
        self,
        topics: Sequence[Topic],
        on_assign: Callable[[Mapping[Partition, int]], None] | None = None,
        on_revoke: Callable[[Sequence[Partition]], None] | None = None,
    ) -> None:
        self._check_open()
        self._queue.heartbeat(self._group, self._member)
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, name="profd-queue-heartbeat", daemon=True)
            self._heartbeat.start()
        offsets = {Partition(topic, 0): self._queue.committed(topic.name, self._group) for topic in topics}

        def assign() -> None:
            self._floors = dict.fromkeys(offsets, 0)
            self._polled = {partition: [] for partition in offsets}
            if on_assign is not None:
                on_assign(offsets)

        self._pending_assignment = assign

    def unsubscribe(self) -> None:
        self._check_open()
        self._queue.leave(self._group, self._member)
        self._floors.clear()
        self._polled.clear()
        self._staged.clear()

    def poll(self, timeout: float | None = None) -> BrokerValue[KafkaPayload] | None:
        self._check_open()
        if self._pending_assignment is not None:
            assign, self._pending_assignment = self._pending_assignment, None
            assign()
        deadline = time.monotonic() + (timeout or 0.0)
        while True:
            self._expire_dead_members()
            for partition, floor in sorted(self._floors.items()):
                if partition in self._paused:
                    continue
                try:
                    found = self._queue.claim(partition.topic.name, self._group, self._member, floor)
                except BackendUnavailable as e:
                    raise ConsumerError(f"reading {partition} failed: {e}") from e
                if found is not None:
                    at, value, headers, timestamp = found
                    self._polled[partition].append(at)
                    payload = KafkaPayload(None, value, headers)
                    return BrokerValue(payload, partition, at, datetime.fromtimestamp(timestamp, UTC))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._queue.wait(min(remaining, self.POLL_INTERVAL))

    def _expire_dead_members(self) -> None:
        now = time.monotonic()
        if now - self._expired_at < EXPIRY_INTERVAL:
            return
        self._expired_at = now
        try:
            expired = self._queue.expire_members(self._group)
        except BackendUnavailable as e:
            log.warning("could not look for dead members of %s: %s", self._group, e)
            return
        for member in expired:
            log.warning(
                "member %s of %s is gone; its unfinished messages are claimed again", member, self._group
            )

    def _beat(self) -> None:
        while not self._stop_heartbeat.wait(HEARTBEAT_INTERVAL):
            try:
                self._queue.heartbeat(self._group, self._member)
            except BackendUnavailable as e:
                log.warning("queue heartbeat of %s failed: %s", self._member, e)
            except sqlite3.ProgrammingError:
                return  # the queue was closed under a consumer nobody closed: nothing to keep

    def pause(self, partitions: Sequence[Partition]) -> None:
        self._check_assigned(partitions)
        self._paused.update(partitions)

    def resume(self, partitions: Sequence[Partition]) -> None:
        self._check_assigned(partitions)
        self._paused.difference_update(partitions)

    def paused(self) -> Sequence[Partition]:
        return list(self._paused)

    def tell(self) -> Mapping[Partition, int]:
        # Claims have no single position; the last polled message's next offset is the
        # nearest thing, and Arroyo only uses the keys.
        return {
            partition: (polled[-1] + 1 if polled else self._floors.get(partition, 0))
            for partition, polled in self._polled.items()
        }

    def seek(self, offsets: Mapping[Partition, int]) -> None:
        self._check_assigned(list(offsets))
        self._floors.update(offsets)

    def stage_offsets(self, offsets: Mapping[Partition, int]) -> None:
        self._check_assigned(list(offsets))
        for partition, offset in offsets.items():
            if offset < self._highest_staged.get(partition, -1):
                # A message taken over from a dead member, below what this member handled
                # before: Arroyo's commit policy counts messages by offset and would not
                # commit it until a later message, so it is marked done here and now.
                self._complete_through(partition, offset)
            else:
                self._highest_staged[partition] = offset
                self._staged[partition] = offset

    def commit_offsets(self) -> Mapping[Partition, int] | None:
        self._check_open()
        staged, self._staged = self._staged, {}
        for partition, offset in staged.items():
            self._complete_through(partition, offset)
        return staged

    def _complete_through(self, partition: Partition, offset: int) -> None:
        """Mark done the message at `offset` - 1 and what this member polled before it; if it
        polled no such message, what it polled below `offset`."""
        polled = self._polled.get(partition, [])
        if offset - 1 in polled:
            handled = polled[: polled.index(offset - 1) + 1]
        else:
            handled = [o for o in polled if o < offset]
        self._queue.complete(self._group, partition.topic.name, handled)
        done = set(handled)
        self._polled[partition] = [o for o in polled if o not in done]

    def close(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_heartbeat.set()
        try:
            self._queue.leave(self._group, self._member)
        except BackendUnavailable as e:
            # Its claims are freed anyway once its heartbeats are seen to have stopped.
            log.warning("member %s could not leave %s: %s", self._member, self._group, e)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def member_id(self) -> str:
        return self._member

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("consumer is closed")

    def _check_assigned(self, partitions: Sequence[Partition] | Any) -> None:
        self._check_open()
        if set(partitions) - self._floors.keys():
            raise ConsumerError("partitions are not assigned to this consumer")
