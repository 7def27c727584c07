"""6.5840 Raft lab, part 3C (persistence), ported onto the simulator.

`crash1` keeps only what a node persisted through its Ready batches; `start1` rebuilds the
node from that. Figure 8 and the churn tests run the lab's 1000 iterations and 20 rounds.
"""

from __future__ import annotations

from distlab.core.ids import NodeId
from distlab.sim.raft.lab import (
    ELECTION_TIMEOUT_MS,
    LabCluster,
    MakeCluster,
    Process,
    command,
)


def _after(node: NodeId, offset: int, n: int) -> NodeId:
    return NodeId((node - 1 + offset) % n + 1)


def _revive(cluster: LabCluster, node: NodeId) -> None:
    cluster.start1(node)
    cluster.connect(node)


def test_basic_persistence(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3)
    n = cluster.n
    index = cluster.one(b"11", n, retry=True)
    # crash and re-start all
    for node in cluster.ids():
        cluster.start1(node)
    for node in cluster.ids():
        cluster.connect(node)
    cluster.one(b"12", n, retry=True)

    leader1 = cluster.check_one_leader()
    cluster.disconnect(leader1)
    _revive(cluster, leader1)
    cluster.one(b"13", n, retry=True)

    leader2 = cluster.check_one_leader()
    cluster.disconnect(leader2)
    index14 = cluster.one(b"14", n - 1, retry=True)
    _revive(cluster, leader2)
    cluster.wait(index14, n, -1)  # wait for leader2 to join before killing the next one

    other = _after(cluster.check_one_leader(), 1, n)
    cluster.disconnect(other)
    cluster.one(b"15", n - 1, retry=True)
    _revive(cluster, other)
    cluster.one(b"16", n, retry=True)
    # everything committed before the crashes is still there, on every node
    for node in cluster.nodes.values():
        cluster.expect(node.state_machine.commands.get(index) == b"11", "lost index of 11")


def test_more_persistence_staggered_restarts(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(5)
    n = cluster.n
    value = 1
    for _ in range(5):
        cluster.one(command(10 + value), n, retry=True)
        value += 1
        leader1 = cluster.check_one_leader()
        cluster.disconnect(_after(leader1, 1, n))
        cluster.disconnect(_after(leader1, 2, n))
        cluster.one(command(10 + value), n - 2, retry=True)
        value += 1
        cluster.disconnect(leader1)
        cluster.disconnect(_after(leader1, 3, n))
        cluster.disconnect(_after(leader1, 4, n))
        _revive(cluster, _after(leader1, 1, n))
        _revive(cluster, _after(leader1, 2, n))
        cluster.sleep(ELECTION_TIMEOUT_MS)
        _revive(cluster, _after(leader1, 3, n))
        cluster.one(command(10 + value), n - 2, retry=True)
        value += 1
        cluster.connect(_after(leader1, 4, n))
        cluster.connect(leader1)
    cluster.one(b"1000", n, retry=True)


def test_partitioned_leader_and_one_follower_crash(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3)
    n = cluster.n
    cluster.one(b"101", 3, retry=True)
    leader = cluster.check_one_leader()
    cluster.disconnect(_after(leader, 2, n))
    cluster.one(b"102", 2, retry=True)
    cluster.crash1(leader)
    cluster.crash1(_after(leader, 1, n))
    cluster.connect(_after(leader, 2, n))
    _revive(cluster, leader)
    cluster.one(b"103", 2, retry=True)
    _revive(cluster, _after(leader, 1, n))
    cluster.one(b"104", n, retry=True)


def _figure8(cluster: LabCluster, unreliable: bool) -> None:
    """Leaders crash (or vanish) right after accepting entries, again and again, building
    logs where entries of old terms sit on a majority: they must not commit by counting."""
    n = cluster.n
    rng = cluster.tester_rng
    cluster.one(command(rng.randrange(10_000)), 1, retry=True)
    alive = n
    for iteration in range(1000):
        if unreliable and iteration == 200:
            cluster.set_long_reordering(True)
        leader: NodeId | None = None
        for node in cluster.ids():
            usable = cluster.connected(node) if unreliable else cluster.nodes[node].up
            if usable:
                _, _, ok = cluster.start(node, command(rng.randrange(10_000)))
                if ok:
                    leader = node
        if rng.randrange(1000) < 100:
            cluster.sleep(rng.randrange(ELECTION_TIMEOUT_MS // 2))
        else:
            cluster.sleep(rng.randrange(13))
        if unreliable:
            if leader is not None and rng.randrange(1000) < ELECTION_TIMEOUT_MS // 2:
                cluster.disconnect(leader)
                alive -= 1
            if alive < 3:
                node = NodeId(rng.randrange(n) + 1)
                if not cluster.connected(node):
                    cluster.connect(node)
                    alive += 1
        else:
            if leader is not None:
                cluster.crash1(leader)
                alive -= 1
            if alive < 3:
                node = NodeId(rng.randrange(n) + 1)
                if not cluster.nodes[node].up:
                    _revive(cluster, node)
                    alive += 1
    for node in cluster.ids():
        if not cluster.nodes[node].up:
            _revive(cluster, node)
        elif not cluster.connected(node):
            cluster.connect(node)
    cluster.one(command(rng.randrange(10_000)), n, retry=True)


def test_figure8(make_cluster: MakeCluster) -> None:
    _figure8(make_cluster(5), unreliable=False)


def test_figure8_unreliable(make_cluster: MakeCluster) -> None:
    _figure8(make_cluster(5, unreliable=True), unreliable=True)


def test_unreliable_agreement(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(5, unreliable=True)
    for iteration in range(1, 50):
        handles = [
            cluster.spawn(cluster.one_process(command(100 * iteration + j), 1, True))
            for j in range(4)
        ]
        cluster.one(command(iteration), 1, retry=True)
        cluster.join(handles)
    cluster.set_unreliable(False)
    cluster.one(b"100", cluster.n, retry=True)


def _churn(cluster: LabCluster, unreliable: bool) -> None:
    n = cluster.n
    rng = cluster.tester_rng
    stop = False
    seen_committed: list[tuple[bytes, int]] = []

    def client(me: int) -> Process:
        while not stop:
            value = command(rng.randrange(1 << 30))
            index = -1
            for node in cluster.ids():
                # like the lab, ask every live server, connected or not
                index1, _, ok = cluster.start(node, value)
                if ok:
                    index = index1
            if index > 0:
                for delay in (10, 20, 50, 100, 200):
                    count, applied = cluster.n_committed(index)
                    if count > 0:
                        if applied == value:
                            seen_committed.append((value, index))
                            cluster.note(f"client {me} saw {value.decode()} committed at {index}")
                        break
                    yield delay
            else:
                yield 79 + me * 17
        return len(seen_committed)

    clients = [cluster.spawn(client(me)) for me in range(3)]
    for _ in range(20):
        if rng.randrange(1000) < 200:
            cluster.disconnect(NodeId(rng.randrange(n) + 1))
        if rng.randrange(1000) < 500:
            node = NodeId(rng.randrange(n) + 1)
            if not cluster.nodes[node].up:
                cluster.start1(node)
            cluster.connect(node)
        if rng.randrange(1000) < 200:
            node = NodeId(rng.randrange(n) + 1)
            if cluster.nodes[node].up:
                cluster.crash1(node)
        # long enough for a leader to be elected, short enough to keep things lively
        cluster.sleep(ELECTION_TIMEOUT_MS * 7 // 10)
    cluster.sleep(ELECTION_TIMEOUT_MS)
    cluster.set_unreliable(False)
    for node in cluster.ids():
        if not cluster.nodes[node].up:
            cluster.start1(node)
        cluster.connect(node)
    stop = True
    cluster.join(clients)
    cluster.sleep(ELECTION_TIMEOUT_MS)
    last_index = cluster.one(command(rng.randrange(1 << 30)), n, retry=True)
    final: dict[int, bytes] = {}
    for index in range(1, last_index + 1):
        count, value = cluster.n_committed(index)
        if value is not None:
            cluster.expect(count == n, f"index {index} applied on {count} of {n} servers")
            final[index] = value
    cluster.expect(len(seen_committed) > 0, "no client saw any command committed")
    for value, index in seen_committed:
        cluster.expect(
            final.get(index) == value,
            f"{value!r} was seen committed at {index} but the final log has {final.get(index)!r}",
        )


def test_reliable_churn(make_cluster: MakeCluster) -> None:
    _churn(make_cluster(5), unreliable=False)


def test_unreliable_churn(make_cluster: MakeCluster) -> None:
    _churn(make_cluster(5, unreliable=True), unreliable=True)
