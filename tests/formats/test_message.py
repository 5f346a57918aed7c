from __future__ import annotations

import msgspec
import pytest

from profd.formats import FormatError, ProfileMessage, decode_message, encode_message
from profd.formats.message import message_headers, sampled_from_headers
from tests.conftest import shared_file


def test_relays_message_decodes_and_reencodes_identically() -> None:
    raw = shared_file("fixtures/sdk/kafka-profiles-example.msgpack").read_bytes()
    message = decode_message(raw)
    assert (message.type, message.organization_id, message.project_id, message.key_id) == (
        "profile",
        1,
        2,
        1054,
    )
    assert (message.received, message.retention_days) == (1718315383, 90)
    assert len(message.payload) == 82571
    assert msgspec.msgpack.decode(encode_message(message)) == msgspec.msgpack.decode(raw)


def test_payload_travels_as_msgpack_bin() -> None:
    raw = encode_message(ProfileMessage(organization_id=1, project_id=2, received=3, payload=b"{}"))
    assert b"\xc4\x02{}" in raw  # bin8 of length 2


@pytest.mark.parametrize("raw", [b"", b"\x01", b"\x81\xa4type\xa7profile", b"\xc1"])
def test_broken_messages_are_format_errors(raw: bytes) -> None:
    with pytest.raises(FormatError) as error:
        decode_message(raw)
    assert error.value.reason == "payload"


def test_sampled_header() -> None:
    message = ProfileMessage(organization_id=1, project_id=42, received=3, payload=b"{}")
    assert message_headers(message, sampled=False) == [("sampled", b"false"), ("project_id", b"42")]
    assert sampled_from_headers(message_headers(message, sampled=True)) is True
    assert sampled_from_headers([("sampled", b"false")]) is False
    assert sampled_from_headers([]) is True  # Sentry's consumer: no header means sampled
