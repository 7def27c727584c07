"""6.5840 Raft lab, part 3D (log compaction), ported onto the simulator.

Every node's state machine compacts the log after each SNAPSHOT_INTERVAL applied entries,
as the lab's applier does; a follower that falls behind the leader's snapshot receives
InstallSnapshot, and a restarted node reloads its snapshot before replaying the log.
"""

from __future__ import annotations

from distlab.core.ids import NodeId
from distlab.sim.raft.lab import (
    SNAPSHOT_INTERVAL,
    LabCluster,
    MakeCluster,
    command,
)

MAX_LOG_BYTES = 2000  # the lab's MAXLOGSIZE


def _after(node: NodeId, offset: int, n: int) -> NodeId:
    return NodeId((node - 1 + offset) % n + 1)


def _snapshot_common(
    cluster: LabCluster, disconnect: bool, crash: bool, iterations: int = 30
) -> None:
    n = cluster.n
    rng = cluster.tester_rng
    cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
    leader1 = cluster.check_one_leader()
    for i in range(iterations):
        victim = _after(leader1, 1, n)
        sender = leader1
        if i % 3 == 1:
            sender = _after(leader1, 1, n)
            victim = leader1
        if disconnect:
            cluster.disconnect(victim)
            cluster.one(command(rng.randrange(1 << 30)), n - 1, retry=True)
        if crash:
            cluster.crash1(victim)
            cluster.one(command(rng.randrange(1 << 30)), n - 1, retry=True)
        # perhaps send enough to get a snapshot
        for _ in range(SNAPSHOT_INTERVAL // 2 + rng.randrange(SNAPSHOT_INTERVAL)):
            cluster.start(sender, command(rng.randrange(1 << 30)))
        # let the appliers catch up with the commit index
        if not disconnect and not crash:
            cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
        else:
            cluster.one(command(rng.randrange(1 << 30)), n - 1, retry=True)
        for node in cluster.ids():
            size = cluster.persisted_log_bytes(node)
            cluster.expect(size < MAX_LOG_BYTES, f"n{node} log size too large: {size}")
        if disconnect:
            # reconnect a follower, who may be behind and need a snapshot
            cluster.connect(victim)
            cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
            leader1 = cluster.check_one_leader()
        if crash:
            cluster.start1(victim)
            cluster.connect(victim)
            cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
            leader1 = cluster.check_one_leader()


def test_snapshot_basic(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3, snapshot_every=SNAPSHOT_INTERVAL)
    _snapshot_common(cluster, disconnect=False, crash=False)
    cluster.expect(
        all(node.storage.snapshot() is not None for node in cluster.nodes.values()),
        "some node never compacted its log",
    )


def test_snapshot_install(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3, snapshot_every=SNAPSHOT_INTERVAL)
    _snapshot_common(cluster, disconnect=True, crash=False)
    sent = cluster.requests_by_type["InstallSnapshot"]
    cluster.expect(sent > 0, "no follower ever needed a snapshot")


def test_snapshot_install_unreliable(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3, unreliable=True, snapshot_every=SNAPSHOT_INTERVAL)
    _snapshot_common(cluster, disconnect=True, crash=False)


def test_snapshot_install_crash(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3, snapshot_every=SNAPSHOT_INTERVAL)
    _snapshot_common(cluster, disconnect=False, crash=True)


def test_snapshot_install_unreliable_crash(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3, unreliable=True, snapshot_every=SNAPSHOT_INTERVAL)
    _snapshot_common(cluster, disconnect=False, crash=True)


def test_snapshot_all_crash(make_cluster: MakeCluster) -> None:
    """All servers crash and restart: the cluster recovers from snapshots plus logs."""
    cluster = make_cluster(3, snapshot_every=SNAPSHOT_INTERVAL)
    n = cluster.n
    rng = cluster.tester_rng
    cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
    for _ in range(5):
        # perhaps enough to get a snapshot
        for _ in range(SNAPSHOT_INTERVAL // 2 + rng.randrange(SNAPSHOT_INTERVAL)):
            cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
        index1 = cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
        # crash all
        for node in cluster.ids():
            cluster.crash1(node)
        # revive all
        for node in cluster.ids():
            cluster.start1(node)
            cluster.connect(node)
        index2 = cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
        cluster.expect(index2 >= index1 + 1, f"index decreased from {index1} to {index2}")


def test_snapshot_reloaded_on_restart(make_cluster: MakeCluster) -> None:
    """The lab's SnapshotInit: a snapshot persisted before a crash is what a node restarts
    from; its state machine comes back from the snapshot, not from replaying everything."""
    cluster = make_cluster(3, snapshot_every=SNAPSHOT_INTERVAL)
    n = cluster.n
    rng = cluster.tester_rng
    cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
    # enough ops to make a snapshot
    for _ in range(SNAPSHOT_INTERVAL + 1):
        cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
    before = {node.node_id: dict(node.state_machine.commands) for node in cluster.nodes.values()}
    for _round in range(2):
        for node in cluster.ids():
            cluster.crash1(node)
        for node in cluster.ids():
            cluster.start1(node)
            cluster.connect(node)
            raft = cluster.raft(node)
            snapshot = cluster.nodes[node].storage.snapshot()
            cluster.expect(snapshot is not None, f"n{node} has no snapshot to restart from")
            assert snapshot is not None
            cluster.expect(
                raft.log.snapshot_index == snapshot.meta.last_index > 0,
                f"n{node} did not reload its snapshot",
            )
            restored = cluster.nodes[node].state_machine.commands
            cluster.expect(
                all(restored.get(i) == v for i, v in before[node].items()
                    if i <= snapshot.meta.last_index),
                f"n{node} state machine differs from before the crash",
            )
        # a new command after the restarts commits everywhere
        cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
