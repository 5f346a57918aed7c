"""Sentry envelopes: what SDKs POST to ``/api/{project}/envelope/``.

An envelope is a JSON header line, then items: a JSON item header line and a payload.
With ``length`` in the item header the payload is exactly that many bytes (Python SDK);
without it the payload runs to the next newline (Node SDK).  Blank lines between items
are tolerated.  Bodies may arrive compressed (gzip, deflate, br, zstd).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from typing import Any

import brotli
import msgspec
import zstandard

from profd.formats import FormatError

_json = msgspec.json.Decoder()


@dataclass(frozen=True)
class Item:
    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        return str(self.headers.get("type") or "")

    def json(self) -> dict[str, Any]:
        try:
            document = _json.decode(self.payload)
        except (msgspec.DecodeError, UnicodeDecodeError) as e:
            raise FormatError(f"{self.type} item is not JSON: {e}", "$", "payload") from None
        if not isinstance(document, dict):
            raise FormatError(f"{self.type} item is not a JSON object", "$", "payload")
        return document


@dataclass(frozen=True)
class Envelope:
    headers: dict[str, Any]
    items: list[Item] = field(default_factory=list)

    def first(self, item_type: str) -> Item | None:
        return next((item for item in self.items if item.type == item_type), None)


def decompress_body(body: bytes, content_encoding: str | None, max_size: int) -> bytes:
    """Undo ``Content-Encoding``; refuses to inflate beyond `max_size` (zip bombs)."""
    encoding = (content_encoding or "identity").strip().lower()
    try:
        if encoding in ("identity", ""):
            data = body
        elif encoding in ("gzip", "x-gzip"):
            data = _bounded(zlib.decompressobj(16 + zlib.MAX_WBITS), body, max_size)
        elif encoding == "deflate":
            # Clients disagree on whether "deflate" has the zlib header; accept both.
            try:
                data = _bounded(zlib.decompressobj(), body, max_size)
            except zlib.error:
                data = _bounded(zlib.decompressobj(-zlib.MAX_WBITS), body, max_size)
        elif encoding == "br":
            data = brotli.decompress(body)
        elif encoding == "zstd":
            reader = zstandard.ZstdDecompressor().stream_reader(body)
            data = reader.read(max_size + 1)
        else:
            raise FormatError(f"unsupported Content-Encoding {encoding!r}", "$", "payload")
    except (zlib.error, gzip.BadGzipFile, brotli.error, zstandard.ZstdError, EOFError) as e:
        raise FormatError(f"body is not valid {encoding}: {e}", "$", "payload") from None
    if len(data) > max_size:
        raise FormatError(f"body is larger than {max_size} bytes once decompressed", "$", "too_large")
    return data


def _bounded(decompressor: Any, body: bytes, max_size: int) -> bytes:
    data: bytes = decompressor.decompress(body, max_size + 1)
    if not decompressor.eof and len(data) <= max_size:
        raise zlib.error("truncated stream")
    return data


def parse_envelope(data: bytes) -> Envelope:
    header_line, position = _line(data, 0)
    headers = _header(header_line, "$")
    items: list[Item] = []
    while position < len(data):
        line, next_position = _line(data, position)
        if not line.strip():
            position = next_position
            continue
        item_headers = _header(line, f"$.items[{len(items)}]")
        length = item_headers.get("length")
        if length is None:
            payload, position = _line(data, next_position)
        else:
            if not isinstance(length, int) or length < 0:
                raise FormatError(
                    f"item length {length!r} is not a size", f"$.items[{len(items)}].length", "payload"
                )
            end = next_position + length
            if end > len(data):
                raise FormatError(
                    f"item says {length} bytes, {len(data) - next_position} remain",
                    f"$.items[{len(items)}].length",
                    "payload",
                )
            payload = data[next_position:end]
            position = end + 1 if data[end : end + 1] == b"\n" else end
        items.append(Item(item_headers, payload))
    return Envelope(headers, items)


def _line(data: bytes, start: int) -> tuple[bytes, int]:
    end = data.find(b"\n", start)
    if end < 0:
        return data[start:], len(data)
    return data[start:end], end + 1


def _header(line: bytes, path: str) -> dict[str, Any]:
    try:
        header = _json.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"header is not JSON: {e}", path, "payload") from None
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object", path, "payload")
    return header
