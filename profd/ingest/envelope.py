"""Sentry envelopes: what SDKs POST to ``/api/{project}/envelope/``.

An envelope is a JSON header line, then items: a JSON item header line and a payload.
With ``length`` in the item header the payload is exactly that many bytes (Python SDK);
without it the payload runs to the next newline (Node SDK).  Blank lines between items
are tolerated.  Undoing ``Content-Encoding`` is `profd.formats.encoding`'s job.

JSON nested deeper than msgspec's recursion guard allows (about 1,000 levels, far beyond
any real envelope) is refused as invalid JSON rather than crashing the decoder's caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

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
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as e:
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


def parse_envelope(data: bytes, max_items: int | None = None) -> Envelope:
    """The envelope's headers and items; more than `max_items` items is ``too_large``."""
    header_line, position = _line(data, 0)
    headers = _header(header_line, "$")
    items: list[Item] = []
    while position < len(data):
        line, next_position = _line(data, position)
        if not line.strip():
            position = next_position
            continue
        if max_items is not None and len(items) >= max_items:
            raise FormatError(f"the envelope has more than {max_items} items", "$.items", "too_large")
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
            # As Relay: a payload of declared length ends the data or its line, so a wrong
            # length cannot silently swallow or split the next item.
            if data[end : end + 1] not in (b"", b"\n"):
                raise FormatError(
                    f"item says {length} bytes, but no newline follows them",
                    f"$.items[{len(items)}].length",
                    "payload",
                )
            payload = data[next_position:end]
            position = end + 1
        items.append(Item(item_headers, payload))
    return Envelope(headers, items)


def _line(data: bytes, start: int) -> tuple[bytes, int]:
    end = data.find(b"\n", start)
    if end < 0:
        return data[start:], len(data)
    return data[start:end], end + 1


def envelope_header(line: bytes) -> dict[str, Any]:
    """The envelope's header line alone, e.g. for its ``dsn`` before the rest has arrived."""
    return _header(line, "$")


def _header(line: bytes, path: str) -> dict[str, Any]:
    try:
        header = _json.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as e:
        raise FormatError(f"header is not JSON: {e}", path, "payload") from None
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object", path, "payload")
    return header
