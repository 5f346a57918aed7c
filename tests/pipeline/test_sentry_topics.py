"""The messages workers write for Sentry's storage, checked against sentry-kafka-schemas:
the schemas Snuba's consumers are generated from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sentry_kafka_schemas

from profd.formats import encode_message
from profd.ingest.submit import file_item, to_message
from profd.pipeline.outcomes import Outcome
from profd.pipeline.sentry_topics import TopicNames, outcome_messages, profile_messages
from profd.pipeline.task import TaskRun, process_profile_task
from profd.services import Services

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOPICS = TopicNames()


def decoded(topic: str, value: bytes) -> dict[str, Any]:
    result: dict[str, Any] = sentry_kafka_schemas.get_codec(topic).decode(value, validate=True)
    return result


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return document


def run(services: Services, name: str, sampled: bool = True, project_id: int | None = None) -> TaskRun:
    """An example file as `profd process` takes it: expanded as ingest does, then the task."""
    organization, project = services.default_project()
    item = file_item((EXAMPLES / name).read_bytes(), sampled)
    message = to_message(
        item,
        organization_id=organization.id,
        project_id=project.id if project_id is None else project_id,
        received=1795684590,
    )
    return process_profile_task(encode_message(message), sampled, context=services.task_context())


def test_a_transaction_profile_gives_its_metadata_and_call_tree(services: Services) -> None:
    task = run(services, "python-transaction.json")
    assert task.processed is not None and task.outcomes[0].outcome is Outcome.ACCEPTED
    messages = profile_messages(task.processed, TOPICS, "profiles/0/7")
    assert [m.topic for m in messages] == ["processed-profiles", "profiles-call-tree"]
    metadata = decoded("processed-profiles", messages[0].value)
    assert metadata["profile_id"] == task.processed.metadata.profile_id
    assert metadata["transaction_name"] == "POST /cart/checkout"
    assert metadata["version_name"] == task.processed.document["release"]
    assert metadata["device_os_name"] == task.processed.document["os"]["name"]
    # Empty optional fields are left out, as vroom's omitempty did.
    assert "android_api_level" not in metadata
    call_tree = decoded("profiles-call-tree", messages[1].value)
    assert call_tree["profile_id"] == metadata["profile_id"] and "profiling_type" not in call_tree
    assert all(f["self_times_ns"] for f in call_tree["functions"])
    # One profile's messages share a key (one partition, in order) and say who they are.
    assert {m.key for m in messages} == {metadata["profile_id"].encode()}
    assert [dict(m.headers)["idempotency_key"] for m in messages] == [
        b"profiles/0/7/processed-profiles",
        b"profiles/0/7/profiles-call-tree",
    ]


def test_a_chunk_gives_its_chunk_row_and_a_continuous_call_tree(services: Services) -> None:
    task = run(services, "node-chunk.json")
    assert task.processed is not None
    messages = profile_messages(task.processed, TOPICS, "profiles/0/8")
    assert [m.topic for m in messages] == ["snuba-profile-chunks", "profiles-call-tree"]
    chunk = decoded("snuba-profile-chunks", messages[0].value)
    metadata = task.processed.metadata
    assert (chunk["chunk_id"], chunk["profiler_id"]) == (metadata.profile_id, metadata.profiler_id)
    assert chunk["end_timestamp"] >= chunk["start_timestamp"] > 0
    call_tree = decoded("profiles-call-tree", messages[1].value)
    assert call_tree["profiling_type"] == "continuous" and call_tree["profile_id"] == metadata.profiler_id
    assert call_tree["transaction_name"] == ""


def test_a_legacy_android_profile_has_its_flat_device_facts(services: Services) -> None:
    document = example("android-transaction.json")
    task = run(services, "android-transaction.json")
    assert task.processed is not None
    metadata = decoded("processed-profiles", profile_messages(task.processed, TOPICS, "m")[0].value)
    assert metadata["device_model"] == document["device_model"]
    assert metadata["architecture"] == document.get("architecture", "unknown")
    assert metadata["android_api_level"] == document["android_api_level"]
    assert metadata["version_code"] == document["version_code"]


def test_an_unsampled_profile_gives_only_its_call_tree_under_the_zero_id(services: Services) -> None:
    services.settings.unsampled_profiles_enabled = True
    task = run(services, "python-transaction.json", sampled=False)
    assert task.processed is not None
    messages = profile_messages(task.processed, TOPICS, "m")
    assert [m.topic for m in messages] == ["profiles-call-tree"]
    assert decoded("profiles-call-tree", messages[0].value)["profile_id"] == "0" * 32


@pytest.mark.parametrize("project_id", [None, 999])
def test_outcome_messages_are_sentrys(services: Services, project_id: int | None) -> None:
    """Accepted ones, and an invalid one with its reason (a project that does not exist)."""
    task = run(services, "python-transaction.json", project_id=project_id)
    assert (task.outcomes[-1].outcome is Outcome.INVALID) == (project_id is not None)
    messages = outcome_messages(task.outcomes, "outcomes")
    assert len(messages) == len(task.outcomes) > 0
    for record, message in zip(task.outcomes, messages, strict=True):
        outcome = decoded("outcomes", message.value)
        assert (outcome["outcome"], outcome["category"], outcome["quantity"]) == (
            int(record.outcome),
            int(record.category),
            record.quantity,
        )
        assert outcome["reason"] == record.reason and outcome["timestamp"].endswith("Z")
        assert msgspec.json.decode(message.value)["org_id"] == record.org_id
