"""The core's contract with its caller: Ready ordering, persistence, restart, bad input."""

from __future__ import annotations

from random import Random

import pytest

from distlab.protocols.raft import (
    AppendEntries,
    AppendEntriesReply,
    Config,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    MemoryStorage,
    Message,
    Raft,
    RequestVote,
    RequestVoteReply,
    Role,
)
from tests.unit.raft.raft_harness import N1, N2, N3, VOTERS, drain, elect, make


def test_vote_is_in_the_same_ready_as_the_reply_that_depends_on_it() -> None:
    raft = make(N2)
    raft.step(RequestVote(term=1, sender=N1, recipient=N2, last_log_index=0, last_log_term=0))
    ready = raft.ready()
    assert ready.hard_state == HardState(term=1, vote=N1, commit=0)
    assert ready.must_sync
    assert ready.messages == (RequestVoteReply(1, N2, N1, granted=True),)
    raft.advance()
    assert not raft.has_ready()


def test_no_input_between_ready_and_advance() -> None:
    raft = make()
    raft.campaign()
    raft.ready()
    with pytest.raises(RuntimeError):
        raft.tick()
    with pytest.raises(RuntimeError):
        raft.ready()
    raft.advance()
    with pytest.raises(RuntimeError):
        raft.advance()


def test_entries_replace_the_stored_suffix_and_restart_reloads_them() -> None:
    storage = MemoryStorage()
    follower = make(N2, storage)
    first = (Entry(1, 1, EntryKind.NOOP, b""), Entry(1, 2, EntryKind.NORMAL, b"a"))
    follower.step(AppendEntries(1, N1, N2, 0, 0, first, leader_commit=1))
    drain(follower, storage)
    # a new leader of term 2 overwrites index 2
    second = (Entry(2, 2, EntryKind.NORMAL, b"b"),)
    follower.step(AppendEntries(2, N3, N2, 1, 1, second, leader_commit=2))
    ready = follower.ready()
    assert ready.entries == second
    assert [entry.index for entry in ready.committed_entries] == [2]
    storage.append(ready.entries)
    assert ready.hard_state is not None
    storage.set_hard_state(ready.hard_state)
    follower.advance()
    assert [entry.data for entry in storage.entries()] == [b"", b"b"]
    restarted = make(N2, storage)
    assert restarted.term == 2
    assert restarted.log.committed == 2
    assert restarted.log.applied == 0
    # after a restart, committed entries are handed out again to rebuild the state machine
    assert [entry.data for entry in restarted.ready().committed_entries] == [b"", b"b"]


def test_a_bad_peer_message_is_counted_not_raised() -> None:
    raft = make(N2)
    gap = (Entry(1, 3, EntryKind.NORMAL, b"x"),)  # does not follow prev index 0
    raft.step(AppendEntries(1, N1, N2, 0, 0, gap, leader_commit=0))
    raft.step(AppendEntries(1, N1, N3, 0, 0, (), leader_commit=0))  # not addressed to us
    bad_config = (Entry(1, 1, EntryKind.CONFIG, b"nonsense"),)
    raft.step(AppendEntries(1, N1, N2, 0, 0, bad_config, leader_commit=0))
    assert raft.rejected_messages == 3
    assert raft.log.last_index() == 0
    assert raft.term == 0


def test_a_conflict_below_the_commit_index_is_rejected() -> None:
    raft = make(N2)
    raft.step(AppendEntries(1, N1, N2, 0, 0, (Entry(1, 1, EntryKind.NORMAL, b"a"),), 1))
    raft.step(AppendEntries(2, N3, N2, 0, 0, (Entry(2, 1, EntryKind.NORMAL, b"b"),), 1))
    assert raft.rejected_messages == 0  # prev_log_index 0 < commit 1: answered with match
    raft.ready()
    raft.advance()
    assert raft.log.entry_at(1) == Entry(1, 1, EntryKind.NORMAL, b"a")


def test_status_reports_role_term_and_indexes() -> None:
    raft = make(N1, MemoryStorage())
    raft.campaign()  # pre-vote first: still term 0
    assert raft.status().role is Role.PRE_CANDIDATE
    for voter in (N2, N3):
        raft.step(RequestVoteReply(1, voter, N1, granted=True, pre_vote=True))
    assert raft.status().role is Role.CANDIDATE
    raft.step(RequestVoteReply(1, N2, N1, granted=True))
    status = raft.status()
    assert status.role is Role.LEADER and status.term == 1 and status.leader_id == N1
    assert status.last_index == 1  # the leader's no-op
    assert status.voters == VOTERS and status.learners == frozenset()


def test_single_node_cluster_commits_alone() -> None:
    config = Config(node_id=N1, voters=frozenset({N1}), election_ticks=10, heartbeat_ticks=2)
    raft = Raft(config, MemoryStorage(), Random(3))
    for _ in range(20):
        raft.tick()
    assert raft.role is Role.LEADER
    proposal = raft.propose(b"x")
    assert proposal is not None
    ready = raft.ready()
    assert [entry.data for entry in ready.committed_entries] == [b"", b"x"]
    raft.advance()


def test_has_ready_is_a_query_so_proposals_around_it_travel_together() -> None:
    leader = elect(make(), N2, N3)
    leader.propose(b"a")
    assert leader.has_ready()
    assert leader.has_ready()  # asking twice is the same as asking once
    leader.propose(b"b")
    appends = [m for m in leader.ready().messages if isinstance(m, AppendEntries)]
    assert sorted(m.recipient for m in appends) == [N2, N3]
    assert all([e.data for e in m.entries] == [b"a", b"b"] for m in appends)
    leader.advance()


def test_has_ready_sees_a_read_round_waiting_for_the_ready() -> None:
    leader = elect(make(), N2, N3)
    assert not leader.has_ready()
    assert leader.read_index(b"r")  # the no-op of term 1 is committed: a round is owed
    assert leader.has_ready()
    heartbeats = [m for m in leader.ready().messages if isinstance(m, Heartbeat)]
    assert sorted(m.recipient for m in heartbeats) == [N2, N3]
    leader.advance()


def test_a_commit_travels_with_the_next_message_never_in_one_of_its_own() -> None:
    leader = elect(make(), N2, N3)
    leader.propose(b"x")
    leader.ready()
    leader.advance()
    # N2 acknowledges: the entry commits, and nothing is sent for it alone
    leader.step(AppendEntriesReply(1, N2, N1, success=True, match_index=2))
    assert leader.has_ready()
    ready = leader.ready()
    assert [e.index for e in ready.committed_entries] == [2]
    assert not ready.messages
    leader.advance()
    assert not leader.has_ready()
    # the next heartbeat tells each follower as much of it as the follower holds
    for _ in range(leader.config.heartbeat_ticks):
        leader.tick()
    heartbeats = {m.recipient: m.commit for m in leader.ready().messages
                  if isinstance(m, Heartbeat)}
    assert heartbeats == {N2: 2, N3: 1}
    leader.advance()
    # and the next append carries it too
    leader.propose(b"y")
    appends = {m.recipient: m.leader_commit for m in leader.ready().messages
               if isinstance(m, AppendEntries)}
    assert appends == {N2: 2, N3: 2}


def test_has_ready_agrees_with_ready_in_a_lossy_cluster() -> None:
    """Random ticks, losses, reorderings, proposals and reads: whenever has_ready() says
    False, ready() hands out nothing, and whenever it says True, something."""
    for seed in range(8):
        rng = Random(seed)
        nodes = {node: make(node) for node in VOTERS}
        in_flight: list[Message] = []
        checked = 0
        for _ in range(3_000):
            action = rng.random()
            node = nodes[rng.choice(sorted(VOTERS))]
            if action < 0.3:
                node.tick()
            elif action < 0.75 and in_flight:
                message = in_flight.pop(rng.randrange(len(in_flight)))
                if rng.random() < 0.9:
                    nodes[message.recipient].step(message)
            elif action < 0.9:
                node.propose_batch([b"c"] * rng.randrange(1, 4))
            else:
                node.read_index(b"%d" % rng.randrange(1 << 30))
            for raft in nodes.values():
                expected = raft.has_ready()
                assert raft.has_ready() == expected
                ready = raft.ready()
                handed_out = bool(
                    ready.hard_state or ready.entries or ready.snapshot or ready.messages
                    or ready.committed_entries or ready.read_states
                )
                assert handed_out == expected, f"seed {seed}: has_ready() said {expected}"
                checked += expected
                in_flight.extend(ready.messages)
                raft.advance()
        assert checked > 1_000
        assert any(raft.log.committed > 10 for raft in nodes.values()), f"seed {seed} idle"
