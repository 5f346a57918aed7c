"""A server of its own holding one wide python profile: a call tree of about 200 nodes, more
than the smallest node budget (16), for the flamegraph budget and zoom tests (API and UI)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import Server, start_server
from tests.e2e.test_proguard import token

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RELEASE = "wide@1.0"
ROUTES = 30
STEPS = 3
THREAD = "140211987601216"


def route_weight(route: int) -> int:
    """Samples under each step of a route: route 6 (and 13, 20, 27) are the heaviest."""
    return 1 + route % 7


def wide_profile() -> dict[str, Any]:
    """<module> > serve > route_i > step_i_k > deep_i_k, for 30 routes of 3 steps each."""
    profile: dict[str, Any] = json.loads((EXAMPLES / "python-transaction.json").read_text())
    frames: list[dict[str, Any]] = []

    def frame(name: str) -> int:
        frames.append({"function": name, "module": "wide", "filename": "wide.py", "in_app": True})
        return len(frames) - 1

    module, serve = frame("<module>"), frame("serve")
    stacks: list[list[int]] = []
    samples: list[dict[str, Any]] = []
    elapsed = 0
    for route in range(ROUTES):
        top = frame(f"route_{route}")
        for step in range(STEPS):
            middle, deep = frame(f"step_{route}_{step}"), frame(f"deep_{route}_{step}")
            stacks.append([deep, middle, top, serve, module])
            for _ in range(route_weight(route)):
                samples.append(
                    {"stack_id": len(stacks) - 1, "thread_id": THREAD, "elapsed_since_start_ns": str(elapsed)}
                )
                elapsed += 10_000_000
    samples.append({"stack_id": 0, "thread_id": THREAD, "elapsed_since_start_ns": str(elapsed)})
    profile["profile"] = {
        "frames": frames,
        "stacks": stacks,
        "samples": samples,
        "thread_metadata": {THREAD: {"name": "MainThread"}},
    }
    profile["event_id"] = uuid.uuid4().hex
    profile["timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    profile["release"] = RELEASE
    transaction = profile["transactions"][0]
    transaction.update(
        id=uuid.uuid4().hex,
        name="GET /wide",
        relative_end_ns=str(elapsed + 10_000_000),
        active_thread_id=THREAD,
    )
    return profile


@dataclass
class Wide:
    server: Server
    secret: str


@pytest.fixture(scope="module", name="wide")
def wide_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wide]:
    data = tmp_path_factory.mktemp("wide")
    running = start_server(data)
    path = data / "wide.json"
    path.write_text(json.dumps(wide_profile()))
    subprocess.run(
        [sys.executable, "-m", "profd", "process", "--data-dir", str(data), str(path)],
        check=True,
        capture_output=True,
    )
    yield Wide(running, token(running))
    assert running.stop() in (0, -15)
