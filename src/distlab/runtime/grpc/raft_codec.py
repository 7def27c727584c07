"""Raft core messages to protobuf and back.

`encode` and `decode` turn a core message into the bytes of one peer-transport envelope and
back. Decoding validates what the core would otherwise have to trust: a malformed message from
a peer raises `MalformedMessage`, which the receiving side rejects and counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from distlab.proto import raft_pb2
from distlab.protocols import raft
from distlab.runtime.grpc.peer_codec import MalformedMessage, parse
from distlab.runtime.grpc.peer_codec import node_id as _node

__all__ = ["MalformedMessage", "decode", "encode", "from_proto", "meta_from_proto",
           "meta_to_proto", "to_proto"]


def _membership_to_proto(membership: raft.Membership) -> raft_pb2.Membership:
    return raft_pb2.Membership(
        voters=sorted(membership.voters), learners=sorted(membership.learners)
    )


def _membership_from_proto(proto: raft_pb2.Membership) -> raft.Membership:
    try:
        return raft.Membership(
            voters=frozenset(_node(n) for n in proto.voters),
            learners=frozenset(_node(n) for n in proto.learners),
        )
    except ValueError as error:
        raise MalformedMessage(f"bad membership: {error}") from error


def meta_to_proto(meta: raft.SnapshotMeta) -> raft_pb2.SnapshotMeta:
    return raft_pb2.SnapshotMeta(
        last_index=meta.last_index, last_term=meta.last_term,
        membership=_membership_to_proto(meta.membership),
    )


def meta_from_proto(proto: raft_pb2.SnapshotMeta) -> raft.SnapshotMeta:
    return raft.SnapshotMeta(
        last_index=proto.last_index, last_term=proto.last_term,
        membership=_membership_from_proto(proto.membership),
    )


def _entry_to_proto(entry: raft.Entry) -> raft_pb2.Entry:
    return raft_pb2.Entry(term=entry.term, index=entry.index, kind=entry.kind, data=entry.data)


# Indexed by the wire's kind number: a lookup per entry instead of an enum constructor call.
_KINDS = tuple(raft.EntryKind)
assert all(kind == number for number, kind in enumerate(_KINDS))


def _entries_from_proto(protos: Sequence[raft_pb2.Entry], prev_log_index: int
                        ) -> tuple[raft.Entry, ...]:
    """The entries of an append, which must follow `prev_log_index` one by one (their terms
    are checked by the core's validation, `raft.validate`)."""
    kinds, entry = _KINDS, raft.Entry
    try:
        entries = tuple([entry(p.term, p.index, kinds[p.kind], p.data) for p in protos])
    except IndexError:
        unknown = next(p.kind for p in protos if p.kind >= len(kinds))
        raise MalformedMessage(f"unknown entry kind {unknown}") from None
    first = prev_log_index + 1
    if [e.index for e in entries] != list(range(first, first + len(entries))):
        offset, wrong = next((offset, e.index) for offset, e in enumerate(entries)
                             if e.index != first + offset)
        raise MalformedMessage(f"entry {offset} has index {wrong}, expected {first + offset}")
    return entries


def encode(message: raft.Message) -> bytes:
    """Any core message, InstallSnapshot included, as the bytes of a `RaftMessage`."""
    return to_proto(message).SerializeToString()


def decode(payload: bytes) -> raft.Message:
    """The core message `encode` made `payload` from; raises MalformedMessage for anything else."""
    return from_proto(parse(raft_pb2.RaftMessage, payload, "Raft"))


def to_proto(message: raft.Message) -> raft_pb2.RaftMessage:
    out = raft_pb2.RaftMessage(term=message.term, sender=message.sender,
                               recipient=message.recipient)
    match message:
        case raft.RequestVote():
            out.request_vote.CopyFrom(raft_pb2.RequestVote(
                last_log_index=message.last_log_index, last_log_term=message.last_log_term,
                pre_vote=message.pre_vote, transfer=message.transfer))
        case raft.RequestVoteReply():
            out.request_vote_reply.CopyFrom(raft_pb2.RequestVoteReply(
                granted=message.granted, pre_vote=message.pre_vote))
        case raft.AppendEntries():
            out.append_entries.CopyFrom(raft_pb2.AppendEntries(
                prev_log_index=message.prev_log_index, prev_log_term=message.prev_log_term,
                entries=[_entry_to_proto(e) for e in message.entries],
                leader_commit=message.leader_commit, read_round=message.read_round))
        case raft.AppendEntriesReply():
            out.append_entries_reply.CopyFrom(raft_pb2.AppendEntriesReply(
                success=message.success, match_index=message.match_index,
                rejected_index=message.rejected_index, conflict_term=message.conflict_term,
                conflict_index=message.conflict_index, read_round=message.read_round))
        case raft.Heartbeat():
            out.heartbeat.CopyFrom(raft_pb2.Heartbeat(
                commit=message.commit, read_round=message.read_round))
        case raft.HeartbeatReply():
            out.heartbeat_reply.CopyFrom(raft_pb2.HeartbeatReply(
                read_round=message.read_round, last_log_index=message.last_log_index))
        case raft.InstallSnapshotReply():
            out.install_snapshot_reply.CopyFrom(
                raft_pb2.InstallSnapshotReply(match_index=message.match_index))
        case raft.TimeoutNow():
            out.timeout_now.SetInParent()
        case raft.InstallSnapshot():
            # Assigned in place: a snapshot's data can be large, and CopyFrom would copy it again.
            out.install_snapshot.meta.CopyFrom(meta_to_proto(message.meta))
            out.install_snapshot.data = message.data
    return out


def from_proto(proto: raft_pb2.RaftMessage) -> raft.Message:
    term, sender, recipient = proto.term, _node(proto.sender), _node(proto.recipient)
    body = proto.WhichOneof("body")
    match body:
        case "request_vote":
            rv = proto.request_vote
            return raft.RequestVote(term, sender, recipient, rv.last_log_index, rv.last_log_term,
                                    pre_vote=rv.pre_vote, transfer=rv.transfer)
        case "request_vote_reply":
            rvr = proto.request_vote_reply
            return raft.RequestVoteReply(term, sender, recipient, rvr.granted,
                                         pre_vote=rvr.pre_vote)
        case "append_entries":
            ae = proto.append_entries
            entries = _entries_from_proto(ae.entries, ae.prev_log_index)
            return raft.AppendEntries(term, sender, recipient, ae.prev_log_index,
                                      ae.prev_log_term, entries, ae.leader_commit,
                                      read_round=ae.read_round)
        case "append_entries_reply":
            r = proto.append_entries_reply
            return raft.AppendEntriesReply(
                term, sender, recipient, r.success, match_index=r.match_index,
                rejected_index=r.rejected_index, conflict_term=r.conflict_term,
                conflict_index=r.conflict_index, read_round=r.read_round)
        case "heartbeat":
            return raft.Heartbeat(term, sender, recipient, proto.heartbeat.commit,
                                  read_round=proto.heartbeat.read_round)
        case "heartbeat_reply":
            hr = proto.heartbeat_reply
            return raft.HeartbeatReply(term, sender, recipient, read_round=hr.read_round,
                                       last_log_index=hr.last_log_index)
        case "install_snapshot_reply":
            return raft.InstallSnapshotReply(term, sender, recipient,
                                             proto.install_snapshot_reply.match_index)
        case "timeout_now":
            return raft.TimeoutNow(term, sender, recipient)
        case "install_snapshot":
            snapshot = proto.install_snapshot
            if not snapshot.HasField("meta"):
                raise MalformedMessage("a snapshot without its metadata")
            return raft.InstallSnapshot(term, sender, recipient, meta_from_proto(snapshot.meta),
                                        snapshot.data)
    raise MalformedMessage("message has no body")
