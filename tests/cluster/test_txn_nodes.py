"""2PC and 3PC over real node processes on 127.0.0.1, each node one participant: a
coordinator killed after every yes vote, with COMMIT on its disk but not sent, leaves 2PC's
participants in doubt holding their locks (shown by `distlab txn status`; a conflicting
transaction aborts) until it restarts and all commit; 3PC's participants decide without it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import pytest

from distlab.client import TxnClient
from distlab.core.ids import NodeId
from distlab.ops.faults import FaultInjector
from distlab.ops.local_cluster import LocalCluster
from distlab.protocols.txn import parse_op
from distlab.wire.sharding import participant_of
from tests.support import awaited

T = TypeVar("T")
DEADLINE_SECONDS = 20.0
COORDINATOR = NodeId(1)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    cluster = LocalCluster.plan(3, tmp_path / "cluster")
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


def keys_on(nodes: list[NodeId], all_nodes: list[int]) -> dict[NodeId, str]:
    keys: dict[NodeId, str] = {}
    index = 0
    while len(keys) < len(nodes):
        key = f"acct{index}"
        owner = NodeId(participant_of(key, all_nodes))
        if owner in nodes and owner not in keys:
            keys[owner] = key
        index += 1
    return keys


def txn_status(cluster: LocalCluster) -> dict[str, object]:
    cluster_arg = ",".join(f"{node}={address}" for node, address in cluster.addresses.items())
    done = subprocess.run([sys.executable, "-m", "distlab", "txn", "status", "--json",
                           "--cluster", cluster_arg], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


async def crash_coordinator_with_commit_logged(cluster: LocalCluster, protocol: str
                                               ) -> tuple[TxnClient, str, str]:
    members = {node: str(address) for node, address in cluster.addresses.items()}
    client = TxnClient(members)
    a, b = keys_on([NodeId(2), NodeId(3)], sorted(members)).values()
    setup = await client.execute([parse_op(f"put:{a}=10"), parse_op(f"put:{b}=10")], protocol)
    assert setup.outcome == "committed", setup
    injector = FaultInjector(cluster.addresses)
    try:
        armed = await injector.arm_txn_faults(COORDINATOR,
                                              {"coordinator-crash-after-commit-logged"})
        assert armed == ["coordinator-crash-after-commit-logged"]
    finally:
        await injector.close()
    transfer = [parse_op(f"require:{a}>=3"), parse_op(f"add:{a}=-3"), parse_op(f"add:{b}=3")]
    result = await client.execute(transfer, protocol, node=COORDINATOR, timeout=5.0)
    assert result.outcome == "unknown", result  # the coordinator died before answering
    process = cluster.nodes[COORDINATOR].process
    assert process is not None
    await asyncio.wait_for(process.wait(), DEADLINE_SECONDS)
    return client, a, b


async def read(client: TxnClient, keys: list[str], protocol: str, node: int
               ) -> dict[str, str | None] | None:
    result = await client.execute([parse_op(f"get:{key}") for key in keys], protocol,
                                  node=NodeId(node), timeout=2.0)
    return result.reads if result.outcome == "committed" else None


async def test_two_phase_commit_blocks_until_the_coordinator_returns(
        cluster: LocalCluster) -> None:
    client, a, b = await crash_coordinator_with_commit_logged(cluster, "2pc")
    try:
        def in_doubt() -> dict[int, list[dict[str, object]]]:
            nodes = txn_status(cluster)["nodes"]
            assert isinstance(nodes, list)
            return {node["id"]: node["transactions"] for node in nodes if node["ok"]}

        async def blocked() -> dict[int, list[dict[str, object]]] | None:
            unfinished = await asyncio.to_thread(in_doubt)
            prepared = {node: txns for node, txns in unfinished.items()
                        if any(txn["state"] == "prepared" for txn in txns)}
            return prepared if set(prepared) == {2, 3} else None

        prepared = await awaited(blocked, DEADLINE_SECONDS,
                                 "participants 2 and 3 did not show in doubt")
        locks = {lock for txns in prepared.values() for txn in txns for lock in txn["locks"]}
        assert {f"{a}:X", f"{b}:X"} <= locks
        # Still blocked a while later: nobody may decide for the coordinator.
        await asyncio.sleep(1.0)
        assert set(await awaited(blocked, DEADLINE_SECONDS, "in doubt")) == {2, 3}
        # A conflicting transaction cannot get the locks: it is younger, and dies.
        conflicting = await client.execute([parse_op(f"get:{a}")], "2pc", node=NodeId(2),
                                           timeout=2.0)
        assert conflicting.outcome == "aborted" and "wait-die" in conflicting.reason

        await cluster.start_node(COORDINATOR)
        await cluster.wait_serving(COORDINATOR, DEADLINE_SECONDS)

        async def resolved() -> bool | None:
            unfinished = await asyncio.to_thread(in_doubt)
            return True if len(unfinished) == 3 and not any(unfinished.values()) else None

        await awaited(resolved, DEADLINE_SECONDS,
                      "the transaction did not resolve after the restart")
        assert await read(client, [a, b], "2pc", 2) == {a: "7", b: "13"}
    finally:
        await client.close()


async def test_three_phase_commit_decides_without_its_coordinator(
        cluster: LocalCluster) -> None:
    client, a, b = await crash_coordinator_with_commit_logged(cluster, "3pc")
    try:
        reads = await awaited(lambda: read(client, [a, b], "3pc", 2), DEADLINE_SECONDS,
                              "the participants did not decide without the coordinator")
        assert reads == {a: "7", b: "13"}
        await cluster.start_node(COORDINATOR)
        await cluster.wait_serving(COORDINATOR, DEADLINE_SECONDS)
        assert await awaited(lambda: read(client, [a, b], "3pc", 1), DEADLINE_SECONDS,
                             "reading after the restart") == {a: "7", b: "13"}
        # A participant made to vote no aborts the transaction everywhere.
        injector = FaultInjector(cluster.addresses)
        try:
            await injector.arm_txn_faults(NodeId(3), {"participant-vote-no"})
            refused = await client.execute([parse_op(f"add:{a}=1"), parse_op(f"add:{b}=1")],
                                           "3pc", node=COORDINATOR)
            assert refused.outcome == "aborted" and "votes no" in refused.reason, refused
            await injector.arm_txn_faults(NodeId(3), set())
        finally:
            await injector.close()
        assert await read(client, [a, b], "3pc", 1) == {a: "7", b: "13"}
    finally:
        await client.close()
