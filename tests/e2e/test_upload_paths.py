"""sentry-cli's upload routes against a live `profd serve`, with what a token holder could send.

A chunk name is the only client input that becomes part of a path, so every name that is not
exactly 40 lowercase hex characters is refused (400) before anything is read or written, on
each of the three routes that take one.  Bodies, chunks and gzip are bounded as they arrive:
413 without reading (or inflating) the rest, and without the server's memory growing.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server
from tests.e2e.test_proguard import token

DATA = b"a chunk of a debug file" * 10
SHA1 = hashlib.sha1(DATA).hexdigest()
CHUNK_DIR = "<the chunk directory itself>"  # the server's own path, filled in by the test

BAD_NAMES = [
    "/etc/passwd",
    "/dev/zero",
    "/dev/null",
    "/dev/stdin",
    "/proc/self/environ",
    "../../../../../../../../etc/passwd",
    "../symbols.sqlite3",
    "../files",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%2e%2e",
    "..",
    ".",
    "",
    "chunks",
    CHUNK_DIR,
    "NUL",
    "CON",
    "COM1",
    "g" * 40,  # 40 characters, not hex
    "../" + SHA1[3:],  # 40 characters
    "/" + SHA1[1:],  # 40 characters, absolute
    SHA1[:20] + "/" + SHA1[21:],
    "\uff10" * 40,  # fullwidth digits
    SHA1.upper(),
    SHA1[:39],
    SHA1 + "0",
    " " + SHA1,
    SHA1 + "\n",
]
REFUSED_NAME = "40 lowercase hex characters"


@pytest.fixture(scope="module")
def secret(server: Server) -> str:
    return token(server)


@pytest.fixture(scope="module")
def options(server: Server, secret: str) -> dict[str, int]:
    status, answer = post(server, secret, "/api/0/organizations/default/chunk-upload/", None)
    assert status == 200
    advertised: dict[str, int] = json.loads(answer)
    return advertised


def resolved(server: Server, name: str) -> str:
    return str(server.data_dir / "symbols" / "chunks") if name == CHUNK_DIR else name


def post(
    server: Server,
    secret: str,
    path: str,
    body: bytes | Iterable[bytes] | None,
    content_type: str = "application/json",
    *,
    declared_length: int | None = None,
    timeout: float = 60,
) -> tuple[int, bytes]:
    """Status and body of the answer, read while the request is still being sent.

    `body` is sent with its Content-Length (or `declared_length`), or chunked when it is an
    iterable of pieces; None makes a GET.
    """
    status, answer, _ = exchange(server, secret, path, body, content_type, declared_length, timeout)
    return status, answer


def exchange(
    server: Server,
    secret: str,
    path: str,
    body: bytes | Iterable[bytes] | None,
    content_type: str = "application/json",
    declared_length: int | None = None,
    timeout: float = 60,
) -> tuple[int, bytes, int]:
    """(status, answer, body bytes sent by the time the answer came)."""
    method = "GET" if body is None else "POST"
    headers = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        f"Authorization: Bearer {secret}",
        "Connection: close",
    ]
    if isinstance(body, bytes):
        headers += [f"Content-Type: {content_type}", f"Content-Length: {declared_length or len(body)}"]
        pieces: Iterable[bytes] = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    elif body is not None:
        headers += [f"Content-Type: {content_type}", "Transfer-Encoding: chunked"]
        pieces = (b"%x\r\n%s\r\n" % (len(piece), piece) for piece in body)
    else:
        pieces = []
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sent = [0]
    answered = threading.Event()

    def send() -> None:
        try:
            sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
            for piece in pieces:
                if answered.is_set():
                    return
                sock.sendall(piece)
                sent[0] += len(piece)
        except OSError:
            return  # the server answered and closed: what it did not read is not sent

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        received = b""
        while b"\r\n\r\n" not in received:
            more = sock.recv(65536)
            assert more, f"the server closed without answering: {received!r}"
            received += more
        sent_then = sent[0]
        answered.set()
        head, _, answer = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:"))
        while len(answer) < length:
            more = sock.recv(65536)
            assert more, "the answer was cut short"
            answer += more
        return int(lines[0].split()[1]), answer, sent_then
    finally:
        answered.set()
        sock.close()
        sender.join(timeout=10)


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "profd-paths") -> tuple[bytes, str]:
    """A multipart/form-data body of (field, filename, data) parts, and its Content-Type."""
    body = b""
    for field, filename, data in parts:
        disposition = f'form-data; name="{field}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        body += (
            (
                f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(server: Server, secret: str, parts: list[tuple[str, str | None, bytes]]) -> tuple[int, bytes]:
    body, content_type = multipart(parts)
    return post(server, secret, "/api/0/organizations/default/chunk-upload/", body, content_type)


def stored(server: Server) -> set[str]:
    root = server.data_dir / "symbols"
    return {str(p.relative_to(root)) for p in root.rglob("*") if "sqlite3" not in p.name}


def healthy(server: Server) -> bool:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return sock.recv(100).startswith(b"HTTP/1.1 200")


def refused_for_its_name(status: int, answer: bytes) -> bool:
    return status == 400 and REFUSED_NAME in json.loads(answer)["detail"]


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if "\n" not in n], ids=repr)
def test_a_chunk_named_by_anything_but_its_sha1_is_refused(server: Server, secret: str, name: str) -> None:
    name = resolved(server, name)
    before = stored(server)
    # DATA is named by its own SHA-1 in the uppercase case: only the name is wrong.
    for field, payload in (("file", DATA), ("file_gzip", zlib.compress(DATA, wbits=31))):
        status, answer = upload(server, secret, [(field, name, payload)])
        assert refused_for_its_name(status, answer), (status, answer)
    assert stored(server) == before
    assert healthy(server)


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_file_is_not_assembled_from_chunks_named_by_anything_but_a_sha1(
    server: Server, secret: str, name: str
) -> None:
    name = resolved(server, name)
    before = stored(server)
    path = "/api/0/projects/default/default/files/difs/assemble/"
    for files in ({SHA1: {"name": "prog", "chunks": [name]}}, {name: {"name": "prog", "chunks": [SHA1]}}):
        status, answer = post(server, secret, path, json.dumps(files).encode(), timeout=20)
        assert refused_for_its_name(status, answer), (status, answer)
    assert stored(server) == before
    assert healthy(server)


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_bundle_is_not_assembled_from_chunks_named_by_anything_but_a_sha1(
    server: Server, secret: str, name: str
) -> None:
    name = resolved(server, name)
    before = stored(server)
    path = "/api/0/organizations/default/artifactbundle/assemble/"
    for checksum, chunks in ((SHA1, [name]), (name, [SHA1])):
        bundle = {"checksum": checksum, "chunks": chunks, "projects": ["default"]}
        status, answer = post(server, secret, path, json.dumps(bundle).encode(), timeout=20)
        assert refused_for_its_name(status, answer), (status, answer)
    assert stored(server) == before
    assert healthy(server)


def peak_rss_reset(pid: int) -> int:
    """The process's resident memory in bytes, with its peak (VmHWM) reset to it."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return memory(pid, "VmRSS")


def memory(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_a_chunk_larger_than_chunk_size_is_refused(
    server: Server, secret: str, options: dict[str, int]
) -> None:
    data = b"x" * (options["chunkSize"] + 1)
    name = hashlib.sha1(data).hexdigest()
    status, answer = upload(server, secret, [("file", name, data)])
    assert status == 413, answer
    assert "chunkSize" in json.loads(answer)["detail"]
    assert not (server.data_dir / "symbols" / "chunks" / name).exists()
    assert healthy(server)


def gzip_of_zeros(size: int) -> tuple[bytes, str]:
    """`size` zero bytes gzipped, and their SHA-1, without holding them."""
    packer, digest, block = zlib.compressobj(9, wbits=31), hashlib.sha1(), bytes(1 << 20)
    packed = []
    for _ in range(size // len(block)):
        digest.update(block)
        packed.append(packer.compress(block))
    packed.append(packer.flush())
    return b"".join(packed), digest.hexdigest()


def test_a_gzip_bomb_is_refused_without_inflating_it(server: Server, secret: str) -> None:
    bomb, name = gzip_of_zeros(200 << 20)
    assert len(bomb) < 250_000
    assert server.process is not None
    pid = server.process.pid
    before = peak_rss_reset(pid)
    status, answer = upload(server, secret, [("file_gzip", name, bomb)])
    grown = memory(pid, "VmHWM") - before
    assert status == 413, answer
    assert grown < 100 << 20, f"the server's memory grew by {grown >> 20} MB"
    assert not (server.data_dir / "symbols" / "chunks" / name).exists()
    assert healthy(server)


def test_the_chunks_of_one_request_inflate_to_at_most_max_request_size(
    server: Server, secret: str, options: dict[str, int]
) -> None:
    count = options["maxRequestSize"] // options["chunkSize"] + 1
    chunks = [bytes([i]) * options["chunkSize"] for i in range(count)]
    parts = [("file_gzip", hashlib.sha1(c).hexdigest(), zlib.compress(c, wbits=31)) for c in chunks]
    assert sum(len(p[2]) for p in parts) < options["maxRequestSize"] // 10
    status, answer = upload(server, secret, parts)
    assert status == 413, answer
    assert "maxRequestSize" in json.loads(answer)["detail"]
    assert not (server.data_dir / "symbols" / "chunks" / parts[-1][1]).exists()


def test_more_chunks_than_chunks_per_request_are_refused(
    server: Server, secret: str, options: dict[str, int]
) -> None:
    chunks = [b"chunk %d" % i for i in range(options["chunksPerRequest"] + 1)]
    status, answer = upload(server, secret, [("file", hashlib.sha1(c).hexdigest(), c) for c in chunks])
    assert status == 400, answer
    assert "chunksPerRequest" in json.loads(answer)["detail"]


def test_a_body_declared_larger_than_max_request_size_is_refused_before_it_is_sent(
    server: Server, secret: str, options: dict[str, int]
) -> None:
    started = time.monotonic()
    status, answer, _ = exchange(
        server,
        secret,
        "/api/0/organizations/default/chunk-upload/",
        b"--profd-paths\r\n",
        "multipart/form-data; boundary=profd-paths",
        declared_length=2 * options["maxRequestSize"],
        timeout=20,
    )
    assert status == 413, answer
    assert time.monotonic() - started < 10
    assert healthy(server)


def test_a_streamed_body_over_max_request_size_is_refused_before_it_is_all_read(
    server: Server, secret: str, options: dict[str, int]
) -> None:
    """No Content-Length: the body is counted as it arrives; it never ends, so only a server
    that refuses it part-way answers at all."""
    whole = 4 * options["maxRequestSize"]

    def padding() -> Iterator[bytes]:
        part, _ = multipart([("padding", None, b"p" * 60_000)])
        part = part.rsplit(b"--profd-paths--", 1)[0]
        for _ in range(whole // len(part)):
            yield part

    status, answer, sent = exchange(
        server,
        secret,
        "/api/0/organizations/default/chunk-upload/",
        padding(),
        "multipart/form-data; boundary=profd-paths",
        timeout=30,
    )
    assert status == 413, answer
    assert sent < whole // 2
    assert healthy(server)


@pytest.mark.parametrize("route", ["difs", "bundle"])
def test_an_assembly_of_more_chunks_than_max_file_size_allows_is_refused(
    server: Server, secret: str, options: dict[str, int], route: str
) -> None:
    most = -(-options["maxFileSize"] // options["chunkSize"])
    chunks = [hashlib.sha1(b"%d" % i).hexdigest() for i in range(most + 1)]
    if route == "difs":
        path = "/api/0/projects/default/default/files/difs/assemble/"
        body: object = {SHA1: {"name": "prog", "chunks": chunks}}
    else:
        path = "/api/0/organizations/default/artifactbundle/assemble/"
        body = {"checksum": SHA1, "chunks": chunks, "projects": ["default"]}
    status, answer = post(server, secret, path, json.dumps(body).encode())
    assert status == 400, answer
    assert "maxFileSize" in json.loads(answer)["detail"]


def test_an_assemble_request_is_bounded(server: Server, secret: str) -> None:
    body = json.dumps({SHA1: {"name": "x" * (2 << 20), "chunks": []}}).encode()
    status, answer = post(server, secret, "/api/0/projects/default/default/files/difs/assemble/", body)
    assert status == 413, answer
    assert healthy(server)
