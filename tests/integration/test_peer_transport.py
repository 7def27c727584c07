"""The peer transport alone: nodes' transports, routers and servicers over loopback gRPC."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from distlab.core.ids import NodeId
from distlab.ops.local_cluster import free_loopback_ports
from distlab.proto import peer_pb2, peer_pb2_grpc
from distlab.runtime.config import Address
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.peer import (
    PeerRouter,
    PeerServicer,
    PeerTransport,
    _handshake,
    _metrics,
    _sender,
    _servicer,
)
from tests.support import eventually

SERVICE = "test"


def sent(outcome: str, service: str = SERVICE) -> float:
    return _metrics.MESSAGES_SENT.labels(service, outcome)._value.get()


def rejected(reason: str, service: str = SERVICE) -> float:
    return _metrics.MESSAGES_REJECTED.labels(service, reason)._value.get()


def refused(reason: str) -> float:
    return _metrics.STREAMS_REFUSED.labels(reason)._value.get()


class Node:
    """One node's peer transport, router and Peer service on a fixed loopback port, with an
    instance per registered group that records what it is given; restartable."""

    def __init__(self, node_id: NodeId, address: Address, groups: int,
                 peers: dict[NodeId, Address], engine: str = "raft") -> None:
        self.node_id = node_id
        self.address = address
        self.groups = groups
        self.engine = engine
        self.channels = PeerChannels(peers)
        self.transport = PeerTransport(node_id, groups, self.channels, engine=engine)
        self.router = PeerRouter()
        # (sender, group, payload) in arrival order, whatever the group.
        self.arrivals: list[tuple[NodeId, int, bytes]] = []
        self.bulk_arrivals: list[tuple[NodeId, int, bytes]] = []
        self.accepting = True
        self.servicer = self.make_servicer()
        self.server: grpc.aio.Server | None = None

    def make_servicer(self, node_id: NodeId | None = None) -> PeerServicer:
        return PeerServicer(node_id or self.node_id, self.groups, self.router,
                            lambda: self.transport.isolated_from, engine=self.engine)

    def register(self, groups: Iterable[int]) -> None:
        for group in groups:
            self.router.register(SERVICE, group, self._deliverer(group, self.arrivals),
                                 self._deliverer(group, self.bulk_arrivals))

    def _deliverer(self, group: int, into: list[tuple[NodeId, int, bytes]]
                   ) -> Callable[[NodeId, bytes], bool]:
        def deliver(sender: NodeId, payload: bytes) -> bool:
            if self.accepting:
                into.append((sender, group, payload))
            return self.accepting
        return deliver

    def payloads_from(self, sender: NodeId, group: int | None = None) -> list[bytes]:
        return [payload for who, in_group, payload in self.arrivals
                if who == sender and group in (None, in_group)]

    async def start(self, servicer: peer_pb2_grpc.PeerServicer | None = None) -> None:
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        peer_pb2_grpc.add_PeerServicer_to_server(servicer or self.servicer, self.server)
        self.server.add_insecure_port(str(self.address))
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
            self.server = None

    async def close(self) -> None:
        await self.transport.close()
        await self.stop()
        await self.channels.close()


MakeNodes = Callable[..., list[Node]]


@pytest.fixture
async def make_nodes() -> AsyncIterator[MakeNodes]:
    made: list[Node] = []

    def make(count: int, groups: Sequence[int] | None = None,
             engines: Sequence[str] | None = None) -> list[Node]:
        addresses = {NodeId(i + 1): Address("127.0.0.1", port)
                     for i, port in enumerate(free_loopback_ports(count))}
        nodes = [Node(node_id, address, groups[i] if groups else 3,
                      {n: a for n, a in addresses.items() if n != node_id},
                      engines[i] if engines else "raft")
                 for i, (node_id, address) in enumerate(addresses.items())]
        made.extend(nodes)
        return nodes

    yield make
    for node in made:
        await node.close()


@pytest.fixture
async def pair(make_nodes: MakeNodes) -> tuple[Node, Node]:
    """Node 1, which sends, and node 2, serving three groups."""
    sender, peer = make_nodes(2)
    peer.register(range(3))
    return sender, peer


def on_done_future() -> tuple[asyncio.Future[bool], Callable[[bool], None]]:
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    return future, future.set_result


# ---- the stream


async def test_envelopes_of_every_group_arrive_in_sending_order(pair: tuple[Node, Node]) -> None:
    sender, peer = pair
    await peer.start()
    expected: list[tuple[NodeId, int, bytes]] = []
    for burst in range(20):
        for n in range(50):  # bursts well under the queue's limit
            group = (burst + n) % 3
            payload = f"{len(expected)}".encode()
            expected.append((sender.node_id, group, payload))
            sender.transport.send(peer.node_id, SERVICE, group, payload)
        await asyncio.sleep(0.005)  # let the burst drain before the next
    await eventually(lambda: len(peer.arrivals) >= len(expected), 10, "every envelope")
    assert peer.arrivals == expected


async def test_three_nodes_with_three_groups_share_one_stream_per_ordered_pair(
    make_nodes: MakeNodes
) -> None:
    nodes = make_nodes(3)
    outbound_before = _metrics.OUTBOUND._value.get()
    for node in nodes:
        node.register(range(3))
        await node.start()
    for round_ in range(30):
        for node in nodes:
            for other in nodes:
                if other is not node:
                    for group in range(3):
                        node.transport.send(other.node_id, SERVICE, group,
                                            f"{node.node_id}:{group}:{round_}".encode())
        await asyncio.sleep(0.001)  # interleave the nodes' writes
    await eventually(lambda: all(len(node.arrivals) == 2 * 3 * 30 for node in nodes), 10,
                     "every envelope in every group")
    for node in nodes:
        others = {other.node_id for other in nodes if other is not node}
        assert node.transport.streams_open == others
        assert node.servicer.streams_open == {other: 1 for other in others}
        for other in others:
            for group in range(3):
                assert node.payloads_from(other, group) == [
                    f"{other}:{group}:{round_}".encode() for round_ in range(30)]
    assert _metrics.OUTBOUND._value.get() - outbound_before == 6


async def test_a_full_queue_drops_the_newest_envelopes_and_counts_them(
    pair: tuple[Node, Node]
) -> None:
    sender, peer = pair
    await peer.start()
    before = sent("dropped")
    # Nothing is written until this coroutine yields, so the queue fills up.
    for n in range(_sender.SEND_QUEUE_LIMIT + 10):
        sender.transport.send(peer.node_id, SERVICE, 0, f"{n}".encode())
    assert sent("dropped") - before == 10
    await eventually(lambda: len(peer.arrivals) == _sender.SEND_QUEUE_LIMIT, 10,
                     "the queued envelopes")
    assert peer.payloads_from(sender.node_id) == [
        f"{n}".encode() for n in range(_sender.SEND_QUEUE_LIMIT)]


class BatchCountingServicer(PeerServicer):
    def __init__(self, node: Node) -> None:
        super().__init__(node.node_id, node.groups, node.router)
        self.batch_sizes: list[int] = []

    def _receive(self, sender: NodeId, batch: peer_pb2.EnvelopeBatch) -> None:
        self.batch_sizes.append(len(batch.envelopes))
        super()._receive(sender, batch)


async def test_what_queued_during_a_write_goes_in_the_next_batch(
    pair: tuple[Node, Node]
) -> None:
    sender, peer = pair
    servicer = BatchCountingServicer(peer)
    await peer.start(servicer)
    count = 3 * _sender.MAX_BATCH_ENVELOPES + 10
    # All queued before the sender's task first runs (it opens the stream, then writes).
    for n in range(count):
        sender.transport.send(peer.node_id, SERVICE, n % 3, f"{n}".encode())
    await eventually(lambda: len(peer.arrivals) == count, 10, "every envelope")
    assert servicer.batch_sizes == [_sender.MAX_BATCH_ENVELOPES] * 3 + [10]


async def test_a_payload_too_large_for_the_stream_is_dropped_and_the_stream_goes_on(
    pair: tuple[Node, Node]
) -> None:
    sender, peer = pair
    await peer.start()
    before = sent("oversized")
    sender.transport.send(peer.node_id, SERVICE, 0, bytes(_sender.MAX_ENVELOPE_BYTES + 1))
    sender.transport.send(peer.node_id, SERVICE, 0, b"small")
    await eventually(lambda: bool(peer.arrivals), 5, "the small envelope")
    assert peer.arrivals == [(sender.node_id, 0, b"small")]
    assert sent("oversized") - before == 1


async def test_nothing_is_sent_once_the_transport_is_closed(pair: tuple[Node, Node]) -> None:
    sender, peer = pair
    await peer.start()
    sender.transport.send(peer.node_id, SERVICE, 0, b"before")
    await eventually(lambda: bool(peer.arrivals), 5, "the first envelope")
    await sender.transport.close()
    before = sent("closed")
    sender.transport.send(peer.node_id, SERVICE, 0, b"after")
    done, on_done = on_done_future()
    sender.transport.send_bulk(peer.node_id, SERVICE, 0, b"after", on_done)
    assert await asyncio.wait_for(done, 5) is False
    assert sent("closed") - before == 1
    assert sender.transport.streams_open == frozenset()
    await eventually(lambda: not peer.servicer.streams_open, 5, "the stream's end")
    assert peer.payloads_from(sender.node_id) == [b"before"] and peer.bulk_arrivals == []


async def test_a_restarted_peer_is_reached_again(pair: tuple[Node, Node]) -> None:
    sender, peer = pair
    await peer.start()
    sender.transport.send(peer.node_id, SERVICE, 0, b"first")
    await eventually(lambda: bool(peer.arrivals), 5, "the first envelope")
    await peer.stop()
    peer.arrivals.clear()
    await peer.start()
    # Envelopes written to the broken stream are lost (the protocols resend); the sender
    # reopens the stream within its backoff and later envelopes arrive.
    count = 0
    deadline = time.monotonic() + 10
    while not peer.arrivals:
        assert time.monotonic() < deadline, "the restarted peer never heard from the sender"
        count += 1
        sender.transport.send(peer.node_id, SERVICE, 1, f"{count}".encode())
        await asyncio.sleep(0.05)  # a heartbeat interval
    assert all(group == 1 for _, group, _ in peer.arrivals)


async def test_shutdown_ends_the_peers_streams_instead_of_waiting_out_the_grace(
        pair: tuple[Node, Node]) -> None:
    sender, peer = pair
    await peer.start()
    sender.transport.send(peer.node_id, SERVICE, 0, b"hello")
    await eventually(lambda: bool(peer.servicer.streams_open), 5, "the stream")
    assert peer.server is not None
    # A grace no test would sit through: the stop ends only because the stream does.
    stopping = asyncio.ensure_future(peer.server.stop(3600))
    await asyncio.sleep(0)
    await peer.servicer.end_streams()
    await asyncio.wait_for(stopping, 30)
    peer.server = None
    assert peer.servicer.streams_open == {}
    # The sender learns of the end at its next write, and finds no one to reconnect to.
    deadline = time.monotonic() + 10
    while sender.transport.streams_open:
        assert time.monotonic() < deadline, "the sender never saw its stream end"
        sender.transport.send(peer.node_id, SERVICE, 0, b"anyone there?")
        await asyncio.sleep(0.05)  # a heartbeat interval


async def test_the_unreachable_listener_hears_of_a_stopped_peer(pair: tuple[Node, Node]) -> None:
    sender, peer = pair
    unreachable: list[NodeId] = []
    sender.transport.add_unreachable_listener(unreachable.append)
    await peer.start()
    sender.transport.send(peer.node_id, SERVICE, 0, b"hello")
    await eventually(lambda: bool(peer.arrivals), 5, "the first envelope")
    assert unreachable == []
    await peer.stop()
    deadline = time.monotonic() + 10
    while not unreachable:
        assert time.monotonic() < deadline, "the stopped peer was never reported"
        sender.transport.send(peer.node_id, SERVICE, 0, b"anyone there?")
        await asyncio.sleep(0.05)  # a heartbeat interval
    assert set(unreachable) == {peer.node_id}
    assert sender.transport.streams_open == frozenset()


async def test_the_unreachable_listener_hears_of_a_peer_that_never_started(
    pair: tuple[Node, Node]
) -> None:
    sender, peer = pair
    unreachable: list[NodeId] = []
    sender.transport.add_unreachable_listener(unreachable.append)
    sender.transport.send(peer.node_id, SERVICE, 0, b"hello")
    await eventually(lambda: bool(unreachable), 5, "the report")
    assert unreachable[0] == peer.node_id


async def test_a_stream_to_the_wrong_node_is_refused_with_a_warning_on_both_sides(
    pair: tuple[Node, Node], caplog: pytest.LogCaptureFixture
) -> None:
    sender, peer = pair
    # The node at this address is node 3, but the sender believes it is node 2.
    await peer.start(peer.make_servicer(NodeId(3)))
    before = refused("wrong_recipient")
    with caplog.at_level(logging.WARNING):
        sender.transport.send(peer.node_id, SERVICE, 0, b"hello")
        await eventually(lambda: "refused this node's peer stream" in caplog.text, 5,
                         "the sender's warning")
    assert refused("wrong_recipient") > before
    warnings = [r.getMessage() for r in caplog.records if "this is node 3, not 2" in r.getMessage()]
    assert {r.name for r in caplog.records if "this is node 3, not 2" in r.getMessage()} == {
        _sender.__name__, _servicer.__name__}, warnings
    assert peer.arrivals == []
    assert sender.transport.streams_open == frozenset()


async def test_a_peer_running_another_groups_value_is_refused_naming_both_values(
    make_nodes: MakeNodes, caplog: pytest.LogCaptureFixture
) -> None:
    sender, peer = make_nodes(2, groups=[3, 1])
    peer.register([0])
    unreachable: list[NodeId] = []
    sender.transport.add_unreachable_listener(unreachable.append)
    await peer.start()
    before = refused("groups_mismatch")
    with caplog.at_level(logging.WARNING):
        sender.transport.send(peer.node_id, SERVICE, 0, b"hello")
        await eventually(lambda: "refused this node's peer stream" in caplog.text, 5,
                         "the sender's warning")
    assert refused("groups_mismatch") > before
    lines = {record.name: record.getMessage() for record in caplog.records
             if "GROUPS" in record.getMessage()}
    assert set(lines) == {_sender.__name__, _servicer.__name__}, lines
    for line in lines.values():
        assert "node 1 runs GROUPS=3" in line and "node 2 runs GROUPS=1" in line, line
    assert peer.arrivals == []
    assert sender.transport.streams_open == frozenset()
    assert unreachable and set(unreachable) == {peer.node_id}


async def test_a_peer_running_another_engine_is_refused_naming_both(
    make_nodes: MakeNodes, caplog: pytest.LogCaptureFixture
) -> None:
    sender, peer = make_nodes(2, engines=["paxos", "raft"])
    peer.register([0])
    await peer.start()
    before = refused("engine_mismatch")
    with caplog.at_level(logging.WARNING):
        sender.transport.send(peer.node_id, SERVICE, 0, b"hello")
        await eventually(lambda: "refused this node's peer stream" in caplog.text, 5,
                         "the sender's warning")
    assert refused("engine_mismatch") > before
    lines = {record.name: record.getMessage() for record in caplog.records
             if "ENGINE" in record.getMessage()}
    assert set(lines) == {_sender.__name__, _servicer.__name__}, lines
    for line in lines.values():
        assert "node 1 runs ENGINE=paxos" in line and "node 2 runs ENGINE=raft" in line, line
    assert peer.arrivals == []


async def test_a_call_without_a_handshake_is_refused(pair: tuple[Node, Node]) -> None:
    _, peer = pair
    await peer.start()
    async with grpc.aio.insecure_channel(str(peer.address)) as channel:
        stream = peer_pb2_grpc.PeerStub(channel).Stream()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stream.write(peer_pb2.EnvelopeBatch())
            await stream.done_writing()
            await stream
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _handshake.SENDER_KEY in (raised.value.details() or "")


async def test_an_envelope_for_an_unknown_instance_is_counted_and_the_stream_goes_on(
    pair: tuple[Node, Node]
) -> None:
    sender, peer = pair
    await peer.start()
    before_group = rejected("unknown_instance")
    before_service = rejected("unknown_instance", "unknown")
    sender.transport.send(peer.node_id, SERVICE, 7, b"no such group")
    sender.transport.send(peer.node_id, "no-such-service", 0, b"no such service")
    sender.transport.send(peer.node_id, SERVICE, 2, b"known")
    await eventually(lambda: bool(peer.arrivals), 5, "the envelope for a known group")
    assert peer.arrivals == [(sender.node_id, 2, b"known")]
    assert rejected("unknown_instance") - before_group == 1
    # A peer cannot mint label values: an unregistered service is counted as "unknown".
    assert rejected("unknown_instance", "unknown") - before_service == 1


async def test_isolation_drops_both_ways_until_healed(make_nodes: MakeNodes) -> None:
    cut_off, other = make_nodes(2)
    for node in (cut_off, other):
        node.register([0])
        await node.start()
    cut_off.transport.isolated_from = frozenset({other.node_id})
    held_back, dropped = sent("partitioned"), rejected("partitioned")
    cut_off.transport.send(other.node_id, SERVICE, 0, b"from the cut-off node")
    other.transport.send(cut_off.node_id, SERVICE, 0, b"to the cut-off node")
    await eventually(lambda: rejected("partitioned") > dropped, 5, "the inbound drop")
    assert sent("partitioned") - held_back == 1
    assert cut_off.arrivals == [] and other.arrivals == []

    cut_off.transport.isolated_from = frozenset()  # healed: the same streams carry envelopes
    cut_off.transport.send(other.node_id, SERVICE, 0, b"out")
    other.transport.send(cut_off.node_id, SERVICE, 0, b"in")
    await eventually(lambda: bool(cut_off.arrivals and other.arrivals), 5, "both directions")
    assert other.arrivals == [(cut_off.node_id, 0, b"out")]
    assert cut_off.arrivals == [(other.node_id, 0, b"in")]


async def test_the_senders_span_is_the_parent_of_the_receivers(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(__name__)
    monkeypatch.setattr(_sender, "tracer", tracer)
    monkeypatch.setattr(_servicer, "tracer", tracer)
    sender, peer = pair
    await peer.start()
    with tracer.start_as_current_span("operation") as operation:
        traced = trace.set_span_in_context(operation)
    sender.transport.send(peer.node_id, SERVICE, 0, b"untraced")
    sender.transport.send(peer.node_id, SERVICE, 1, b"traced", traced)
    sender.transport.send(peer.node_id, SERVICE, 2, b"untraced")
    await eventually(lambda: len(peer.arrivals) == 3, 5, "the batch")

    def spans(name: str) -> list[Any]:
        return [span for span in exporter.get_finished_spans() if span.name == name]

    await eventually(lambda: bool(spans(f"{SERVICE}.send")), 5, "the send span")
    (send,), (receive,) = spans(f"{SERVICE}.send"), spans(f"{SERVICE}.receive")
    assert send.kind is trace.SpanKind.PRODUCER and receive.kind is trace.SpanKind.CONSUMER
    assert send.parent.span_id == operation.get_span_context().span_id
    assert receive.parent.span_id == send.context.span_id
    assert receive.context.trace_id == operation.get_span_context().trace_id
    assert send.attributes["distlab.group"] == receive.attributes["distlab.group"] == 1
    assert send.attributes["distlab.peer"] == peer.node_id


# ---- the prober and watchdog


async def test_the_probe_records_the_round_trip(pair: tuple[Node, Node]) -> None:
    sender, peer = pair
    await peer.start()
    histogram = _metrics.ROUND_TRIP.labels(str(peer.node_id))

    def probes() -> float:
        return sum(sample.value for sample in histogram.collect()[0].samples
                   if sample.name.endswith("_count"))

    before = probes()
    sender.transport.send(peer.node_id, SERVICE, 0, b"hello")  # starts the peer's prober
    await eventually(lambda: probes() > before, _sender.PROBE_INTERVAL_SECONDS + 5, "a probe")


async def test_the_servicer_answers_probes(pair: tuple[Node, Node]) -> None:
    _, peer = pair
    await peer.start()
    async with grpc.aio.insecure_channel(str(peer.address)) as channel:
        probe: Callable[..., Awaitable[peer_pb2.PeerAck]] = peer_pb2_grpc.PeerStub(channel).Probe
        assert await probe(peer_pb2.PeerAck(), timeout=5) == peer_pb2.PeerAck()


class StalledServicer(PeerServicer):
    """Takes streams and transfers but never reads them, like a peer paused with SIGSTOP;
    `accept` says whether it answers a stream's handshake first."""

    def __init__(self, node: Node, accept: bool) -> None:
        super().__init__(node.node_id, node.groups, node.router)
        self.accept = accept
        self.streams = 0
        self.stalled = asyncio.Event()

    async def Stream(self, request_iterator: Any, context: Any) -> peer_pb2.PeerAck:
        self.streams += 1
        if self.accept:
            await context.send_initial_metadata(_handshake.acceptance(self._node_id, 3))
        await self.stalled.wait()
        return peer_pb2.PeerAck()

    async def Transfer(self, request_iterator: Any, context: Any) -> peer_pb2.PeerAck:
        await self.stalled.wait()
        return peer_pb2.PeerAck()


@pytest.mark.parametrize("accept", [True, False], ids=["stuck-write", "stuck-handshake"])
async def test_a_call_stuck_behind_a_peer_that_stopped_reading_is_abandoned(
    pair: tuple[Node, Node], accept: bool
) -> None:
    sender, peer = pair
    servicer = StalledServicer(peer, accept)
    await peer.start(servicer)
    index = 0
    deadline = time.monotonic() + _sender.WRITE_DEADLINE_SECONDS + 10
    # 200 kB payloads fill the stream's flow-control window within a few writes; the
    # watchdog then cancels the stuck call and a later batch opens a fresh stream.
    while servicer.streams < 2:
        assert time.monotonic() < deadline, "the stuck stream was never reopened"
        index += 1
        sender.transport.send(peer.node_id, SERVICE, 0, b"x" * 200_000)
        await asyncio.sleep(0.02)  # the pace of a busy leader's appends
    servicer.stalled.set()


# ---- bulk transfers


async def test_a_bulk_transfer_arrives_whole_and_reports_success(pair: tuple[Node, Node]) -> None:
    sender, peer = pair
    await peer.start()
    payload = os.urandom(3 * (1 << 20) + 17)  # several chunks, the last a partial one
    done, on_done = on_done_future()
    sender.transport.send_bulk(peer.node_id, SERVICE, 2, payload, on_done)
    assert await asyncio.wait_for(done, 10) is True
    assert peer.bulk_arrivals == [(sender.node_id, 2, payload)]
    assert peer.arrivals == []


async def test_a_second_transfer_to_the_same_instance_waits_for_none(
    pair: tuple[Node, Node]
) -> None:
    sender, peer = pair
    await peer.start()
    first, on_first = on_done_future()
    second, on_second = on_done_future()
    other_group, on_other_group = on_done_future()
    sender.transport.send_bulk(peer.node_id, SERVICE, 0, b"a" * (4 << 20), on_first)
    sender.transport.send_bulk(peer.node_id, SERVICE, 0, b"b", on_second)
    sender.transport.send_bulk(peer.node_id, SERVICE, 1, b"c", on_other_group)
    assert await asyncio.wait_for(second, 5) is False
    assert await asyncio.wait_for(first, 10) is True
    assert await asyncio.wait_for(other_group, 10) is True
    assert sorted(group for _, group, _ in peer.bulk_arrivals) == [0, 1]


async def test_failed_bulk_transfers_report_failure(pair: tuple[Node, Node]) -> None:
    sender, peer = pair

    async def outcome(group: int = 0) -> bool:
        done, on_done = on_done_future()
        sender.transport.send_bulk(peer.node_id, SERVICE, group, b"snapshot", on_done)
        return await asyncio.wait_for(done, 10)

    await peer.start()
    unknown, not_accepted = rejected("unknown_instance"), rejected("not_accepted")
    assert await outcome(group=7) is False
    assert rejected("unknown_instance") - unknown == 1  # no such instance there
    peer.accepting = False
    assert await outcome() is False
    assert rejected("not_accepted") - not_accepted == 1  # the instance would not take it
    peer.accepting = True
    sender.transport.isolated_from = frozenset({peer.node_id})
    assert await outcome() is False  # partitioned
    sender.transport.isolated_from = frozenset()
    assert await outcome() is True
    assert peer.bulk_arrivals == [(sender.node_id, 0, b"snapshot")]
    await peer.stop()
    assert await outcome() is False  # the peer is not serving
    assert len(peer.bulk_arrivals) == 1


async def test_a_bulk_transfer_that_outlives_its_deadline_fails(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, peer = pair
    monkeypatch.setattr(_sender, "BULK_DEADLINE_SECONDS", 0.5)
    servicer = StalledServicer(peer, accept=True)
    await peer.start(servicer)
    done, on_done = on_done_future()
    sender.transport.send_bulk(peer.node_id, SERVICE, 0, b"snapshot", on_done)
    assert await asyncio.wait_for(done, 10) is False
    servicer.stalled.set()
