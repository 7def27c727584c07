"""Three Raft drivers in one process, talking real gRPC over loopback, with real files."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from distlab.core.ids import NodeId
from distlab.core.replicated_log import NotLeader, OutcomeUnknown
from distlab.ops.local_cluster import free_loopback_ports
from distlab.proto import peer_pb2_grpc
from distlab.protocols import raft
from distlab.runtime.config import Address, NodeConfig
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.host.driver import Driver
from distlab.runtime.host.host import Host
from distlab.runtime.node import build_host
from distlab.runtime.peer import PeerRouter, PeerServicer, PeerTransport
from distlab.storage import NodeStorage, open_node_storage

TICK_MS = 20
SNAPSHOT_ENTRIES = 50


@dataclass
class Journal:
    """A state machine that records every command; its result is the command's position."""

    commands: list[bytes] = field(default_factory=list)

    def apply(self, index: int, command: bytes) -> bytes:
        self.commands.append(command)
        return str(len(self.commands)).encode()

    def snapshot(self) -> bytes:
        return b"\n".join(self.commands)

    def restore(self, data: bytes) -> None:
        self.commands = data.split(b"\n") if data else []


@dataclass
class Member:
    node_id: NodeId
    address: Address
    data_dir: Path
    server: grpc.aio.Server | None = None
    host: Host | None = None
    peer: PeerTransport | None = None
    stores: NodeStorage | None = None
    machine: Journal | None = None

    @property
    def driver(self) -> Driver[raft.Raft] | None:
        return self.host.groups[0].driver if self.host else None  # type: ignore[attr-defined]


class Cluster:
    def __init__(self, tmp_path: Path, size: int) -> None:
        ports = free_loopback_ports(size)
        self.members = {
            NodeId(i + 1): Member(NodeId(i + 1), Address("127.0.0.1", port), tmp_path / f"n{i+1}")
            for i, port in enumerate(ports)
        }

    def config(self, member: Member) -> NodeConfig:
        return NodeConfig(
            node_id=member.node_id, cluster={n: m.address for n, m in self.members.items()},
            listen=member.address, metrics=Address("127.0.0.1", 1), data_dir=member.data_dir,
            otlp_endpoint=None, raft_tick_ms=TICK_MS, snapshot_entries=SNAPSHOT_ENTRIES)

    async def start(self, node_id: NodeId) -> None:
        member = self.members[node_id]
        config = self.config(member)
        member.machine = Journal()
        member.stores = open_node_storage(member.data_dir, groups=1)
        member.peer = PeerTransport(node_id, 1, PeerChannels(config.peers))
        router = PeerRouter()
        member.host = build_host(config, member.stores, member.peer, router, [member.machine],
                                 on_failure=lambda error: None)
        member.server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        peer = member.peer
        peer_pb2_grpc.add_PeerServicer_to_server(
            PeerServicer(node_id, 1, router, lambda: peer.isolated_from), member.server)
        member.server.add_insecure_port(str(member.address))
        await member.server.start()
        member.host.start()

    async def crash(self, node_id: NodeId) -> None:
        member = self.members[node_id]
        assert member.server and member.host and member.peer and member.stores
        await member.server.stop(None)
        await member.host.stop()
        await member.peer.close()
        member.stores.close()
        member.server = member.host = member.peer = member.stores = None

    async def leader(self, timeout: float = 10.0) -> Driver[raft.Raft]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for member in self.members.values():
                if member.driver and member.driver.status().role == "leader":
                    return member.driver
            await asyncio.sleep(0.02)  # polling interval
        pytest.fail("no leader elected")

    async def write(self, command: bytes, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            leader = await self.leader(timeout)
            try:
                return await leader.propose(command)
            except (NotLeader, OutcomeUnknown):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)  # back off before asking the new leader

    async def stop_all(self) -> None:
        for node_id, member in self.members.items():
            if member.host is not None:
                await self.crash(node_id)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(tmp_path, 3)
    for node_id in cluster.members:
        await cluster.start(node_id)
    yield cluster
    await cluster.stop_all()


async def wait_applied(cluster: Cluster, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(m.machine and len(m.machine.commands) >= count
               for m in cluster.members.values() if m.driver):
            return
        await asyncio.sleep(0.02)  # polling interval
    pytest.fail(f"not every running member applied {count} commands")


async def test_writes_replicate_to_every_member(cluster: Cluster) -> None:
    results = await asyncio.gather(*(cluster.write(f"c{i}".encode()) for i in range(20)))
    assert sorted(int(r) for r in results) == list(range(1, 21))
    await wait_applied(cluster, 20)
    journals = [m.machine.commands for m in cluster.members.values() if m.machine]
    assert journals[0] == journals[1] == journals[2]
    assert sorted(journals[0]) == sorted(f"c{i}".encode() for i in range(20))
    leader = await cluster.leader()
    await leader.read_barrier()


async def test_follower_refuses_with_the_leaders_address(cluster: Cluster) -> None:
    leader = await cluster.leader()
    await cluster.write(b"x")
    follower = next(m.driver for m in cluster.members.values()
                    if m.driver is not None and m.driver is not leader)
    assert follower is not None
    with pytest.raises(NotLeader) as caught:
        await follower.propose(b"y")
    assert caught.value.leader_id == leader.node_id
    assert caught.value.leader_address == str(cluster.members[leader.node_id].address)


async def test_leader_crash_and_restart_keeps_every_acknowledged_write(cluster: Cluster) -> None:
    acknowledged = [await cluster.write(f"before-{i}".encode()) for i in range(60)]
    assert len(acknowledged) == 60
    old = await cluster.leader()
    await cluster.crash(old.node_id)
    for i in range(30):
        await cluster.write(f"after-{i}".encode())
    await cluster.start(old.node_id)  # restarts from its files: snapshot + log
    await wait_applied(cluster, 90)
    expected = {f"before-{i}".encode() for i in range(60)} | {
        f"after-{i}".encode() for i in range(30)}
    for member in cluster.members.values():
        assert member.machine is not None
        assert set(member.machine.commands) == expected
        assert len(member.machine.commands) == 90
