"""Raft's rules, one at a time, on a core driven by hand or by a small simulated cluster."""

from __future__ import annotations

from random import Random

from distlab.core.ids import NodeId
from distlab.protocols.raft import (
    AppendEntries,
    AppendEntriesReply,
    Config,
    Entry,
    EntryKind,
    Heartbeat,
    MemoryStorage,
    Raft,
    RequestVote,
    RequestVoteReply,
    Role,
    TimeoutNow,
)
from distlab.protocols.raft.progress import ProgressState
from distlab.sim.raft.lab import SimOptions, Simulation
from tests.unit.raft.raft_harness import N1, N2, N3, VOTERS, drain, elect, make


def settled(seed: int = 1, nodes: int = 3, **options: object) -> tuple[Simulation, NodeId]:
    sim = Simulation(seed, nodes, options=SimOptions(**options))  # type: ignore[arg-type]
    assert sim.run_until(lambda: len(sim.leaders()) == 1, 5_000)
    sim.run_for(300)
    return sim, sim.leaders()[0]


# --- elections ---


def test_pre_vote_keeps_an_isolated_node_from_inflating_its_term() -> None:
    sim, leader = settled()
    follower = next(node for node in sim.nodes if node != leader)
    term = sim.raft(leader).term
    sim.disconnect(follower)
    sim.run_for(5_000)
    assert sim.raft(follower).term == term  # pre-votes never succeed, so no new term
    sim.connect(follower)
    sim.run_for(1_000)
    assert sim.leaders() == [leader] and sim.raft(leader).term == term


def test_check_quorum_makes_a_cut_off_leader_step_down() -> None:
    sim, leader = settled()
    sim.partition([[leader], [n for n in sim.nodes if n != leader]])
    sim.run_for(1_000)  # more than an election timeout of 300 ms
    assert sim.raft(leader).role is not Role.LEADER
    assert len(sim.leaders()) == 1 and sim.leaders()[0] != leader


def test_a_follower_in_lease_ignores_a_disruptive_candidate() -> None:
    follower = make(N2)
    follower.step(Heartbeat(3, N1, N2, commit=0))
    drain(follower)
    follower.step(RequestVote(9, N3, N2, last_log_index=5, last_log_term=5))
    assert follower.term == 3 and follower.vote == 0
    assert drain(follower) == []
    # a transfer campaign (TimeoutNow) is let through
    follower.step(RequestVote(9, N3, N2, last_log_index=5, last_log_term=5, transfer=True))
    assert follower.term == 9 and follower.vote == N3


def test_votes_once_per_term_and_only_for_up_to_date_logs() -> None:
    voter = make(N3, check_quorum=False)
    voter.step(AppendEntries(1, N1, N3, 0, 0, (Entry(1, 1, EntryKind.NORMAL, b"a"),), 0))
    drain(voter)
    # a candidate with an empty log is refused even in a new term
    voter.step(RequestVote(2, N2, N3, last_log_index=0, last_log_term=0))
    assert drain(voter) == [RequestVoteReply(2, N3, N2, granted=False)]
    voter.step(RequestVote(2, N1, N3, last_log_index=1, last_log_term=1))
    assert drain(voter) == [RequestVoteReply(2, N3, N1, granted=True)]
    # a second candidate in the same term is refused
    voter.step(RequestVote(2, N2, N3, last_log_index=9, last_log_term=1))
    assert drain(voter) == [RequestVoteReply(2, N3, N2, granted=False)]


# --- replication ---


def test_rejection_hint_names_the_conflicting_term_and_its_first_index() -> None:
    follower = make(N2)
    entries = tuple(Entry(1, i, EntryKind.NORMAL, b"") for i in range(1, 4)) + tuple(
        Entry(2, i, EntryKind.NORMAL, b"") for i in range(4, 8)
    )
    follower.step(AppendEntries(2, N1, N2, 0, 0, entries, 0))
    drain(follower)
    follower.step(AppendEntries(3, N3, N2, 6, 3, (), 0))
    reply = drain(follower)[-1]
    assert isinstance(reply, AppendEntriesReply) and not reply.success
    assert (reply.rejected_index, reply.conflict_term, reply.conflict_index) == (6, 2, 4)
    follower.step(AppendEntries(3, N3, N2, 20, 3, (), 0))
    reply = drain(follower)[-1]
    assert isinstance(reply, AppendEntriesReply)
    assert (reply.conflict_term, reply.conflict_index) == (0, 8)


def test_pipelining_is_bounded_and_proposals_are_batched() -> None:
    leader = make(N1, max_inflight_appends=2, max_entries_per_message=4)
    elect(leader)
    for voter in (N2, N3):  # both followers acknowledge the no-op: replicate state
        leader.step(AppendEntriesReply(1, voter, N1, success=True, match_index=1))
    drain(leader)
    assert leader.progress[N2].state is ProgressState.REPLICATE
    leader.propose_batch([b"%d" % i for i in range(20)])
    appends = [m for m in drain(leader) if isinstance(m, AppendEntries) and m.recipient == N2]
    assert [len(m.entries) for m in appends] == [4, 4]  # two in flight, four entries each
    leader.step(AppendEntriesReply(1, N2, N1, success=True, match_index=5))
    more = [m for m in drain(leader) if isinstance(m, AppendEntries) and m.recipient == N2]
    assert [m.prev_log_index for m in more] == [9]


def test_entries_of_an_older_term_do_not_commit_by_counting_replicas() -> None:
    storage = MemoryStorage()
    storage.append([Entry(1, 1, EntryKind.NORMAL, b"old")])
    config = Config(node_id=N1, voters=VOTERS, election_ticks=10, heartbeat_ticks=2)
    leader = Raft(config, storage, Random(1))
    leader.campaign()
    leader.step(RequestVoteReply(1, N2, N1, granted=True, pre_vote=True))
    leader.step(RequestVoteReply(1, N2, N1, granted=True))
    assert leader.role is Role.LEADER and leader.term == 1
    # bump to term 2 so that entry 1 belongs to an older term
    leader.step(AppendEntriesReply(2, N2, N1, success=False))
    leader.campaign()
    leader.step(RequestVoteReply(3, N2, N1, granted=True, pre_vote=True))
    leader.step(RequestVoteReply(3, N2, N1, granted=True))
    assert leader.role is Role.LEADER and leader.term == 3
    drain(leader)
    # a follower holds entry 1 (term 1) but not the new leader's no-op at index 3
    leader.step(AppendEntriesReply(3, N2, N1, success=True, match_index=1))
    assert leader.log.committed == 0
    leader.step(AppendEntriesReply(3, N2, N1, success=True, match_index=leader.log.last_index()))
    assert leader.log.committed == leader.log.last_index()


# --- snapshots, reads, transfer, membership ---


def test_a_follower_far_behind_gets_a_snapshot() -> None:
    sim, leader = settled(snapshot_every=5)
    lagging = next(node for node in sim.nodes if node != leader)
    sim.disconnect(lagging)
    for i in range(30):
        sim.propose(leader, b"v%d" % i)
        sim.run_for(20)
    assert sim.raft(leader).log.snapshot_index > 5
    sim.connect(lagging)
    assert sim.run_until(
        lambda: sim.raft(lagging).log.applied == sim.raft(leader).log.applied, 3_000
    )
    assert sim.requests_by_type["InstallSnapshot"] >= 1
    assert sim.nodes[lagging].state_machine.commands == sim.nodes[leader].state_machine.commands


def test_read_index_waits_for_a_heartbeat_round_and_fails_on_a_deposed_leader() -> None:
    sim, leader = settled()
    sim.propose(leader, b"x")
    sim.run_for(50)
    record = sim.read(leader, b"read-1")
    assert record is not None and not record.served
    assert sim.run_until(lambda: record.served, 500)
    assert record.ok and record.read_index >= 2 and record.commands_seen == 1
    # a leader cut off from the others cannot confirm a read
    sim.partition([[leader], [n for n in sim.nodes if n != leader]])
    stale = sim.read(leader, b"read-2")
    assert stale is not None
    sim.run_for(1_000)
    assert stale.ok is False and not stale.served


def test_leadership_transfer_with_timeout_now() -> None:
    sim, leader = settled()
    target = next(node for node in sim.nodes if node != leader)
    assert sim.request(leader, lambda core: core.transfer_leadership(target))
    sim.run_for(5)  # well under an election timeout
    sim.run_until(lambda: sim.leaders() == [target], 200)
    assert sim.leaders() == [target]
    assert sim.requests_by_type["TimeoutNow"] == 1


def test_timeout_now_is_ignored_by_a_candidate() -> None:
    candidate = make(N2)
    candidate.campaign()
    candidate.step(TimeoutNow(0, N1, N2))
    assert candidate.role is Role.PRE_CANDIDATE


def test_a_new_member_joins_as_learner_then_is_promoted() -> None:
    sim, leader = settled(nodes=3)
    new = NodeId(4)
    sim.add_node(new)
    for i in range(20):
        sim.propose(leader, b"before-%d" % i)
    sim.run_for(200)
    assert sim.request(leader, lambda core: core.add_member(new))
    assert new in sim.raft(leader).membership.learners
    assert not sim.request(leader, lambda core: core.add_member(NodeId(5)))  # one at a time
    assert sim.run_until(lambda: new in sim.raft(leader).membership.voters, 2_000)
    sim.run_for(300)
    assert sim.raft(new).membership.voters == frozenset({1, 2, 3, 4})
    assert sim.nodes[new].state_machine.commands == sim.nodes[leader].state_machine.commands
    # and removing the leader makes it step down once the change commits
    assert sim.request(leader, lambda core: core.remove_member(leader))
    assert sim.run_until(lambda: sim.raft(leader).role is not Role.LEADER, 1_000)
    assert sim.run_until(lambda: len(sim.leaders()) == 1, 5_000)
    assert sim.leaders()[0] != leader
