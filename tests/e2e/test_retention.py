"""Profiles past their retention disappear: by `profd retention run` and by serve's periodic job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.server import start_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def old_and_new(directory: Path) -> list[Path]:
    """A profile from 2020 (past the default 90 days) and one from now."""
    profile = json.loads((EXAMPLES / "python-transaction.json").read_text())
    old, new = directory / "old.json", directory / "new.json"
    old.write_text(json.dumps({**profile, "timestamp": "2020-01-01T00:00:00Z", "event_id": "0" * 31 + "1"}))
    now = datetime.now(UTC).isoformat()
    new.write_text(json.dumps({**profile, "timestamp": now}))
    return [old, new]


def process(data_dir: Path, paths: list[Path]) -> None:
    subprocess.run(
        [sys.executable, "-m", "profd", "process", "--data-dir", str(data_dir), *map(str, paths)],
        check=True,
        capture_output=True,
    )


def upload_leftovers(data: Path) -> tuple[Path, Path]:
    """A sentry-cli chunk nobody assembled two days ago, and one uploaded just now."""
    chunks = data / "symbols" / "chunks"
    chunks.mkdir(parents=True, exist_ok=True)
    old, new = chunks / ("a" * 40), chunks / ("b" * 40)
    for chunk in (old, new):
        chunk.write_bytes(b"chunk")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    return old, new


def test_retention_run_deletes_what_is_past_retention(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process(data, old_and_new(tmp_path))
    old_chunk, new_chunk = upload_leftovers(data)
    done = subprocess.run(
        [sys.executable, "-m", "profd", "retention", "run", "--data-dir", str(data)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "1 profiles deleted" in done.stdout
    assert "1 upload leftovers deleted" in done.stdout
    assert not old_chunk.exists() and new_chunk.exists()
    listed = subprocess.run(
        [sys.executable, "-m", "profd", "profiles", "list", "--json", "--data-dir", str(data)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert [p["profile_id"] for p in json.loads(listed.stdout)] == ["5ce7a1a5e2f44c8d9b1e1f7a2d6c3b40"]


def test_serve_expires_profiles_periodically(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", PROFD_RETENTION_INTERVAL="0.2")
    try:
        old_chunk, new_chunk = upload_leftovers(server.data_dir)
        process(server.data_dir, old_and_new(tmp_path))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (len(server.index().profiles()) != 1 or old_chunk.exists()):
            time.sleep(0.2)
        assert [m.profile_id for m in server.index().profiles()] == ["5ce7a1a5e2f44c8d9b1e1f7a2d6c3b40"]
        assert not old_chunk.exists() and new_chunk.exists()
    finally:
        server.stop()
