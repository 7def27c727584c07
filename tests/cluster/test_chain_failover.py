"""Chain replication across real node processes: the head, a middle replica and the tail
killed in turn while a client writes; the chain mends each time, every acknowledged write
reads back, and a restarted node rejoins as the new tail."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from distlab.client import Indefinite
from distlab.client.chain import ChainClient
from distlab.core.ids import NodeId
from distlab.ops.local_cluster import LocalCluster

MEND_SECONDS = 30.0


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    cluster = LocalCluster.plan(3, tmp_path / "cluster")
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


async def chain_of(client: ChainClient) -> tuple[int, tuple[int, ...], int]:
    rows = [row for row in await client.status(1.0) if row.health == "up" and row.chain]
    if not rows:  # the master has not set the first chain up yet
        return 0, (), 0
    newest = max(rows, key=lambda row: row.epoch)
    return newest.epoch, newest.chain, newest.joining


async def wait_for_chain(client: ChainClient, wanted: tuple[int, ...]) -> int:
    deadline = time.monotonic() + MEND_SECONDS
    seen = None
    while time.monotonic() < deadline:
        epoch, chain, joining = seen = await chain_of(client)
        rows = {row.id: row for row in await client.status(1.0)}
        if chain == wanted and not joining and all(
                rows[node].epoch == epoch for node in wanted):
            return epoch
        await asyncio.sleep(0.2)
    raise AssertionError(f"the chain did not become {wanted} within {MEND_SECONDS:g} s: "
                         f"{seen}")


async def test_head_middle_and_tail_killed_during_writes(cluster: LocalCluster) -> None:
    client = ChainClient({n: str(node.address) for n, node in cluster.nodes.items()})
    acknowledged: dict[bytes, bytes] = {}
    stop = asyncio.Event()
    # Set once more than target[0] writes were acknowledged.
    progress = asyncio.Event()
    target = [0]

    async def write() -> None:
        index = 0
        while not stop.is_set():
            key, value = f"w{index}".encode(), f"v{index}".encode()
            index += 1
            try:
                await client.put(key, value, timeout=MEND_SECONDS)
            except Indefinite:
                continue  # may or may not be there: not checked
            acknowledged[key] = value
            if len(acknowledged) > target[0]:
                progress.set()

    try:
        epoch = await wait_for_chain(client, (1, 2, 3))
        writer = asyncio.create_task(write())
        for victim, mended, rejoined in ((1, (2, 3), (2, 3, 1)), (3, (2, 1), (2, 1, 3)),
                                         (3, (2, 1), (2, 1, 3))):
            before = len(acknowledged)
            await cluster.stop_node(NodeId(victim), signal.SIGKILL)
            new_epoch = await wait_for_chain(client, mended)
            assert new_epoch > epoch
            await cluster.start_node(NodeId(victim))
            epoch = await wait_for_chain(client, rejoined)
            progress.clear()
            target[0] = before + 3
            try:
                await asyncio.wait_for(progress.wait(), MEND_SECONDS)
            except TimeoutError:
                raise AssertionError("writes stopped after the chain mended") from None
        stop.set()
        await writer
        rows = {row.id: row for row in await client.status(1.0)}
        assert rows[3].role == "tail"
        for key, value in acknowledged.items():
            read = await client.get(key, "cr")
            assert read.value == value, key
        some = next(iter(acknowledged))
        clean = await client.get(some, "craq", NodeId(2))
        assert clean.value == acknowledged[some] and clean.node == 2
    finally:
        stop.set()
        await client.close()
