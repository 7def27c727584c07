"""Chain replication in the compose cluster under container faults, during a stream of
writes: the head, a middle replica and the tail each `docker kill`ed in turn, the chain mended
around it at a higher epoch, and the container started again to rejoin as the tail; then a
middle replica `docker pause`d past its lease, removed, its late messages refused for their
old epoch once it is unpaused, and back as the tail. Every acknowledged write reads back.

One compose project serves the whole sequence; the client reaches the nodes through the
published ports. How long each mend took is printed (run with -s to see it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from distlab.client.chain import ChainClient
from distlab.core.ids import NodeId
from distlab.ops.status import wait_for_leader
from tests.cluster.chain_support import ChainWriter, stale_involving, wait_for_chain
from tests.docker.conftest import ComposeProject

pytestmark = pytest.mark.docker

Chain = tuple[int, ...]


@pytest.fixture(scope="module")
def project(make_project: Callable[..., ComposeProject]) -> Iterator[ComposeProject]:
    project = make_project("chain")
    project.up("node1", "node2", "node3")
    yield project


def member_in_role(chain: Chain, role: str) -> int:
    """The member of a three-replica chain that plays `role`."""
    return {"head": chain[0], "middle": chain[1], "tail": chain[-1]}[role]


async def back_as_tail(client: ChainClient, writer: ChainWriter, without: Chain, node: int
                       ) -> tuple[Chain, int, float]:
    """Wait for `node` to rejoin the chain `without` it as its tail, then for writes to go
    on: the new (chain, epoch) and the seconds the rejoining took."""
    started_at = time.monotonic()
    rejoined = (*without, node)
    epoch = await wait_for_chain(client, rejoined)
    seconds = time.monotonic() - started_at
    await writer.wait_for_more(3, f"after node {node} rejoined")
    return rejoined, epoch, seconds


async def kill_and_restart(project: ComposeProject, client: ChainClient, writer: ChainWriter,
                           chain: Chain, epoch: int, role: str) -> tuple[Chain, int]:
    """Kill the container in `role`, wait for the chain to mend without it and for writes to
    go on, start it again and wait for it to rejoin as the tail: the new (chain, epoch)."""
    victim = member_in_role(chain, role)
    container = project.container(f"node{victim}")  # `ps` lists no stopped container
    project.docker("kill", container)
    killed_at = time.monotonic()
    mended = tuple(node for node in chain if node != victim)
    mended_epoch = await wait_for_chain(client, mended)
    mend_seconds = time.monotonic() - killed_at
    assert mended_epoch > epoch, (mended_epoch, epoch)
    await writer.wait_for_more(3, f"after the {role} (node {victim}) was killed")
    resumed_seconds = time.monotonic() - killed_at

    project.docker("start", container)
    rejoined, rejoined_epoch, seconds = await back_as_tail(client, writer, mended, victim)
    print(f"{role} node {victim} killed: chain {mended} at epoch {mended_epoch} after "
          f"{mend_seconds:.2f} s, writes resumed after {resumed_seconds:.2f} s; started "
          f"again, the tail of {rejoined} at epoch {rejoined_epoch} after {seconds:.2f} s")
    return rejoined, rejoined_epoch


async def pause_past_lease(project: ComposeProject, client: ChainClient, writer: ChainWriter,
                           chain: Chain, epoch: int) -> tuple[Chain, int]:
    """Pause the middle replica until the master removes it, unpause it, and check that the
    messages of its old epoch are refused and that it rejoins as the tail."""
    paused = member_in_role(chain, "middle")
    others = tuple(node for node in chain if node != paused)
    metrics = {int(node): address for node, address in project.metrics.items()}
    container = project.container(f"node{paused}")
    # Messages of its epoch keep coming to it from both sides while it is frozen, and on
    # waking it answers them before it hears of the new chain. What it refused so far
    # (nothing changes while it is frozen):
    before = stale_involving(paused, {paused: metrics[paused]})
    project.docker("pause", container)
    try:
        paused_at = time.monotonic()
        removed = await wait_for_chain(client, others)
        removed_seconds = time.monotonic() - paused_at
        assert removed > epoch, (removed, epoch)
        rows = {row.id: row for row in await client.status(1.0)}
        assert rows[paused].health != "up", rows[paused]
        await writer.wait_for_more(3, f"while node {paused} was paused")
        before |= stale_involving(paused, {node: metrics[node] for node in others})
    finally:
        project.docker("unpause", container)
    rejoined, rejoined_epoch, seconds = await back_as_tail(client, writer, others, paused)
    print(f"middle node {paused} paused: chain {others} at epoch {removed} after "
          f"{removed_seconds:.2f} s; unpaused, the tail of {rejoined} at epoch "
          f"{rejoined_epoch} after {seconds:.2f} s")
    # The old-epoch messages in flight when it froze are refused: those it sends on waking
    # by the others, or, had it heard of the new chain first, those it had been sent, by
    # itself.
    after = stale_involving(paused, metrics)
    print(f"old-epoch messages refused, to or from node {paused}: {before} before the pause, "
          f"{after} after it")
    assert sum(after.values()) > sum(before.values()), (before, after)
    return rejoined, rejoined_epoch


async def assert_acknowledged_read_back(client: ChainClient, chain: Chain,
                                        acknowledged: dict[bytes, bytes]) -> None:
    """Every acknowledged write reads back at the tail (CR), and one at the head (CRAQ)."""
    tail, head = NodeId(chain[-1]), NodeId(chain[0])
    gate = asyncio.Semaphore(32)

    async def read(key: bytes) -> tuple[bytes, bytes | None, int]:
        async with gate:
            found = await client.get(key, "cr")
        return key, found.value, found.node

    reads = await asyncio.gather(*(read(key) for key in acknowledged))
    wrong = [(key, value, node) for key, value, node in reads
             if value != acknowledged[key] or node != tail]
    assert not wrong, f"{len(wrong)} of {len(reads)} acknowledged writes read back wrong " \
        f"at the tail {tail}, e.g. {wrong[:3]}"
    some = next(iter(acknowledged))
    clean = await client.get(some, "craq", head)
    assert clean.value == acknowledged[some] and clean.node == head, clean


async def test_chain_mends_around_killed_and_paused_containers(project: ComposeProject) -> None:
    client = ChainClient(project.nodes)
    writer = ChainWriter(client)
    try:
        # The master lives on group 0, so the first chain follows its first leader.
        await wait_for_leader(project.nodes, timeout=90)
        chain: Chain = (1, 2, 3)
        epoch = await wait_for_chain(client, chain)
        writer.start()
        await writer.wait_for_more(3, "on a healthy chain")
        for role in ("head", "middle", "tail"):
            chain, epoch = await kill_and_restart(project, client, writer, chain, epoch, role)
        chain, epoch = await pause_past_lease(project, client, writer, chain, epoch)
        await writer.stop()

        rows = {row.id: row for row in await client.status(1.0)}
        assert rows[chain[-1]].role == "tail" and rows[chain[-1]].epoch == epoch
        assert rows[chain[-1]].applied >= writer.last_seq
        print(f"{len(writer.acknowledged)} writes acknowledged; final chain {chain} at epoch "
              f"{epoch}")
        await assert_acknowledged_read_back(client, chain, writer.acknowledged)
    finally:
        await writer.stop()
        await client.close()
