"""The KV store across real node processes: crashes, pauses, snapshots, membership. The
crash and pause tests run on each engine; snapshots, membership and the WAL's damage on Raft."""

from __future__ import annotations

import asyncio
import signal
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from distlab.client import KVClient
from distlab.core.ids import NodeId
from distlab.ops.local_cluster import LocalCluster
from distlab.ops.status import fetch_status, wait_caught_up, wait_for_leader
from distlab.proto import admin_pb2, admin_pb2_grpc
from tests.cluster.kv_writers import Writer, assert_all_readable

FAST_SNAPSHOTS = {"SNAPSHOT_ENTRIES": "1000"}
# For tests that hold on either engine: `cluster` is then started with each.
EVERY_ENGINE = pytest.mark.parametrize("cluster", ["raft", "paxos"], indirect=True)


@pytest.fixture
async def cluster(tmp_path: Path, request: pytest.FixtureRequest
                  ) -> AsyncIterator[LocalCluster]:
    engine = getattr(request, "param", "raft")
    cluster = LocalCluster.plan(3, tmp_path / "cluster", FAST_SNAPSHOTS, engine=engine)
    await cluster.start()
    try:
        yield cluster
    finally:
        for node in cluster.nodes.values():
            if node.process is not None and node.process.returncode is None:
                node.process.send_signal(signal.SIGCONT)
        await cluster.stop()


def client_for(cluster: LocalCluster) -> KVClient:
    return KVClient({n: str(node.address) for n, node in cluster.nodes.items()},
                    call_timeout=1.0, operation_timeout=20.0)


async def node_status(cluster: LocalCluster, node_id: NodeId) -> admin_pb2.NodeStatus | None:
    return await fetch_status(cluster.nodes[node_id].address, 0.5)


async def leader_of_group_0(cluster: LocalCluster, exclude: NodeId | None = None) -> NodeId:
    return (await wait_for_leader(cluster.addresses, 15.0, exclude=exclude))[0]


@EVERY_ENGINE
async def test_leader_killed_during_writes(cluster: LocalCluster) -> None:
    async with client_for(cluster) as client:
        writer = Writer(client, "kill")
        writer.start()
        await writer.wait_acks(50)
        leader = await leader_of_group_0(cluster)
        await cluster.stop_node(leader, signal.SIGKILL)
        await writer.wait_acks(50)  # writes resume under a new leader
        assert await leader_of_group_0(cluster, exclude=leader) != leader
        await writer.stop()
        await assert_all_readable(client, writer.acknowledged)

        await client.put("after-restart", "yes")
        await cluster.start_node(leader)
        await cluster.wait_serving(leader, 30)
        await wait_caught_up(cluster.addresses, leader, 60)


@EVERY_ENGINE
async def test_leader_paused_past_election_timeout(cluster: LocalCluster) -> None:
    async with client_for(cluster) as client:
        writer = Writer(client, "pause")
        writer.start()
        await writer.wait_acks(30)
        leader = await leader_of_group_0(cluster)
        before = await node_status(cluster, leader)
        assert before is not None
        process = cluster.nodes[leader].process
        assert process is not None
        process.send_signal(signal.SIGSTOP)
        try:
            new_leader = await leader_of_group_0(cluster, exclude=leader)
            await writer.wait_acks(30)
        finally:
            process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 15
        while True:
            after = await node_status(cluster, leader)
            if after is not None and after.role != "leader" and after.term > before.term:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"paused leader did not step down: {after}")
            await asyncio.sleep(0.05)  # polling interval
        assert after.leader_id == new_leader or after.leader_id != leader
        await writer.stop()
        await assert_all_readable(client, writer.acknowledged)


@EVERY_ENGINE
async def test_all_nodes_killed_at_once(cluster: LocalCluster) -> None:
    async with client_for(cluster) as client:
        writer = Writer(client, "all")
        writer.start()
        await writer.wait_acks(100)
        await asyncio.gather(*(cluster.stop_node(n, signal.SIGKILL) for n in cluster.nodes))
        await writer.stop()
        acknowledged = dict(writer.acknowledged)
        for node_id in cluster.nodes:
            await cluster.start_node(node_id)
        await asyncio.gather(*(cluster.wait_serving(n, 30) for n in cluster.nodes))
        await assert_all_readable(client, acknowledged)


@EVERY_ENGINE
async def test_lagging_follower_catches_up_by_snapshot(cluster: LocalCluster) -> None:
    leader = await leader_of_group_0(cluster)
    follower = next(n for n in cluster.nodes if n != leader)
    await cluster.stop_node(follower, signal.SIGKILL)
    async with client_for(cluster) as client:

        async def write_range(worker: int) -> None:
            for i in range(worker, 10_000, 32):
                await client.put(f"lag-{i}", f"v{i}")

        await asyncio.gather(*(write_range(w) for w in range(32)))
        await cluster.start_node(follower)
        await cluster.wait_serving(follower, 30)
        await wait_caught_up(cluster.addresses, follower, 60)
        group_zero = cluster.nodes[follower].data_dir / "group-0"
        snapshots = list((group_zero / "snapshots").glob("*.snap"))
        assert snapshots, "the follower caught up without receiving a snapshot"
        log_text = cluster.nodes[follower].log_path.read_text()
        assert "restored snapshot" in log_text
        for i in (0, 4_999, 9_999):
            assert await client.get(f"lag-{i}") == f"v{i}"


async def wait_membership(cluster: LocalCluster, leader: NodeId, voters: set[int],
                          timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = await node_status(cluster, leader)
        if status is not None and set(status.voters) == voters and not status.learners:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"membership never became voters={sorted(voters)}: {status}")
        await asyncio.sleep(0.1)  # polling interval


async def test_add_a_fourth_node_and_remove_an_old_one(cluster: LocalCluster) -> None:
    async with client_for(cluster) as client:
        writer = Writer(client, "member")
        writer.start()
        await writer.wait_acks(30)
        newcomer = cluster.plan_extra_node()
        await cluster.start_node(newcomer.node_id)
        await cluster.wait_serving(newcomer.node_id, 30)
        leader = await leader_of_group_0(cluster)
        async with grpc.aio.insecure_channel(str(cluster.nodes[leader].address)) as channel:
            admin = admin_pb2_grpc.AdminStub(channel)
            added = await admin.AddMember(admin_pb2.AddMemberRequest(
                node_id=newcomer.node_id, address=str(newcomer.address)), timeout=10)
            assert newcomer.node_id in [*added.voters, *added.learners]
            await wait_membership(cluster, leader, {1, 2, 3, 4})
            await writer.wait_acks(30)
            retiring = next(n for n in (1, 2, 3) if n != leader)
            removed = await admin.RemoveMember(
                admin_pb2.RemoveMemberRequest(node_id=retiring), timeout=10)
            assert retiring not in removed.voters
            await wait_membership(cluster, leader, {1, 2, 3, 4} - {retiring})
        await cluster.stop_node(NodeId(retiring))
        await writer.wait_acks(30)
        await writer.stop()
        await assert_all_readable(client, writer.acknowledged)
        newcomer_status = await node_status(cluster, newcomer.node_id)
        assert newcomer_status is not None
        assert newcomer_status.applied_index > 0


async def test_corrupt_wal_stops_the_node_and_a_torn_tail_is_recovered(
    cluster: LocalCluster,
) -> None:
    async with client_for(cluster) as client:
        for i in range(200):
            await client.put(f"wal-{i}", f"v{i}")
        leader = await leader_of_group_0(cluster)
        victim = next(n for n in cluster.nodes if n != leader)
        await wait_caught_up(cluster.addresses, victim, 60)
        await cluster.stop_node(victim)
        segment = max((cluster.nodes[victim].data_dir / "wal").glob("*.wal"))
        original = segment.read_bytes()

        flipped = bytearray(original)
        flipped[len(original) // 2] ^= 0xFF
        segment.write_bytes(bytes(flipped))
        await cluster.start_node(victim)
        process = cluster.nodes[victim].process
        assert process is not None
        assert await asyncio.wait_for(process.wait(), 30) == 2
        message = cluster.nodes[victim].log_path.read_text().strip().splitlines()[-1]
        assert str(segment) in message
        assert "offset" in message

        # A crash in the middle of writing one more record: its header promises a payload
        # that never reached the disk. Nothing acknowledged depends on an unsynced record.
        torn = struct.pack("<IIBQ", 100, 0, 1, 1 << 40) + b"partial"
        segment.write_bytes(original + torn)
        await cluster.start_node(victim)
        await cluster.wait_serving(victim, 30)
        await client.put("after-repair", "yes")
        await wait_caught_up(cluster.addresses, victim, 60)
        assert "truncat" in cluster.nodes[victim].log_path.read_text().lower()
        assert await client.get("wal-199") == "v199"
