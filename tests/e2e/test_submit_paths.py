"""`profd process` and the HTTP endpoint apply the same ingest rules to the same envelope:
`missing_transaction` used to be checked over HTTP only."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from profd.settings import Settings, sqlite_path
from tests.clients.envelopes import envelope, post, python_profile
from tests.e2e.server import IndexFile, start_server


def counted(index: IndexFile) -> Counter[tuple[int, str | None, int]]:
    return Counter({(int(c.outcome), c.reason, int(c.category)): c.times for c in index.outcome_counts()})


def test_the_cli_and_http_count_one_envelope_alike(tmp_path: Path) -> None:
    first, extra, alone = python_profile(), python_profile(), python_profile()
    broken = python_profile()
    broken["profile"]["stacks"][0].append(99)
    bodies = [envelope(first), envelope(alone, with_transaction=False), envelope(broken)]
    payload = json.dumps(extra).encode()
    bodies[0] += json.dumps({"type": "profile", "length": len(payload)}).encode() + b"\n" + payload + b"\n"
    files = []
    for n, body in enumerate(bodies):
        files.append(tmp_path / f"envelope-{n}.bin")
        files[-1].write_bytes(body)

    cli_data = tmp_path / "cli"
    subprocess.run(
        [sys.executable, "-m", "profd", "process", "--data-dir", str(cli_data), *map(str, files)],
        check=True,
        capture_output=True,
    )
    server = start_server(tmp_path / "http")
    try:
        for body in bodies:
            assert post(f"{server.url}/api/1/envelope/", body, key=server.public_key) == 200
        server.wait_until_drained()
        over_http = counted(server.index())
    finally:
        server.stop()
    by_cli = counted(IndexFile(sqlite_path(Settings.load(data_dir=cli_data).index_url)))
    assert by_cli == over_http
    reasons = {reason for _, reason, _ in by_cli}
    assert {
        "profiling_too_many_profiles",
        "missing_transaction",
        "profiling_malformed_stacks",
        None,
    } <= reasons
