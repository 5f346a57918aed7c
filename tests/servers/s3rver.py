"""s3rver (npm): a real S3 server on loopback, file-backed, for the object-storage tests.

Installed once per checkout at a pinned version into the npm cache the other npm tests use,
and started as its own binary (`npx` would add 77 MB).  `s3rver_server` is a session fixture
(registered in tests/conftest.py); a test that stops the server starts its own with `start`.

s3rver ignores ``If-None-Match: *``: a conditional put overwrites like any other
(tests/backends/test_blobs.py shows what profd does about it).
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

VERSION = "3.7.1"
BUCKET = "profd"
ACCESS_KEY = SECRET_KEY = "S3RVER"
REGION = "us-east-1"
NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm-e2e"


def npm_available() -> bool:
    return shutil.which("npm") is not None and shutil.which("node") is not None


def install(directory: Path = NPM_CACHE) -> Path:
    """The s3rver binary (an npm project in `directory`, installed once)."""
    project = directory / f"s3rver-{VERSION}"
    binary = project / "node_modules" / ".bin" / "s3rver"
    marker = project / "node_modules" / "s3rver" / "package.json"
    if not marker.exists() or json.loads(marker.read_text())["version"] != VERSION:
        project.mkdir(parents=True, exist_ok=True)
        (project / "package.json").write_text(json.dumps({"name": "profd-s3rver", "private": True}))
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", f"s3rver@{VERSION}"],
            cwd=project,
            check=True,
            timeout=600,
        )
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3rver:
    binary: Path
    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, prefix: str | None = None) -> str:
        """An s3:// URL in the bucket, under a fresh prefix unless one is named."""
        return f"s3://{BUCKET}/{prefix or uuid.uuid4().hex}"

    def options(self) -> dict[str, Any]:
        """obstore's options for this server."""
        return {
            "endpoint": self.endpoint,
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "client_options": {"allow_http": True},
        }

    def settings(self) -> dict[str, str]:
        """profd's settings for this server, as Settings.load's keyword arguments."""
        return {
            "blob_endpoint": self.endpoint,
            "blob_region": REGION,
            "blob_access_key_id": ACCESS_KEY,
            "blob_secret_access_key": SECRET_KEY,
        }

    def environment(self) -> dict[str, str]:
        """The same settings, as a profd process's environment."""
        return {f"PROFD_{name.upper()}": value for name, value in self.settings().items()}

    def start(self, timeout: float = 30) -> S3rver:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory.parent / f"s3rver-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "-d",
                str(self.directory),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--configure-bucket",
                BUCKET,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"s3rver exited with {self.process.returncode}")
            try:
                # Anonymous: s3rver answers 403, which is an answer.
                urllib.request.urlopen(f"{self.endpoint}/{BUCKET}", timeout=1).close()
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("s3rver did not come up")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def start(directory: Path) -> S3rver:
    """A new s3rver serving `directory` on a free port (skips without npm)."""
    if not npm_available():
        pytest.skip("node and npm are needed for s3rver")
    return S3rver(install(), directory).start()


@pytest.fixture(scope="session")
def s3rver_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3rver]:
    """One s3rver for the session's tests."""
    server = start(tmp_path_factory.mktemp("s3rver") / "data")
    yield server
    server.stop()
