"""The envelope endpoint's rules on real backends (SQLite index and queue), without HTTP."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from profd.bus.worker import CONSUMER_GROUP
from profd.errors import Refused
from profd.formats.message import TOPIC
from profd.formats.outcome import DataCategory, Outcome
from profd.ingest.endpoint import EnvelopeEndpoint, Sender, dsn_public_key, public_key_of
from profd.services import Services

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def endpoint(services: Services, **settings: object) -> tuple[EnvelopeEndpoint, Sender]:
    for name, value in settings.items():
        setattr(services.settings, name, value)
    _, project = services.default_project()
    ingest = services.envelope_endpoint()
    return ingest, ingest.authenticate(project.id, services.directory.keys(project.id)[0].public_key)


def chunks(count: int, valid: bool = True) -> bytes:
    chunk = json.loads((EXAMPLES / "node-chunk.json").read_text())
    out = [b'{"event_id": "' + uuid.uuid4().hex.encode() + b'"}']
    for _ in range(count):
        payload = json.dumps({**chunk, "chunk_id": uuid.uuid4().hex}).encode() if valid else b"{}"
        out += [json.dumps({"type": "profile_chunk", "length": len(payload)}).encode(), payload]
    return b"\n".join(out) + b"\n"


def test_an_envelopes_rejections_are_written_in_one_transaction(services: Services) -> None:
    """20,000 invalid items used to cost 40,000 write transactions."""
    ingest, sender = endpoint(services)
    statements: list[str] = []
    services.index._db.connection.set_trace_callback(statements.append)
    ingest.accept(sender, chunks(900, valid=False))
    services.index._db.connection.set_trace_callback(None)
    assert statements.count("COMMIT") == 1  # the outcomes with the project's has_profiles flag
    [count] = [c for c in services.reads.outcome_counts() if c.category is DataCategory.PROFILE_CHUNK]
    assert (count.outcome, count.times) == (Outcome.INVALID, 900)


def test_the_queue_check_counts_the_items_an_envelope_adds(services: Services) -> None:
    ingest, sender = endpoint(services, queue_max_depth=4)
    ingest.accept(sender, chunks(2))
    with pytest.raises(Refused) as full:
        ingest.accept(sender, chunks(3))  # 2 waiting + 3 > 4
    assert full.value.status == 429
    assert full.value.headers == {
        "Retry-After": "5",
        "X-Sentry-Rate-Limits": "5:profile;profile_chunk;profile_chunk_ui:project:queue_full",
    }
    limited = [c for c in services.reads.outcome_counts() if c.outcome is Outcome.RATE_LIMITED]
    assert [(c.reason, c.category, c.times) for c in limited] == [
        ("queue_full", DataCategory.PROFILE_CHUNK, 3)
    ]
    ingest.accept(sender, chunks(2))  # exactly full is still room


def test_a_key_over_its_rate_limit_is_told_when_to_come_back(services: Services) -> None:
    ingest, sender = endpoint(services, key_rate_limit="5/hour")
    ingest.accept(sender, chunks(5))
    with pytest.raises(Refused) as limited:
        ingest.accept(sender, chunks(1))
    assert limited.value.status == 429
    assert 3000 < int(limited.value.headers["Retry-After"]) <= 3600
    assert limited.value.headers["X-Sentry-Rate-Limits"].endswith(":project:key_rate_limit")
    # An envelope without profiles costs nothing, so it still goes through.
    assert ingest.accept(sender, b'{"event_id": "00"}\n{"type": "session", "length": 2}\n{}\n') == "00"


def test_an_envelope_of_many_items_is_refused_before_any_is_processed(services: Services) -> None:
    ingest, sender = endpoint(services, max_envelope_items=10)
    with pytest.raises(Refused) as refused:
        ingest.accept(sender, chunks(11))
    assert refused.value.status == 413
    assert services.queue.pending(TOPIC, CONSUMER_GROUP) == 0


@pytest.mark.parametrize(
    ("headers", "query", "key"),
    [
        (("Sentry sentry_key=abc, sentry_version=7", None), None, "abc"),
        ((None, "Sentry sentry_key=def,sentry_client=x"), None, "def"),
        (("sentry_key=ghi", None), None, "ghi"),
        ((None, "Bearer profd_xyz"), "jkl", "jkl"),
        ((None, None), None, None),
    ],
)
def test_the_key_comes_from_either_header_or_the_query(
    headers: tuple[str | None, str | None], query: str | None, key: str | None
) -> None:
    assert public_key_of(*headers, query_key=query) == key


def test_the_key_of_a_tunnelled_envelope_is_its_dsn() -> None:
    assert dsn_public_key(b'{"dsn": "https://abc123@o1.example/42"}') == "abc123"
    for line in (b'{"dsn": 7}', b"{}", b"not json", b'{"dsn": "http://[::1"}', b"[" * 5000):
        assert dsn_public_key(line) is None
