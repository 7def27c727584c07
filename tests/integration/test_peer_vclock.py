"""Vector clocks on the peer transport: envelopes and bulk transfers carry the sender's clock,
each node logs its sends and receives in ShiViz's format, a restarted node's log carries on
counting where the last one stopped, and the send and receive spans carry the clocks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from distlab.core.ids import NodeId
from distlab.core.vclock_log import parse_log, problems_of
from distlab.ops.local_cluster import free_loopback_ports
from distlab.proto import peer_pb2_grpc
from distlab.runtime.config import Address
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.peer import (
    PeerClock,
    PeerRouter,
    PeerServicer,
    PeerTransport,
    ShivizLog,
    _sender,
    _servicer,
)
from tests.support import eventually

SERVICE = "test"


class ClockedNode:
    def __init__(self, node_id: NodeId, address: Address, peers: dict[NodeId, Address],
                 log: Path) -> None:
        self.node_id = node_id
        self.address = address
        self.clock = PeerClock(node_id, ShivizLog(log))
        self.clock.describe_with(SERVICE, lambda payload: f"message {payload.decode()}")
        self.channels = PeerChannels(peers)
        self.transport = PeerTransport(node_id, 1, self.channels, clock=self.clock)
        self.router = PeerRouter()
        self.arrivals: list[bytes] = []
        self.router.register(SERVICE, 0, self._take, self._take)
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        peer_pb2_grpc.add_PeerServicer_to_server(
            PeerServicer(node_id, 1, self.router, clock=self.clock), self.server)
        self.server.add_insecure_port(str(address))

    def _take(self, sender: NodeId, payload: bytes) -> bool:
        self.arrivals.append(payload)
        return True

    async def close(self) -> None:
        await self.transport.close()
        await self.server.stop(None)
        await self.channels.close()
        self.clock.close()


def make_pair(tmp_path: Path, log: Path | None = None) -> tuple[ClockedNode, ClockedNode]:
    ports = free_loopback_ports(2)
    one, two = NodeId(1), NodeId(2)
    addresses = {one: Address("127.0.0.1", ports[0]), two: Address("127.0.0.1", ports[1])}
    return (ClockedNode(one, addresses[one], {two: addresses[two]}, log or tmp_path / "1.log"),
            ClockedNode(two, addresses[two], {one: addresses[one]}, log or tmp_path / "2.log"))


async def exchange(first: ClockedNode, second: ClockedNode, rounds: int) -> None:
    """Ping-pong: each side answers what it received, so every receive is causally ordered."""
    for round_ in range(rounds):
        first.transport.send(second.node_id, SERVICE, 0, f"ping {round_}".encode())
        await eventually(lambda n=round_: len(second.arrivals) > n, 10, "the ping")
        second.transport.send(first.node_id, SERVICE, 0, f"pong {round_}".encode())
        await eventually(lambda n=round_: len(first.arrivals) > n, 10, "the pong")


async def test_receives_come_after_their_sends_and_pings_order_the_nodes(tmp_path: Path
                                                                         ) -> None:
    first, second = make_pair(tmp_path)
    await first.server.start()
    await second.server.start()
    try:
        await exchange(first, second, 5)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        first.transport.send_bulk(second.node_id, SERVICE, 0, b"snapshot", done.set_result)
        assert await asyncio.wait_for(done, 10)
    finally:
        await first.close()
        await second.close()
    events = parse_log((tmp_path / "1.log").read_text() + (tmp_path / "2.log").read_text())
    assert problems_of(events) == []
    receives = [event for event in events if event.kind == "receive"]
    assert len(receives) == 11 and all(event.sent_as is not None for event in receives)
    assert [event.description for event in events if event.host == "node-2"][:2] == [
        "receive test g0 from node-1 #1: message ping 0",
        "send test g0 to node-1: message pong 0"]
    # Node 1's eleventh event (five pings, five pongs received, then the bulk send): its
    # receipt knows of everything node 1 did.
    assert receives[-1].sent_as == 11 and receives[-1].clock.get("node-1") == 11


async def test_a_node_sharing_a_log_resumes_its_count_after_a_restart(tmp_path: Path) -> None:
    shared = tmp_path / "cluster.log"
    for _ in range(2):
        first, second = make_pair(tmp_path, shared)
        await first.server.start()
        await second.server.start()
        try:
            await exchange(first, second, 2)
        finally:
            await first.close()
            await second.close()
    events = parse_log(shared.read_text())
    assert problems_of(events) == []
    assert max(event.number for event in events if event.host == "node-1") == 8


async def test_send_and_receive_spans_carry_the_clocks(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(__name__)
    monkeypatch.setattr(_sender, "tracer", tracer)
    monkeypatch.setattr(_servicer, "tracer", tracer)
    first, second = make_pair(tmp_path)
    await second.server.start()
    try:
        with tracer.start_as_current_span("operation") as operation:
            traced = trace.set_span_in_context(operation)
        first.transport.send(second.node_id, SERVICE, 0, b"traced", traced)
        await eventually(lambda: len(second.arrivals) == 1, 10, "the message")

        def named(name: str) -> list[Any]:
            return [span for span in exporter.get_finished_spans() if span.name == name]

        await eventually(lambda: bool(named(f"{SERVICE}.send")), 5, "the send span")
    finally:
        await first.close()
        await second.close()
    (send,), (receive,) = named(f"{SERVICE}.send"), named(f"{SERVICE}.receive")
    assert json.loads(send.attributes["distlab.vclock"]) == {"node-1": 1}
    assert json.loads(receive.attributes["distlab.vclock"]) == {"node-1": 1, "node-2": 1}
