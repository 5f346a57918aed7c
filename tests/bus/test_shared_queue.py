"""Several worker processes sharing the local queue, as `profd serve --workers N` runs them:
real processes (tests/bus/queue_member.py), real kills.  Nothing is lost, nothing is
handled twice unless a member was killed between handling and committing it, and what a
dead (or hung) member held goes to another member."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from profd.bus.sqlite_queue import SqliteQueue
from profd.bus.worker import CONSUMER_GROUP
from profd.formats.message import TOPIC

ROOT = Path(__file__).resolve().parents[2]


class Members:
    """The member processes a test starts; each writes what it handled to its own file."""

    def __init__(self, directory: Path, queue: Path) -> None:
        self.directory = directory
        self.queue = queue
        self.running: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()
        self.outputs: dict[int, Path] = {}

    def start(self, *options: str) -> subprocess.Popen[bytes]:
        out = self.directory / f"member-{len(self.outputs)}.txt"
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.bus.queue_member", str(self.queue), str(out), *options], cwd=ROOT
        )
        self.running.append(process)
        self.outputs[process.pid] = out
        wait_for(lambda: out.exists() and out.read_text().startswith("started"), what="a member to start")
        return process

    def kill(self, process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        process.send_signal(sig)
        if sig == signal.SIGKILL:
            process.wait(10)
            self.running.remove(process)
            self.killed.add(process.pid)

    def stop_all(self) -> None:
        for process in self.running:
            process.send_signal(signal.SIGCONT)
            process.terminate()
        for process in self.running:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.clear()

    def lines(self, kind: str) -> list[tuple[int, str]]:
        """(pid, value) of every ``handled`` or ``claimed`` line, over all members."""
        found = []
        for pid, out in self.outputs.items():
            for line in out.read_text().splitlines():
                if line.startswith(kind + " "):
                    _, _, value = line.split(" ", 2)
                    found.append((pid, value))
        return found


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[SqliteQueue]:
    opened = SqliteQueue(tmp_path / "bus.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def members(tmp_path: Path, queue: SqliteQueue) -> Iterator[Members]:
    started = Members(tmp_path, queue.path)
    yield started
    started.stop_all()


def produce(queue: SqliteQueue, values: list[str]) -> None:
    for start in range(0, len(values), 25):
        queue.produce_many(TOPIC, [(v.encode(), []) for v in values[start : start + 25]])


def drained(queue: SqliteQueue) -> Callable[[], bool]:
    return lambda: queue.pending(TOPIC, CONSUMER_GROUP) == 0


def test_three_members_handle_every_message_once(queue: SqliteQueue, members: Members) -> None:
    for _ in range(3):
        members.start("--work-seconds", "0.002")
    values = [f"m{i}" for i in range(600)]
    produce(queue, values)
    wait_for(drained(queue), what="the members to drain the queue")
    handled = members.lines("handled")
    counts = Counter(value for _, value in handled)
    assert set(counts) == set(values), "a message was lost"
    assert max(counts.values()) == 1, f"handled twice: {[v for v, n in counts.items() if n > 1]}"
    # Shared, not one member doing everything while the others wait.
    by_member = Counter(pid for pid, _ in handled)
    assert len(by_member) == 3 and min(by_member.values()) > 60, by_member
    assert queue.messages(TOPIC) == [], "what the group committed is pruned"


def test_a_killed_members_message_goes_to_another_member(queue: SqliteQueue, members: Members) -> None:
    produce(queue, ["stuck"])
    holder = members.start("--hang-on", "stuck")
    wait_for(lambda: members.lines("claimed") == [(holder.pid, "stuck")], what="the claim")
    other = members.start()
    produce(queue, [f"m{i}" for i in range(20)])
    wait_for(lambda: queue.pending(TOPIC, CONSUMER_GROUP) == 1, what="everything else")
    # While its holder lives, nobody else takes it.
    time.sleep(1.5)
    assert "stuck" not in {value for _, value in members.lines("handled")}
    assert queue.committed(TOPIC, CONSUMER_GROUP) == 0, "the group's offset waits for the held message"
    members.kill(holder)
    wait_for(drained(queue), 10, "the killed member's message to be handled by the other")
    assert [pid for pid, value in members.lines("handled") if value == "stuck"] == [other.pid]
    assert queue.committed(TOPIC, CONSUMER_GROUP) == 21


def test_a_hung_members_message_goes_to_another_member_after_the_timeout(
    queue: SqliteQueue, members: Members
) -> None:
    """SIGSTOP: the pid lives, the heartbeats stop; past the member timeout its message is
    taken over (and it finds itself dropped from the group when it wakes)."""
    produce(queue, ["stuck"])
    holder = members.start("--hang-on", "stuck", "--member-timeout", "2")
    wait_for(lambda: members.lines("claimed") == [(holder.pid, "stuck")], what="the claim")
    members.kill(holder, signal.SIGSTOP)
    stopped = time.monotonic()
    other = members.start("--member-timeout", "2")
    wait_for(drained(queue), 20, "the hung member's message to be taken over")
    assert time.monotonic() - stopped >= 2
    assert [pid for pid, value in members.lines("handled") if value == "stuck"] == [other.pid]


@pytest.mark.parametrize("commit_every", [1, 10])
def test_kill_9_at_random_loses_nothing_and_repeats_only_what_was_not_committed(
    queue: SqliteQueue, members: Members, commit_every: int
) -> None:
    """Members killed with -9 at random moments while messages arrive and new members start:
    every message is handled, and a message is handled more than once only because a member
    was killed after handling it and before committing it (at most one commit batch each)."""
    rng = random.Random(commit_every)
    options = ("--work-seconds", "0.005", "--commit-every", str(commit_every))
    for _ in range(3):
        members.start(*options)
    values = [f"m{i}" for i in range(400)]
    kills = 0
    for start in range(0, len(values), 50):
        produce(queue, values[start : start + 50])
        time.sleep(rng.uniform(0.1, 0.4))
        members.kill(rng.choice(members.running))
        kills += 1
        members.start(*options)
    wait_for(drained(queue), what="the members to drain the queue")
    counts = Counter(value for _, value in members.lines("handled"))
    assert set(counts) == set(values), f"lost: {sorted(set(values) - set(counts))}"
    repeated = {value: n for value, n in counts.items() if n > 1}
    assert sum(n - 1 for n in repeated.values()) <= kills * commit_every, repeated
    killed_handled = {value for pid, value in members.lines("handled") if pid in members.killed}
    assert set(repeated) <= killed_handled, "a message handled twice, but no killed member had it"
    assert queue.committed(TOPIC, CONSUMER_GROUP) == len(values)


def test_a_member_that_left_hands_back_its_claims_at_once(tmp_path: Path, queue: SqliteQueue) -> None:
    """close(): a stopped member's unfinished claim is free for the next member straight away,
    and a member in the same process never takes another's claim while it is open."""
    from arroyo.types import Topic

    produce(queue, ["a", "b"])
    first = queue.consumer(CONSUMER_GROUP)
    first.subscribe([Topic(TOPIC)])
    second = queue.consumer(CONSUMER_GROUP)
    second.subscribe([Topic(TOPIC)])
    taken = first.poll(0.1)
    assert taken is not None and taken.payload.value == b"a"
    got = second.poll(0.1)
    assert got is not None and got.payload.value == b"b"
    assert second.poll(0.2) is None
    first.close()
    again = second.poll(1.0)
    assert again is not None and (again.payload.value, again.offset) == (b"a", 0)
    second.close()
    assert os.path.exists(queue.path)
