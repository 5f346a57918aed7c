"""Issue 10's ingest findings against a live server, one test each: every one failed before.

The server runs with a 2 MiB envelope limit, so oversized bodies are cheap to send.
"""

from __future__ import annotations

import gzip
import json
import select
import socket
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import brotli
import pytest
import zstandard

from profd.formats.outcome import DataCategory, Outcome
from tests.clients.envelopes import envelope, post, python_profile
from tests.e2e.server import Server, start_server

LIMIT = 2 * 1024 * 1024
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("bounds"),
        PROFD_MAX_ENVELOPE_SIZE=str(LIMIT),
        PROFD_MAX_PROFILE_SIZE=str(LIMIT),
        PROFD_MAX_ENVELOPE_ITEMS="100",
    )
    yield running
    running.stop()


def url(server: Server, project: int = 1) -> str:
    return f"{server.url}/api/{project}/envelope/"


def answer(server: Server, body: bytes, headers: dict[str, str], project: int = 1) -> tuple[int, Message]:
    """(status, headers: case-insensitive, as HTTP's are)."""
    request = urllib.request.Request(url(server, project), data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.headers
    except urllib.error.HTTPError as e:
        return int(e.code), e.headers


def auth(key: str) -> dict[str, str]:
    return {"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7"}


def stream_until_answered(
    server: Server, headers: dict[str, str], total: int, piece: int = 1 << 20
) -> tuple[int, int]:
    """POST `total` bytes of body, stopping as soon as the server answers: (status, bytes sent).

    Raw sockets, because the point is what happens before the body has been sent."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        lines = ["POST /api/1/envelope/ HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sent = 0
        chunked = headers.get("Transfer-Encoding") == "chunked"
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            data = b"0" * min(piece, total - sent)
            try:
                sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(data)
        sock.settimeout(30)
        status_line = sock.recv(65536).split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), sent


def outcomes_of(server: Server, event_id: str) -> Counter[tuple[Outcome, str | None]]:
    """(outcome, reason) of the profile category for one profile id."""
    index = server.index()
    rows = index.select(
        "SELECT outcome, reason FROM outcomes WHERE event_id = ? AND category = ?",
        (event_id, int(DataCategory.PROFILE)),
    )
    return Counter((Outcome(row["outcome"]), row["reason"]) for row in rows)


# -- bodies -------------------------------------------------------------------------------


def test_a_strangers_huge_body_is_refused_before_it_is_read(server: Server) -> None:
    """300 MB with no key used to be buffered whole (96 MB → 975 MB of RSS) before the 401."""
    before = server.memory_mib()
    # Declared too large: refused from the headers alone.
    status, sent = stream_until_answered(server, {"Content-Length": str(300 << 20)}, 300 << 20)
    assert status == 413
    assert sent < 64 << 20, "the answer came only after most of the body"
    # Streamed with no length: no key in the headers, and no envelope header line naming a
    # DSN within its first 64 KiB, so it is nobody's.
    status, sent = stream_until_answered(server, {"Transfer-Encoding": "chunked"}, 300 << 20, 64 << 10)
    assert status == 401
    assert sent < 64 << 20
    assert server.memory_mib() - before < 50


def test_a_body_over_the_limit_is_refused_while_it_streams(server: Server) -> None:
    headers = {**auth(server.public_key), "Transfer-Encoding": "chunked"}
    status, sent = stream_until_answered(server, headers, 300 << 20, piece=256 << 10)
    assert status == 413
    assert sent < 64 << 20
    declared = {**auth(server.public_key), "Content-Length": str(LIMIT + 1)}
    assert stream_until_answered(server, declared, LIMIT + 1)[0] == 413


def test_a_brotli_bomb_is_refused_without_inflating(server: Server) -> None:
    bomb = brotli.compress(bytes(400 << 20))
    assert len(bomb) < 1024
    before = server.memory_mib()
    status, _ = answer(server, bomb, {**auth(server.public_key), "Content-Encoding": "br"})
    assert status == 413
    assert server.memory_mib() - before < 50


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_every_member_and_frame_of_a_body_is_processed(server: Server, encoding: str) -> None:
    """A body of two gzip members or zstd frames used to lose all but the first: the profile
    item travels in the first, its transaction (without which it is refused) in the second."""
    profile = python_profile()
    body = envelope(profile)
    cut = body.index(b'{"type": "transaction"')
    compress = gzip.compress if encoding == "gzip" else zstandard.ZstdCompressor().compress
    parts = compress(body[:cut]) + compress(body[cut:])
    status, _ = answer(server, parts, {**auth(server.public_key), "Content-Encoding": encoding})
    assert status == 200
    server.wait_until_drained()
    assert outcomes_of(server, profile["event_id"]) == {(Outcome.ACCEPTED, None): 1}
    assert server.index().profile(1, profile["event_id"]) is not None


def test_stacked_encodings_are_undone(server: Server) -> None:
    profile = python_profile()
    body = brotli.compress(gzip.compress(envelope(profile)))
    assert answer(server, body, {**auth(server.public_key), "Content-Encoding": "gzip, br"})[0] == 200
    server.wait_until_drained()
    assert server.index().profile(1, profile["event_id"]) is not None


# -- JSON and items -----------------------------------------------------------------------


def test_deeply_nested_json_is_invalid_json_not_a_500(server: Server) -> None:
    """50,000 ``[`` used to raise RecursionError in msgspec and answer 500."""
    deep = b"[" * 50_000 + b"]" * 50_000
    before = _profile_outcomes(server)
    profile = python_profile()
    item = json.dumps(profile).encode().replace(b'"platform"', b'"deep": ' + deep + b', "platform"', 1)
    assert post(url(server), envelope(item), key=server.public_key) == 200
    transaction = b'{"type": "transaction", "deep": ' + deep + b"}"
    alone = python_profile()
    nested_transaction = _with_items(envelope(alone, with_transaction=False), [transaction])
    assert post(url(server), nested_transaction, key=server.public_key) == 200
    header = b'{"event_id": "x", "deep": ' + deep + b"}\n"
    assert post(url(server), header + b'{"type":"profile","length":2}\n{}\n', key=server.public_key) == 400
    server.wait_until_drained()
    # The broken item has no readable id, so it is counted by its reason.
    assert _profile_outcomes(server) - before == {(Outcome.INVALID, "profiling_invalid_json"): 1}
    assert outcomes_of(server, alone["event_id"]) == {(Outcome.INVALID, "missing_transaction"): 1}


def _profile_outcomes(server: Server) -> Counter[tuple[Outcome, str | None]]:
    return Counter(
        {
            (c.outcome, c.reason): c.times
            for c in server.index().outcome_counts()
            if c.category is DataCategory.PROFILE and c.reason != "missing_transaction"
        }
    )


def test_only_the_first_profile_item_of_an_envelope_is_processed(server: Server) -> None:
    first, second, third = python_profile(), python_profile(), python_profile()
    body = _with_extra_profiles(envelope(first), [second, third])
    assert post(url(server), body, key=server.public_key) == 200
    server.wait_until_drained()
    assert outcomes_of(server, first["event_id"]) == {(Outcome.ACCEPTED, None): 1}
    for extra in (second, third):
        assert outcomes_of(server, extra["event_id"]) == {(Outcome.INVALID, "profiling_too_many_profiles"): 1}
    assert server.index().profile(1, second["event_id"]) is None


def test_29_copies_of_one_profile_are_one_accepted_profile(server: Server) -> None:
    profile = python_profile()
    body = _with_extra_profiles(envelope(profile), [profile] * 28)
    assert post(url(server), body, key=server.public_key) == 200
    server.wait_until_drained()
    assert outcomes_of(server, profile["event_id"]) == {
        (Outcome.ACCEPTED, None): 1,
        (Outcome.INVALID, "profiling_too_many_profiles"): 28,
    }


def test_an_envelope_with_too_many_items_is_refused_whole(server: Server) -> None:
    items = b"".join(b'{"type":"profile_chunk","length":2}\n{}\n' for _ in range(101))
    assert post(url(server), b'{"event_id":"00"}\n' + items, key=server.public_key) == 413


def _with_extra_profiles(body: bytes, extra: list[dict[str, Any]]) -> bytes:
    return _with_items(body, [json.dumps(profile).encode() for profile in extra], "profile")


def _with_items(body: bytes, payloads: list[bytes], item_type: str = "transaction") -> bytes:
    for payload in payloads:
        header = {"type": item_type, "length": len(payload)}
        body += json.dumps(header).encode() + b"\n" + payload + b"\n"
    return body


# -- who sends ----------------------------------------------------------------------------


def test_the_key_may_come_in_an_authorization_header(server: Server) -> None:
    profile = python_profile()
    headers = {"Authorization": f"Sentry sentry_key={server.public_key}, sentry_version=7"}
    assert answer(server, envelope(profile), headers)[0] == 200
    server.wait_until_drained()
    assert server.index().profile(1, profile["event_id"]) is not None


@pytest.mark.parametrize("project", ["999999", "9" * 30, "0"])
def test_a_project_that_cannot_exist_is_404(server: Server, project: str) -> None:
    """A 30-digit id used to overflow SQLite's integers: a 500."""
    request = urllib.request.Request(
        f"{server.url}/api/{project}/envelope/",
        data=envelope(python_profile()),
        headers=auth(server.public_key),
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 404


def test_a_tunnelled_envelope_names_its_dsn_in_its_header(server: Server) -> None:
    profile = python_profile()
    body = envelope(profile)
    header, rest = body.split(b"\n", 1)
    tunnelled = json.dumps({**json.loads(header), "dsn": server.dsn}).encode() + b"\n" + rest
    assert answer(server, tunnelled, {})[0] == 200
    wrong = tunnelled.replace(server.public_key.encode(), b"0" * 32)
    assert answer(server, wrong, {})[0] == 401
    assert answer(server, body, {})[0] == 401
    server.wait_until_drained()
    assert server.index().profile(1, profile["event_id"]) is not None


# -- load shedding ------------------------------------------------------------------------


def chunk_items(count: int) -> bytes:
    """An envelope of `count` profile chunks (our Node example, fresh ids)."""
    chunk = json.loads((EXAMPLES / "node-chunk.json").read_text())
    out = [json.dumps({"event_id": uuid.uuid4().hex}).encode()]
    for _ in range(count):
        payload = json.dumps({**chunk, "chunk_id": uuid.uuid4().hex}).encode()
        out += [json.dumps({"type": "profile_chunk", "platform": "node", "length": len(payload)}).encode()]
        out += [payload]
    return b"\n".join(out) + b"\n"


def rate_limited(server: Server, reason: str) -> int:
    return sum(
        c.times
        for c in server.index().outcome_counts()
        if c.outcome is Outcome.RATE_LIMITED and c.reason == reason
    )


def test_the_queue_check_counts_what_an_envelope_adds(tmp_path: Path) -> None:
    """With room for 2, an envelope of 3 chunks used to be let in whole."""
    limited = start_server(tmp_path / "data", PROFD_QUEUE_MAX_DEPTH="2")
    try:
        status, headers = answer(limited, chunk_items(3), auth(limited.public_key))
        assert status == 429
        assert headers["Retry-After"] == "5"
        assert (
            headers["X-Sentry-Rate-Limits"] == "5:profile;profile_chunk;profile_chunk_ui:project:queue_full"
        )
        assert rate_limited(limited, "queue_full") == 3
        assert answer(limited, chunk_items(2), auth(limited.public_key))[0] == 200
    finally:
        limited.stop()


def test_one_key_over_its_rate_limit_does_not_starve_the_others(tmp_path: Path) -> None:
    limited = start_server(tmp_path / "data", PROFD_KEY_RATE_LIMIT="3/minute")
    try:
        index = limited.index()
        other = index.create_project(1, "other")
        other_key = index.keys(other.id)[0].public_key
        assert answer(limited, chunk_items(3), auth(limited.public_key))[0] == 200
        status, headers = answer(limited, chunk_items(2), auth(limited.public_key))
        assert status == 429
        retry_after = int(headers["Retry-After"])
        assert 0 < retry_after <= 60
        assert headers["X-Sentry-Rate-Limits"].startswith(f"{retry_after}:profile;profile_chunk")
        assert rate_limited(limited, "key_rate_limit") == 2
        # The other project's key has its own budget.
        assert answer(limited, chunk_items(3), auth(other_key), project=other.id)[0] == 200
    finally:
        limited.stop()


def test_metrics_count_the_profile_items_ingest_answered_for(server: Server) -> None:
    assert post(url(server), envelope(python_profile()), key=server.public_key) == 200
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    before = samples['profd_ingest_profile_items_total{item_type="profile"}']
    assert post(url(server), envelope(python_profile()), key=server.public_key) == 200
    assert post(url(server), b"not an envelope", key=server.public_key) == 400
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        assert (
            f'profd_ingest_profile_items_total{{item_type="profile"}} {before + 1}'
            in response.read().decode()
        )


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Sentry-Auth": "Sentry sentry_key=" + "a" * (1 << 20)},
        {f"X-Padding-{n}": "v" for n in range(20_000)},
    ],
    ids=["one 1 MiB header", "20,000 headers"],
)
def test_headers_too_large_to_parse_are_answered_not_reset(server: Server, headers: dict[str, str]) -> None:
    """The answer used to be followed by an immediate close, and a client still sending its
    headers got a reset instead of the answer."""
    head = ["POST /api/1/envelope/ HTTP/1.1", "Host: x", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\nContent-Length: 2\r\n\r\n{}").encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 400 ")


def test_a_client_sending_its_whole_oversized_body_reads_the_413(server: Server) -> None:
    """urllib sends the whole body before it reads: it must find the 413, not a reset."""
    for _ in range(3):
        assert post(url(server), bytes(4 * LIMIT), key=server.public_key) == 413
        assert post(url(server), bytes(LIMIT), key=None) == 401  # nobody's, from its first 64 KiB
