"""A durable local topic on SQLite that many worker processes share, message by message.

Ingest appends a message and commits it before answering the client, so a message that
got a 200 survives kill -9.  Workers read through Arroyo's `Consumer` interface, the one
Kafka's consumer implements (profd.bus.sqlite_consumer), so the same strategies (process,
then commit) run on both.

How N processes share one topic: a claim per message, not partitions.  A consumer of a
group claims the lowest message nobody in its group has claimed (one row in `claims`,
inserted only if absent: two consumers never hold the same message), handles it, and
marks it done.  The group's committed offset is its low-water mark, the lowest message
not done; everything below is done and pruned.  Each member heartbeats in `members`; a
member whose process is gone (same host, pid no longer running: kill -9 is noticed at
once) or whose heartbeat is older than `member_timeout` (a hung process, another pid
namespace) is removed with the claims it had not finished, and those are claimed again.
A message keeps its identity ``profiles/0/<offset>`` whoever handles it, so outcome keys
derived from it make a redelivery count once.

Why claims rather than Kafka-style partitions with a membership table:
- Balance.  A claim hands the next message to whichever process is free, so N workers
  drain at N times one worker's speed whatever N is.  With partitions, a member holds
  whole partitions: 4 partitions over 3 workers leave one worker half the work (2× where
  3× was possible), and one slow message (a large Android trace, a backend retried with
  backoff) stalls every message behind it in its partition.
- Nothing to rebalance.  A member that joins, stops or dies changes nothing for the
  others; a killed one loses its one unfinished message, not the lease on a partition
  that must be revoked, fenced and handed over with the offsets in flight.
- Identity and data stay as they are: one sequence of offsets per topic, so a queue file
  written before keeps its messages, commits and message ids.
- The cost is one more small write per message (the claim beside the commit); on this
  queue (WAL, synchronous=NORMAL, no fsync per commit) that is tens of microseconds against
  tens of milliseconds of processing per profile (bench/scale.py measures both).
Kafka keeps its partitions; this is the local queue's way of being one consumer group.

Committed offsets and claims are kept per consumer group in the same file; messages every
group has committed are pruned.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import NamedTuple

import msgspec

from profd.bus.sqlite_consumer import SqliteConsumer
from profd.errors import BackendUnavailable
from profd.formats.message import Headers

# (offset, value, headers, timestamp)
QueuedMessage = tuple[int, bytes, Headers, float]


class GroupMember(NamedTuple):
    member: str
    pid: int
    # Messages it has claimed and not finished (or finished and not committed).
    holds: int


# Messages deleted per transaction when pruning (see SqliteQueue._prune).
PRUNE_BATCH = 8
# A member that has not heartbeated for this long is taken for dead, even if its pid runs.
MEMBER_TIMEOUT = 30.0


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
-- Messages at or above the group's committed offset that a member holds (done = 0) or
-- has finished out of order (done = 1).
CREATE TABLE IF NOT EXISTS claims (
    consumer_group TEXT NOT NULL,
    topic TEXT NOT NULL,
    offset INTEGER NOT NULL,
    member TEXT NOT NULL,
    done INTEGER NOT NULL,
    PRIMARY KEY (consumer_group, topic, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
    consumer_group TEXT NOT NULL,
    member TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL,
    PRIMARY KEY (consumer_group, member)
) WITHOUT ROWID;
"""


@cache
def this_host() -> str:
    """Where a pid means this process table: the host name and the pid namespace (two
    containers sharing the file may share a host name, never a pid namespace)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}/{namespace}"


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # someone else's process: it runs
    return False


class SqliteQueue:
    """The topics of one data directory.  Thread-safe; other processes may share the file."""

    def __init__(self, path: Path | str, member_timeout: float = MEMBER_TIMEOUT) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.member_timeout = member_timeout
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
        with self._lock, _unavailable(), self._transaction():
            row = self._db.execute("SELECT MAX(offset) FROM messages WHERE topic = ?", (topic,)).fetchone()
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
        with self._lock:
            self._arrived.notify_all()
        return list(range(first, first + len(rows)))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction, taking the file's write lock at once (no upgrade deadlock)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite rolls back by itself on some errors (a full disk): a second ROLLBACK
            # would fail with "no transaction is active" and hide the error that matters.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def pending(self, topic: str, group: str) -> int:
        """Messages the group has not committed yet (claimed or not; not those done)."""
        with self._lock, _unavailable():
            start = self.committed(topic, group)
            row = self._db.execute(
                "SELECT (SELECT COUNT(*) FROM messages WHERE topic = ?1 AND offset >= ?2)"
                " - (SELECT COUNT(*) FROM claims WHERE consumer_group = ?3 AND topic = ?1"
                " AND offset >= ?2 AND done)",
                (topic, start, group),
            ).fetchone()
        return int(row[0])

    def committed(self, topic: str, group: str) -> int:
        """The group's low-water mark: every message below it is done."""
        with self._lock:
            row = self._db.execute(
                "SELECT offset FROM committed WHERE consumer_group = ? AND topic = ?", (group, topic)
            ).fetchone()
        return int(row[0]) if row else 0

    def commit(self, group: str, offsets: Mapping[str, int]) -> None:
        """Move the group's low-water marks up to `offsets`: everything below is done."""
        with self._lock, _unavailable():
            with self._transaction():
                for topic, offset in offsets.items():
                    self._set_committed(group, topic, offset)
            for topic in offsets:
                self._prune(topic)

    def _prune(self, topic: str) -> None:
        """Delete what every group has committed: it is never read again.

        A few messages per transaction: freeing a message's pages reads them all (≈300 KB
        for a real profile), and the other members' claims wait for the file's write lock
        meanwhile, so the lock is held briefly and often rather than once for a whole batch."""
        while True:
            with self._transaction():
                deleted = self._db.execute(
                    "DELETE FROM messages WHERE topic = ?1 AND offset IN (SELECT offset FROM messages"
                    " WHERE topic = ?1 AND offset < (SELECT MIN(offset) FROM committed WHERE topic = ?1)"
                    " ORDER BY offset LIMIT ?2)",
                    (topic, PRUNE_BATCH),
                ).rowcount
            if deleted < PRUNE_BATCH:
                return

    def _set_committed(self, group: str, topic: str, offset: int) -> None:
        self._db.execute(
            "INSERT INTO committed (consumer_group, topic, offset) VALUES (?, ?, ?)"
            " ON CONFLICT (consumer_group, topic) DO UPDATE SET offset = MAX(offset, excluded.offset)",
            (group, topic, offset),
        )
        self._db.execute(
            "DELETE FROM claims WHERE consumer_group = ? AND topic = ? AND offset < ?", (group, topic, offset)
        )

    def messages(self, topic: str, offset: int = 0, limit: int = 1000) -> list[QueuedMessage]:
        """Up to `limit` messages from `offset` on: (offset, value, headers, timestamp)."""
        found: list[QueuedMessage] = []
        while len(found) < limit and (message := self.read(topic, offset)) is not None:
            found.append(message)
            offset = message[0] + 1
        return found

    def read(self, topic: str, offset: int) -> QueuedMessage | None:
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

    # A group's members and their claims (used by profd.bus.sqlite_consumer).

    def heartbeat(self, group: str, member: str) -> None:
        """`member` of `group` is alive now (joining the group the first time)."""
        with self._lock, _unavailable():
            self._db.execute(
                "INSERT INTO members (consumer_group, member, host, pid, heartbeat) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (consumer_group, member) DO UPDATE SET heartbeat = excluded.heartbeat",
                (group, member, this_host(), os.getpid(), time.time()),
            )

    def leave(self, group: str, member: str) -> None:
        """`member` stops: what it claimed and did not finish is free for the others."""
        with self._lock, _unavailable(), self._transaction():
            self._forget(group, member)

    def _forget(self, group: str, member: str) -> None:
        self._db.execute(
            "DELETE FROM claims WHERE consumer_group = ? AND member = ? AND NOT done", (group, member)
        )
        self._db.execute("DELETE FROM members WHERE consumer_group = ? AND member = ?", (group, member))

    def members(self, group: str) -> list[GroupMember]:
        """The group's members as the file has them (dead ones until someone expires them)."""
        with self._lock, _unavailable():
            rows = self._db.execute(
                "SELECT m.member, m.pid, (SELECT COUNT(*) FROM claims c WHERE c.consumer_group = m.consumer_group"
                " AND c.member = m.member AND NOT c.done) FROM members m WHERE m.consumer_group = ?"
                " ORDER BY m.member",
                (group,),
            ).fetchall()
        return [GroupMember(str(member), int(pid), int(holds)) for member, pid, holds in rows]

    def expire_members(self, group: str) -> list[str]:
        """Remove the members of `group` that are dead, freeing their claims; returns them.

        Dead: its process on this host is gone, or it has not heartbeated for
        `member_timeout` seconds.  A member is removed only if it has not heartbeated since
        it was judged, so one that was merely slow to answer keeps its claims."""
        now = time.time()
        with self._lock, _unavailable():
            rows = self._db.execute(
                "SELECT member, host, pid, heartbeat FROM members WHERE consumer_group = ?", (group,)
            ).fetchall()
            dead = [
                (str(member), float(beat))
                for member, host, pid, beat in rows
                if beat < now - self.member_timeout or (host == this_host() and _pid_gone(int(pid)))
            ]
            expired = []
            for member, beat in dead:
                with self._transaction():
                    gone = self._db.execute(
                        "DELETE FROM members WHERE consumer_group = ? AND member = ? AND heartbeat = ?",
                        (group, member, beat),
                    ).rowcount
                    if gone:
                        self._forget(group, member)
                        expired.append(member)
        return expired

    def claim(self, topic: str, group: str, member: str, floor: int = 0) -> QueuedMessage | None:
        """The lowest message at or above `floor` that no member of `group` holds or has done,
        now held by `member`; None when there is none."""
        with self._lock, _unavailable():
            while True:
                start = max(floor, self.committed(topic, group))
                row = self._db.execute(
                    "SELECT m.offset FROM messages m WHERE m.topic = ?1 AND m.offset >= ?2 AND NOT EXISTS"
                    " (SELECT 1 FROM claims c WHERE c.consumer_group = ?3 AND c.topic = ?1 AND c.offset = m.offset)"
                    " ORDER BY m.offset LIMIT 1",
                    (topic, start, group),
                ).fetchone()
                if row is None:
                    return None
                # One statement, so atomic across processes: taken only if nobody took it
                # meanwhile and the group has not moved past it (done, pruned) since.
                taken = self._db.execute(
                    "INSERT OR IGNORE INTO claims (consumer_group, topic, offset, member, done)"
                    " SELECT ?1, ?2, ?3, ?4, 0 WHERE ?3 >= COALESCE("
                    "(SELECT offset FROM committed WHERE consumer_group = ?1 AND topic = ?2), 0)",
                    (group, topic, row[0], member),
                ).rowcount
                if taken:
                    found = self.read(topic, row[0])
                    assert found is not None and found[0] == row[0], "a held message is never pruned"
                    return found

    def complete(self, group: str, topic: str, offsets: Sequence[int]) -> None:
        """The group is done with `offsets`: its committed offset moves up to the lowest
        message not done, and what lies below is pruned."""
        if not offsets:
            return
        with self._lock, _unavailable():
            self._complete(group, topic, offsets)
            self._prune(topic)

    def _complete(self, group: str, topic: str, offsets: Sequence[int]) -> None:
        with self._transaction():
            low = self.committed(topic, group)
            # Whoever holds it now (a member that took over from one judged dead), it is done.
            self._db.executemany(
                "INSERT INTO claims (consumer_group, topic, offset, member, done)"
                " SELECT ?1, ?2, ?3, '', 1 WHERE ?3 >= ?4"
                " ON CONFLICT (consumer_group, topic, offset) DO UPDATE SET done = 1",
                [(group, topic, offset, low) for offset in offsets],
            )
            row = self._db.execute(
                "SELECT MIN(m.offset) FROM messages m WHERE m.topic = ?1 AND m.offset >= ?2 AND NOT EXISTS"
                " (SELECT 1 FROM claims c WHERE c.consumer_group = ?3 AND c.topic = ?1"
                " AND c.offset = m.offset AND c.done)",
                (topic, low, group),
            ).fetchone()
            if row[0] is not None:
                mark = int(row[0])
            else:
                last = self._db.execute(
                    "SELECT MAX(offset) FROM messages WHERE topic = ?", (topic,)
                ).fetchone()[0]
                mark = max(low, last + 1 if last is not None else low)
            if mark > low:
                self._set_committed(group, topic, mark)
