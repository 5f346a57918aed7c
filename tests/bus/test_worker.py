"""The worker's fault semantics on the real local queue and Arroyo: retry what is transient,
dead-letter what stays so, and never commit what was not handled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from profd.bus.sqlite_queue import SqliteQueue
from profd.bus.worker import CONSUMER_GROUP, DEAD_LETTER_TOPIC, Retries, Worker
from profd.errors import BackendUnavailable
from profd.formats.message import TOPIC, Headers


def run_until(worker: Worker, done: Callable[[], bool], timeout: float = 20) -> None:
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()


class Flaky:
    """A handler whose backend is down for the first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[bytes, str]] = []
        self.handled: list[bytes] = []
        self.headers: list[Headers] = []

    def __call__(self, value: bytes, headers: Headers, message_id: str) -> None:
        self.calls.append((value, message_id))
        if len(self.calls) <= self.failures:
            raise BackendUnavailable("blob store", "connection refused")
        self.handled.append(value)
        self.headers.append(headers)


def test_a_transient_failure_is_retried_and_the_message_handled_once(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "bus.sqlite3")
    queue.produce(TOPIC, b"one", [])
    queue.produce(TOPIC, b"two", [])
    handler, retried = Flaky(failures=3), []
    worker = Worker(queue.consumer(CONSUMER_GROUP), handler, queue, Retries(5, 0.01), on_retry=retried.append)
    run_until(worker, lambda: queue.pending(TOPIC, CONSUMER_GROUP) == 0)
    assert handler.handled == [b"one", b"two"]
    assert [value for value, _ in handler.calls] == [b"one"] * 4 + [b"two"]
    # The same identity on every try: outcome keys derived from it make retries count once.
    assert {message_id for value, message_id in handler.calls if value == b"one"} == {f"{TOPIC}/0/0"}
    assert retried == ["blob store"] * 3
    assert queue.messages(DEAD_LETTER_TOPIC) == []


def test_a_message_whose_backend_stays_down_is_dead_lettered(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "bus.sqlite3")
    queue.produce(TOPIC, b"doomed", [("sampled", b"1")])
    queue.produce(TOPIC, b"fine", [])
    handler = Flaky(failures=4)
    worker = Worker(queue.consumer(CONSUMER_GROUP), handler, queue, Retries(4, 0.01))
    run_until(worker, lambda: queue.pending(TOPIC, CONSUMER_GROUP) == 0)
    assert handler.handled == [b"fine"]
    [(_, value, headers, _)] = queue.messages(DEAD_LETTER_TOPIC)
    assert value == b"doomed"
    found = dict(headers)
    assert found["sampled"] == b"1"
    assert found["dlq_source"] == f"{TOPIC}/0/0".encode() and found["dlq_attempts"] == b"4"
    assert b"blob store is unavailable" in found["dlq_reason"]


def test_stopping_during_a_backoff_leaves_the_message_uncommitted(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "bus.sqlite3")
    queue.produce(TOPIC, b"held", [])
    handler = Flaky(failures=100)
    worker = Worker(queue.consumer(CONSUMER_GROUP), handler, queue, Retries(100, 30.0))
    run_until(worker, lambda: len(handler.calls) >= 1, timeout=10)
    assert queue.pending(TOPIC, CONSUMER_GROUP) == 1
    assert queue.messages(DEAD_LETTER_TOPIC) == []
    # The next worker gets it, and handles it once the backend is back.
    healed = Flaky(failures=0)
    run_until(
        Worker(queue.consumer(CONSUMER_GROUP), healed, queue, Retries(3, 0.01)),
        lambda: queue.pending(TOPIC, CONSUMER_GROUP) == 0,
    )
    assert healed.handled == [b"held"]


def test_dead_letters_are_listed_and_redriven_once(tmp_path: Path) -> None:
    from profd.bus.dead_letters import dead_letters, redrive

    queue = SqliteQueue(tmp_path / "bus.sqlite3")
    queue.produce(TOPIC, b"doomed", [("sampled", b"1")])
    run_until(
        Worker(queue.consumer(CONSUMER_GROUP), Flaky(failures=10), queue, Retries(2, 0.01)),
        lambda: queue.pending(TOPIC, CONSUMER_GROUP) == 0,
    )
    [letter] = dead_letters(queue)
    assert (letter.source, letter.attempts, letter.size) == (f"{TOPIC}/0/0", 2, 6)
    assert redrive(queue) == 1
    assert dead_letters(queue) == [] and redrive(queue) == 0
    healed = Flaky(failures=0)
    run_until(
        Worker(queue.consumer(CONSUMER_GROUP), healed, queue, Retries(2, 0.01)),
        lambda: queue.pending(TOPIC, CONSUMER_GROUP) == 0,
    )
    assert healed.handled == [b"doomed"]
    # Re-driven with its own headers, not the dead letter's.
    assert healed.headers == [[("sampled", b"1")]]
