"""An attacker's client: mutated envelopes, sent the way a hostile or broken SDK would.

`make_case(seed, number, target)` builds case `number` of a deterministic corpus (a
`random.Random` seeded by seed and number, so any case can be rebuilt alone and threads
may build them in any order).  Every tenth case is a control: a real SDK envelope
(Python or Node capture from ``../shared/fixtures/sdk``, or our own example), unmutated
but with fresh ids.  The others are one mutation kind each (`KINDS`), built from the same
envelopes with fresh ids.  A case carries what the rules say the server may answer
(`Case.expect`), the profile ids it carries and the ones that must end up stored.

`send_cases` posts cases from a few threads over keep-alive `http.client` connections; a
connection the server closed after answering is replaced before the next request, so an
exception while a request is on the wire is a request the server dropped without answer.
`check_*` and `summary_table` turn the answers, the server's ``/metrics`` and its index
into the problems the fuzz test asserts on and the benchmark prints.
"""

from __future__ import annotations

import gzip
import http.client
import itertools
import json
import random
import re
import select
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import brotli
import zstandard

from profd.formats.outcome import DataCategory, Outcome
from tests.clients.envelopes import envelope as example_envelope
from tests.clients.envelopes import python_profile
from tests.conftest import shared_file

MIB = 1024 * 1024
ALLOWED = frozenset({200, 400, 401, 403, 404, 413, 429, 431})
PRIMARY = (DataCategory.PROFILE, DataCategory.PROFILE_CHUNK, DataCategory.PROFILE_CHUNK_UI)
PROFILE_ITEMS = ("profile", "profile_chunk")
# What each bomb inflates to: far beyond any envelope limit, a few hundred KB on the wire.
BOMB_SIZE = 256 * MIB
DEEP = 50_000

# Real SDK envelopes that carry a profile (see ../shared/fixtures/sdk/README.md).
PROFILE_FIXTURES = (
    "envelope-python-transaction.bin",
    "envelope-node9-transaction-profile.bin",
    "envelope-python-profile_chunk.bin",
    "envelope-node-profile_chunk.bin",
)
OTHER_FIXTURES = ("envelope-node-spans.bin", "envelope-python-continuous-transaction.bin")
CHUNK_FIXTURES = ("envelope-python-profile_chunk.bin", "envelope-node-profile_chunk.bin")
# Templates whose first item is followed by another one.
MULTI_ITEM = ("envelope-python-transaction.bin", "envelope-node9-transaction-profile.bin", "example")

_ID = re.compile(rb"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


# -- the server as the corpus sees it ---------------------------------------------------

# Small limits, so that oversized bodies and bombs are cheap to send and to refuse.
MAX_ENVELOPE_SIZE = 4 * MIB
MAX_PROFILE_SIZE = 1 * MIB
MAX_ENVELOPE_ITEMS = 1000


def server_environment() -> dict[str, str]:
    """`profd serve`'s settings for a fuzz run (the test's and the benchmark's)."""
    return {
        "PROFD_MAX_ENVELOPE_SIZE": str(MAX_ENVELOPE_SIZE),
        "PROFD_MAX_PROFILE_SIZE": str(MAX_PROFILE_SIZE),
        "PROFD_MAX_ENVELOPE_ITEMS": str(MAX_ENVELOPE_ITEMS),
        # No 429 from a full queue: every control must be stored.
        "PROFD_QUEUE_MAX_DEPTH": "1000000",
    }


@dataclass(frozen=True)
class Target:
    """What a case needs to know about the server: its keys and limits."""

    host: str
    port: int
    project_id: int
    public_key: str
    other_project_id: int
    other_key: str
    revoked_key: str
    max_envelope_size: int
    max_envelope_items: int = 1000

    def dsn(self, key: str, project_id: int) -> str:
        return f"http://{key}@{self.host}:{self.port}/{project_id}"


def prepare_target(
    server: Any, max_envelope_size: int = MAX_ENVELOPE_SIZE, max_envelope_items: int = MAX_ENVELOPE_ITEMS
) -> Target:
    """A second project (for its key) and a revoked key beside the server's default project."""
    index = server.index()
    try:
        project_id = int(server.dsn.rsplit("/", 1)[1])
        project = index.project(project_id)
        assert project is not None
        other = index.create_project(project.organization_id, f"fuzz-other-{server.port}")
        revoked = index.create_key(project_id)
        index.revoke_key(project_id, revoked.public_key)
        other_key = index.keys(other.id)[0].public_key
    finally:
        index.close()
    return Target(
        host="127.0.0.1",
        port=server.port,
        project_id=project_id,
        public_key=server.public_key,
        other_project_id=other.id,
        other_key=other_key,
        revoked_key=revoked.public_key,
        max_envelope_size=max_envelope_size,
        max_envelope_items=max_envelope_items,
    )


# -- envelopes ----------------------------------------------------------------------------


@dataclass
class Sample:
    """A parsed envelope with fresh ids: header line, items, the id of each profile item."""

    template: str
    header: bytes
    items: list[tuple[dict[str, Any], bytes]]
    # Ids of the profile items as built (mutations may break the items, not these).
    profile_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.profile_ids:
            self.profile_ids = [_item_id(p) for h, p in self.items if h.get("type") in PROFILE_ITEMS]

    @property
    def profile_items(self) -> int:
        return sum(1 for headers, _ in self.items if headers.get("type") in PROFILE_ITEMS)

    def body(self) -> bytes:
        return join_envelope(self.header, self.items)


def _item_id(payload: bytes) -> str:
    document = json.loads(payload)
    value = document.get("chunk_id") or document.get("profile_id") or document.get("event_id")
    return uuid.UUID(str(value)).hex


def split_envelope(data: bytes) -> tuple[bytes, list[tuple[dict[str, Any], bytes]]]:
    """Header line and items, as an SDK frames them (a test-side parser, independent of profd)."""
    header, position = _line(data, 0)
    items: list[tuple[dict[str, Any], bytes]] = []
    while position < len(data):
        line, position = _line(data, position)
        if not line.strip():
            continue
        headers = json.loads(line)
        if "length" in headers:
            end = position + int(headers["length"])
            payload, position = data[position:end], end + (data[end : end + 1] == b"\n")
        else:
            payload, position = _line(data, position)
        items.append((headers, payload))
    return header, items


def _line(data: bytes, start: int) -> tuple[bytes, int]:
    end = data.find(b"\n", start)
    return (data[start:], len(data)) if end < 0 else (data[start:end], end + 1)


def join_envelope(header: bytes, items: Iterable[tuple[dict[str, Any], bytes]]) -> bytes:
    """Items keep a ``length`` if they had one, recomputed; the others are newline-delimited."""
    parts = [header]
    for headers, payload in items:
        if "length" in headers:
            headers = {**headers, "length": len(payload)}
        parts += [json.dumps(headers, separators=(",", ":")).encode(), payload]
    return b"\n".join(parts) + b"\n"


@cache
def _fixture(name: str) -> bytes:
    return shared_file(f"fixtures/sdk/{name}").read_bytes()


def fresh_ids(data: bytes, rng: random.Random) -> bytes:
    """Every 32-hex id replaced by a new one (consistently, so links between items hold)."""
    mapping: dict[bytes, bytes] = {}

    def new(match: re.Match[bytes]) -> bytes:
        if match.group(0) not in mapping:
            mapping[match.group(0)] = _new_id(rng).encode()
        return mapping[match.group(0)]

    return _ID.sub(new, data)


def _new_id(rng: random.Random) -> str:
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


def sample(rng: random.Random, template: str | None = None) -> Sample:
    """A real envelope carrying a profile, with fresh ids."""
    template = template or rng.choice([*PROFILE_FIXTURES, "example"])
    raw = example_envelope(python_profile()) if template == "example" else _fixture(template)
    header, items = split_envelope(fresh_ids(raw, rng))
    return Sample(template, header, items)


# -- encodings --------------------------------------------------------------------------


def encode(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return gzip.compress(data, 6)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "deflate-raw":
        compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        return compressor.compress(data) + compressor.flush()
    if encoding == "br":
        return bytes(brotli.compress(data, quality=5))
    if encoding == "zstd":
        return bytes(zstandard.ZstdCompressor(level=3).compress(data))
    if encoding in ("identity", "utf-8", ""):
        return data
    raise ValueError(encoding)


def encode_stack(data: bytes, encodings: list[str]) -> bytes:
    """Applied in the order listed, as ``Content-Encoding: a, b`` means a, then b."""
    for encoding in encodings:
        data = encode(data, encoding)
    return data


def _pieces(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), count - 1))
    return [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]


_bomb_lock = threading.Lock()
_bombs: dict[str, bytes] = {}


def bomb(encoding: str) -> bytes:
    """A body that inflates to `BOMB_SIZE`: an envelope header, an item saying it is that
    long, then zeros.  Built once per process (about 1.5 s for all of them)."""
    with _bomb_lock:
        if not _bombs:
            _bombs.update(_build_bombs())
        return _bombs[encoding]


def _build_bombs() -> dict[str, bytes]:
    prefix = b'{"event_id":"%s"}\n{"type":"attachment","length":%d}\n' % (
        uuid.uuid4().hex.encode(),
        BOMB_SIZE,
    )
    zeros = bytes(MIB)
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    br = brotli.Compressor(quality=5)
    zstd = zstandard.ZstdCompressor(level=3).compressobj()
    parts: dict[str, list[bytes]] = {"raw": [], "br": [], "zstd": []}
    crc, adler, size = zlib.crc32(prefix), zlib.adler32(prefix), len(prefix)
    for name, compressor in (("raw", raw), ("zstd", zstd)):
        parts[name].append(compressor.compress(prefix))
    parts["br"].append(br.process(prefix))
    for _ in range(BOMB_SIZE // MIB):
        parts["raw"].append(raw.compress(zeros))
        parts["zstd"].append(zstd.compress(zeros))
        parts["br"].append(br.process(zeros))
        crc, adler, size = zlib.crc32(zeros, crc), zlib.adler32(zeros, adler), size + len(zeros)
    deflated = b"".join(parts["raw"]) + raw.flush()
    gzipped = (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        + deflated
        + (crc & 0xFFFFFFFF).to_bytes(4, "little")
        + (size & 0xFFFFFFFF).to_bytes(4, "little")
    )
    return {
        "gzip": gzipped,
        "deflate": b"\x78\xda" + deflated + (adler & 0xFFFFFFFF).to_bytes(4, "big"),
        "deflate-raw": deflated,
        "br": b"".join(parts["br"]) + br.finish(),
        "zstd": b"".join(parts["zstd"]) + zstd.flush(),
        "gzip, br": bytes(brotli.compress(gzipped, quality=9)),
    }


# -- cases ------------------------------------------------------------------------------


@dataclass
class Case:
    number: int
    kind: str
    variant: str
    body: bytes
    headers: list[tuple[str | bytes, bytes]]
    path: str
    expect: frozenset[int]
    chunked: bool = False
    # Ids (hex) of the profile items it carries, where knowable; which must be stored.
    profile_ids: tuple[str, ...] = ()
    must_store: tuple[str, ...] = ()
    # Profile and profile_chunk items in it, where knowable (for the received count).
    profile_items: int | None = None
    control: bool = False


def _auth(key: str) -> bytes:
    return f"Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python/2.75.0".encode()


def _headers(
    target: Target, encoding: str | None = None, key: str | None = ""
) -> list[tuple[str | bytes, bytes]]:
    headers: list[tuple[str | bytes, bytes]] = [
        ("Content-Type", b"application/x-sentry-envelope"),
        ("User-Agent", b"sentry.python/2.75.0"),
    ]
    if key is not None:
        headers.append(("X-Sentry-Auth", _auth(key or target.public_key)))
    if encoding:
        headers.append(("Content-Encoding", encoding.encode()))
    return headers


def _path(target: Target, project_id: int | str | None = None, query: str = "") -> str:
    return f"/api/{target.project_id if project_id is None else project_id}/envelope/{query}"


OK = frozenset({200})


def _valid(
    number: int,
    kind: str,
    variant: str,
    target: Target,
    s: Sample,
    body: bytes | None = None,
    encoding: str | None = None,
    **fields: Any,
) -> Case:
    """A case the server must accept in full: its profiles stored."""
    ids = tuple(s.profile_ids)
    return Case(
        number,
        kind,
        variant,
        s.body() if body is None else body,
        fields.pop("headers", None) or _headers(target, encoding),
        fields.pop("path", None) or _path(target),
        fields.pop("expect", OK),
        profile_ids=ids,
        must_store=ids[:1] if s.template != "many" else ids,
        profile_items=s.profile_items,
        **fields,
    )


def _refused(
    number: int,
    kind: str,
    variant: str,
    target: Target,
    body: bytes,
    expect: Iterable[int],
    s: Sample | None = None,
    encoding: str | None = None,
    **fields: Any,
) -> Case:
    return Case(
        number,
        kind,
        variant,
        body,
        fields.pop("headers", None) or _headers(target, encoding),
        fields.pop("path", None) or _path(target),
        frozenset(expect),
        profile_ids=tuple(s.profile_ids) if s is not None else (),
        **fields,
    )


def control(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    encoding = rng.choice([None, "gzip", "br", "zstd", "deflate"])
    body = encode(s.body(), encoding or "identity")
    return _valid(
        number, "control", f"{s.template} {encoding or 'plain'}", target, s, body, encoding, control=True
    )


def deep_profile(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng, rng.choice(["envelope-python-transaction.bin", "example", *CHUNK_FIXTURES]))
    position = next(i for i, (h, _) in enumerate(s.items) if h.get("type") in PROFILE_ITEMS)
    headers, payload = s.items[position]
    variant = rng.choice(["[ x50000", "{ x50000", "closed deep frames"])
    if variant == "[ x50000":
        payload = b"[" * DEEP
    elif variant == "{ x50000":
        payload = b'{"a":' * DEEP
    else:
        payload = re.sub(
            rb'"frames":\s*\[', b'"frames":[' + b"[" * DEEP + b"]" * DEEP + b",", payload, count=1
        )
    s.items[position] = (headers, payload)
    return _refused(number, "deep_profile", variant, target, s.body(), OK, s, profile_items=s.profile_items)


def deep_transaction(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(
        rng,
        rng.choice(["envelope-python-transaction.bin", "example", "envelope-node9-transaction-profile.bin"]),
    )
    position = next(i for i, (h, _) in enumerate(s.items) if h.get("type") == "transaction")
    headers, payload = s.items[position]
    deep = b"[" * DEEP + b"]" * DEEP
    if rng.random() < 0.5:
        payload = payload[:-1] + b',"contexts_deep":{"x":' + deep + b"}}"
        variant = "deep array in the transaction"
    else:
        payload = b'{"type":"transaction","contexts":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}"
        variant = "deep objects in the transaction"
    s.items[position] = (headers, payload)
    return _refused(
        number, "deep_transaction", variant, target, s.body(), OK, s, profile_items=s.profile_items
    )


def deep_header(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    deep = b'{"a":' * DEEP + b"1" + b"}" * DEEP
    if rng.random() < 0.5:
        body = join_envelope(b'{"sdk":' + deep + b"}", s.items)
        variant = "envelope header"
    else:
        body = s.header + b"\n" + b'{"type":"profile","x":' + deep + b"}\n{}\n"
        variant = "item header"
    return _refused(number, "deep_header", variant, target, body, {400}, s)


def truncated(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    if rng.random() < 0.5:
        body = s.body()
        return _refused(number, "truncated", "plain", target, body[: rng.randrange(len(body))], {200, 400}, s)
    encoding = rng.choice(["gzip", "deflate", "br", "zstd"])
    body = encode(s.body(), encoding)
    return _refused(
        number, "truncated", encoding, target, body[: rng.randrange(len(body))], {400}, s, encoding
    )


def flipped(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    encoding = rng.choice([None, None, "gzip", "br", "zstd"])
    body = bytearray(encode(s.body(), encoding or "identity"))
    flips = rng.randint(1, 8)
    for _ in range(flips):
        body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
    return _refused(
        number, "flipped", f"{flips} bits {encoding or 'plain'}", target, bytes(body), {200, 400}, s, encoding
    )


def random_bytes(number: int, rng: random.Random, target: Target) -> Case:
    if rng.random() < 0.3:
        body = rng.randbytes(rng.randint(1, 4096))
        return _refused(number, "random_bytes", "whole body", target, body, {400})
    s = sample(rng)
    body = s.body()
    position = rng.randrange(len(body))
    run = rng.randbytes(rng.randint(1, 512))
    if rng.random() < 0.5:
        body, variant = body[:position] + run + body[position:], "inserted run"
    else:
        body, variant = body[:position] + run + body[position + len(run) :], "overwritten run"
    return _refused(number, "random_bytes", variant, target, body, {200, 400}, s)


def wrong_length(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng, rng.choice(MULTI_ITEM))
    headers, payload = s.items[0]
    size = len(payload)
    value: Any = rng.choice(
        [
            -1,
            -size,
            size + 1,
            size - 1,
            10**12,
            2**63,
            2**64 + 5,
            10**30,
            str(size),
            size + 0.5,
            True,
            [size],
            {},
        ]
    )
    # A length is written as given; join_envelope would recompute it.
    header = json.dumps({**headers, "length": value}, separators=(",", ":")).encode()
    rest = join_envelope(b"", s.items[1:])[1:]
    body = s.header + b"\n" + header + b"\n" + payload + b"\n" + rest
    return _refused(number, "wrong_length", f"{value!r} for {size}"[:40], target, body, {400}, s)


def multi_frame_zstd(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    frames = rng.randint(2, 6)
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=rng.random() < 0.5)
    body = b"".join(compressor.compress(piece) for piece in _pieces(s.body(), rng, frames))
    return _valid(number, "multi_frame_zstd", f"{frames} frames", target, s, body, "zstd")


def multi_member_gzip(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    members = rng.randint(2, 6)
    body = b"".join(gzip.compress(piece) for piece in _pieces(s.body(), rng, members))
    encoding = rng.choice(["gzip", "x-gzip"])
    return _valid(number, "multi_member_gzip", f"{members} members {encoding}", target, s, body, encoding)


def stacked_encoding(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    encodings = rng.sample(["gzip", "deflate", "br", "zstd"], rng.randint(2, 3))
    if rng.random() < 0.3:
        encodings.insert(rng.randrange(len(encodings) + 1), rng.choice(["identity", "UTF-8"]))
    header = rng.choice([", ", ",", " , "]).join(encodings)
    if rng.random() < 0.2:
        header = header.upper()
    body = encode_stack(s.body(), [e for e in encodings if e.lower() not in ("identity", "utf-8")])
    return _valid(number, "stacked_encoding", header, target, s, body, header)


def ignored_encoding(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    header = rng.choice(["identity", "UTF-8", "utf-8", "Identity", "identity, UTF-8"])
    return _valid(number, "ignored_encoding", header, target, s, s.body(), header)


def bad_encoding(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    body = s.body()
    variant = rng.choice(["unknown", "unknown in a stack", "mismatch", "garbage after magic"])
    if variant == "unknown":
        header = rng.choice(["lzma", "compress", "xz", "chunked", "*", "bzip2", "gzip2"])
        encoded = body
    elif variant == "unknown in a stack":
        header = rng.choice(["gzip, lzma", "lzma, gzip", "br, snappy"])
        encoded = encode(body, "gzip")
    elif variant == "mismatch":
        sent, header = rng.choice(
            [
                ("br", "gzip"),
                ("gzip", "zstd"),
                ("zstd", "br"),
                ("identity", "deflate"),
                ("identity", "gzip"),
                ("gzip", "gzip, br"),
            ]
        )
        encoded = encode(body, sent)
    else:
        header = rng.choice(["gzip", "zstd"])
        magic = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" if header == "gzip" else b"\x28\xb5\x2f\xfd"
        encoded = magic + rng.randbytes(rng.randint(1, 2000))
    return _refused(number, "bad_encoding", f"{variant}: {header}", target, encoded, {400}, s, header)


def bomb_case(encoding: str) -> Callable[[int, random.Random, Target], Case]:
    def build(number: int, rng: random.Random, target: Target) -> Case:
        body, header = bomb(encoding), encoding
        variant = f"{BOMB_SIZE // MIB} MiB"
        if encoding == "gzip" and rng.random() < 0.3:
            body, variant = body * 2, f"2 members of {BOMB_SIZE // MIB} MiB"
        elif encoding == "zstd" and rng.random() < 0.3:
            body, variant = body * 4, f"4 frames of {BOMB_SIZE // MIB} MiB"
        elif encoding == "deflate" and rng.random() < 0.5:
            body, variant = bomb("deflate-raw"), f"raw deflate {BOMB_SIZE // MIB} MiB"
        elif encoding == "gzip, br":
            variant = f"br of a gzip bomb, {BOMB_SIZE // MIB} MiB"
        return _refused(
            number, f"bomb_{encoding.replace(', ', '_')}", variant, target, body, {413}, None, header
        )

    return build


def oversized(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    padding = target.max_envelope_size + rng.randint(1, MIB)
    items = [*s.items, ({"type": "attachment", "length": padding}, b"x" * padding)]
    chunked = rng.random() < 0.5
    body = join_envelope(s.header, items)
    variant = f"{len(body)} B {'chunked' if chunked else 'Content-Length'}"
    return _refused(number, "oversized", variant, target, body, {413}, s, chunked=chunked)


def duplicated_profile(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(
        rng,
        rng.choice(["envelope-python-transaction.bin", "example", "envelope-node9-transaction-profile.bin"]),
    )
    copies = rng.choice([2, 3, 29])
    position = next(i for i, (h, _) in enumerate(s.items) if h.get("type") == "profile")
    s.items[position + 1 : position + 1] = [s.items[position]] * (copies - 1)
    return _valid(number, "duplicated_profile", f"x{copies}", target, s)


def many_chunks(number: int, rng: random.Random, target: Target) -> Case:
    count = rng.randint(2, 12)
    chunks = [sample(rng, rng.choice(CHUNK_FIXTURES)) for _ in range(count)]
    s = Sample(
        "many",
        chunks[0].header,
        [item for chunk in chunks for item in chunk.items],
        [i for chunk in chunks for i in chunk.profile_ids],
    )
    return _valid(number, "many_chunks", f"{count} chunks", target, s)


def tiny_items(number: int, rng: random.Random, target: Target) -> Case:
    limit = target.max_envelope_items
    count = rng.choice([10, 200, limit, limit + 1, 3 * limit])
    item_type = rng.choice(["profile_chunk", "profile_chunk", "attachment"])
    items = [({"type": item_type, "length": 1}, b"x")] * count
    body = join_envelope(b"{}", items)
    expect = {200} if count <= limit else {413}
    chunks = count if item_type == "profile_chunk" else 0
    return _refused(
        number, "tiny_items", f"{count} x {item_type}", target, body, expect, profile_items=chunks
    )


def empty_body(number: int, rng: random.Random, target: Target) -> Case:
    encoding = rng.choice([None, "gzip", "deflate", "br", "zstd"])
    chunked = rng.random() < 0.3
    variant = f"{encoding or 'plain'}{' chunked' if chunked else ''}"
    return _refused(number, "empty_body", variant, target, b"", {400}, None, encoding, chunked=chunked)


def empty_items(number: int, rng: random.Random, target: Target) -> Case:
    variant = rng.choice(
        [
            "header only",
            "header without newline",
            "empty profile",
            "empty profile no length",
            "empty chunk",
            "untyped",
        ]
    )
    header = b'{"event_id":"%s"}' % _new_id(rng).encode()
    body, expect, items = {
        "header only": (header + b"\n", {200}, 0),
        "header without newline": (header, {200}, 0),
        "empty profile": (header + b'\n{"type":"profile","length":0}\n\n', {200}, 1),
        "empty profile no length": (header + b'\n{"type":"profile"}\n\n', {200}, 1),
        "empty chunk": (header + b'\n{"type":"profile_chunk","length":0}\n', {200}, 1),
        "untyped": (header + b'\n{"length":0}\n\n', {200, 400}, None),
    }[variant]
    return _refused(number, "empty_items", variant, target, body, expect, profile_items=items)


def key_wrong(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    key = rng.choice(
        [_new_id(rng), "publickey", "", "0" * 32, target.public_key[:-1], target.public_key.upper()]
    )
    return _refused(
        number,
        "key_wrong",
        repr(key)[:20],
        target,
        s.body(),
        {401},
        s,
        headers=[*_headers(target, key=None), ("X-Sentry-Auth", _auth(key))],
    )


def key_missing(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    variant = rng.choice(["no header", "Sentry without key", "empty header"])
    headers = _headers(target, key=None)
    if variant == "Sentry without key":
        headers.append(("X-Sentry-Auth", b"Sentry sentry_version=7, sentry_client=x"))
    elif variant == "empty header":
        headers.append(("X-Sentry-Auth", b""))
    return _refused(number, "key_missing", variant, target, s.body(), {401}, s, headers=headers)


def key_other_project(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    headers = _headers(target, key=target.other_key)
    return _refused(
        number, "key_other_project", "other project's key", target, s.body(), {403}, s, headers=headers
    )


def key_revoked(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    headers = _headers(target, key=target.revoked_key)
    return _refused(number, "key_revoked", "revoked key", target, s.body(), {401}, s, headers=headers)


def unknown_project(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    project, expect = rng.choice(
        [("999999", {404}), ("0", {404}), ("-1", {404}), ("abc", {400, 404}), ("9" * 30, {400, 404})]
    )
    return _refused(
        number,
        "unknown_project",
        f"/api/{project}/"[:20],
        target,
        s.body(),
        expect,
        s,
        path=_path(target, project),
    )


def key_query(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    query = f"?sentry_key={target.public_key}&sentry_version=7"
    return _valid(
        number,
        "key_query",
        "?sentry_key=",
        target,
        s,
        path=_path(target, query=query),
        headers=_headers(target, key=None),
    )


def key_authorization(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    headers = [*_headers(target, key=None), ("Authorization", _auth(target.public_key))]
    return _valid(number, "key_authorization", "Authorization: Sentry", target, s, headers=headers)


def key_dsn_header(number: int, rng: random.Random, target: Target) -> Case:
    """A tunnel's envelope: no auth header, the DSN in the envelope header."""
    s = sample(rng)
    variant = rng.choice(["valid", "valid", "wrong key", "other project"])
    key, project = {
        "valid": (target.public_key, target.project_id),
        "wrong key": (_new_id(rng), target.project_id),
        "other project": (target.other_key, target.other_project_id),
    }[variant]
    header = json.loads(s.header)
    header["dsn"] = target.dsn(key, project)
    s.header = json.dumps(header, separators=(",", ":")).encode()
    headers = _headers(target, key=None)
    if variant == "valid":
        return _valid(number, "key_dsn_header", variant, target, s, headers=headers)
    expect = {401} if variant == "wrong key" else {403}
    return _refused(number, "key_dsn_header", variant, target, s.body(), expect, s, headers=headers)


def huge_headers(number: int, rng: random.Random, target: Target) -> Case:
    """Heads past uvicorn's 16 KiB may pass when they arrive in one read (h11 checks the
    bound only while waiting for more), so 100 KB may be answered 200; 1 MiB never is."""
    s = sample(rng)
    sizes = {"100 KB": 100_000, "1 MiB": MIB}
    variant = rng.choice(
        [
            "100 KB X-Sentry-Auth",
            "1 MiB X-Sentry-Auth",
            "2000 headers",
            "20000 headers",
            "10 KB header name",
            "100 small headers",
        ]
    )
    headers = _headers(target, key=None)
    maybe, never = {200, 400, 431}, {400, 431}
    if variant.endswith("X-Sentry-Auth"):
        pad = b"a" * sizes[variant.split(" X-")[0]]
        headers.append(("X-Sentry-Auth", _auth(target.public_key) + b", sentry_pad=" + pad))
        expect = maybe if variant.startswith("100 KB") else never
        return _refused(number, "huge_headers", variant, target, s.body(), expect, s, headers=headers)
    headers.append(("X-Sentry-Auth", _auth(target.public_key)))
    if variant.endswith("0 headers"):
        count = int(variant.split()[0])
        headers += [(f"X-Fuzz-{i}", b"v" * 20) for i in range(count)]
        expect = maybe if count < 10_000 else never
        return _refused(number, "huge_headers", variant, target, s.body(), expect, s, headers=headers)
    if variant == "10 KB header name":
        headers.append(("X-" + "n" * 10_000, b"1"))
        return _refused(number, "huge_headers", variant, target, s.body(), maybe, s, headers=headers)
    headers += [(f"X-Fuzz-{i}", b"v" * 20) for i in range(100)]
    return _valid(number, "huge_headers", variant, target, s, headers=headers)


def wrong_types(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng, rng.choice(["envelope-python-transaction.bin", "example", *CHUNK_FIXTURES]))
    position = next(i for i, (h, _) in enumerate(s.items) if h.get("type") in PROFILE_ITEMS)
    headers, payload = s.items[position]
    document = json.loads(payload)
    name = rng.choice(
        [
            "platform",
            "version",
            "profile",
            "transactions",
            "transaction",
            "os",
            "device",
            "chunk_id",
            "client_sdk",
            "event_id",
        ]
    )
    value = rng.choice([None, 0, -1, 2**70, 1.5, "", "x", [], [1, "a"], {}, {"a": [None]}, True])
    if name == "profile" and rng.random() < 0.5:
        inner = rng.choice(["samples", "stacks", "frames", "thread_metadata"])
        document.setdefault("profile", {})[inner] = value
        name = f"profile.{inner}"
    else:
        document[name] = value
    s.items[position] = (headers, json.dumps(document).encode())
    return _refused(
        number,
        "wrong_types",
        f"{name}={value!r}"[:30],
        target,
        s.body(),
        OK,
        s,
        profile_items=s.profile_items,
    )


def non_utf8_headers(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    variant = rng.choice(
        ["in the key", "in User-Agent", "in Content-Encoding", "in Content-Type", "in a header name"]
    )
    headers = _headers(target, key=None)
    auth = _auth(target.public_key)
    if variant == "in the key":
        headers.append(("X-Sentry-Auth", auth.replace(b", sentry_version", b"\xff\xfe, sentry_version")))
        return _refused(number, "non_utf8_headers", variant, target, s.body(), {401}, s, headers=headers)
    headers.append(("X-Sentry-Auth", auth))
    if variant == "in User-Agent":
        headers = [(n, b"sentry.python/\xff\xfe\xc3\x28" if n == "User-Agent" else v) for n, v in headers]
        return _valid(number, "non_utf8_headers", variant, target, s, headers=headers)
    if variant == "in Content-Type":
        headers = [
            (n, b"application/x-sentry-envelope; charset=\xe9" if n == "Content-Type" else v)
            for n, v in headers
        ]
        return _valid(number, "non_utf8_headers", variant, target, s, headers=headers)
    if variant == "in Content-Encoding":
        headers.append(("Content-Encoding", b"gz\xffip"))
        return _refused(
            number, "non_utf8_headers", variant, target, encode(s.body(), "gzip"), {400}, s, headers=headers
        )
    headers.append((b"X-\xe9t\xe9", b"1"))
    return _refused(number, "non_utf8_headers", variant, target, s.body(), {400}, s, headers=headers)


def nul_bytes(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    variant = rng.choice(["in a header value", "in the body", "body of NULs", "in a JSON string"])
    if variant == "in a header value":
        headers = [*_headers(target, key=None), ("X-Sentry-Auth", _auth(target.public_key) + b"\x00")]
        return _refused(number, "nul_bytes", variant, target, s.body(), {400, 401}, s, headers=headers)
    if variant == "in the body":
        body = s.body()
        position = rng.randrange(len(body))
        return _refused(
            number, "nul_bytes", variant, target, body[:position] + b"\x00" + body[position:], {200, 400}, s
        )
    if variant == "body of NULs":
        return _refused(number, "nul_bytes", variant, target, bytes(rng.randint(1, 1000)), {400}, s)
    position = next(i for i, (h, _) in enumerate(s.items) if h.get("type") in PROFILE_ITEMS)
    item_headers, payload = s.items[position]
    s.items[position] = (item_headers, payload.replace(b'"platform":', b'"nul\x00":0,"platform":', 1))
    return _refused(number, "nul_bytes", variant, target, s.body(), OK, s, profile_items=s.profile_items)


def trailing_garbage(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    if rng.random() < 0.2:
        return _valid(number, "trailing_garbage", "blank lines (fine)", target, s, s.body() + b"\n\n\n")
    garbage = rng.choice([b"\xff", b"garbage", b"}", b"\x00"]) + rng.randbytes(rng.randint(0, 300))
    return _refused(number, "trailing_garbage", f"{len(garbage)} B", target, s.body() + garbage, {400}, s)


def header_types(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    if rng.random() < 0.6:
        header = rng.choice([b"[]", b'"envelope"', b"1", b"null", b"true", b"[{}]"])
        return _refused(
            number,
            "header_types",
            f"envelope header {header.decode()}",
            target,
            join_envelope(header, s.items),
            {400},
            s,
        )
    item_header = rng.choice([b"[]", b'"profile"', b"1", b"null"])
    body = s.header + b"\n" + item_header + b"\n" + s.body().split(b"\n", 1)[1]
    return _refused(number, "header_types", f"item header {item_header.decode()}", target, body, {400}, s)


def no_profile_items(number: int, rng: random.Random, target: Target) -> Case:
    name = rng.choice(OTHER_FIXTURES)
    body = fresh_ids(_fixture(name), rng)
    return _refused(number, "no_profile_items", name, target, body, OK, profile_items=0)


def chunked_transfer(number: int, rng: random.Random, target: Target) -> Case:
    s = sample(rng)
    encoding = rng.choice([None, "gzip"])
    body = encode(s.body(), encoding or "identity")
    return _valid(number, "chunked_transfer", encoding or "plain", target, s, body, encoding, chunked=True)


# kind -> (builder, weight)
KINDS: dict[str, tuple[Callable[[int, random.Random, Target], Case], float]] = {
    "deep_profile": (deep_profile, 3),
    "deep_transaction": (deep_transaction, 2),
    "deep_header": (deep_header, 2),
    "truncated": (truncated, 4),
    "flipped": (flipped, 4),
    "random_bytes": (random_bytes, 4),
    "wrong_length": (wrong_length, 4),
    "multi_frame_zstd": (multi_frame_zstd, 3),
    "multi_member_gzip": (multi_member_gzip, 3),
    "stacked_encoding": (stacked_encoding, 3),
    "ignored_encoding": (ignored_encoding, 2),
    "bad_encoding": (bad_encoding, 3),
    "bomb_gzip": (bomb_case("gzip"), 1),
    "bomb_deflate": (bomb_case("deflate"), 1),
    "bomb_br": (bomb_case("br"), 1),
    "bomb_zstd": (bomb_case("zstd"), 1),
    "bomb_gzip_br": (bomb_case("gzip, br"), 1),
    "oversized": (oversized, 1),
    "duplicated_profile": (duplicated_profile, 2),
    "many_chunks": (many_chunks, 2),
    "tiny_items": (tiny_items, 1),
    "empty_body": (empty_body, 2),
    "empty_items": (empty_items, 2),
    "key_wrong": (key_wrong, 1),
    "key_missing": (key_missing, 1),
    "key_other_project": (key_other_project, 1),
    "key_revoked": (key_revoked, 1),
    "unknown_project": (unknown_project, 1),
    "key_query": (key_query, 1),
    "key_authorization": (key_authorization, 1),
    "key_dsn_header": (key_dsn_header, 2),
    "huge_headers": (huge_headers, 2),
    "wrong_types": (wrong_types, 3),
    "non_utf8_headers": (non_utf8_headers, 2),
    "nul_bytes": (nul_bytes, 2),
    "trailing_garbage": (trailing_garbage, 2),
    "header_types": (header_types, 2),
    "no_profile_items": (no_profile_items, 1),
    "chunked_transfer": (chunked_transfer, 2),
}


def make_case(seed: int, number: int, target: Target) -> Case:
    """Case `number` of the corpus `seed`: every tenth a control, the others one mutation."""
    rng = random.Random(f"{seed}/{number}")
    if number % 10 == 0:
        return control(number, rng, target)
    kind = rng.choices(list(KINDS), weights=[weight for _, weight in KINDS.values()])[0]
    return KINDS[kind][0](number, rng, target)


BOMB_KINDS = tuple(kind for kind in KINDS if kind.startswith("bomb_"))


def make_bomb(seed: int, number: int, target: Target) -> Case:
    """Bombs only, four in a row of each encoding in turn (so that four clients send the same
    one at once): what an attacker sends to exhaust memory."""
    kind = BOMB_KINDS[number // 4 % len(BOMB_KINDS)]
    return KINDS[kind][0](number, random.Random(f"{seed}/{number}"), target)


def warm_up() -> None:
    """Build what every case shares (the bombs) before the clock starts."""
    bomb("gzip")


# -- the client -------------------------------------------------------------------------


@dataclass
class Answer:
    """A case as sent and what came back (the body is not kept: 10,000 cases would not fit)."""

    number: int
    kind: str
    variant: str
    expect: frozenset[int]
    profile_ids: tuple[str, ...]
    must_store: tuple[str, ...]
    profile_items: int | None
    control: bool
    size: int
    sample: bytes
    headers_sent: str
    status: int | None
    error: str | None
    seconds: float
    response_headers: dict[str, str] = field(default_factory=dict)
    # What the connection carried before: requests, and the last one's case and answer.
    reused: int = 0
    previous: str = ""

    @property
    def bad(self) -> bool:
        return self.status is None or self.status >= 500

    @property
    def unexpected(self) -> bool:
        return self.status is not None and self.status not in self.expect

    def describe(self) -> str:
        answer = self.status if self.status is not None else f"no answer ({self.error})"
        connection = (
            f"; on a connection after {self.reused} requests, last {self.previous}" if self.reused else ""
        )
        return (
            f"#{self.number} {self.kind} [{self.variant}] -> {answer}, expected {sorted(self.expect)}; "
            f"{self.size} B body {self.sample!r}; headers {self.headers_sent}{connection}"
        )


class _AnsweredEarly(Exception):
    """The server answered (or stopped reading) before the request was sent whole."""


class _Connection(http.client.HTTPConnection):
    """Sends in slices and stops as soon as the server has answered, as a careful client
    does with a refusal while streaming: it reads the answer instead of a reset."""

    SLICE = 64 * 1024

    def send(self, data: Any) -> None:
        sock = self.sock
        assert sock is not None and isinstance(data, bytes | bytearray)
        try:
            for start in range(0, len(data), self.SLICE):
                if select.select([sock], [], [], 0)[0]:
                    raise _AnsweredEarly
                sock.sendall(data[start : start + self.SLICE])
        except (BrokenPipeError, ConnectionResetError):
            # The server stopped reading; its answer may still be waiting to be read.
            raise _AnsweredEarly from None


class Client:
    """One keep-alive connection; replaced when the server closed it after an answer."""

    def __init__(self, host: str, port: int, timeout: float = 60) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.connection: _Connection | None = None
        self.carried = 0
        self.previous = ""

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        self.carried = 0

    def _connect(self) -> _Connection:
        if self.connection is not None and self._closed_by_server():
            self.close()
        if self.connection is None:
            self.connection = _Connection(self.host, self.port, timeout=self.timeout)
            self.connection.connect()
        return self.connection

    def _closed_by_server(self) -> bool:
        assert self.connection is not None
        sock = self.connection.sock
        if sock is None:
            return True
        readable, _, _ = select.select([sock], [], [], 0)
        # Readable between requests: EOF, or bytes nobody asked for; either way it is done.
        return bool(readable)

    def send(self, case: Case) -> Answer:
        start = time.perf_counter()
        status: int | None = None
        error: str | None = None
        response_headers: dict[str, str] = {}
        reused, previous = 0, ""
        try:
            connection = self._connect()
            reused, previous = self.carried, self.previous
            early = False
            try:
                connection.putrequest("POST", case.path, skip_accept_encoding=True)
                for name, value in case.headers:
                    connection.putheader(name, value)
                if case.chunked:
                    connection.putheader("Transfer-Encoding", "chunked")
                else:
                    connection.putheader("Content-Length", str(len(case.body)))
                connection.endheaders()
                if case.chunked:
                    for i in range(0, len(case.body), _Connection.SLICE):
                        piece = case.body[i : i + _Connection.SLICE]
                        connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                    connection.send(b"0\r\n\r\n")
                else:
                    connection.send(case.body)
            except _AnsweredEarly:
                early = True
            response = connection.getresponse()
            response.read()
            status = response.status
            response_headers = {name.lower(): value for name, value in response.getheaders()}
            self.carried += 1
            self.previous = f"#{case.number} {case.kind} [{case.variant}] -> {status}"
            # After a 5xx (already a bad answer) servers drop the connection unannounced:
            # a fresh one keeps that from being blamed on the next case.
            if early or response.will_close or status >= 500:
                self.close()
        except (OSError, http.client.HTTPException) as e:
            error = f"{type(e).__name__}: {e}"[:120]
            self.close()
        return Answer(
            number=case.number,
            kind=case.kind,
            variant=case.variant,
            expect=case.expect,
            profile_ids=case.profile_ids,
            must_store=case.must_store,
            profile_items=case.profile_items,
            control=case.control,
            size=len(case.body),
            sample=case.body[:80],
            headers_sent=_headers_summary(case),
            status=status,
            error=error,
            seconds=time.perf_counter() - start,
            response_headers=response_headers,
            reused=reused,
            previous=previous,
        )


def _headers_summary(case: Case) -> str:
    shown = []
    for raw_name, value in case.headers:
        name = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        if name in ("Content-Type", "User-Agent"):
            continue
        text = repr(value)[2:-1]
        shown.append(f"{name[:30]}: {text[:50]}{'...' if len(text) > 50 else ''}")
    if len(shown) > 4:
        shown = [*shown[:3], f"... {len(shown) - 3} more"]
    return "; ".join(shown) + (" [chunked]" if case.chunked else "") + f" {case.path[:60]}"


def send_cases(
    target: Target,
    seed: int,
    count: int,
    threads: int = 4,
    first: int = 1,
    build: Callable[[int, int, Target], Case] = make_case,
) -> tuple[list[Answer], float]:
    """Cases first .. first+count-1 from `threads` clients; answers in case order, seconds."""
    warm_up()
    numbers = iter(range(first, first + count))
    lock = threading.Lock()
    answers: list[Answer] = []

    def work() -> None:
        client = Client(target.host, target.port)
        try:
            while True:
                with lock:
                    number = next(numbers, None)
                if number is None:
                    return
                answer = client.send(build(seed, number, target))
                with lock:
                    answers.append(answer)
        finally:
            client.close()

    start = time.monotonic()
    workers = [threading.Thread(target=work, name=f"hostile-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted(answers, key=lambda a: a.number), time.monotonic() - start


# -- what the server says afterwards ----------------------------------------------------


def received_items(base_url: str) -> dict[str, float] | None:
    """``profd_ingest_profile_items_total`` by item type from ``/metrics``; None without it."""
    try:
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
            text = response.read().decode()
    except urllib.error.URLError:
        return None
    found: dict[str, float] = {}
    for line in text.splitlines():
        matched = re.match(r"profd_ingest_profile_items_total\{([^}]*)\}\s+(\S+)", line)
        if matched:
            label = re.search(r'item_type="([^"]*)"', matched.group(1))
            found[label.group(1) if label else ""] = float(matched.group(2))
    return found if found or "profd_ingest_profile_items_total" in text else None


def peak_rss_kb(pid: int) -> int:
    """VmHWM of one process (kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def rss_bound_mb(idle_mb: float, clients: int) -> float:
    """The most the server process may reach while `clients` send at once, from the limits.

    Per request in flight: the decoded body (at most MAX_ENVELOPE_SIZE), its copy once
    finished, the items cut from it and the pieces in flight: 4 x MAX_ENVELOPE_SIZE; plus
    one profile item decoded into Python objects, about 10x its JSON (at most
    MAX_PROFILE_SIZE before it is refused).  On top of the idle server, 30 MB for the
    allocator's slack and the threadpool's stacks.  With 4 clients that is idle + 64 + 40
    + 30 MB, about 220 MB; one bomb inflated whole (BOMB_SIZE, 256 MiB) would pass it alone.
    """
    per_request = 4 * MAX_ENVELOPE_SIZE + 10 * MAX_PROFILE_SIZE
    return idle_mb + clients * per_request / MIB + 30


def children_peak_rss_kb(pid: int) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum(peak_rss_kb(int(child)) for child in children)


@dataclass
class Balance:
    received: int | None
    by_outcome: dict[str, int]

    @property
    def counted(self) -> int:
        return sum(self.by_outcome.values())

    @property
    def holds(self) -> bool:
        return self.received is not None and self.received == self.counted

    def describe(self) -> str:
        parts = " + ".join(f"{name} {n}" for name, n in sorted(self.by_outcome.items()))
        received = "unknown (no /metrics)" if self.received is None else str(self.received)
        verdict = "holds" if self.holds else "is OFF"
        return f"received {received} vs outcomes {self.counted} = {parts or '0'}: balance {verdict}"


def outcome_balance(base_url: str, index: Any) -> Balance:
    metrics = received_items(base_url)
    received = None if metrics is None else int(sum(metrics.values()))
    by_outcome: Counter[str] = Counter()
    for row in index.outcome_counts():
        if row.category in PRIMARY:
            by_outcome[row.outcome.name.lower()] += row.times
    for name in ("accepted", "invalid", "filtered", "rate_limited"):
        by_outcome.setdefault(name, 0)
    return Balance(received, dict(by_outcome))


def storage_problems(index: Any, answers: list[Answer]) -> list[str]:
    """Controls and must-store cases stored once with one ACCEPTED outcome; refused ones
    (anything but 200 or 429) leave no profile behind."""
    placeholders = ",".join(str(int(c)) for c in PRIMARY)
    outcomes: dict[str, Counter[Outcome]] = defaultdict(Counter)
    for row in index.select(
        f"SELECT event_id, outcome, COUNT(*) AS n FROM outcomes WHERE category IN ({placeholders}) "
        "GROUP BY event_id, outcome"
    ):
        outcomes[_hex(row["event_id"])][Outcome(row["outcome"])] += row["n"]
    stored: Counter[str] = Counter()
    for row in index.select("SELECT profile_id, COUNT(*) AS n FROM profiles GROUP BY profile_id"):
        stored[_hex(row["profile_id"])] += row["n"]
    problems = []
    for answer in answers:
        if answer.status == 200:
            for profile_id in answer.must_store:
                found = outcomes.get(profile_id, Counter())
                if stored[profile_id] != 1 or found[Outcome.ACCEPTED] != 1:
                    problems.append(
                        f"{answer.kind} [{answer.variant}] #{answer.number}: profile {profile_id} stored "
                        f"{stored[profile_id]}x, outcomes {dict((o.name, n) for o, n in found.items())}"
                    )
                elif answer.control and sum(found.values()) != 1:
                    problems.append(
                        f"control #{answer.number}: {profile_id} has more outcomes than one ACCEPTED: "
                        f"{dict((o.name, n) for o, n in found.items())}"
                    )
        elif answer.status not in (429, None):
            for profile_id in answer.profile_ids:
                if stored[profile_id]:
                    problems.append(
                        f"{answer.kind} [{answer.variant}] #{answer.number} answered {answer.status} "
                        f"but profile {profile_id} was stored"
                    )
    return problems


def _hex(value: str | None) -> str:
    try:
        return uuid.UUID(str(value)).hex
    except ValueError:
        return str(value)


STATUS_COLUMNS = (200, 400, 401, 403, 404, 413, 429, 431)


def summary_table(answers: list[Answer]) -> str:
    """Answer codes per mutation kind; `5xx`, `none` (no answer) and `unexp` (outside the
    case's expected codes) are the columns that should be empty."""
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for answer in answers:
        row = by_kind[answer.kind]
        row["n"] += 1
        if answer.status is None:
            row["none"] += 1
        elif answer.status >= 500:
            row["5xx"] += 1
        elif answer.status in STATUS_COLUMNS:
            row[str(answer.status)] += 1
        else:
            row["other"] += 1
        if answer.unexpected:
            row["unexp"] += 1
    columns = ["n", *map(str, STATUS_COLUMNS), "other", "5xx", "none", "unexp"]
    width = max(len(kind) for kind in [*by_kind, "kind"]) + 1
    lines = [f"{'kind':<{width}}" + "".join(f"{c:>6}" for c in columns)]
    total: Counter[str] = Counter()
    for kind in sorted(by_kind):
        total.update(by_kind[kind])
        lines.append(f"{kind:<{width}}" + "".join(f"{by_kind[kind][c] or '.':>6}" for c in columns))
    lines.append(f"{'all':<{width}}" + "".join(f"{total[c] or '.':>6}" for c in columns))
    return "\n".join(lines)


def answer_problems(answers: list[Answer], limit: int = 3) -> list[str]:
    """Bad answers (5xx, none), codes outside the allowed set, codes outside a case's
    expectation: a few examples per kind."""
    problems = []
    shown: Counter[tuple[str, str]] = Counter()
    for answer in answers:
        if answer.bad:
            what = "bad answer"
        elif answer.status not in ALLOWED:
            what = "status not allowed"
        elif answer.unexpected:
            what = "unexpected status"
        else:
            continue
        shown[(answer.kind, what)] += 1
        if shown[(answer.kind, what)] <= limit:
            problems.append(f"{what}: {answer.describe()}")
    for (kind, what), n in sorted(shown.items()):
        if n > limit:
            problems.append(f"{what}: {kind}: {n - limit} more")
    return problems


def received_lower_bound(answers: list[Answer]) -> int:
    """Profile items in envelopes answered 200 whose count is known: /metrics counts at least these."""
    return sum(a.profile_items or 0 for a in answers if a.status == 200)
