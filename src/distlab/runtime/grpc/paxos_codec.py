"""Multi-Paxos core messages to protobuf and back.

`encode` and `decode` turn a core message into the bytes of one peer-transport envelope and
back, as the Raft codec does. Decoding checks the shapes (ids, ballots, values); what a
well-formed message means the core validates itself. The ballot, triple and decision
conversions are public: the node's Paxos records in the WAL use the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable

from distlab.core.ids import NodeId
from distlab.proto import paxos_pb2
from distlab.protocols import multipaxos as paxos
from distlab.runtime.grpc.peer_codec import MalformedMessage, node_id, parse

__all__ = ["MalformedMessage", "accepted_from_proto", "accepted_to_proto", "ballot_from_proto",
           "ballot_to_proto", "decision_from_proto", "decision_to_proto", "decode", "encode",
           "from_proto", "to_proto"]

# A ballot's node shares one integer with its round (`Ballot.as_int`).
_MAX_BALLOT_NODE = 2**32 - 1


def ballot_to_proto(ballot: paxos.Ballot) -> paxos_pb2.PaxosBallot:
    return paxos_pb2.PaxosBallot(round=ballot.round, node=ballot.node)


def ballot_from_proto(proto: paxos_pb2.PaxosBallot) -> paxos.Ballot:
    if proto.node > _MAX_BALLOT_NODE:
        raise MalformedMessage(f"ballot node {proto.node} is out of range")
    if proto.round and not proto.node:
        raise MalformedMessage(f"ballot round {proto.round} names no node")
    return paxos.Ballot(proto.round, NodeId(proto.node))


def _value_to_proto(value: paxos.Value) -> paxos_pb2.PaxosValue:
    return paxos_pb2.PaxosValue(noop=value.command is None, command=value.command or b"",
                                origin=ballot_to_proto(value.origin))


def _value_from_proto(proto: paxos_pb2.PaxosValue) -> paxos.Value:
    if proto.noop and proto.command:
        raise MalformedMessage("a no-op that carries a command")
    return paxos.Value(None if proto.noop else proto.command, ballot_from_proto(proto.origin))


def accepted_to_proto(triple: paxos.Accepted) -> paxos_pb2.PaxosAccepted:
    return paxos_pb2.PaxosAccepted(slot=triple.slot, ballot=ballot_to_proto(triple.ballot),
                                   value=_value_to_proto(triple.value))


def accepted_from_proto(proto: paxos_pb2.PaxosAccepted) -> paxos.Accepted:
    return paxos.Accepted(_slot(proto.slot), ballot_from_proto(proto.ballot),
                          _value_from_proto(proto.value))


def decision_to_proto(decision: paxos.Decision) -> paxos_pb2.PaxosDecision:
    return paxos_pb2.PaxosDecision(slot=decision.slot, value=_value_to_proto(decision.value))


def decision_from_proto(proto: paxos_pb2.PaxosDecision) -> paxos.Decision:
    return paxos.Decision(_slot(proto.slot), _value_from_proto(proto.value))


def _slot(value: int) -> int:
    if value <= 0:
        raise MalformedMessage(f"slots are numbered from 1, got {value}")
    return value


def _slots(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(_slot(value) for value in values)


def encode(message: paxos.Message) -> bytes:
    """Any core message, InstallSnapshot included, as the bytes of a `PaxosMessage`."""
    return to_proto(message).SerializeToString()


def decode(payload: bytes) -> paxos.Message:
    """The core message `encode` made `payload` from; raises MalformedMessage for anything else."""
    return from_proto(parse(paxos_pb2.PaxosMessage, payload, "Multi-Paxos"))


def to_proto(message: paxos.Message) -> paxos_pb2.PaxosMessage:
    out = paxos_pb2.PaxosMessage(sender=message.sender, recipient=message.recipient,
                                 ballot=ballot_to_proto(message.ballot))
    match message:
        case paxos.Prepare():
            out.prepare.first_slot = message.first_slot
            out.prepare.probe = message.probe
        case paxos.Promise():
            out.promise.CopyFrom(paxos_pb2.PaxosPromise(
                ok=message.ok, promised=ballot_to_proto(message.promised),
                accepted=[accepted_to_proto(triple) for triple in message.accepted],
                log_start=message.log_start, probe=message.probe))
        case paxos.Accept():
            out.accept.CopyFrom(paxos_pb2.PaxosAccept(
                entries=[decision_to_proto(entry) for entry in message.entries],
                commit_index=message.commit_index, leader_start=message.leader_start,
                forget_through=message.forget_through))
        case paxos.AcceptedReply():
            out.accepted_reply.CopyFrom(paxos_pb2.PaxosAcceptedReply(
                ok=message.ok, promised=ballot_to_proto(message.promised),
                slots=message.slots, applied=message.applied,
                commit_index=message.commit_index))
        case paxos.Commit():
            out.commit.CopyFrom(paxos_pb2.PaxosCommit(
                commit_index=message.commit_index, leader_start=message.leader_start,
                forget_through=message.forget_through, read_round=message.read_round))
        case paxos.CommitReply():
            out.commit_reply.CopyFrom(paxos_pb2.PaxosCommitReply(
                ok=message.ok, promised=ballot_to_proto(message.promised),
                applied=message.applied, commit_index=message.commit_index,
                read_round=message.read_round))
        case paxos.CatchUp():
            out.catch_up.first_slot = message.first_slot
        case paxos.Decisions():
            out.decisions.CopyFrom(paxos_pb2.PaxosDecisions(
                decisions=[decision_to_proto(d) for d in message.decisions]))
        case paxos.InstallSnapshot():
            # Assigned in place: a snapshot's data can be large, and CopyFrom would copy it again.
            out.install_snapshot.last_index = message.snapshot.meta.last_index
            out.install_snapshot.data = message.snapshot.data
    return out


def from_proto(proto: paxos_pb2.PaxosMessage) -> paxos.Message:
    sender, recipient = node_id(proto.sender), node_id(proto.recipient)
    ballot = ballot_from_proto(proto.ballot)
    match proto.WhichOneof("body"):
        case "prepare":
            return paxos.Prepare(sender, recipient, ballot, _slot(proto.prepare.first_slot),
                                 proto.prepare.probe)
        case "promise":
            p = proto.promise
            return paxos.Promise(sender, recipient, ballot, p.ok, ballot_from_proto(p.promised),
                                 tuple(accepted_from_proto(a) for a in p.accepted),
                                 p.log_start, p.probe)
        case "accept":
            a = proto.accept
            return paxos.Accept(sender, recipient, ballot,
                                tuple(decision_from_proto(d) for d in a.entries),
                                a.commit_index, a.leader_start, a.forget_through)
        case "accepted_reply":
            r = proto.accepted_reply
            return paxos.AcceptedReply(sender, recipient, ballot, r.ok,
                                       ballot_from_proto(r.promised), _slots(r.slots),
                                       r.applied, r.commit_index)
        case "commit":
            c = proto.commit
            return paxos.Commit(sender, recipient, ballot, c.commit_index, c.leader_start,
                                c.forget_through, c.read_round)
        case "commit_reply":
            cr = proto.commit_reply
            return paxos.CommitReply(sender, recipient, ballot, cr.ok,
                                     ballot_from_proto(cr.promised), cr.applied,
                                     cr.commit_index, cr.read_round)
        case "catch_up":
            return paxos.CatchUp(sender, recipient, ballot, _slot(proto.catch_up.first_slot))
        case "decisions":
            return paxos.Decisions(sender, recipient, ballot, tuple(
                decision_from_proto(d) for d in proto.decisions.decisions))
        case "install_snapshot":
            snapshot = proto.install_snapshot
            if snapshot.last_index <= 0:
                raise MalformedMessage("a snapshot that covers no slot")
            return paxos.InstallSnapshot(sender, recipient, ballot, paxos.Snapshot(
                paxos.SnapshotMeta(snapshot.last_index), snapshot.data))
    raise MalformedMessage("message has no body")
