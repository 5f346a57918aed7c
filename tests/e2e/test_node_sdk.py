"""@sentry/node + @sentry/profiling-node (9.x transaction profiles, 11.x chunks) against profd serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from profd.formats.outcome import DataCategory, Outcome
from profd.settings import Settings
from profd.store import BlobStore, ProfileStore
from tests.clients import node
from tests.e2e.server import Server

# What this module needs beyond Python: `make test-fast` leaves it out.
pytestmark = [pytest.mark.npm]

# npm packages are kept here between runs; one install per version per fresh checkout.
NPM_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "npm-e2e"


@pytest.mark.skipif(not node.npm_available(), reason="node and npm are needed for the Node SDK tests")
@pytest.mark.parametrize(("mode", "kind"), [("transaction", "sample_v1"), ("continuous", "sample_v2")])
def test_node_sdk_profiles_are_stored(server: Server, mode: str, kind: str) -> None:
    project = node.install(NPM_CACHE, node.VERSIONS[mode])
    node.run_workload(project, server.dsn, mode, seconds=2)
    server.wait_until_drained()
    index = server.index()
    profiles = [m for m in index.profiles(limit=1000) if m.release == f"node-workload@{mode}"]
    assert {m.kind for m in profiles} == {kind}
    assert {m.platform for m in profiles} == {"node"}
    store = ProfileStore(BlobStore(Settings.load(data_dir=server.data_dir).blob_store_url), index)
    frames = {frame.get("function") for m in profiles for frame in store.load(m)["profile"]["frames"]}
    assert {"fib", "renderRows", "handleRequest"} <= frames
    names = {f.function for m in profiles for f in index.functions(m.project_id, m.profile_id)}
    assert "fib" in names
    category = DataCategory.PROFILE_INDEXED if mode == "transaction" else DataCategory.PROFILE_CHUNK
    counts = {(c.outcome, c.category) for c in index.outcome_counts()}
    assert (Outcome.ACCEPTED, category) in counts
