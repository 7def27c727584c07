"""What a node restarts with: the membership and the addresses on its disk win over the
start-up list it is given."""

from __future__ import annotations

from pathlib import Path

from distlab.apps.kv import KVStateMachine
from distlab.core.ids import NodeId
from distlab.runtime.config import Address, NodeConfig
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.host.machine import AddressBook, HostedMachine
from distlab.runtime.node import build_host
from distlab.runtime.peer import PeerRouter, PeerTransport
from distlab.storage import open_node_storage


def config(data_dir: Path, members: dict[int, int], join: bool = False) -> NodeConfig:
    cluster = {NodeId(node): Address("127.0.0.1", port) for node, port in members.items()}
    return NodeConfig(node_id=NodeId(1), cluster=cluster, listen=cluster[NodeId(1)],
                      metrics=Address("127.0.0.1", 1), data_dir=data_dir, otlp_endpoint=None,
                      join=join)


async def voters_after_start(node: NodeConfig, run: bool = True) -> set[int]:
    """The voters of group 0 once the node has read its disk; with `run`, its groups are
    then started and stopped (no peer is there to answer)."""
    stores = open_node_storage(node.data_dir, groups=1)
    peer = PeerTransport(node.node_id, 1, PeerChannels(node.peers))
    try:
        host = build_host(node, stores, peer, PeerRouter(), [KVStateMachine()],
                          on_failure=lambda error: None)
        voters = set(host.groups[0].members().voters)
        if run:
            host.start()
            await host.stop()
        return voters
    finally:
        await peer.close()
        stores.close()


async def test_the_bootstrap_membership_is_kept_on_disk(tmp_path: Path) -> None:
    data_dir = tmp_path / "node-1"
    # A node that never started (its port was taken, say) recorded nothing.
    assert await voters_after_start(config(data_dir, {1: 7001, 2: 7002}), run=False) == {1, 2}
    assert await voters_after_start(config(data_dir, {1: 7001, 2: 7002, 3: 7003})) == {1, 2, 3}
    # Started again with another list: the configuration it bootstrapped with stands.
    assert await voters_after_start(config(data_dir, {1: 7001, 4: 7004})) == {1, 2, 3}


async def test_a_joining_node_bootstraps_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "node-1"
    assert await voters_after_start(config(data_dir, {1: 7001, 2: 7002}, join=True)) == set()
    assert await voters_after_start(config(data_dir, {1: 7001, 2: 7002})) == {1, 2}


def test_a_snapshot_keeps_only_the_recorded_addresses() -> None:
    taken = HostedMachine(KVStateMachine(), AddressBook({NodeId(1): "old:1", NodeId(2): "old:2"}))
    taken.addresses.learn(NodeId(4), "added:4")
    snapshot = taken.snapshot()

    learned: list[tuple[int, str]] = []
    restarted = AddressBook({NodeId(1): "new:1", NodeId(2): "new:2"},
                            on_learn=lambda node, address: learned.append((node, address)))
    HostedMachine(KVStateMachine(), restarted).restore(snapshot)
    assert restarted.items() == [(1, "new:1"), (2, "new:2"), (4, "added:4")]
    assert learned == [(4, "added:4")]


def test_a_record_of_the_log_wins_over_the_start_up_list() -> None:
    book = AddressBook({NodeId(2): "listed:2"})
    book.learn(NodeId(2), "recorded:2")
    assert book.get(NodeId(2)) == "recorded:2"


def test_an_old_snapshot_only_fills_in_unlisted_members() -> None:
    header = b'{"format": 1, "addresses": {"1": "old:1", "4": "added:4"}}'
    old_snapshot = len(header).to_bytes(4, "big") + header + KVStateMachine().snapshot()
    book = AddressBook({NodeId(1): "new:1"})
    HostedMachine(KVStateMachine(), book).restore(old_snapshot)
    assert book.items() == [(1, "new:1"), (4, "added:4")]
