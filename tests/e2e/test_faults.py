"""Fault semantics against a live `profd serve` with real faults: a full disk (a small
tmpfs, mounted by the test) under the blob store or the whole data directory, and a worker
killed with -9.  By id: every profile answered 200 is stored once with one set of outcomes,
transient failures are retried (visible in /metrics) and never counted as INVALID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from profd.formats.outcome import DataCategory, Outcome
from tests.clients.envelopes import envelope, post, python_profile
from tests.e2e.server import Server, start_server


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB file system of the test's own, to fill up."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs in CI: {done.stderr.decode()}")
        pytest.skip(f"mounting a tmpfs needs root: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Take every free byte of `directory`'s file system; delete the file to free them."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def metric(server: Server, name: str) -> float:
    """The sum of a metric's samples on /metrics (0 when it has none yet)."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    prefixes = (name,) if "{" in name else (name + "{", name + " ")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefixes))


def ready(server: Server) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"{server.url}/health/ready", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def profile_outcomes(server: Server, event_id: str) -> Counter[tuple[Outcome, DataCategory]]:
    rows = server.index().select(
        "SELECT outcome, category FROM outcomes WHERE event_id = ? AND reason IS NULL", (event_id,)
    )
    return Counter((Outcome(row["outcome"]), DataCategory(row["category"])) for row in rows)


def test_a_blob_store_that_fails_then_heals_stores_the_profile_once(tmp_path: Path, tmpfs: Path) -> None:
    server = start_server(tmp_path / "data", PROFD_BLOB_URL=tmpfs.as_uri(), PROFD_WORKER_RETRY_BACKOFF="0.2")
    try:
        filler = fill(tmpfs)
        profile = python_profile()
        assert post(f"{server.url}/api/1/envelope/", envelope(profile), key=server.public_key) == 200
        wait_for(lambda: metric(server, "profd_worker_retries_total") >= 2, what="retries")
        assert server.index().profile(1, profile["event_id"]) is None
        filler.unlink()
        server.wait_until_drained(timeout=120)
        assert server.index().profile(1, profile["event_id"]) is not None
        assert profile_outcomes(server, profile["event_id"]) == {
            (Outcome.ACCEPTED, DataCategory.PROFILE): 1,
            (Outcome.ACCEPTED, DataCategory.PROFILE_INDEXED): 1,
        }
        # Never judged by the outage.
        assert not [o for o in server.index().outcome_counts() if o.outcome is Outcome.INVALID]
        assert metric(server, 'profd_backend_errors_total{backend="blob store"') >= 2
        assert metric(server, "profd_worker_dead_letters_total") == 0
    finally:
        server.stop()


def test_a_store_down_for_good_dead_letters_and_dlq_retry_stores_it(tmp_path: Path, tmpfs: Path) -> None:
    data = tmp_path / "data"
    server = start_server(
        data,
        PROFD_BLOB_URL=tmpfs.as_uri(),
        PROFD_WORKER_MAX_ATTEMPTS="3",
        PROFD_WORKER_RETRY_BACKOFF="0.05",
    )
    try:
        filler = fill(tmpfs)
        profile = python_profile()
        assert post(f"{server.url}/api/1/envelope/", envelope(profile), key=server.public_key) == 200
        server.wait_until_drained(timeout=60)
        assert metric(server, "profd_worker_dead_letters_total") == 1
        listed = dlq(data, "list", "--json")
        [letter] = [json.loads(line) for line in listed.splitlines()]
        assert letter["attempts"] == 3 and "blob store" in letter["reason"]
        assert server.index().profile(1, profile["event_id"]) is None
        filler.unlink()
        assert "1 dead letters sent back" in dlq(data, "retry")
        server.wait_until_drained(timeout=60)
        assert server.index().profile(1, profile["event_id"]) is not None
        assert profile_outcomes(server, profile["event_id"])[(Outcome.ACCEPTED, DataCategory.PROFILE)] == 1
        assert dlq(data, "list", "--json").strip() == ""
    finally:
        server.stop()


def dlq(data: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "profd", "dlq", *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    return done.stdout


def test_a_full_disk_is_503_and_not_ready_then_everything_resumes(tmp_path: Path, tmpfs: Path) -> None:
    server = start_server(tmpfs / "data", PROFD_MIN_FREE_DISK=str(1 << 20), PROFD_WORKER_RETRY_BACKOFF="0.2")
    try:
        assert ready(server)[0] == 200
        before = python_profile()
        assert post(f"{server.url}/api/1/envelope/", envelope(before), key=server.public_key) == 200
        server.wait_until_drained()
        filler = fill(tmpfs)
        refused = [python_profile() for _ in range(3)]
        statuses = [
            post(f"{server.url}/api/1/envelope/", envelope(p), key=server.public_key) for p in refused
        ]
        assert set(statuses) == {503}, statuses
        status, body = ready(server)
        assert status == 503 and body["checks"]["disk"] != "ok"  # type: ignore[index]
        assert "refused with 503" in server.log.read_text()  # type: ignore[union-attr]
        filler.unlink()
        wait_for(lambda: ready(server)[0] == 200, what="readiness after space was freed")
        # The SDK sends again what got 503; now it is taken.
        for p in refused:
            assert post(f"{server.url}/api/1/envelope/", envelope(p), key=server.public_key) == 200
        server.wait_until_drained()
        for p in [before, *refused]:
            assert server.index().profile(1, p["event_id"]) is not None
            assert profile_outcomes(server, p["event_id"])[(Outcome.ACCEPTED, DataCategory.PROFILE)] == 1
    finally:
        server.stop()


def worker_pid(server: Server) -> int:
    assert server.process is not None
    # Children are listed under the thread that started them (the supervisor's, after a restart).
    tasks = Path(f"/proc/{server.process.pid}/task").glob("*/children")
    children = [c for task in tasks for c in task.read_text().split()]
    [pid] = [int(c) for c in children if b"worker" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return pid


def test_a_killed_worker_is_restarted_and_readiness_says_so(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        wait_for(lambda: ready(server)[0] == 200, what="ready")
        first = worker_pid(server)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: ready(server)[1]["checks"]["worker"] != "ok", 10, "readiness to see the worker down")  # type: ignore[index]
        profile = python_profile()
        assert post(f"{server.url}/api/1/envelope/", envelope(profile), key=server.public_key) == 200
        wait_for(lambda: ready(server)[0] == 200, what="the restarted worker")
        assert worker_pid(server) != first
        server.wait_until_drained()
        assert server.index().profile(1, profile["event_id"]) is not None
        # The worker's own process counts into /metrics: its stages and outcomes show.
        assert metric(server, 'profd_stage_seconds_count{stage="push_to_store"') >= 1
        assert metric(server, 'profd_outcomes_total{category="profile",outcome="accepted"') >= 1
    finally:
        server.stop()
