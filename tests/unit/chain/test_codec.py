from __future__ import annotations

import dataclasses

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.chain import (
    MESSAGE_TYPES,
    Ack,
    Forward,
    Message,
    StateTransfer,
    Update,
    VersionQuery,
    VersionReply,
    WriterMark,
)
from distlab.runtime.grpc import chain_codec

N1, N2 = NodeId(1), NodeId(2)
UPDATES = (Update(3, b"k\xff", b"v", 12, 5), Update(4, b"k2", b""))
# Every field of every message away from its default, so the codec cannot drop one.
SAMPLES: list[Message] = [
    Forward(7, N1, N2, UPDATES, 9),
    Ack(7, N2, N1, 4, 3, True, True),
    StateTransfer(7, N1, N2, UPDATES, 4, 0xDEADBEEF, (WriterMark(12, 5, 3),)),
    VersionQuery(7, N2, N1, 11, b"k"),
    VersionReply(7, N1, N2, 11, b"k", 4),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda message: type(message).__name__)
def test_every_message_round_trips(message: Message) -> None:
    assert chain_codec.decode(chain_codec.encode(message)) == message


def test_the_samples_cover_every_message_type_and_field() -> None:
    assert {type(message) for message in SAMPLES} == set(MESSAGE_TYPES)
    for message in SAMPLES:
        for field in dataclasses.fields(message):
            assert getattr(message, field.name) not in (0, False, b"", ()), field.name


def test_malformed_payloads_are_rejected_with_a_reason() -> None:
    with pytest.raises(chain_codec.MalformedMessage, match="not a chain message"):
        chain_codec.decode(b"\xff\xff\xff")
    with pytest.raises(chain_codec.MalformedMessage, match="no body"):
        chain_codec.decode(b"")
    bad = chain_codec.encode(Forward(1, N1, N2, (Update(1, b"k", b"v"),), 1))
    zero_sender = chain_codec.to_proto(Ack(1, N1, N2, 0, 0, False))
    zero_sender.ack.sender = 0
    with pytest.raises(chain_codec.MalformedMessage, match="positive"):
        chain_codec.decode(zero_sender.SerializeToString())
    decoded = chain_codec.decode(bad)
    assert isinstance(decoded, Forward) and decoded.updates[0].seq == 1
