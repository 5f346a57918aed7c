from __future__ import annotations

import pytest

from profd.formats import FormatError
from profd.ingest.envelope import parse_envelope
from profd.ingest.submit import envelope_items
from tests.conftest import shared_file


def test_items_with_and_without_length_and_blank_lines() -> None:
    data = (
        b'{"event_id":"9a7e"}\n'
        b'{"type":"profile","length":5}\nab\ncd\n'
        b"\n"
        b'{"type":"transaction"}\n{"transaction":"t"}\n'
        b'{"type":"attachment","length":0}\n'
    )
    envelope = parse_envelope(data)
    assert envelope.headers == {"event_id": "9a7e"}
    assert [(i.type, i.payload) for i in envelope.items] == [
        ("profile", b"ab\ncd"),
        ("transaction", b'{"transaction":"t"}'),
        ("attachment", b""),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"not json\n",
        b'{"a":1}\n{"type":"profile","length":99}\nshort',
        b'{"a":1}\n[1]\n',
        b'{"a":1}\n{"type":"profile","length":-1}\nx',
        # A length one short of the payload, or one too long with an item after it: the
        # payload must end the data or its line (Relay), not swallow part of the next item.
        b'{"a":1}\n{"type":"profile","length":2}\n{}}\n',
        b'{"a":1}\n{"type":"profile","length":3}\n{}\n{"type":"transaction","length":2}\n{}\n',
    ],
)
def test_broken_envelopes_are_format_errors(data: bytes) -> None:
    with pytest.raises(FormatError) as error:
        parse_envelope(data)
    assert error.value.reason == "payload"


def test_real_sdk_envelopes() -> None:
    python = parse_envelope(shared_file("fixtures/sdk/envelope-python-transaction.bin").read_bytes())
    [item] = envelope_items(python)
    assert item.item_type == "profile" and item.transaction is not None
    assert item.transaction["transaction"] == "cpu-work-transaction"
    node = parse_envelope(shared_file("fixtures/sdk/envelope-node-profile_chunk.bin").read_bytes())
    [chunk] = envelope_items(node)
    assert (chunk.item_type, chunk.platform, chunk.transaction) == ("profile_chunk", "node", None)
    assert (
        envelope_items(parse_envelope(shared_file("fixtures/sdk/envelope-node-spans.bin").read_bytes())) == []
    )
