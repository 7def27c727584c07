"""The Raft transport alone: one node's sender streaming to a peer's servicer over loopback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from distlab.core.ids import NodeId
from distlab.ops.local_cluster import free_loopback_ports
from distlab.proto import raft_pb2, raft_pb2_grpc
from distlab.protocols import raft
from distlab.runtime.config import Address
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.raft import transport as transport_module
from distlab.runtime.raft.transport import RaftServicer, RaftTransport

SENDER = NodeId(1)
PEER = NodeId(2)


def heartbeat(commit: int, recipient: NodeId = PEER) -> raft.Heartbeat:
    return raft.Heartbeat(term=1, sender=SENDER, recipient=recipient, commit=commit)


def big_append(index: int) -> raft.AppendEntries:
    entry = raft.Entry(1, index, raft.EntryKind.NORMAL, b"x" * 200_000)
    return raft.AppendEntries(term=1, sender=SENDER, recipient=PEER, prev_log_index=index - 1,
                              prev_log_term=1, entries=(entry,), leader_commit=0)


async def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)  # polling interval


class Peer:
    """A grpc.aio server on a fixed loopback port, serving `servicer`; restartable."""

    def __init__(self, address: Address) -> None:
        self.address = address
        self.server: grpc.aio.Server | None = None

    async def start(self, servicer: raft_pb2_grpc.RaftServicer) -> None:
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        raft_pb2_grpc.add_RaftServicer_to_server(servicer, self.server)
        self.server.add_insecure_port(str(self.address))
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
            self.server = None


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    (port,) = free_loopback_ports(1)
    peer = Peer(Address("127.0.0.1", port))
    yield peer
    await peer.stop()


@pytest.fixture
async def sender(peer: Peer) -> AsyncIterator[RaftTransport]:
    channels = PeerChannels({PEER: peer.address})
    transport = RaftTransport(channels)
    yield transport
    await transport.close()
    await channels.close()


def rejected(reason: str) -> float:
    return transport_module.MESSAGES_REJECTED.labels(reason)._value.get()


async def test_messages_arrive_in_sending_order(peer: Peer, sender: RaftTransport) -> None:
    received: list[raft.Message] = []
    await peer.start(RaftServicer(PEER, lambda m: received.append(m) is None))
    sent = 0
    for _ in range(20):
        for _ in range(50):  # bursts well under the queue's limit
            sent += 1
            sender.send(heartbeat(sent))
        await asyncio.sleep(0.005)  # let the burst drain before the next
    await eventually(lambda: len(received) >= sent, 10, "every message")
    assert [m.commit for m in received if isinstance(m, raft.Heartbeat)] == list(
        range(1, sent + 1))


async def test_a_restarted_peer_is_reached_again(peer: Peer, sender: RaftTransport) -> None:
    received: list[raft.Message] = []

    def deliver(message: raft.Message) -> bool:
        received.append(message)
        return True

    await peer.start(RaftServicer(PEER, deliver))
    sender.send(heartbeat(1))
    await eventually(lambda: bool(received), 5, "the first message")
    await peer.stop()
    received.clear()
    await peer.start(RaftServicer(PEER, deliver))
    # Messages written to the broken stream are lost (Raft resends); the sender reopens the
    # stream within its backoff and later messages arrive.
    commit = 1
    deadline = time.monotonic() + 10
    while not received:
        assert time.monotonic() < deadline, "the restarted peer never heard from the sender"
        commit += 1
        sender.send(heartbeat(commit))
        await asyncio.sleep(0.05)  # a heartbeat interval
    assert all(isinstance(m, raft.Heartbeat) and m.commit > 1 for m in received)


async def test_a_message_for_another_node_ends_the_stream_with_a_warning(
    peer: Peer, sender: RaftTransport, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[raft.Message] = []
    # The peer at this address is node 3, but the sender believes it is node 2.
    await peer.start(RaftServicer(NodeId(3), lambda m: received.append(m) is None))
    before = rejected("wrong_recipient")
    with caplog.at_level(logging.WARNING, logger=transport_module.__name__):
        sender.send(heartbeat(1))
        await eventually(lambda: rejected("wrong_recipient") > before, 5, "the rejection")
        sender.send(heartbeat(2))  # finds the stream ended by the peer
        await eventually(lambda: "refused this node's Raft stream" in caplog.text, 5,
                         "the sender's warning")
    assert "this is node 3, not 2" in caplog.text
    assert received == []


async def test_messages_from_a_partitioned_sender_are_dropped(
    peer: Peer, sender: RaftTransport
) -> None:
    received: list[raft.Message] = []
    cut_off: frozenset[NodeId] = frozenset({SENDER})
    await peer.start(RaftServicer(PEER, lambda m: received.append(m) is None, lambda: cut_off))
    before = rejected("partitioned")
    sender.send(heartbeat(1))
    await eventually(lambda: rejected("partitioned") > before, 5, "the drop")
    assert received == []
    cut_off = frozenset()  # healed: the same stream carries messages again
    sender.send(heartbeat(2))
    await eventually(lambda: bool(received), 5, "a message after the heal")


async def test_the_probe_records_the_round_trip(peer: Peer, sender: RaftTransport) -> None:
    await peer.start(RaftServicer(PEER, lambda m: True))
    histogram = transport_module.ROUND_TRIP.labels(str(PEER))

    def probes() -> float:
        return sum(sample.value for sample in histogram.collect()[0].samples
                   if sample.name.endswith("_count"))

    before = probes()
    sender.send(heartbeat(1))  # the first message starts the peer's sender and prober
    await eventually(lambda: probes() > before, transport_module.PROBE_INTERVAL_SECONDS + 5,
                     "a probe")


class StalledServicer(RaftServicer):
    """Accepts streams but never reads them, like a peer paused with SIGSTOP."""

    def __init__(self) -> None:
        super().__init__(PEER, lambda m: True)
        self.streams = 0
        self.stalled = asyncio.Event()

    async def Stream(self, request_iterator: AsyncIterator[raft_pb2.RaftBatch],
                     context: Any) -> raft_pb2.Delivered:
        self.streams += 1
        await self.stalled.wait()
        return raft_pb2.Delivered()


async def test_a_write_stuck_behind_a_peer_that_stopped_reading_is_abandoned(
    peer: Peer, sender: RaftTransport
) -> None:
    servicer = StalledServicer()
    await peer.start(servicer)
    index = 0

    async def keep_sending(until: Callable[[], bool]) -> None:
        nonlocal index
        deadline = time.monotonic() + transport_module.WRITE_DEADLINE_SECONDS + 10
        while not until():
            assert time.monotonic() < deadline, "the stuck stream was never reopened"
            index += 1
            sender.send(big_append(index))
            await asyncio.sleep(0.02)  # the pace of a busy leader's appends

    # 200 kB appends fill the stream's flow-control window within a few writes; the
    # watchdog then cancels the stuck write and the next message opens a fresh stream.
    await keep_sending(lambda: servicer.streams >= 2)
    servicer.stalled.set()


async def test_the_servicer_answers_probes(peer: Peer) -> None:
    await peer.start(RaftServicer(PEER, lambda m: True))
    async with grpc.aio.insecure_channel(str(peer.address)) as channel:
        probe: Callable[..., Awaitable[raft_pb2.Delivered]] = raft_pb2_grpc.RaftStub(
            channel).Probe
        assert await probe(raft_pb2.Delivered(), timeout=5) == raft_pb2.Delivered()
