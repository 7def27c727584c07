"""Raft groups over the node's peer transport: a leader's messages reach the core of their
group on the follower, snapshots go as bulk transfers whose outcome the leader's core hears."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
import pytest

from distlab.core.ids import NodeId
from distlab.ops.local_cluster import free_loopback_ports
from distlab.proto import peer_pb2_grpc, raft_pb2
from distlab.protocols import raft
from distlab.runtime.config import Address
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.host.group_transport import GroupReceiver, GroupTransport
from distlab.runtime.peer import PeerRouter, PeerServicer, PeerTransport, _metrics
from distlab.runtime.raft.group_transport import RAFT_PEER_CODEC, RAFT_SERVICE
from tests.support import eventually

GROUPS = 3
LEADER = NodeId(1)
FOLLOWER = NodeId(2)


def malformed() -> float:
    return _metrics.MESSAGES_REJECTED.labels(RAFT_SERVICE, "malformed")._value.get()


@dataclass
class Follower:
    """Node 2's Peer service, with one inbox per group standing in for the group's driver."""

    router: PeerRouter
    inboxes: dict[int, list[raft.Message]] = field(default_factory=dict)
    accepting: bool = True

    def inbox(self, group: int) -> Callable[[raft.Message], bool]:
        messages = self.inboxes.setdefault(group, [])

        def deliver(message: raft.Message) -> bool:
            if self.accepting:
                messages.append(message)
            return self.accepting
        return deliver


@dataclass
class Pair:
    transport: PeerTransport  # the leader's
    groups: dict[int, GroupTransport]
    snapshot_reports: list[tuple[int, NodeId, bool]]
    follower: Follower


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    (port,) = free_loopback_ports(1)
    address = Address("127.0.0.1", port)
    follower = Follower(PeerRouter())
    for group in range(GROUPS):
        GroupReceiver(FOLLOWER, RAFT_PEER_CODEC, follower.inbox(group)).register(
            follower.router, group)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    peer_pb2_grpc.add_PeerServicer_to_server(
        PeerServicer(FOLLOWER, GROUPS, follower.router), server)
    server.add_insecure_port(str(address))
    await server.start()
    channels = PeerChannels({FOLLOWER: address})
    transport = PeerTransport(LEADER, GROUPS, channels)
    reports: list[tuple[int, NodeId, bool]] = []

    def reporter(group: int) -> Callable[[NodeId, bool], None]:
        return lambda node, accepted: reports.append((group, node, accepted))

    groups = {group: GroupTransport(transport, RAFT_PEER_CODEC, group, reporter(group))
              for group in range(GROUPS)}
    yield Pair(transport, groups, reports, follower)
    await transport.close()
    await server.stop(None)
    await channels.close()


def heartbeat(commit: int, sender: NodeId = LEADER, recipient: NodeId = FOLLOWER
              ) -> raft.Heartbeat:
    return raft.Heartbeat(term=1, sender=sender, recipient=recipient, commit=commit)


def snapshot(size: int) -> raft.InstallSnapshot:
    meta = raft.SnapshotMeta(last_index=40, last_term=2,
                             membership=raft.Membership(frozenset({LEADER, FOLLOWER})))
    return raft.InstallSnapshot(term=2, sender=LEADER, recipient=FOLLOWER, meta=meta,
                                data=bytes(range(256)) * (size // 256))


async def test_each_groups_messages_reach_that_groups_core_in_order(pair: Pair) -> None:
    for commit in range(1, 31):
        for group, transport in pair.groups.items():
            transport.send(heartbeat(commit * 10 + group))
    await eventually(lambda: sum(map(len, pair.follower.inboxes.values())) == 90, 10,
                     "every group's heartbeats")
    for group in range(GROUPS):
        assert pair.follower.inboxes[group] == [
            heartbeat(commit * 10 + group) for commit in range(1, 31)]
    assert pair.transport.streams_open == {FOLLOWER}


async def test_a_snapshot_goes_as_a_bulk_transfer_and_its_outcome_is_reported(
    pair: Pair
) -> None:
    message = snapshot(2_500_000)  # several chunks
    pair.groups[1].send(message)
    await eventually(lambda: bool(pair.snapshot_reports), 10, "the snapshot's report")
    assert pair.snapshot_reports == [(1, FOLLOWER, True)]
    assert pair.follower.inboxes[1] == [message]

    pair.follower.accepting = False  # the follower's inbox is full
    pair.groups[2].send(message)
    await eventually(lambda: len(pair.snapshot_reports) == 2, 10, "the refusal's report")
    assert pair.snapshot_reports[1] == (2, FOLLOWER, False)


async def test_malformed_and_misattributed_messages_are_counted_and_dropped(
    pair: Pair
) -> None:
    before = malformed()
    garbage = b"\xff\xff\xff"
    no_body = raft_pb2.RaftMessage(term=1, sender=LEADER, recipient=FOLLOWER).SerializeToString()
    pair.transport.send(FOLLOWER, RAFT_SERVICE, 0, garbage)
    pair.transport.send(FOLLOWER, RAFT_SERVICE, 0, no_body)
    # Node 1's stream carrying a message that claims to come from node 3.
    pair.groups[0].send(heartbeat(1, sender=NodeId(3)))
    pair.groups[0].send(heartbeat(2))
    await eventually(lambda: bool(pair.follower.inboxes[0]), 5, "the good heartbeat")
    assert pair.follower.inboxes[0] == [heartbeat(2)]
    assert malformed() - before == 3
