"""The real sentry-sdk, pointed at a real `profd serve`, in both profiling modes."""

from __future__ import annotations

from pathlib import Path

from profd.formats.outcome import DataCategory, Outcome
from profd.settings import Settings
from profd.store import BlobStore, ProfileStore
from tests.clients.python_sdk import run_workload
from tests.e2e.server import Server


def test_python_sdk_profiles_are_stored_with_the_workload_functions(server: Server, tmp_path: Path) -> None:
    run_workload(server.dsn, tmp_path, seconds=2)
    server.wait_until_drained()
    index = server.index()
    profiles = [m for m in index.profiles() if m.release == "workload@1.0.0"]
    kinds = {m.kind for m in profiles}
    assert kinds == {"sample_v1", "sample_v2"}
    names = {f.function for m in profiles for f in index.functions(m.project_id, m.profile_id)}
    assert "fib" in names  # where the workload spends its time
    store = ProfileStore(BlobStore(Settings.load(data_dir=server.data_dir).blob_store_url), index)
    for metadata in profiles:
        frames = {frame.get("function") for frame in store.load(metadata)["profile"]["frames"]}
        # Sampling at ~100 Hz: fib dominates and handle_request is on every stack; the brief
        # render() and crunch() calls are usually but not always caught.
        assert {"fib", "handle_request"} <= frames, metadata.kind
    transaction = next(m for m in profiles if m.kind == "sample_v1")
    assert transaction.transaction_name == "workload-transaction"
    counts = {(c.outcome, c.reason, c.category) for c in index.outcome_counts()}
    assert (Outcome.ACCEPTED, None, DataCategory.PROFILE_INDEXED) in counts
    assert (Outcome.ACCEPTED, None, DataCategory.PROFILE_CHUNK) in counts
    assert index.project(1).has_profiles  # type: ignore[union-attr]
