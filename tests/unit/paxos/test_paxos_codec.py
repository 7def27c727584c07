"""Every Multi-Paxos message survives encode/decode; what a peer could send that is not one is
refused."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from distlab.core.ids import NodeId
from distlab.proto import paxos_pb2
from distlab.protocols import multipaxos as paxos
from distlab.runtime.grpc.paxos_codec import MalformedMessage, decode, encode

A, B = NodeId(1), NodeId(2)
LOW, HIGH = paxos.Ballot(2, A), paxos.Ballot(3, B)
COMMAND = paxos.Value(b"put k v", LOW)
NOOP = paxos.Value(None, HIGH)
EMPTY_COMMAND = paxos.Value(b"", LOW)  # an empty command is not a no-op

MESSAGES: list[paxos.Message] = [
    paxos.Prepare(A, B, HIGH, 5),
    paxos.Promise(A, B, HIGH, True, HIGH,
                  (paxos.Accepted(5, LOW, COMMAND), paxos.Accepted(6, HIGH, NOOP)), 4),
    paxos.Promise(B, A, LOW, False, HIGH),
    paxos.Accept(A, B, HIGH, (paxos.Decision(7, COMMAND), paxos.Decision(8, EMPTY_COMMAND)),
                 6, 5, 3),
    paxos.Accept(A, B, HIGH, (), 8, 5, 8),
    paxos.AcceptedReply(B, A, HIGH, True, HIGH, (7, 8), 6, 6),
    paxos.AcceptedReply(B, A, LOW, False, HIGH, (), 0, 0),
    paxos.Commit(A, B, HIGH, 8, 5, 7, read_round=4),
    paxos.CommitReply(B, A, HIGH, True, HIGH, 8, 8, read_round=4),
    paxos.CatchUp(B, A, paxos.ZERO_BALLOT, 9),
    paxos.Decisions(A, B, HIGH, (paxos.Decision(9, NOOP), paxos.Decision(10, COMMAND))),
    paxos.InstallSnapshot(A, B, HIGH, paxos.Snapshot(paxos.SnapshotMeta(40), b"state" * 1000)),
    paxos.Prepare(A, B, HIGH, 5, probe=True),
    paxos.Promise(B, A, HIGH, True, LOW, probe=True),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_a_message_decodes_to_itself(message: paxos.Message) -> None:
    assert decode(encode(message)) == message


def test_every_field_of_every_message_is_carried_by_some_case_above() -> None:
    """A field the core adds with a default would pass the round trip above at its default
    while the codec drops it: each one must take another value in some case."""
    for kind in {type(message) for message in MESSAGES}:
        for field in dataclasses.fields(kind):
            if field.default is dataclasses.MISSING:
                continue
            assert any(getattr(m, field.name) != field.default
                       for m in MESSAGES if type(m) is kind), (
                f"no case sets {kind.__name__}.{field.name}")
    assert {type(m) for m in MESSAGES} == set(typing.get_args(paxos.Message))


def test_a_noop_and_an_empty_command_stay_apart() -> None:
    decoded = decode(encode(MESSAGES[3]))
    assert isinstance(decoded, paxos.Accept)
    assert decoded.entries[1].value.command == b""
    assert not decoded.entries[1].value.is_noop
    promise = decode(encode(MESSAGES[1]))
    assert isinstance(promise, paxos.Promise)
    assert promise.accepted[1].value.is_noop


def _message(**body: object) -> bytes:
    return paxos_pb2.PaxosMessage(sender=1, recipient=2, ballot=paxos_pb2.PaxosBallot(
        round=1, node=1), **body).SerializeToString()  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", [
    b"\xff\xff\xff",
    _message(),
    paxos_pb2.PaxosMessage(sender=0, recipient=2,
                           prepare=paxos_pb2.PaxosPrepare(first_slot=1)).SerializeToString(),
    _message(prepare=paxos_pb2.PaxosPrepare(first_slot=0)),
    _message(install_snapshot=paxos_pb2.PaxosInstallSnapshot(data=b"x")),
    _message(accept=paxos_pb2.PaxosAccept(entries=[paxos_pb2.PaxosDecision(
        slot=3, value=paxos_pb2.PaxosValue(noop=True, command=b"x"))])),
    paxos_pb2.PaxosMessage(sender=1, recipient=2, ballot=paxos_pb2.PaxosBallot(round=1, node=0),
                           catch_up=paxos_pb2.PaxosCatchUp(first_slot=1)).SerializeToString(),
    paxos_pb2.PaxosMessage(sender=1, recipient=2, ballot=paxos_pb2.PaxosBallot(
        round=1, node=2**40), catch_up=paxos_pb2.PaxosCatchUp(first_slot=1)).SerializeToString(),
], ids=["not-protobuf", "no-body", "node-zero", "slot-zero", "snapshot-of-nothing",
        "noop-with-command", "ballot-without-node", "ballot-node-out-of-range"])
def test_what_is_not_a_paxos_message_is_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(payload)
