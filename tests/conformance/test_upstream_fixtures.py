"""Every upstream fixture through `profd process`, checked against ../shared/fixtures/upstream/SOURCES.md.

Valid files must be accepted, invalid ones rejected with a reason.  Where profd's verdict
differs from SOURCES.md, the entry says why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED

UPSTREAM = SHARED / "fixtures" / "upstream" / "getsentry"
RELAY = "relay/relay-profiling/tests/fixtures/"
VROOMRS = "vroomrs/tests/fixtures/"

ACCEPTED = ("accepted", None)

EXPECTED: dict[str, tuple[str, str | None]] = {
    # Truncated (SOURCES.md); it also lacks cocoa device metadata, which Relay checks first.
    VROOMRS + "sample/v1/valid_cocoa.json": ("invalid", "profiling_invalid_profile_metadata"),
    # SOURCES.md calls these two valid, but they are truncated like valid_cocoa (stacks point
    # past the frames) and each thread has one sample, which Relay drops before anything else.
    VROOMRS + "sample/v1/valid_python.json": ("invalid", "profiling_not_enough_samples"),
    VROOMRS + "sample/v2/valid_python.json": ("invalid", "profiling_not_enough_samples"),
    VROOMRS + "sample/v2/valid_cocoa.json": ACCEPTED,
    VROOMRS + "sample/v2/valid_android.json": ACCEPTED,
    VROOMRS + "android/profile/valid.json": ACCEPTED,
    VROOMRS + "android/chunk/valid.json": ACCEPTED,
    VROOMRS + "android/chunk/valid_2_android_trace.json": ACCEPTED,
    "vroom/test/data/node.json": ACCEPTED,
    "vroom/test/data/cocoa.json": ("invalid", "profiling_platform_not_supported"),  # the 2022 format
    RELAY + "sample/v1/valid.json": ACCEPTED,
    RELAY + "sample/v1/segment_id.json": ACCEPTED,
    RELAY + "sample/v2/valid.json": ACCEPTED,
    RELAY + "android/legacy/valid.json": ACCEPTED,
    RELAY + "android/legacy/roundtrip.json": ACCEPTED,
    RELAY + "android/legacy/roundtrip.rn.json": ACCEPTED,
    RELAY + "android/legacy/multiple_transactions.json": ACCEPTED,
    RELAY + "android/legacy/no_transaction.json": ("invalid", "profiling_invalid_json"),  # trailing comma
    RELAY + "android/legacy/remove_invalid_events.json": ("invalid", "profiling_not_enough_samples"),
    RELAY + "android/chunk/remove_invalid_events.json": ("invalid", "profiling_not_enough_samples"),
    RELAY + "android/chunk/valid.json": ACCEPTED,
    RELAY + "android/chunk/valid-rn.json": ACCEPTED,
    # Not used by Relay's tests: it has the "platform" key twice (profd would take the last)
    # but no chunk start "timestamp", which Relay requires and without which its trace
    # cannot be placed in time.
    RELAY + "android/chunk/roundtrip.rn.json": ("invalid", "profiling_invalid_json"),
    "relay/tests/integration/fixtures/profile_chunks_perfetto/profile_chunk.output.json": ACCEPTED,
    # No device/os: Relay (and vroomrs) reject it; Sentry's own tests feed it to the task directly.
    "sentry/fixtures/profiles/valid_js_profile.json": ("invalid", "profiling_invalid_json"),
}


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str | None]]:
    if not UPSTREAM.exists():
        pytest.skip(f"{UPSTREAM} is not here: the conformance inputs live in ../shared")
    paths = sorted(str(p) for p in UPSTREAM.rglob("*.json"))
    data_dir = tmp_path_factory.mktemp("conformance")
    done = subprocess.run(
        [sys.executable, "-m", "profd", "process", "--json", "--data-dir", str(data_dir), *paths],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {str(Path(row["path"]).relative_to(UPSTREAM)): row for row in rows}


def test_every_fixture_has_an_expectation(verdicts: dict[str, dict[str, str | None]]) -> None:
    assert sorted(verdicts) == sorted(EXPECTED)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_fixture_outcome(verdicts: dict[str, dict[str, str | None]], fixture: str) -> None:
    row = verdicts[fixture]
    assert (row["outcome"], row["reason"]) == EXPECTED[fixture], row
    if row["outcome"] == "accepted":
        assert row["event_id"]
