"""The chain follows the cluster's membership, across real node processes, while a client
writes: a node added to the cluster joins the chain as its new tail; a node removed leaves
the chain at once (it is still running and would keep its lease), and is not let back while
it is not a member, whether another node removed it or, group 0's leader, it removed itself;
every acknowledged write reads back."""

from __future__ import annotations

from pathlib import Path

from distlab.client.chain import ChainClient
from distlab.core.ids import NodeId
from distlab.ops.local_cluster import LocalCluster
from distlab.ops.membership import GroupChange, change_membership
from tests.cluster.chain_support import ChainWriter, chain_of, wait_for_chain
from tests.support import eventually

RETIRED_JOIN = "node 2: the master refused its join: n2 is retired: it left the cluster"


def changed(changes: list[GroupChange]) -> None:
    assert changes and all(change.error is None for change in changes), changes


async def test_nodes_added_and_removed_join_and_leave_the_chain(tmp_path: Path) -> None:
    cluster = LocalCluster.plan(3, tmp_path / "cluster")
    await cluster.start()
    newcomer = cluster.plan_extra_node()  # node 4: started with JOIN=true once the test adds it
    client = ChainClient({n: str(node.address) for n, node in cluster.nodes.items()})
    writer = ChainWriter(client)
    try:
        epoch = await wait_for_chain(client, (1, 2, 3))
        writer.start()
        await writer.wait_for_more(3, "before any change")

        await cluster.start_node(newcomer.node_id)
        await cluster.wait_serving(newcomer.node_id, 30)
        changed(await change_membership(cluster.addresses, "add", newcomer.node_id,
                                        str(newcomer.address)))
        added = await wait_for_chain(client, (1, 2, 3, 4))
        assert added > epoch
        await writer.wait_for_more(3, "after node 4 joined")

        # Another node, group 0's leader, removes node 2 (a middle replica that keeps
        # running, and renewing: only its retirement takes it out).
        changed(await change_membership(cluster.addresses, "transfer-leader", NodeId(1),
                                        group=0))
        changed(await change_membership(cluster.addresses, "remove", NodeId(2)))
        removed = await wait_for_chain(client, (1, 3, 4))
        assert removed > added
        node_2 = cluster.nodes[NodeId(2)]
        assert node_2.process is not None and node_2.process.returncode is None
        # It asks to join again and is refused; the chain stays without it.
        await eventually(lambda: RETIRED_JOIN in node_2.log_path.read_text(), timeout=30,
                         what="node 2's join to be refused", interval=0.1)
        await writer.wait_for_more(3, "after node 2 left")
        assert await chain_of(client) == (removed, (1, 3, 4), 0)

        # Group 0's leader removes itself: node 3, the chain's middle replica.
        changed(await change_membership(cluster.addresses, "transfer-leader", NodeId(3),
                                        group=0))
        changed(await change_membership(cluster.addresses, "remove", NodeId(3)))
        assert await wait_for_chain(client, (1, 4)) > removed
        await writer.wait_for_more(3, "after node 3 left")
        await writer.stop()

        rows = {row.id: row for row in await client.status(1.0)}
        assert rows[1].role == "head" and rows[4].role == "tail"
        assert rows[2].role == "out" and rows[3].role == "out"
        for key, value in writer.acknowledged.items():
            read = await client.get(key, "cr")
            assert read.value == value and read.node == 4, key
    finally:
        await writer.stop()
        await client.close()
        await cluster.stop()
