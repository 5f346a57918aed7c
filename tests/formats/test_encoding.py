"""Content-Encoding undone within bounds: bombs stop at the limit, multi-part bodies are whole."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable

import brotli
import pytest
import zstandard

from profd.formats import FormatError
from profd.formats.encoding import Decoder, decode_body

LIMIT = 1 << 20
BODY = os.urandom(4000).hex().encode() * 20  # 160 KB that compresses a little


def _raw_deflate(data: bytes) -> bytes:
    stream = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return stream.compress(data) + stream.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstandard.ZstdCompressor().compress,
}


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_each_encoding_decodes_fed_whole_or_in_small_pieces(encoding: str) -> None:
    encoded = ENCODERS[encoding](BODY)
    assert decode_body(encoded, encoding, LIMIT) == BODY
    decoder = Decoder(encoding, LIMIT)
    pieces = [decoder.decode(encoded[start : start + 999]) for start in range(0, len(encoded), 999)]
    decoder.finish()
    assert b"".join(pieces) == BODY


def test_raw_deflate_is_deflate_too() -> None:
    assert decode_body(_raw_deflate(BODY), "deflate", LIMIT) == BODY


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_every_member_or_frame_of_a_body_is_kept(encoding: str) -> None:
    """Two gzip members or zstd frames are one body (``gzip -d`` agrees): keeping only the
    first would answer 200 and silently drop the rest of the envelope."""
    encode = ENCODERS[encoding]
    parts = encode(BODY[:1000]) + encode(BODY[1000:5000]) + encode(BODY[5000:])
    assert decode_body(parts, encoding, LIMIT) == BODY


@pytest.mark.parametrize(
    ("header", "layers"),
    [("gzip, br", ["gzip", "br"]), ("br, zstd", ["br", "zstd"]), ("deflate,gzip", ["deflate", "gzip"])],
)
def test_stacked_encodings_are_undone_last_applied_first(header: str, layers: list[str]) -> None:
    encoded = BODY
    for name in layers:
        encoded = ENCODERS[name](encoded)
    assert decode_body(encoded, header, LIMIT) == BODY


@pytest.mark.parametrize("header", [None, "", "identity", "UTF-8", "utf-8, gzip"])
def test_identity_and_charset_names_are_ignored(header: str | None) -> None:
    body = gzip.compress(BODY) if header and "gzip" in header else BODY
    assert decode_body(body, header, LIMIT) == BODY


BOMBS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda d: gzip.compress(d, 9),
    "deflate": lambda d: zlib.compress(d, 9),
    "br": brotli.compress,
    "zstd": zstandard.ZstdCompressor(level=19).compress,
}


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """400 MB of zeros in each encoding: 632 bytes of brotli, 12 KB of zstd."""
    zeros = bytes(400 << 20)
    return {name: encode(zeros) for name, encode in BOMBS.items()}


@pytest.mark.parametrize("encoding", sorted(BOMBS))
def test_bombs_stop_at_the_limit(encoding: str, bombs: dict[str, bytes]) -> None:
    decoder = Decoder(encoding, LIMIT)
    with pytest.raises(FormatError) as error:
        decoder.decode(bombs[encoding])
    assert error.value.reason == "too_large"


@pytest.mark.parametrize("encoding", sorted(BOMBS))
def test_a_bomb_fed_in_small_pieces_stops_at_the_limit_too(encoding: str, bombs: dict[str, bytes]) -> None:
    decoder = Decoder(encoding, LIMIT)
    bomb = bombs[encoding]
    with pytest.raises(FormatError) as error:
        for start in range(0, len(bomb), 64):
            decoder.decode(bomb[start : start + 64])
    assert error.value.reason == "too_large"
    assert decoder.size <= LIMIT + (32 << 20)


def test_a_bomb_inside_a_stack_stops_at_the_limit_of_its_layer(bombs: dict[str, bytes]) -> None:
    with pytest.raises(FormatError) as error:
        decode_body(gzip.compress(bombs["br"]), "br, gzip", LIMIT)
    assert error.value.reason == "too_large"


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_truncated_and_garbage_bodies_are_refused(encoding: str) -> None:
    encoded = ENCODERS[encoding](BODY)
    for broken in (encoded[: len(encoded) // 2], b"garbage!", encoded + b"trailing junk"):
        with pytest.raises(FormatError) as error:
            decode_body(broken, encoding, LIMIT)
        assert error.value.reason == "payload"


@pytest.mark.parametrize("header", ["compress", "lzma", "gzip, lzma"])
def test_unknown_encodings_are_refused(header: str) -> None:
    with pytest.raises(FormatError, match="unsupported") as error:
        Decoder(header, LIMIT)
    assert error.value.reason == "payload"


def test_a_plain_body_over_the_limit_is_too_large() -> None:
    with pytest.raises(FormatError) as error:
        decode_body(bytes(LIMIT + 1), None, LIMIT)
    assert error.value.reason == "too_large"


@pytest.mark.parametrize("encoding", [*sorted(ENCODERS), None])
def test_empty_pieces_change_nothing_even_after_the_end(encoding: str | None) -> None:
    """An ASGI body ends with an empty piece: deflate used to call that data after its end."""
    encoded = ENCODERS[encoding](BODY) if encoding else BODY
    decoder = Decoder(encoding, LIMIT)
    decoded = decoder.decode(b"") + decoder.decode(encoded) + decoder.decode(b"")
    decoder.finish()
    assert decoded == BODY
