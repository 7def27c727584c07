"""2PC over consensus groups on real node processes: each group one participant, its records
replicated. The leader of the coordinating group is killed with COMMIT applied in its group
but not sent; the group's next leader finishes the transaction, nothing stays in doubt, the
client's retry learns the outcome, and the KV store serves what the transaction wrote."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from distlab.client import KVClient, TxnClient
from distlab.ops.faults import FaultInjector
from distlab.ops.local_cluster import LocalCluster
from distlab.protocols.txn import parse_op
from distlab.wire.sharding import group_of
from tests.support import awaited, first_transaction

DEADLINE_SECONDS = 20.0
GROUPS = 3


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    cluster = LocalCluster.plan(3, tmp_path / "cluster", groups=GROUPS)
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


def one_key_per_group() -> list[str]:
    keys: dict[int, str] = {}
    index = 0
    while len(keys) < GROUPS:
        keys.setdefault(group_of(f"acct{index}", GROUPS), f"acct{index}")
        index += 1
    return [keys[group] for group in range(GROUPS)]


async def test_a_killed_coordinator_leader_blocks_nothing(cluster: LocalCluster) -> None:
    members = {node: str(address) for node, address in cluster.addresses.items()}
    client = TxnClient(members)
    kv = KVClient(members)
    injector = FaultInjector(cluster.addresses)
    a, b, c = one_key_per_group()
    try:
        setup = await first_transaction(client, [f"put:{key}=10" for key in (a, b, c)],
                                        DEADLINE_SECONDS)
        assert setup.outcome == "committed", setup
        coordinator = setup.coordinator
        assert coordinator is not None
        armed = await injector.arm_txn_faults(coordinator,
                                              {"coordinator-crash-after-commit-logged"})
        assert armed == ["coordinator-crash-after-commit-logged"]

        transfer = [parse_op(f"require:{a}>=3"), parse_op(f"add:{a}=-3"),
                    parse_op(f"add:{b}=2"), parse_op(f"add:{c}=1")]
        result = await client.execute(transfer, participants="groups",
                                      timeout=DEADLINE_SECONDS)
        # The coordinator died after its group applied COMMIT; the group's next leader
        # answers the same attempt with that outcome.
        assert result.outcome == "committed", result
        assert result.coordinator != coordinator
        process = cluster.nodes[coordinator].process
        assert process is not None
        await asyncio.wait_for(process.wait(), DEADLINE_SECONDS)

        async def nothing_unfinished() -> bool | None:
            nodes = await client.status()
            up = [entry for entry in nodes if entry.error is None]
            return True if len(up) == 2 and not any(e.transactions for e in up) else None

        await awaited(nothing_unfinished, DEADLINE_SECONDS,
                      "the transaction did not finish everywhere")
        reads = await client.execute([parse_op(f"get:{key}") for key in (a, b, c)],
                                     participants="groups", timeout=DEADLINE_SECONDS)
        assert reads.reads == {a: "7", b: "12", c: "11"}, reads
        # The same values through the KV store: the groups' shards hold the commits.
        assert [await kv.get(key) for key in (a, b, c)] == ["7", "12", "11"]

        await cluster.start_node(coordinator)
        await cluster.wait_serving(coordinator, DEADLINE_SECONDS)
        again = await client.execute([parse_op(f"add:{a}=1"), parse_op(f"add:{c}=-1")],
                                     participants="groups", timeout=DEADLINE_SECONDS)
        assert again.outcome == "committed", again
    finally:
        await injector.close()
        await client.close()
        await kv.close()


async def test_a_participant_group_that_votes_no_aborts_everywhere(
        cluster: LocalCluster) -> None:
    members = {node: str(address) for node, address in cluster.addresses.items()}
    client = TxnClient(members)
    injector = FaultInjector(cluster.addresses)
    a, b, _ = one_key_per_group()
    try:
        setup = await first_transaction(client, [f"put:{a}=5", f"put:{b}=5"],
                                        DEADLINE_SECONDS)
        assert setup.outcome == "committed", setup
        short = await client.execute([parse_op(f"require:{b}>=6"), parse_op(f"add:{a}=1"),
                                      parse_op(f"add:{b}=-6")], participants="groups")
        assert short.outcome == "aborted" and f"{b}" in short.reason, short
        for node in members:
            await injector.arm_txn_faults(node, {"participant-vote-no"})
        refused = await client.execute([parse_op(f"add:{a}=1"), parse_op(f"add:{b}=1")],
                                       participants="groups")
        assert refused.outcome == "aborted" and "votes no" in refused.reason, refused
        for node in members:
            await injector.arm_txn_faults(node, set())
        reads = await client.execute([parse_op(f"get:{a}"), parse_op(f"get:{b}")],
                                     participants="groups", timeout=DEADLINE_SECONDS)
        assert reads.reads == {a: "5", b: "5"}, reads
    finally:
        await injector.close()
        await client.close()
