"""Spanner's transactions over consensus groups on real node processes: every committed
read-write transaction reports its timestamp only once the time is certainly past it (commit
wait), and reads at one timestamp, read-only transactions or snapshot reads at any replica,
see one consistent state, also while transfers run."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from distlab.client import TxnClient
from distlab.ops.local_cluster import LocalCluster
from distlab.protocols.txn import parse_op
from tests.support import first_transaction

ACCOUNTS = [f"acct{index}" for index in range(6)]
TOTAL = 100 * len(ACCOUNTS)
BUDGET_SECONDS = 20.0


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    cluster = LocalCluster.plan(3, tmp_path / "cluster", groups=3)
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


async def test_reads_at_a_timestamp_agree_everywhere_while_transfers_run(
        cluster: LocalCluster) -> None:
    members = {node: str(address) for node, address in cluster.addresses.items()}
    client = TxnClient(members)
    rng = random.Random(3)
    committed: list[int] = []
    late: list[str] = []

    async def transfers() -> None:
        for _ in range(30):
            source, target = rng.sample(ACCOUNTS, 2)
            result = await client.execute(
                [parse_op(f"add:{source}=-1"), parse_op(f"add:{target}=1")],
                participants="groups", timeout=BUDGET_SECONDS)
            now = time.time_ns()
            if result.outcome == "committed":
                assert result.ts is not None
                committed.append(result.ts)
                # Commit wait: the commit is reported only once its timestamp has passed.
                if now <= result.ts:
                    late.append(f"reported at {now}, before its timestamp {result.ts}")

    try:
        opened = await first_transaction(client, [f"put:{key}=100" for key in ACCOUNTS],
                                         BUDGET_SECONDS)
        assert opened.outcome == "committed" and opened.ts is not None, opened
        running = asyncio.create_task(transfers())
        snapshots: dict[int, dict[int, dict[str, str | None]]] = {}
        while not running.done() or len(snapshots) < 3:
            read_only = await client.execute([parse_op(f"get:{key}") for key in ACCOUNTS],
                                             participants="groups", read_only=True,
                                             timeout=BUDGET_SECONDS)
            assert read_only.outcome == "committed" and read_only.ts is not None, read_only
            assert sum(int(v or 0) for v in read_only.reads.values()) == TOTAL, read_only
            ts = read_only.ts
            snapshots[ts] = {}
            for node in members:
                at = await client.execute([parse_op(f"get:{key}") for key in ACCOUNTS],
                                          participants="groups", at_ts=ts, node=node,
                                          timeout=BUDGET_SECONDS)
                assert at.outcome == "committed", at
                snapshots[ts][node] = at.reads
            # The replicas agree with each other and with the read-only transaction.
            assert all(reads == read_only.reads for reads in snapshots[ts].values()), (
                ts, read_only.reads, snapshots[ts])
        await running
        assert committed and not late, late
        # The first snapshot still reads the opening balances, at every replica.
        for node in members:
            at = await client.execute([parse_op(f"get:{key}") for key in ACCOUNTS],
                                      participants="groups", at_ts=opened.ts, node=node)
            assert at.reads == dict.fromkeys(ACCOUNTS, "100"), at
    finally:
        await client.close()


async def test_reads_at_a_timestamp_are_gets_over_groups(cluster: LocalCluster) -> None:
    members = {node: str(address) for node, address in cluster.addresses.items()}
    client = TxnClient(members)
    try:
        with pytest.raises(ValueError, match="gets only"):
            await client.execute([parse_op("put:a=1")], participants="groups", at_ts=1)
        with pytest.raises(ValueError, match="over groups"):
            await client.execute([parse_op("get:a")], read_only=True)
    finally:
        await client.close()
