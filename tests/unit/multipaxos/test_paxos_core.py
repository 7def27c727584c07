"""The Multi-Paxos core's rules, on a synchronous in-memory cluster."""

from __future__ import annotations

from random import Random

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos import (
    Accept,
    AcceptedReply,
    Ballot,
    Config,
    Decision,
    MemoryStorage,
    MultiPaxos,
    Prepare,
    Promise,
    Role,
    Value,
)

from .paxos_harness import Cluster

N1, N2, N3 = NodeId(1), NodeId(2), NodeId(3)


def test_a_leader_decides_commands_in_order_on_every_replica() -> None:
    cluster = Cluster(3)
    cluster.elect(N1)
    slots = cluster.propose(N1, b"a", b"b", b"c")
    assert slots == [1, 2, 3]
    cluster.tick(4)  # the heartbeat carries the decisions to the followers
    for node in cluster.ids:
        assert cluster.members[node].applied == {1: b"a", 2: b"b", 3: b"c"}


def test_a_member_that_hears_no_leader_campaigns() -> None:
    cluster = Cluster(3, election_ticks=5, heartbeat_ticks=1)
    cluster.tick(12)
    assert len(cluster.leaders()) == 1


def test_ballots_order_by_round_then_node() -> None:
    assert Ballot(2, N1) > Ballot(1, N3) > Ballot(1, N2)
    assert Ballot(1, N2).as_int() < Ballot(2, N1).as_int()


def test_an_acceptor_refuses_a_lower_ballot_and_never_lowers_its_promise() -> None:
    core = MultiPaxos(Config(N1, frozenset({N1, N2, N3})), MemoryStorage(), Random(1))
    core.step(Prepare(N3, N1, Ballot(5, N3), 1))
    ready = core.ready()
    assert ready.promised == Ballot(5, N3)
    assert ready.messages == (Promise(N1, N3, Ballot(5, N3), ok=True, promised=Ballot(5, N3)),)
    core.advance()
    core.step(Accept(N2, N1, Ballot(4, N2), (Decision(1, Value(b"x", Ballot(4, N2))),), 0, 1, 0))
    ready = core.ready()
    assert not ready.accepted
    (reply,) = ready.messages
    assert isinstance(reply, AcceptedReply) and not reply.ok
    assert reply.promised == Ballot(5, N3)
    core.advance()
    assert core.promised == Ballot(5, N3)


def test_replies_wait_for_the_persist_and_phase_two_does_not() -> None:
    cluster = Cluster(3)
    leader = cluster.elect(N1)
    follower = cluster.core(N2)
    leader.propose_batch([b"x"])
    ready = leader.ready()
    accepts = [m for m in ready.messages if isinstance(m, Accept)]
    assert accepts and all(leader.sends_before_persist(m) for m in accepts)
    assert ready.accepted and ready.accepted[0].value.command == b"x"
    leader.advance()
    follower.step(accepts[0])
    reply_ready = follower.ready()
    assert reply_ready.accepted
    assert not any(follower.sends_before_persist(m) for m in reply_ready.messages)
    follower.advance()


def test_a_new_leader_reproposes_the_highest_accepted_value_and_fills_holes() -> None:
    cluster = Cluster(3)
    cluster.elect(N1)
    # n1's accepts of slots 1 and 3 reach only n2; slot 2 reaches nobody.
    leader = cluster.core(N1)
    leader.propose_batch([b"one", b"two", b"three"])
    ready = leader.ready()
    cluster.members[N1].storage.persist(ready)
    leader.advance()
    for message in ready.messages:
        if isinstance(message, Accept) and message.recipient == N2:
            entries = tuple(e for e in message.entries if e.slot != 2)
            cluster.core(N2).step(Accept(message.sender, N2, message.ballot, entries,
                                         message.commit_index, message.leader_start,
                                         message.forget_through))
    cluster.stop(N1)
    cluster.tick(40)  # n2 and n3 wait out n1's lease, then one of them leads
    assert cluster.leaders()
    applied = cluster.members[N3].applied
    assert applied[1] == b"one" and applied[3] == b"three"
    assert applied[2] is None  # a no-op filled the hole
    assert cluster.members[N2].applied == applied


def test_a_preempted_leader_steps_down_and_a_later_one_keeps_chosen_values() -> None:
    cluster = Cluster(3)
    old = cluster.elect(N1)
    cluster.propose(N1, b"a")
    cluster.isolate(N1)
    cluster.tick(60)
    (new,) = [node for node in cluster.leaders() if node != N1]
    cluster.heal()
    cluster.propose(new, b"b")
    cluster.tick(4)
    assert old.role is not Role.LEADER and old.promised >= cluster.core(new).ballot
    for node in cluster.ids:
        assert cluster.members[node].applied == {1: b"a", 2: b"b"}, node


def test_a_leader_that_meets_a_higher_ballot_is_preempted() -> None:
    cluster = Cluster(3)
    leader = cluster.elect(N1)
    leader.step(AcceptedReply(N2, N1, leader.ballot, ok=False, promised=Ballot(9, N3),
                              slots=(), applied=0, commit_index=0))
    assert leader.role is Role.FOLLOWER and leader.promised == Ballot(9, N3)


def test_an_isolated_leader_steps_down_and_the_majority_elects_another() -> None:
    cluster = Cluster(3, election_ticks=5, heartbeat_ticks=1)
    cluster.elect(N1)
    cluster.isolate(N1)
    cluster.tick(30)
    assert cluster.core(N1).role is not Role.LEADER
    assert [leader for leader in cluster.leaders() if leader != N1]


def test_a_promise_survives_a_restart() -> None:
    cluster = Cluster(3)
    cluster.elect(N2)
    promised = cluster.core(N1).promised
    cluster.stop(N1)
    assert cluster.start(N1).promised == promised
    assert promised == cluster.core(N2).ballot


def test_a_restarted_replica_replays_its_own_decisions() -> None:
    cluster = Cluster(3)
    cluster.elect(N1)
    cluster.propose(N1, b"a", b"b")
    cluster.tick(4)
    cluster.stop(N3)
    core = cluster.start(N3)
    assert core.commit_index == 2
    cluster.settle()
    assert cluster.members[N3].applied == {1: b"a", 2: b"b"}


def test_a_lagging_replica_catches_up_from_peers() -> None:
    cluster = Cluster(3)
    cluster.elect(N1)
    cluster.isolate(N3)
    cluster.propose(N1, b"a", b"b", b"c")
    cluster.heal()
    cluster.tick(6)
    assert cluster.members[N3].applied == {1: b"a", 2: b"b", 3: b"c"}


def test_slots_every_member_applied_are_freed() -> None:
    cluster = Cluster(3)
    cluster.elect(N1)
    cluster.propose(N1, *[f"c{i}".encode() for i in range(10)])
    cluster.tick(8)
    for node in cluster.ids:
        core = cluster.core(node)
        assert core.log_start == 10, core.status()
        assert not core.decided and not core.accepted


def test_a_replica_far_behind_gets_a_snapshot() -> None:
    cluster = Cluster(3)
    cluster.elect(N1)
    cluster.isolate(N3)
    cluster.propose(N1, b"a", b"b", b"c")
    cluster.tick(4)
    for node in (N1, N2):
        cluster.core(node).compact(3, b"state-at-3")
    cluster.heal()
    cluster.tick(8)
    core = cluster.core(N3)
    assert core.applied == 3 and core.snapshot is not None
    assert core.snapshot.data == b"state-at-3"
    cluster.propose(N1, b"d")
    cluster.tick(4)
    assert cluster.members[N3].applied == {4: b"d"}


def test_a_read_barrier_needs_a_majority_to_confirm_the_ballot() -> None:
    cluster = Cluster(3)
    leader = cluster.elect(N1)
    cluster.propose(N1, b"a")
    assert leader.read_index(b"r1")
    cluster.settle()
    states = [s for r in cluster.members[N1].readys for s in r.read_states]
    assert [(s.context, s.index, s.ok) for s in states] == [(b"r1", 1, True)]
    cluster.isolate(N1)
    assert leader.read_index(b"r2")
    cluster.settle()
    states = [s for r in cluster.members[N1].readys for s in r.read_states]
    assert len(states) == 1  # not confirmed while cut off
    assert not cluster.core(N2).read_index(b"r3")  # only a leader serves reads


def test_a_read_barrier_whose_round_was_lost_is_confirmed_by_the_next_heartbeats() -> None:
    cluster = Cluster(3)
    leader = cluster.elect(N1)
    cluster.isolate(N1)
    assert leader.read_index(b"r1")
    cluster.settle()  # the round's Commits are lost
    cluster.heal()
    cluster.tick(leader.config.heartbeat_ticks)
    states = [s for r in cluster.members[N1].readys for s in r.read_states]
    assert [(s.context, s.ok) for s in states] == [(b"r1", True)]


def test_bad_peer_messages_are_counted_not_raised() -> None:
    core = MultiPaxos(Config(N1, frozenset({N1, N2, N3})), MemoryStorage(), Random(1))
    core.step(Prepare(NodeId(9), N1, Ballot(1, NodeId(9)), 1))
    core.step(Prepare(N2, N3, Ballot(1, N2), 1))
    core.step(Prepare(N2, N1, Ballot(1, N3), 1))
    core.step(Accept(N2, N1, Ballot(1, N2), (Decision(2, Value(b"x", Ballot(1, N2))),
                                            Decision(1, Value(b"y", Ballot(1, N2)))), 0, 1, 0))
    core.step("garbage")  # type: ignore[arg-type]
    assert core.rejected_messages == 5
    assert not core.has_ready()


def test_local_misuse_raises() -> None:
    core = MultiPaxos(Config(N1, frozenset({N1, N2, N3})), MemoryStorage(), Random(1))
    with pytest.raises(RuntimeError):
        core.advance()
    core.campaign()
    core.ready()
    with pytest.raises(RuntimeError):
        core.tick()
    with pytest.raises(ValueError):
        Config(N1, frozenset({N2}))
    with pytest.raises(ValueError):
        Config(N1, frozenset({N1}), planted_bugs=frozenset({"no-such-bug"}))


def test_a_single_member_decides_alone() -> None:
    cluster = Cluster(1)
    cluster.elect(N1)
    cluster.propose(N1, b"solo")
    assert cluster.members[N1].applied == {1: b"solo"}


def test_a_member_cut_off_probes_and_deposes_nobody_when_it_returns() -> None:
    cluster = Cluster(3, election_ticks=5, heartbeat_ticks=1)
    leader = cluster.elect(N1)
    ballot = leader.ballot
    cluster.isolate(N3)
    cluster.tick(60)
    assert cluster.core(N3).promised == ballot  # its probes found no majority
    cluster.heal()
    cluster.tick(10)
    assert leader.role is Role.LEADER and leader.ballot == ballot


def test_without_probes_a_returning_member_deposes_the_leader() -> None:
    cluster = Cluster(3, election_ticks=5, heartbeat_ticks=1, pre_prepare=False)
    leader = cluster.elect(N1)
    ballot = leader.ballot
    cluster.isolate(N3)
    cluster.tick(60)
    assert cluster.core(N3).promised > ballot
    cluster.heal()
    cluster.tick(40)
    assert leader.ballot != ballot or leader.role is not Role.LEADER
