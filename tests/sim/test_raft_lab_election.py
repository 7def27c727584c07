"""6.5840 Raft lab, part 3A (leader election), ported onto the simulator.

Virtual time stands in for the tester's sleeps; the network, timings and checks are the
lab's. The first entry a leader writes is a no-op, so indexes here run one or more ahead
of the lab's, and tests compare indexes relative to what the cluster returned.
"""

from __future__ import annotations

from distlab.core.ids import NodeId
from distlab.sim.raft.lab import ELECTION_TIMEOUT_MS, MakeCluster


def test_initial_election_and_term_stability(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3)
    cluster.check_one_leader()
    cluster.sleep(50)
    term1 = cluster.check_terms()
    cluster.expect(term1 >= 1, f"term is {term1}, but should be at least 1")
    # with no failures the leader and the term stay put
    cluster.sleep(2 * ELECTION_TIMEOUT_MS)
    term2 = cluster.check_terms()
    cluster.expect(term1 == term2, f"term changed from {term1} to {term2} with no failures")
    cluster.check_one_leader()


def test_re_election_and_rejoin_without_disruption(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3)
    n = cluster.n
    leader1 = cluster.check_one_leader()
    # if the leader disconnects, a new one should be elected
    cluster.disconnect(leader1)
    leader2 = cluster.check_one_leader()
    cluster.expect(leader2 != leader1, "the disconnected leader is still the only leader")
    term_before_rejoin = cluster.check_terms()
    # the old leader rejoins: it must not disturb the new leader or bump the term
    cluster.connect(leader1)
    leader_after = cluster.check_one_leader()
    cluster.expect(leader_after == leader2, f"rejoin deposed n{leader2} for n{leader_after}")
    cluster.expect(
        cluster.check_terms() == term_before_rejoin, "the rejoining old leader changed the term"
    )
    # no quorum: no new leader
    cluster.disconnect(leader2)
    cluster.disconnect(NodeId(leader2 % n + 1))
    cluster.sleep(2 * ELECTION_TIMEOUT_MS)
    cluster.check_no_leader()
    # a quorum arises: it elects a leader
    cluster.connect(NodeId(leader2 % n + 1))
    cluster.check_one_leader()
    # re-joining the last node should not prevent a leader from existing
    cluster.connect(leader2)
    cluster.check_one_leader()


def test_many_elections_with_seven_servers(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(7)
    cluster.check_one_leader()
    rng = cluster.tester_rng
    for _ in range(10):
        # disconnect three nodes; the remaining four form a majority
        chosen = rng.sample(cluster.ids(), 3)
        for node in chosen:
            cluster.disconnect(node)
        # either the current leader should still be alive, or the others elect a new one
        cluster.check_one_leader()
        for node in chosen:
            cluster.connect(node)
    cluster.check_one_leader()
