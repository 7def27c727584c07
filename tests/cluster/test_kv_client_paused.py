"""The tester's clients against a paused node (SIGSTOP: its connections stay open, nothing
answers): a read and a write each end within their budget, the read definitely failed, the
write's outcome open; once resumed, the node serves the same clients again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from random import Random

import pytest

from distlab.client import Indefinite, KVError, Unavailable
from distlab.ops.faults import LocalProcesses
from distlab.ops.local_cluster import LocalCluster
from distlab.ops.status import wait_for_leader
from distlab.ops.tester.workload import Clients

BUDGET = 1.5
HANG_SECONDS = 20.0


@pytest.fixture
async def stale_read_node(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    """One member serving reads from its local state, as the tester's broken-store run."""
    cluster = LocalCluster.plan(1, tmp_path / "cluster", {"DISTLAB_UNSAFE_STALE_READS": "1"})
    await cluster.start()
    try:
        await wait_for_leader(cluster.addresses, 15.0)
        yield cluster
    finally:
        await LocalProcesses(cluster).resume(next(iter(cluster.nodes)))
        await cluster.stop()


async def failure_of(operation: Awaitable[object]) -> KVError:
    try:
        async with asyncio.timeout(HANG_SECONDS):
            await operation
    except KVError as error:
        return error
    except TimeoutError:
        pytest.fail(f"the operation did not end within {HANG_SECONDS:g} s "
                    f"(its budget is {BUDGET:g} s)")
    pytest.fail("a paused node answered")


async def test_operations_on_a_paused_node_end_within_their_budget(
        stale_read_node: LocalCluster) -> None:
    (node,) = stale_read_node.nodes
    control = LocalProcesses(stale_read_node)
    clients = Clients(stale_read_node.addresses, BUDGET, read_from_any=True, rng=Random(0))
    try:
        await clients.writer.put("k", "before")
        reader = clients.reader()
        assert reader is not clients.writer
        assert await reader.get("k") == "before"  # its connection is open before the pause

        await control.pause(node)
        read_failure = await failure_of(reader.get("k"))
        write_failure = await failure_of(clients.writer.put("k", "during"))
        await control.resume(node)

        assert isinstance(read_failure, Unavailable), read_failure
        assert isinstance(write_failure, Indefinite), write_failure
        assert await reader.get("k", budget=15.0) in ("before", "during")
    finally:
        await clients.close()
