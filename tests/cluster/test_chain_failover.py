"""Chain replication across real node processes: the head, a middle replica and the tail
killed in turn while a client writes; the chain mends each time, every acknowledged write
reads back, and a restarted node rejoins as the new tail. A replica paused past its lease is
removed, the messages it sends when it wakes are refused for their old epoch, and it rejoins
as the tail. A write sent again under its client's name is applied once."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from distlab.client.chain import ChainClient
from distlab.core.ids import NodeId
from distlab.ops.faults import LocalProcesses
from distlab.ops.local_cluster import LocalCluster
from distlab.proto import chain_pb2, chain_pb2_grpc
from distlab.wire.channels import open_channel
from tests.cluster.chain_support import ChainWriter, stale_involving, wait_for_chain


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    cluster = LocalCluster.plan(3, tmp_path / "cluster")
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


async def test_head_middle_and_tail_killed_during_writes(cluster: LocalCluster) -> None:
    client = ChainClient({n: str(node.address) for n, node in cluster.nodes.items()})
    writer = ChainWriter(client)
    try:
        epoch = await wait_for_chain(client, (1, 2, 3))
        writer.start()
        for victim, mended, rejoined in ((1, (2, 3), (2, 3, 1)), (3, (2, 1), (2, 1, 3)),
                                         (3, (2, 1), (2, 1, 3))):
            await cluster.stop_node(NodeId(victim), signal.SIGKILL)
            new_epoch = await wait_for_chain(client, mended)
            assert new_epoch > epoch
            await cluster.start_node(NodeId(victim))
            epoch = await wait_for_chain(client, rejoined)
            await writer.wait_for_more(3, "after the chain mended")
        await writer.stop()
        rows = {row.id: row for row in await client.status(1.0)}
        assert rows[3].role == "tail"
        for key, value in writer.acknowledged.items():
            read = await client.get(key, "cr")
            assert read.value == value, key
        some = next(iter(writer.acknowledged))
        clean = await client.get(some, "craq", NodeId(2))
        assert clean.value == writer.acknowledged[some] and clean.node == 2
    finally:
        await writer.stop()
        await client.close()


def metrics_of(cluster: LocalCluster, nodes: tuple[int, ...]) -> dict[int, object]:
    return {node: cluster.nodes[NodeId(node)].metrics_address for node in nodes}


async def test_a_paused_replica_is_removed_fenced_by_epoch_and_rejoins_as_tail(
        cluster: LocalCluster) -> None:
    client = ChainClient({n: str(node.address) for n, node in cluster.nodes.items()})
    writer = ChainWriter(client)
    processes = LocalProcesses(cluster)
    try:
        epoch = await wait_for_chain(client, (1, 2, 3))
        writer.start()
        await writer.wait_for_more(3, "before the pause")
        # The middle replica: messages of its epoch keep coming to it from both sides while
        # it is stopped, and on waking it answers them before it hears of the new chain.
        # What node 2 refused so far (nothing changes while it is stopped).
        before = stale_involving(2, metrics_of(cluster, (2,)))
        await processes.pause(NodeId(2))
        removed = await wait_for_chain(client, (1, 3))
        assert removed > epoch
        rows = {row.id: row for row in await client.status(1.0)}
        assert rows[2].health != "up" and rows[1].role == "head" and rows[3].role == "tail"
        await writer.wait_for_more(3, "while the paused replica was out")
        before |= stale_involving(2, metrics_of(cluster, (1, 3)))

        await processes.resume(NodeId(2))
        rejoined = await wait_for_chain(client, (1, 3, 2))
        assert rejoined > removed
        await writer.wait_for_more(3, "after the replica rejoined")
        # The messages of the old epoch that were in flight when it stopped are refused:
        # those it sends on waking by the others, or, had it heard of the new chain first,
        # those it had been sent, by itself.
        after = stale_involving(2, metrics_of(cluster, (1, 2, 3)))
        assert sum(after.values()) > sum(before.values()), (before, after)
        await writer.stop()

        rows = {row.id: row for row in await client.status(1.0)}
        assert rows[2].role == "tail" and rows[2].epoch == rejoined
        assert rows[2].applied >= writer.last_seq
        for key, value in writer.acknowledged.items():
            read = await client.get(key, "cr")
            assert read.value == value and read.node == 2, key
    finally:
        await processes.resume(NodeId(2))
        await writer.stop()
        await client.close()


async def test_a_write_sent_again_under_its_name_is_applied_once(cluster: LocalCluster) -> None:
    client = ChainClient({n: str(node.address) for n, node in cluster.nodes.items()})
    channel = open_channel(str(cluster.nodes[NodeId(1)].address))
    try:
        await wait_for_chain(client, (1, 2, 3))
        head = chain_pb2_grpc.ChainStub(channel)

        async def write(value: bytes, request: int) -> int:
            # A head that has not renewed its lease yet refuses definitely: ask again.
            for _ in range(100):
                try:
                    answer = await head.Write(chain_pb2.ChainWriteRequest(
                        key=b"named", value=value, client_id=41, request=request), timeout=5.0)
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                        raise
                    await asyncio.sleep(0.1)
                    continue
                return int(answer.seq)
            raise AssertionError("the head refused every attempt")

        first = await write(b"one", 1)
        assert await write(b"one", 1) == first
        second = await write(b"two", 2)
        assert second == first + 1
        with pytest.raises(grpc.aio.AioRpcError) as stale:
            await write(b"one", 1)
        assert stale.value.code() == grpc.StatusCode.ABORTED
        read = await client.get(b"named", "cr")
        assert (read.value, read.seq) == (b"two", second)
        rows = {row.id: row for row in await client.status(1.0)}
        assert rows[3].applied == second
    finally:
        await channel.close()
        await client.close()
