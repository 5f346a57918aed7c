"""The bus message: what ingest hands to the pipeline, byte-compatible with Relay.

Relay produces one msgpack map per profile to the Kafka topic ``profiles``, with named
keys (``type, organization_id, project_id, key_id, received, retention_days, payload``;
``payload`` is the expanded profile JSON as msgpack *bin*) and the headers ``sampled``
(``"true"``/``"false"``) and ``project_id`` (decimal string).  profd writes the same
bytes to its own queue, so a message from a real Relay and one from profd are one thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from profd.formats.errors import FormatError

TOPIC = "profiles"

Headers = list[tuple[str, bytes]]


class ProfileMessage(msgspec.Struct, kw_only=True):
    type: Literal["profile", "profile_chunk"] = "profile"
    organization_id: int
    project_id: int
    key_id: int | None = None
    # Unix seconds when ingest received the envelope.
    received: int
    retention_days: int | None = None
    payload: bytes


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ProfileMessage)


def encode_message(message: ProfileMessage) -> bytes:
    return _encoder.encode(message)


def decode_message(raw: bytes) -> ProfileMessage:
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as e:
        message, _, path = str(e).partition(" - at ")
        raise FormatError(message, path.strip("`") or "$", "payload") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"not a msgpack message: {e}", "$", "payload") from None


def message_headers(message: ProfileMessage, sampled: bool) -> Headers:
    return [("sampled", b"true" if sampled else b"false"), ("project_id", str(message.project_id).encode())]


def sampled_from_headers(headers: Iterable[tuple[str, bytes]]) -> bool:
    """A message without a ``sampled`` header counts as sampled, as Sentry's consumer reads it."""
    for name, value in headers:
        if name == "sampled":
            return value == b"true"
    return True
