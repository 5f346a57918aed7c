"""The dead-letter topic: messages a worker gave up on because a backend stayed down.

Each keeps its original value and headers, plus where it came from (``dlq_source``), how
often it was tried (``dlq_attempts``) and the last error (``dlq_reason``).  An operator
lists them and, once the backend is back, sends them all back to the profiles topic; a
consumer group of its own marks how far that re-drive has got, so a letter is re-driven
once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from profd.bus.sqlite_queue import SqliteQueue
from profd.bus.worker import DEAD_LETTER_TOPIC
from profd.formats.message import TOPIC

REDRIVE_GROUP = "profd-dlq-redrive"
_DLQ_HEADERS = ("dlq_source", "dlq_attempts", "dlq_reason")


class DeadLetter(msgspec.Struct, frozen=True):
    offset: int
    dead_lettered: datetime
    source: str
    attempts: int
    reason: str
    size: int


def dead_letters(queue: SqliteQueue, limit: int = 1000) -> list[DeadLetter]:
    """The letters not yet re-driven, oldest first."""
    start = queue.committed(DEAD_LETTER_TOPIC, REDRIVE_GROUP)
    letters = []
    for offset, value, headers, timestamp in queue.messages(DEAD_LETTER_TOPIC, start, limit):
        found = {name: data.decode(errors="replace") for name, data in headers if name in _DLQ_HEADERS}
        letters.append(
            DeadLetter(
                offset=offset,
                dead_lettered=datetime.fromtimestamp(timestamp, UTC),
                source=found.get("dlq_source", ""),
                attempts=int(found.get("dlq_attempts") or 0),
                reason=found.get("dlq_reason", ""),
                size=len(value),
            )
        )
    return letters


def redrive(queue: SqliteQueue) -> int:
    """Send every letter not yet re-driven back to the profiles topic; returns how many.

    Produced first, committed after: a crash in between re-drives some twice, which the
    pipeline's idempotent store makes harmless (never once too few)."""
    start = queue.committed(DEAD_LETTER_TOPIC, REDRIVE_GROUP)
    sent = 0
    while batch := queue.messages(DEAD_LETTER_TOPIC, start, 100):
        for offset, value, headers, _ in batch:
            queue.produce(TOPIC, value, [(n, d) for n, d in headers if n not in _DLQ_HEADERS])
            start = offset + 1
            sent += 1
        queue.commit(REDRIVE_GROUP, {DEAD_LETTER_TOPIC: start})
    return sent
