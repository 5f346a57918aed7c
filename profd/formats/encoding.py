"""``Content-Encoding`` undone piece by piece as a body arrives, never past a bound.

Every decoder stops as soon as its output would pass `limit`, so a small bomb (632 bytes
of brotli that inflate to 400 MB, a 12 KB zstd frame of zeros) costs at most `limit`
bytes.  Bodies made of several gzip members or zstd frames are decoded whole, as
``gzip -d`` and ``zstd -d`` do: keeping only the first would silently drop the rest of the
envelope.  Stacked encodings (``gzip, br``) are undone last-applied first; ``identity`` and
``UTF-8`` (which some clients send) are ignored, as Relay ignores them.  Envelope bodies and
sentry-cli's gzip chunks both come through here.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli
import zstandard

from profd.formats.errors import FormatError

# zstd decompression objects have no output bound, so input is fed in slices small enough
# that even the densest input (an RLE block: 4 bytes for 128 KiB, 32,768 times) cannot pass
# an eighth of the budget still left, and never smaller than this.
_ZSTD_EXPANSION = 32_768
_ZSTD_MIN_SLICE = 16
_IGNORED = frozenset({"", "identity", "utf-8", "utf8"})


class TooLarge(FormatError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body is larger than {limit} bytes once decompressed", "$", "too_large")


class _Stage(Protocol):
    def feed(self, data: bytes, budget: int) -> bytes:
        """Decoded bytes for `data`; raises TooLarge past `budget`."""
        ...

    def finish(self) -> None:
        """Raises FormatError if the stream ended in the middle."""
        ...


class _Gzip:
    """Concatenated gzip members, each decoded in turn."""

    def __init__(self) -> None:
        self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes, budget: int) -> bytes:
        out = bytearray()
        while data:
            if self._member.eof:
                self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._started = True
            out += self._member.decompress(data, budget - len(out) + 1)
            if len(out) > budget:
                raise TooLarge(budget)
            data = self._member.unconsumed_tail or self._member.unused_data
        return bytes(out)

    def finish(self) -> None:
        if self._started and not self._member.eof:
            raise FormatError("gzip body ends in the middle of a member", "$", "payload")


class _Deflate:
    """zlib-wrapped or raw deflate: clients disagree on which "deflate" means."""

    def __init__(self) -> None:
        self._stream: zlib._Decompress | None = None
        self._head = b""

    def feed(self, data: bytes, budget: int) -> bytes:
        if not data:  # a body stream may end with an empty piece, even after the end
            return b""
        if self._stream is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head = self._head, b""
            first, second = data[0], data[1]
            wrapped = first & 0x0F == 8 and (first << 8 | second) % 31 == 0
            self._stream = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        if self._stream.eof:
            raise FormatError("data after the end of the deflate stream", "$", "payload")
        out = self._stream.decompress(data, budget + 1)
        if len(out) > budget or self._stream.unconsumed_tail:
            raise TooLarge(budget)
        if self._stream.unused_data:
            raise FormatError("data after the end of the deflate stream", "$", "payload")
        return out

    def finish(self) -> None:
        if self._head or (self._stream is not None and not self._stream.eof):
            raise FormatError("deflate body ends in the middle of the stream", "$", "payload")


class _Brotli:
    def __init__(self) -> None:
        self._stream = brotli.Decompressor()

    def feed(self, data: bytes, budget: int) -> bytes:
        out = bytearray(self._stream.process(data, output_buffer_limit=budget + 1))
        # With the buffer full, brotli keeps the rest of the input and must be drained.
        while len(out) <= budget and not self._stream.can_accept_more_data():
            out += self._stream.process(b"", output_buffer_limit=budget - len(out) + 1)
        if len(out) > budget:
            raise TooLarge(budget)
        return bytes(out)

    def finish(self) -> None:
        if not self._stream.is_finished():
            raise FormatError("br body ends in the middle of the stream", "$", "payload")


class _Zstd:
    """Concatenated zstd frames, each decoded in turn."""

    def __init__(self) -> None:
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._started = False

    def feed(self, data: bytes, budget: int) -> bytes:
        out = bytearray()
        view = memoryview(data)
        while view:
            if self._frame.eof:
                self._frame = zstandard.ZstdDecompressor().decompressobj()
            self._started = True
            size = max(_ZSTD_MIN_SLICE, (budget - len(out)) // (8 * _ZSTD_EXPANSION))
            piece, view = view[:size], view[size:]
            out += self._frame.decompress(piece)
            if self._frame.eof and self._frame.unused_data:
                view = memoryview(self._frame.unused_data + bytes(view))
            if len(out) > budget:
                raise TooLarge(budget)
        return bytes(out)

    def finish(self) -> None:
        if self._started and not self._frame.eof:
            raise FormatError("zstd body ends in the middle of a frame", "$", "payload")


_STAGES: dict[str, type[_Gzip | _Deflate | _Brotli | _Zstd]] = {
    "gzip": _Gzip,
    "x-gzip": _Gzip,
    "deflate": _Deflate,
    "br": _Brotli,
    "zstd": _Zstd,
}


class Decoder:
    """Feed the body's pieces as they arrive to `decode`, then call `finish`.

    `limit` bounds the decoded body, and every intermediate layer of a stacked encoding.
    Raises FormatError: reason ``too_large`` past the limit, ``payload`` for an unknown
    encoding or a broken stream.
    """

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        names = [n.strip().lower() for n in (content_encoding or "").split(",")]
        unknown = [n for n in names if n not in _IGNORED and n not in _STAGES]
        if unknown:
            raise FormatError(f"unsupported Content-Encoding {unknown[0]!r}", "$", "payload")
        # The last encoding listed was applied last, so it is undone first.
        self._stages = [_STAGES[n]() for n in reversed(names) if n not in _IGNORED]
        self._produced = [0] * len(self._stages)
        self.limit = limit
        self.size = 0

    def decode(self, data: bytes) -> bytes:
        """What `data` decodes to, given everything fed before it."""
        try:
            for position, stage in enumerate(self._stages):
                data = stage.feed(data, self.limit - self._produced[position])
                self._produced[position] += len(data)
        except (zlib.error, brotli.error, zstandard.ZstdError) as e:
            raise FormatError(f"body is not valid {self._name(e)}: {e}", "$", "payload") from None
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(self.limit)
        return data

    def finish(self) -> None:
        """Raises FormatError if a layer ended in the middle of its stream."""
        for stage in self._stages:
            stage.finish()

    def _name(self, error: Exception) -> str:
        if isinstance(error, zlib.error):
            return "gzip or deflate"
        return "br" if isinstance(error, brotli.error) else "zstd"


def decode_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """A whole body at once (files, tests): what feeding it in one piece gives."""
    decoder = Decoder(content_encoding, limit)
    decoded = decoder.decode(body)
    decoder.finish()
    return decoded
