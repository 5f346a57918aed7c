"""The pipeline workers kept running: restarted when they die, and asked whether they are alive.

`profd serve` runs its worker as a child process (by default) or a thread, or N child
processes (`--workers N`, `WorkerProcesses`, as `profd worker --processes N` does).
Whatever kills one (a crash, the OOM killer, `kill -9`), it is started again after a pause
that doubles up to `MAX_PAUSE`, and `/health/ready` is red while any is down.  Nothing is
lost meanwhile: what it had not committed is handled again by the next one, or by the
other workers sharing the queue.

N whole worker processes, each its own consumer, rather than one consumer feeding a pool
(Arroyo's RunTaskWithMultiprocessing): each process opens its own stores and keeps its own
symbol caches, a kill -9 costs only what that process held, and the same processes form a
Kafka consumer group unchanged.  A pool would copy every message (≈300 KB, up to 64 MiB)
through shared-memory blocks sized for the largest, behind one consumer process.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Protocol

from profd import metrics
from profd.bus.worker import Worker

log = logging.getLogger(__name__)

FIRST_PAUSE = 0.5
MAX_PAUSE = 30.0
# A worker that ran this long before it died is not crash-looping: pauses start over.
STEADY = 60.0


class Supervised(Protocol):
    @property
    def restarts(self) -> int: ...

    def start(self) -> None: ...

    def alive(self) -> bool: ...

    def stop(self) -> None: ...


class _Pauses:
    def __init__(self) -> None:
        self.next = FIRST_PAUSE

    def after(self, ran_for: float) -> float:
        if ran_for >= STEADY:
            self.next = FIRST_PAUSE
        pause, self.next = self.next, min(MAX_PAUSE, self.next * 2)
        return pause


class WorkerProcess:
    """A child process running `command` (``profd worker …``)."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="profd-supervisor", daemon=True)

    def start(self) -> None:
        self._process = subprocess.Popen(self.command)
        self._watcher.start()

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        self.ask_to_stop()
        self.wait_stopped()

    def ask_to_stop(self) -> None:
        """SIGTERM: the worker finishes the message in hand, commits and exits."""
        self._stopping.set()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def wait_stopped(self, timeout: float = 120) -> None:
        if self._process is not None:
            self._process.wait(timeout=timeout)

    def _watch(self) -> None:
        pauses = _Pauses()
        while True:
            assert self._process is not None
            started = time.monotonic()
            code = self._process.wait()
            metrics.process_gone(self._process.pid)
            if self._stopping.is_set():
                return
            pause = pauses.after(time.monotonic() - started)
            log.error(
                "the worker (pid %d) exited with %s; starting another in %.1f s",
                self._process.pid,
                code,
                pause,
            )
            if self._stopping.wait(pause):
                return
            self.restarts += 1
            self._process = subprocess.Popen(self.command)


class WorkerProcesses:
    """`count` supervised `WorkerProcess`es running the same command: members of one
    consumer group, alive only while every one of them is."""

    def __init__(self, command: list[str], count: int) -> None:
        self.members = [WorkerProcess(command) for _ in range(count)]

    @property
    def restarts(self) -> int:
        return sum(member.restarts for member in self.members)

    def start(self) -> None:
        for member in self.members:
            member.start()

    def alive(self) -> bool:
        return all(member.alive() for member in self.members)

    def stop(self) -> None:
        # All asked first, then awaited: they finish their messages in parallel.
        for member in self.members:
            member.ask_to_stop()
        for member in self.members:
            member.wait_stopped()


class WorkerThread:
    """A worker in a thread of this process, made anew by `make` after each crash."""

    def __init__(self, make: Callable[[], Worker]) -> None:
        self.make = make
        self.restarts = 0
        self._worker: Worker | None = None
        self._running = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="profd-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive() and self._running.is_set()

    def stop(self) -> None:
        self._stopping.set()
        if self._worker is not None:
            self._worker.stop()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        pauses = _Pauses()
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._worker = self.make()
                if self._stopping.is_set():
                    return
                self._running.set()
                self._worker.run()
            except Exception:
                log.exception("the worker thread died")
            finally:
                self._running.clear()
            if self._stopping.is_set():
                return
            pause = pauses.after(time.monotonic() - started)
            log.error("starting another worker thread in %.1f s", pause)
            if self._stopping.wait(pause):
                return
            self.restarts += 1
