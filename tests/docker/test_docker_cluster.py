"""The compose cluster under container faults: a killed leader, a paused follower, metrics.

One project of three `distlab node` containers serves the whole module. Clients reach the
nodes through the published ports; the nodes reach each other by service name.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from distlab.client import KVClient, KVError
from distlab.core.ids import NodeId
from distlab.ops.status import fetch_status, wait_caught_up, wait_for_leader
from tests.docker.conftest import ComposeProject

pytestmark = pytest.mark.docker

NODE_METRICS = (
    "distlab_raft_has_leader",
    "distlab_raft_is_leader",
    "distlab_raft_term",
    "distlab_raft_leader_changes_seen_total",
    "distlab_raft_proposals_committed_total",
    "distlab_raft_proposals_applied_total",
    "distlab_raft_proposals_pending",
    "distlab_raft_proposals_failed_total",
    "distlab_wal_fsync_duration_seconds",
    "distlab_peer_round_trip_time_seconds",
    "distlab_kv_requests_total",
)


@pytest.fixture(scope="module")
def cluster(make_project: Callable[..., ComposeProject]) -> Iterator[ComposeProject]:
    project = make_project("kv")
    project.up("node1", "node2", "node3")
    yield project


def client_for(cluster: ComposeProject) -> KVClient:
    return KVClient(cluster.nodes, call_timeout=2.0, operation_timeout=30.0)


async def write_keys(client: KVClient, prefix: str, count: int, concurrency: int
                     ) -> dict[str, str]:
    """Put `count` distinct keys with `concurrency` writes in flight; the acknowledged ones."""
    acknowledged: dict[str, str] = {}
    gate = asyncio.Semaphore(concurrency)

    async def put(index: int) -> None:
        key, value = f"{prefix}-{index:05d}", f"value-{index}"
        async with gate:
            try:
                await client.put(key, value)
            except KVError:
                return
        acknowledged[key] = value

    await asyncio.gather(*(put(index) for index in range(count)))
    return acknowledged


async def assert_readable(client: KVClient, expected: dict[str, str]) -> None:
    assert expected, "no write was acknowledged"
    gate = asyncio.Semaphore(64)

    async def read(key: str) -> tuple[str, str | None]:
        async with gate:
            return key, await client.get(key)

    found = dict(await asyncio.gather(*(read(key) for key in expected)))
    wrong = {key: (value, found[key]) for key, value in expected.items() if found[key] != value}
    assert not wrong, f"{len(wrong)} acknowledged writes read back wrong, e.g. " \
        f"{list(wrong.items())[:3]}"


async def test_leader_container_killed_then_started_again(
    cluster: ComposeProject, record_property: Callable[[str, object], None]
) -> None:
    nodes = cluster.nodes
    await wait_for_leader(nodes, timeout=90)
    async with client_for(cluster) as client:
        acknowledged = await write_keys(client, "before-kill", 1000, concurrency=64)
        assert len(acknowledged) == 1000, "writes failed on a healthy cluster"

        leader = (await wait_for_leader(nodes, timeout=30))[0]
        container = cluster.container(f"node{leader}")
        cluster.docker("kill", container)
        killed_at = time.monotonic()
        assert await fetch_status(nodes[leader]) is None
        new_leader = (await wait_for_leader(nodes, timeout=60, exclude=leader))[0]
        await client.put("after-kill", "served")  # the new leader serves writes
        failover = time.monotonic() - killed_at
        record_property("failover_seconds", round(failover, 2))
        print(f"node {new_leader} leads and serves {failover:.2f} s after node {leader} "
              "was killed")
        acknowledged["after-kill"] = "served"
        await assert_readable(client, acknowledged)

        cluster.docker("start", container)
        applied = await wait_caught_up(nodes, leader, timeout=90)
        assert sum(applied.values()) > 1000  # every write is an entry of its key's group
        await assert_readable(client, {"after-kill": "served"})


async def test_follower_paused_then_unpaused(cluster: ComposeProject) -> None:
    nodes = cluster.nodes
    leader = (await wait_for_leader(nodes, timeout=60))[0]
    follower = min(node for node in nodes if node != leader)
    container = cluster.container(f"node{follower}")
    async with client_for(cluster) as client:
        cluster.docker("pause", container)
        try:
            assert await fetch_status(nodes[follower]) is None  # frozen: it answers nothing
            acknowledged = await write_keys(client, "during-pause", 200, concurrency=64)
            assert len(acknowledged) == 200, "writes stalled while one follower was paused"
            behind = await fetch_status(nodes[leader])
            assert behind is not None
        finally:
            cluster.docker("unpause", container)
        caught_up = await wait_caught_up(nodes, NodeId(follower), timeout=60)
        assert caught_up[0] >= behind.commit_index
        await assert_readable(client, acknowledged)


def family_names(text: str) -> set[str]:
    """Every metric family named in a Prometheus text exposition, parsed by the reference
    parser (which fails on malformed text); counters are listed with and without `_total`."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_every_node_serves_prometheus_metrics(cluster: ComposeProject) -> None:
    asyncio.run(wait_for_leader(cluster.nodes, timeout=60))
    kv_samples = []
    for node in (1, 2, 3):
        with urllib.request.urlopen(cluster.metrics_url(9000 + node), timeout=10) as response:
            assert response.status == 200
            text = response.read().decode()
        missing = [name for name in NODE_METRICS if name not in family_names(text)]
        assert not missing, f"node {node} lacks {missing}"
        for family in text_string_to_metric_families(text):
            if family.name == "distlab_raft_has_leader":
                # One series per group (compose runs three), each knowing its leader.
                assert {sample.labels["group"]: sample.value for sample in family.samples} == {
                    "0": 1.0, "1": 1.0, "2": 1.0}, node
            if family.name == "distlab_kv_requests":
                kv_samples += [s for s in family.samples if s.name.endswith("_total")]
    # The module's writes were counted, by operation and status code.
    assert any(s.labels.get("op") == "put" and s.labels.get("code") == "OK" and s.value > 0
               for s in kv_samples), kv_samples
