"""`profd serve --workers 3`: three worker processes share the local queue.  One is killed
with -9 while profiles arrive; it is restarted, readiness is red meanwhile, and by id every
profile answered 200 is stored exactly once with exactly one set of outcomes."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

from profd.bus.sqlite_queue import GroupMember, SqliteQueue
from profd.bus.worker import CONSUMER_GROUP
from profd.formats.outcome import DataCategory, Outcome
from profd.settings import Settings, sqlite_path
from tests.clients.envelopes import envelope, post, python_profile
from tests.e2e.server import Server, start_server
from tests.e2e.test_crash import assert_kept
from tests.e2e.test_faults import metric, profile_outcomes, ready, wait_for


def worker_pids(server: Server) -> set[int]:
    assert server.process is not None
    # Children are listed under the thread that started them (a supervisor's, after a restart).
    tasks = Path(f"/proc/{server.process.pid}/task").glob("*/children")
    children = {int(c) for task in tasks for c in task.read_text().split()}
    return {pid for pid in children if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes()}


def queue_members(server: Server) -> list[GroupMember]:
    queue = SqliteQueue(sqlite_path(Settings.load(data_dir=server.data_dir).bus_url))
    try:
        return queue.members(CONSUMER_GROUP)
    finally:
        queue.close()


def joined(server: Server) -> set[int]:
    return {member.pid for member in queue_members(server)}


def holds(server: Server, pid: int) -> int:
    return sum(member.holds for member in queue_members(server) if member.pid == pid)


def test_three_workers_one_killed_mid_stream_store_every_profile_once(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--workers", "3")
    try:
        wait_for(lambda: ready(server)[0] == 200 and len(worker_pids(server)) == 3, what="three workers")
        first = worker_pids(server)
        url = f"{server.url}/api/1/envelope/"
        profiles = [python_profile() for _ in range(150)]
        answered: list[str] = []
        statuses: Counter[int] = Counter()
        sent = threading.Semaphore(0)

        def send(batch: list[dict[str, object]]) -> None:
            for profile in batch:
                status = post(url, envelope(profile), key=server.public_key, timeout=30)
                statuses[status] += 1
                if status == 200:
                    answered.append(str(profile["event_id"]))
                sent.release()

        threads = [threading.Thread(target=send, args=(profiles[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for _ in range(50):
            assert sent.acquire(timeout=30)
        # Killed while it holds messages (handling one, or handled and not yet committed).
        wait_for(lambda: joined(server) == first, what="every worker to join the queue's group")
        victim = sorted(first)[0]
        wait_for(lambda: holds(server, victim) > 0, what="the victim to hold a message")
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: ready(server)[1]["checks"]["worker"] != "ok", 10, "readiness to see a worker down")  # type: ignore[index]
        for thread in threads:
            thread.join(120)
        # A killed worker does not make ingest refuse anything.
        assert statuses == {200: len(profiles)}, statuses
        wait_for(lambda: ready(server)[0] == 200, what="the restarted worker")
        now = worker_pids(server)
        assert len(now) == 3 and victim not in now and len(now & first) == 2
        # The other members saw it die, and what it held went to them.
        wait_for(lambda: victim not in joined(server), what="the dead member to be dropped")
        server.wait_until_drained()

        promised = sorted(answered)
        assert_kept(server.data_dir, promised)
        for event_id in promised:
            assert profile_outcomes(server, event_id) == {
                (Outcome.ACCEPTED, DataCategory.PROFILE): 1,
                (Outcome.ACCEPTED, DataCategory.PROFILE_INDEXED): 1,
            }, event_id
        # Outcomes balance: one outcome in the profile category per item taken, no more.
        counted = server.index().select(
            "SELECT COUNT(*) AS n FROM outcomes WHERE category = ?", (int(DataCategory.PROFILE),)
        )
        assert counted[0]["n"] == len(promised)
        assert metric(server, 'profd_ingest_profile_items_total{item_type="profile"') == len(promised)
        # The workers' own processes count into serve's /metrics, the restarted one's too.
        assert metric(server, 'profd_stage_seconds_count{stage="push_to_store"') >= len(promised)
    finally:
        server.stop()


def test_profd_worker_processes_2_drains_the_queue_and_stops_its_children(tmp_path: Path) -> None:
    """`profd worker --processes 2`: two supervised children share the queue; SIGTERM to the
    parent stops them both, each finishing what it holds."""
    import subprocess
    import sys
    import time
    import uuid

    from profd.formats import encode_message
    from profd.formats.message import message_headers
    from profd.ingest.submit import file_item, to_message
    from profd.services import open_services

    data = tmp_path / "data"
    services = open_services(Settings.load(data_dir=data))
    organization, project = services.default_project()
    example = (Path(__file__).resolve().parents[2] / "examples" / "node-chunk.json").read_bytes()
    for _ in range(30):
        # A new chunk each, so that each is a profile of its own.
        chunk = example.replace(b"c0ffee1234564bd2a7e8f9d0c1b2a3f4", uuid.uuid4().hex.encode())
        message = to_message(
            file_item(chunk), organization_id=organization.id, project_id=project.id, received=1
        )
        services.queue.produce("profiles", encode_message(message), message_headers(message, sampled=True))
    parent = subprocess.Popen(
        [sys.executable, "-m", "profd", "worker", "--data-dir", str(data), "--processes", "2"]
    )
    try:
        wait_for(lambda: len(services.queue.members(CONSUMER_GROUP)) == 2, what="two members")
        children = {member.pid for member in services.queue.members(CONSUMER_GROUP)}
        assert parent.pid not in children
        wait_for(lambda: services.queue.pending("profiles", CONSUMER_GROUP) == 0, what="the queue drained")
        parent.terminate()
        assert parent.wait(60) == 0
        # Both left the group as they stopped, and neither runs any more.
        assert services.queue.members(CONSUMER_GROUP) == []
        time.sleep(0.2)
        assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
        assert len(services.reads.profiles()) == 30
    finally:
        if parent.poll() is None:
            parent.kill()
        services.close()
