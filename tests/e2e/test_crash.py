"""kill -9 in the middle of ingest: every envelope answered 200 is stored, exactly once."""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections import Counter
from contextlib import closing
from pathlib import Path

from profd.formats.outcome import DataCategory, Outcome
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
    # The ids the server promised to keep, fixed before it comes back: what is checked
    # below is measured against these, not against what happens to be stored.
    promised = sorted(answered)
    assert 40 <= len(promised) < len(profile_ids)
    assert len(set(promised)) == len(promised)

    restarted = Server(data_dir=server.data_dir, port=server.port, environment={}).start()
    restarted.wait_until_drained()
    stored = assert_kept(Path(server.data_dir), promised)
    # Processing again never duplicates: stop and start once more over the same data.
    restarted.stop()
    again = Server(data_dir=server.data_dir, port=server.port, environment={}).start()
    again.wait_until_drained()
    assert assert_kept(Path(server.data_dir), promised) == stored
    again.stop()


def assert_kept(data_dir: Path, promised: list[str]) -> Counter[str]:
    """Every promised id is indexed exactly once, has exactly one blob and its ACCEPTED
    outcome; returns how often each stored id is indexed."""
    with closing(sqlite3.connect(f"file:{data_dir / 'index.sqlite3'}?mode=ro", uri=True)) as db:
        indexed = Counter(row[0] for row in db.execute("SELECT profile_id FROM profiles"))
        accepted = {
            row[0]
            for row in db.execute(
                "SELECT event_id FROM outcomes WHERE outcome = ? AND category = ?",
                (int(Outcome.ACCEPTED), int(DataCategory.PROFILE)),
            )
        }
    not_indexed_once = {i: indexed[i] for i in promised if indexed[i] != 1}
    assert not not_indexed_once, f"answered 200, then indexed this many times: {not_indexed_once}"
    blobs = data_dir / "blobs"
    not_one_blob = {i: n for i in promised if (n := sum(p.is_file() for p in blobs.rglob(f"{i}*"))) != 1}
    assert not not_one_blob, f"answered 200, then stored this many times: {not_one_blob}"
    no_outcome = sorted(set(promised) - accepted)
    assert not no_outcome, f"answered 200, but never accepted: {no_outcome}"
    assert max(indexed.values()) == 1, "a profile is indexed twice"
    return indexed
