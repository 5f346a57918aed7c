"""Structured logs: with PROFD_LOG_FORMAT=json every log line of serve and of its worker's
process is a JSON object, and an envelope's request id follows its profile into the worker."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from profd.logs import new_request_id
from tests.clients.envelopes import envelope, python_profile
from tests.e2e.server import start_server


def test_a_request_id_follows_the_profile_into_the_worker(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", PROFD_LOG_FORMAT="json", PROFD_LOG_LEVEL="info")
    try:
        profile = python_profile()
        request = urllib.request.Request(
            f"{server.url}/api/1/envelope/",
            data=envelope(profile),
            headers={"X-Sentry-Auth": f"Sentry sentry_key={server.public_key}", "X-Request-Id": "trace-42"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["X-Request-Id"] == "trace-42"
        server.wait_until_drained()
        assert server.log is not None
        deadline = time.monotonic() + 10
        while True:
            lines = [line for line in server.log.read_text().splitlines() if line.startswith("{")]
            traced = [json.loads(line) for line in lines if '"trace-42"' in line]
            if {entry["logger"] for entry in traced} >= {"profd.web.ingest", "profd.worker"}:
                break
            assert time.monotonic() < deadline, traced
            time.sleep(0.1)
        [stored] = [entry for entry in traced if entry["logger"] == "profd.worker"]
        assert profile["event_id"] in stored["message"] and "accepted" in stored["message"]
        assert stored["level"] == "info" and stored["time"].endswith("Z")
    finally:
        server.stop()


def test_request_ids_from_clients_are_kept_only_when_plain() -> None:
    assert new_request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    for hostile in ("a b", "x" * 65, "line\nbreak", '"quoted"', ""):
        made = new_request_id(hostile)
        assert made != hostile and len(made) == 32
