"""A real `profd serve` on a free loopback port, as a test fixture."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from profd.settings import Settings, sqlite_path
from profd.store.sqlite import SqliteBackend


class IndexFile(SqliteBackend):
    """The server's index: its directory and reads, and SQL for checks no protocol answers."""

    def select(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        db = sqlite3.connect(self.path)
        db.row_factory = sqlite3.Row
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    port: int
    environment: dict[str, str]
    # More `profd serve` options (``--workers 3``, ``--worker none``).
    arguments: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    dsn: str = ""
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_key(self) -> str:
        return self.dsn.split("//", 1)[1].split("@", 1)[0]

    def start(self) -> Server:
        command = [
            sys.executable,
            "-m",
            "profd",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            *self.arguments,
        ]
        # Output goes to a file: a pipe nobody reads would block the server once full.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = self.data_dir.parent / f"serve-{self.port}.log"
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "COLUMNS": "200", **self.environment},
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.dsn:
            found = re.search(r"(http://[0-9a-f]+@\S+/\d+)", self.log.read_text())
            if found:
                self.dsn = found.group(1)
            else:
                time.sleep(0.05)
        self._wait_healthy(deadline)
        return self

    def _wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("profd serve did not come up")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def memory_mib(self, field: str = "VmRSS") -> float:
        """The server's resident memory now (VmRSS) or at its peak (VmHWM), in MiB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
        return kib / 1024

    def index(self) -> IndexFile:
        return IndexFile(sqlite_path(Settings.load(data_dir=self.data_dir).index_url))

    def wait_until_drained(self, timeout: float = 60) -> None:
        """Until the worker has committed every queued message."""
        from profd.bus.sqlite_queue import SqliteQueue
        from profd.bus.worker import CONSUMER_GROUP

        queue = SqliteQueue(sqlite_path(Settings.load(data_dir=self.data_dir).bus_url))
        deadline = time.monotonic() + timeout
        try:
            while queue.pending("profiles", CONSUMER_GROUP) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert queue.pending("profiles", CONSUMER_GROUP) == 0, "the worker did not drain the queue"
        finally:
            queue.close()


def start_server(data_dir: Path, *arguments: str, **environment: str) -> Server:
    return Server(data_dir=data_dir, port=free_port(), environment=environment, arguments=arguments).start()
