"""`distlab chaos`: argument parsing, and partitions through Admin.SetFault on real processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from distlab.cli.chaos import parse_partition, parse_target
from distlab.cli.common import UsageError
from distlab.client import KVClient
from distlab.core.ids import NodeId
from distlab.ops.local_cluster import LocalCluster
from distlab.ops.status import fetch_status, wait_for_leader
from tests.support import run_distlab


def test_targets_are_node_ids_or_service_names() -> None:
    assert parse_target("2") == parse_target("node2")
    assert parse_target("node2").node_id == 2
    assert parse_target("worker1").node_id is None
    assert parse_target("coordinator").service == "coordinator"
    for bad in ("0", "-1", "node 1", ""):
        with pytest.raises(UsageError):
            parse_target(bad)


def test_partition_groups_become_isolated_sets() -> None:
    members = [NodeId(1), NodeId(2), NodeId(3)]
    assert parse_partition(["1,2", "3"], members) == {1: {3}, 2: {3}, 3: {1, 2}}
    # A node no group names is a bridge: cut from nobody.
    assert parse_partition(["1", "node3"], members) == {1: {3}, 2: set(), 3: {1}}
    for groups in (["1,2"], ["1,2", "2"], ["1", "4"], ["1", "worker1"], ["1", ","]):
        with pytest.raises(UsageError):
            parse_partition(groups, members)


def test_bad_usage_exits_2() -> None:
    two = "1=127.0.0.1:1,2=127.0.0.1:2"
    for args in (["partition", "1,2"], ["kill"], ["partition", "1", "9", "--cluster", two],
                 ["txn-fault", "1", "coordinator-crash-later", "--cluster", two],
                 ["txn-fault", "coordinator", "--cluster", two],
                 ["txn-fault", "9", "--cluster", two]):
        result = run_distlab("chaos", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr


async def test_txn_fault_arms_a_node_and_disarms_it(cluster: LocalCluster) -> None:
    spec = ",".join(f"{n}={node.address}" for n, node in cluster.nodes.items())
    result = await asyncio.to_thread(run_distlab, "chaos", "txn-fault", "2",
                                     "coordinator-crash-after-commit-logged",
                                     "participant-vote-no", "--cluster", spec)
    assert result.returncode == 0, result.stderr
    assert ("node 2 armed with coordinator-crash-after-commit-logged, participant-vote-no"
            in result.stdout)
    result = await asyncio.to_thread(run_distlab, "chaos", "txn-fault", "2", "--cluster", spec)
    assert result.returncode == 0, result.stderr
    assert "node 2 has no transaction fault armed" in result.stdout


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    cluster = LocalCluster.plan(3, tmp_path / "cluster")
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


async def test_partition_cuts_a_node_off_and_heal_lets_it_catch_up(
    cluster: LocalCluster
) -> None:
    addresses = {n: str(node.address) for n, node in cluster.nodes.items()}
    spec = ",".join(f"{n}={address}" for n, address in addresses.items())
    leader = (await wait_for_leader(addresses, timeout=30))[0]
    cut = min(n for n in addresses if n != leader)
    rest = ",".join(str(n) for n in addresses if n != cut)

    result = await asyncio.to_thread(run_distlab, "chaos", "partition", rest, str(cut),
                                     "--cluster", spec)
    assert result.returncode == 0, result.stderr
    assert f"node {cut} now drops traffic to and from" in result.stdout

    async with KVClient(addresses, operation_timeout=20.0) as client:
        for index in range(20):
            await client.put(f"partitioned-{index}", str(index))
        majority = await fetch_status(addresses[leader])
        assert majority is not None
        # The cut-off node hears none of these writes while the partition holds.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            status = await fetch_status(addresses[cut])
            assert status is not None and status.applied_index < majority.commit_index
            await asyncio.sleep(0.2)  # sampling interval while the partition holds

        result = await asyncio.to_thread(run_distlab, "chaos", "heal", "--cluster", spec)
        assert result.returncode == 0, result.stderr
        assert f"node {cut} reaches every peer" in result.stdout
        deadline = time.monotonic() + 30.0
        while True:
            status = await fetch_status(addresses[cut])
            if status is not None and status.applied_index >= majority.commit_index:
                break
            assert time.monotonic() < deadline, f"node {cut} did not catch up: {status}"
            await asyncio.sleep(0.1)  # polling interval
        assert await client.get("partitioned-19") == "19"
