"""kill -9 in the middle of ingest: every envelope answered 200 is stored, exactly once."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from tests.clients.envelopes import envelope, post, python_profile
from tests.e2e.server import Server, start_server


def test_kill_9_loses_nothing_answered(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    url = f"{server.url}/api/1/envelope/"
    key = server.public_key
    profile_ids = [f"{i:08x}" + "a" * 24 for i in range(120)]
    answered: list[str] = []
    sent = threading.Semaphore(0)

    def send(ids: list[str]) -> None:
        for profile_id in ids:
            try:
                if post(url, envelope(python_profile(profile_id)), key=key, timeout=10) == 200:
                    answered.append(profile_id)
            except OSError:
                pass  # the server is gone: this envelope was never answered
            sent.release()

    threads = [threading.Thread(target=send, args=(profile_ids[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(40):
        sent.acquire(timeout=30)
    assert server.stop(signal.SIGKILL) == -9
    for thread in threads:
        thread.join(60)
    assert 40 <= len(answered) < len(profile_ids)

    restarted = Server(data_dir=server.data_dir, port=server.port, environment={}).start()
    restarted.wait_until_drained()
    index = restarted.index()
    blobs = Path(server.data_dir) / "blobs" / "1" / "1"
    for profile_id in answered:
        assert index.profile(1, profile_id) is not None, profile_id
        assert len(list(blobs.glob(profile_id))) == 1
    stored = [m.profile_id for m in index.profiles(limit=1000)]
    assert len(stored) == len(set(stored))
    # Processing again never duplicates: stop and start once more over the same data.
    restarted.stop()
    again = Server(data_dir=server.data_dir, port=server.port, environment={}).start()
    time.sleep(0.5)
    assert len(again.index().profiles(limit=1000)) == len(stored)
    again.stop()
