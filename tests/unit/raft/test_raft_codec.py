"""Every Raft message survives encode/decode; what a peer could send that is not one is refused."""

from __future__ import annotations

import pytest

from distlab.core.ids import NodeId
from distlab.proto import raft_pb2
from distlab.protocols import raft
from distlab.runtime.grpc.raft_codec import MalformedMessage, decode, encode

A, B = NodeId(1), NodeId(2)
MEMBERSHIP = raft.Membership(frozenset({A, B}), frozenset({NodeId(3)}))
ENTRIES = (raft.Entry(2, 8, raft.EntryKind.NORMAL, b"put k v"),
           raft.Entry(3, 9, raft.EntryKind.CONFIG, MEMBERSHIP.encode()))

MESSAGES: list[raft.Message] = [
    raft.RequestVote(3, A, B, 9, 3, pre_vote=True, transfer=True),
    raft.RequestVoteReply(3, B, A, True, pre_vote=True),
    raft.AppendEntries(3, A, B, 7, 2, ENTRIES, 8, read_round=4),
    raft.AppendEntries(3, A, B, 9, 3, (), 9),
    raft.AppendEntriesReply(3, B, A, False, match_index=0, rejected_index=7, conflict_term=1,
                            conflict_index=5, read_round=4),
    raft.Heartbeat(3, A, B, 8, read_round=5),
    raft.HeartbeatReply(3, B, A, read_round=5, last_log_index=9),
    raft.InstallSnapshot(3, A, B, raft.SnapshotMeta(40, 2, MEMBERSHIP), b"state" * 1000),
    raft.InstallSnapshotReply(3, B, A, 40),
    raft.TimeoutNow(3, A, B),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_a_message_decodes_to_itself(message: raft.Message) -> None:
    assert decode(encode(message)) == message


@pytest.mark.parametrize("payload", [
    b"\xff\xff\xff",
    raft_pb2.RaftMessage(term=1, sender=1, recipient=2).SerializeToString(),
    raft_pb2.RaftMessage(term=1, sender=0, recipient=2,
                         heartbeat=raft_pb2.Heartbeat()).SerializeToString(),
    raft_pb2.RaftMessage(term=1, sender=1, recipient=2,
                         install_snapshot=raft_pb2.InstallSnapshot(data=b"x")).SerializeToString(),
    raft_pb2.RaftMessage(term=1, sender=1, recipient=2, append_entries=raft_pb2.AppendEntries(
        prev_log_index=4, entries=[raft_pb2.Entry(term=1, index=7)])).SerializeToString(),
], ids=["not-protobuf", "no-body", "node-zero", "snapshot-without-meta", "entry-out-of-place"])
def test_what_is_not_a_raft_message_is_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(payload)
