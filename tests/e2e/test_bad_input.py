"""Malformed envelopes against a live server: 4xx or an INVALID outcome, never a 5xx."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profd.formats.outcome import Outcome
from tests.clients.envelopes import envelope, gzipped, post, python_profile
from tests.e2e.server import Server, start_server

ALLOWED = {200, 400, 401, 403, 404, 413, 429}
LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a 2 MiB limit, so oversized bodies are cheap to send."""
    server = start_server(
        tmp_path_factory.mktemp("bad-input"),
        PROFD_MAX_PROFILE_SIZE=str(LIMIT),
        PROFD_MAX_ENVELOPE_SIZE=str(LIMIT),
    )
    yield server
    server.stop()


def mutate(kind: str, data: st.DataObject) -> tuple[bytes, str | None]:
    valid = envelope(python_profile())
    if kind == "truncated":
        return valid[: data.draw(st.integers(0, len(valid) - 1))], None
    if kind == "flipped":
        position = data.draw(st.integers(0, len(valid) - 1))
        return valid[:position] + bytes([valid[position] ^ 0xFF]) + valid[position + 1 :], None
    if kind == "wrong length":
        length = data.draw(st.integers(-5, 10**7))
        return valid.replace(b'"length": ', f'"length": {length}, "x": '.encode(), 1), None
    if kind == "bad compression":
        encoding = data.draw(st.sampled_from(["gzip", "deflate", "br", "zstd", "lzma"]))
        return gzipped(valid)[: data.draw(st.integers(0, 40))], encoding
    if kind == "bad json":
        profile = json.dumps(python_profile()).encode()
        cut = data.draw(st.integers(1, len(profile) - 1))
        return envelope(profile[:cut] + data.draw(st.binary(max_size=8))), None
    if kind == "bad indices":
        profile = python_profile()
        where = data.draw(st.sampled_from(["stack", "sample"]))
        if where == "stack":
            profile["profile"]["stacks"][0].append(data.draw(st.integers(6, 10**9)))
        else:
            profile["profile"]["samples"][1]["stack_id"] = data.draw(
                st.integers(-10, -1) | st.integers(5, 10**6)
            )
        return envelope(profile), None
    if kind == "wrong types":
        profile = python_profile()
        field = data.draw(st.sampled_from(["platform", "version", "profile", "transactions", "os", "device"]))
        profile[field] = data.draw(
            st.none() | st.integers() | st.text(max_size=5) | st.lists(st.integers(), max_size=2)
        )
        return envelope(profile), None
    if kind == "huge":
        return gzipped(b"0" * (LIMIT + data.draw(st.integers(1, 10**6)))), "gzip"
    return data.draw(st.binary(max_size=200)), None


KINDS = [
    "truncated",
    "flipped",
    "wrong length",
    "bad compression",
    "bad json",
    "bad indices",
    "wrong types",
    "huge",
    "garbage",
]


@settings(max_examples=220, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_no_malformed_envelope_gets_a_server_error(
    small_server: Server, kind: str, data: st.DataObject
) -> None:
    body, encoding = mutate(kind, data)
    status = post(f"{small_server.url}/api/1/envelope/", body, key=small_server.public_key, encoding=encoding)
    assert status in ALLOWED, (kind, status)


def test_each_kind_is_refused_or_counted(small_server: Server) -> None:
    url, key = f"{small_server.url}/api/1/envelope/", small_server.public_key
    assert post(url, b"\x00garbage", key=key) == 400
    assert post(url, gzipped(b"0" * (LIMIT + 1)), key=key, encoding="gzip") == 413
    assert post(url, zlib.compress(b"x")[:3], key=key, encoding="deflate") == 400
    assert post(url, envelope(python_profile()), key=None) == 401
    assert post(url, envelope(python_profile()), key="0" * 32) == 401
    assert post(f"{small_server.url}/api/999/envelope/", envelope(python_profile()), key=key) == 404
    broken = python_profile()
    broken["profile"]["stacks"][0].append(99)
    assert post(url, envelope(broken), key=key) == 200  # Relay answers 200 and counts the item
    assert post(url, envelope(python_profile(), with_transaction=False), key=key) == 200
    small_server.wait_until_drained()
    reasons = {c.reason for c in small_server.index().outcome_counts() if c.outcome is Outcome.INVALID}
    assert {"profiling_malformed_stacks", "missing_transaction", "too_large"} <= reasons


def test_the_server_keeps_serving_valid_envelopes(small_server: Server) -> None:
    profile = python_profile()
    assert post(f"{small_server.url}/api/1/envelope/", envelope(profile), key=small_server.public_key) == 200
    small_server.wait_until_drained()
    assert small_server.index().profile(1, profile["event_id"]) is not None


def test_a_full_queue_asks_clients_to_retry(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    server = start_server(tmp_path / "data", PROFD_QUEUE_MAX_DEPTH="0")
    try:
        request = urllib.request.Request(
            f"{server.url}/api/1/envelope/",
            data=envelope(python_profile()),
            method="POST",
            headers={"X-Sentry-Auth": f"Sentry sentry_key={server.public_key}"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 429 and refused.value.headers["Retry-After"] == "5"
    finally:
        server.stop()
