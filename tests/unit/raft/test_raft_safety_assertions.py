"""The core asserts what only a broken protocol could cause, and counts what a bad peer sends.

A second leader in one term, a commit index that goes back, a log that stops matching the
leader's: these fail an assertion (they stay on in production). A malformed message, one for
another node, or nonsense from a peer is rejected and counted and never trips an assertion.
"""

from __future__ import annotations

from random import Random

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.raft import (
    AppendEntries,
    AppendEntriesReply,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    Membership,
    MemoryStorage,
    Message,
    Raft,
    RequestVote,
    RequestVoteReply,
    Role,
    SnapshotMeta,
    TimeoutNow,
)
from tests.unit.raft.raft_harness import N1, N2, N3, VOTERS, drain, elect, make

STRANGER = NodeId(7)  # not a member: what it says must never crash a member


def leader_of_term_1(storage: MemoryStorage | None = None) -> Raft:
    return elect(make(N1, storage), storage=storage)


# --- one leader per term ---


@pytest.mark.parametrize(
    "claim",
    [
        Heartbeat(1, N2, N1, commit=0),
        AppendEntries(1, N2, N1, 0, 0, (), leader_commit=0),
        InstallSnapshot(1, N2, N1, SnapshotMeta(1, 1, Membership(VOTERS)), b""),
    ],
    ids=["heartbeat", "append", "snapshot"],
)
def test_a_leader_hearing_from_another_leader_of_its_term_fails_an_assertion(
    claim: Message,
) -> None:
    leader = leader_of_term_1()
    with pytest.raises(AssertionError, match="two leaders in term 1: n1 and n2"):
        leader.step(claim)


def test_a_follower_hearing_from_two_leaders_of_one_term_fails_an_assertion() -> None:
    follower = make(N2)
    follower.step(Heartbeat(1, N1, N2, commit=0))
    drain(follower)
    assert follower.leader_id == N1
    with pytest.raises(AssertionError, match="two leaders in term 1: n1 and n3"):
        follower.step(AppendEntries(1, N3, N2, 0, 0, (), leader_commit=0))


def test_a_stranger_claiming_to_lead_our_term_is_rejected_and_counted() -> None:
    leader = leader_of_term_1()
    leader.step(Heartbeat(1, STRANGER, N1, commit=0))
    assert leader.rejected_messages == 1 and leader.role is Role.LEADER
    follower = make(N2)
    follower.step(Heartbeat(1, N1, N2, commit=0))
    drain(follower)
    entry = (Entry(1, 1, EntryKind.NORMAL, b"not from the leader"),)
    follower.step(AppendEntries(1, STRANGER, N2, 0, 0, entry, leader_commit=0))
    assert follower.rejected_messages == 1
    assert follower.leader_id == N1 and follower.log.last_index() == 0


def test_a_leader_needs_its_own_vote() -> None:
    candidate = make(N1)
    candidate.campaign()
    candidate.step(RequestVoteReply(1, N2, N1, granted=True, pre_vote=True))
    assert candidate.role is Role.CANDIDATE
    candidate.vote = N2  # as if the vote for itself had been lost
    with pytest.raises(AssertionError, match="without its own vote"):
        candidate.step(RequestVoteReply(1, N2, N1, granted=True))


# --- commit index and log matching ---


def test_the_commit_index_never_goes_back() -> None:
    storage = MemoryStorage()
    leader = leader_of_term_1(storage)
    leader.step(AppendEntriesReply(1, N2, N1, success=True, match_index=1))
    drain(leader, storage)
    assert storage.hard_state().commit == 1
    leader.log.committed = 0  # what a broken commit rule would do
    with pytest.raises(AssertionError, match="commit index went back from 1 to 0"):
        leader.ready()


def test_terms_never_go_back_along_the_log() -> None:
    leader = leader_of_term_1()
    with pytest.raises(AssertionError, match="terms go back"):
        leader.log.append([Entry(0, leader.log.last_index() + 1, EntryKind.NORMAL, b"")])


# --- what a bad peer says is counted, never raised ---


def test_a_rejection_of_an_index_beyond_the_leaders_log_is_counted() -> None:
    leader = leader_of_term_1()
    leader.step(AppendEntriesReply(1, N2, N1, success=True, match_index=1))
    drain(leader)
    leader.step(
        AppendEntriesReply(1, N2, N1, success=False, rejected_index=50, conflict_index=40)
    )
    assert leader.rejected_messages == 1
    assert drain(leader) == []


def test_an_echo_of_a_read_round_never_started_confirms_nothing() -> None:
    leader = leader_of_term_1()
    leader.step(AppendEntriesReply(1, N2, N1, success=True, match_index=1))
    drain(leader)
    assert leader.read_index(b"r")
    drain(leader)
    leader.step(HeartbeatReply(1, N2, N1, read_round=99))
    assert leader.rejected_messages == 1
    assert not leader.ready().read_states
    leader.advance()
    leader.step(HeartbeatReply(1, N2, N1, read_round=1))
    assert [state.context for state in leader.ready().read_states] == [b"r"]


def _random_entries(rng: Random, prev_index: int) -> tuple[Entry, ...]:
    entries = []
    index = prev_index + 1 + (rng.random() < 0.1)  # sometimes not contiguous
    for _ in range(rng.randrange(4)):
        kind = rng.choice([EntryKind.NORMAL, EntryKind.NORMAL, EntryKind.NOOP, EntryKind.CONFIG])
        if kind is EntryKind.CONFIG:
            data = rng.choice([b"voters=1,2,3;learners=", b"voters=1,2;learners=3", b"junk"])
        else:
            data = b"x"
        entries.append(Entry(rng.randrange(-1, 6), index, kind, data))
        index += 1
    return tuple(entries)


def _random_message(rng: Random, raft: Raft) -> Message:
    """A message a member must survive: nonsense replies from peers, and anything at all
    from a stranger or addressed to another node."""
    members = sorted(raft.membership.members - {raft.id}) or [N2]
    recipient = raft.id if rng.random() < 0.9 else rng.choice([N2, N3, STRANGER, NodeId(0)])
    term = max(0, raft.term + rng.choice([-1, *[0] * 30, 1]))

    def index() -> int:
        last = raft.log.last_index()
        return rng.randrange(-1, last + 2) if rng.random() < 0.7 else rng.randrange(last, last + 20)

    kind = rng.randrange(9)
    if kind < 4:  # a reply, from a member or a stranger, with arbitrary content
        sender = rng.choice([*members, STRANGER])
        if kind == 0:
            return AppendEntriesReply(
                term, sender, recipient, success=rng.random() < 0.5, match_index=index(),
                rejected_index=index(), conflict_term=rng.randrange(-1, 5),
                conflict_index=index(), read_round=rng.choice([-1, 0, 0, 0, 1, 9]),
            )
        if kind == 1:
            return HeartbeatReply(term, sender, recipient, read_round=rng.choice([-1, 0, 1, 9]),
                                  last_log_index=index())
        if kind == 2:
            return InstallSnapshotReply(term, sender, recipient, match_index=index())
        return RequestVoteReply(term, sender, recipient, granted=rng.random() < 0.5,
                                pre_vote=rng.random() < 0.5)
    # a request: only a stranger (or a bad sender id) sends these, so no second leader of a
    # term can come from a member
    sender = rng.choice([STRANGER, STRANGER, STRANGER, raft.id, NodeId(0)])
    if kind == 4:
        prev_index = index()
        return AppendEntries(term, sender, recipient, prev_index, rng.randrange(-1, 5),
                             _random_entries(rng, prev_index), leader_commit=index(),
                             read_round=rng.randrange(3))
    if kind == 5:
        return Heartbeat(term, sender, recipient, commit=index())
    if kind == 6:
        voters = frozenset(rng.sample(sorted(VOTERS), rng.randrange(0, 3)))
        meta = SnapshotMeta(index(), rng.randrange(-1, 5), Membership(voters))
        return InstallSnapshot(term, sender, recipient, meta, b"state")
    if kind == 7:
        return RequestVote(term, sender, recipient, index(), rng.randrange(-1, 5),
                           pre_vote=rng.random() < 0.5, transfer=rng.random() < 0.2)
    return TimeoutNow(term, sender, recipient)


@pytest.mark.parametrize("seed", range(12))
def test_nonsense_from_peers_never_trips_an_assertion(seed: int) -> None:
    rng = Random(seed)
    storage = MemoryStorage()
    raft = leader_of_term_1(storage)
    raft.propose_batch([b"a", b"b", b"c"])
    for voter in (N2, N3):
        raft.step(AppendEntriesReply(1, voter, N1, success=True, match_index=4))
    drain(raft, storage)
    if seed % 2:
        # a leader holding a snapshot, so that falling back on one is possible
        snapshot = raft.compact(3, b"state")
        storage.apply_snapshot(snapshot)
    steps_as_leader = 0
    for _ in range(3_000):
        raft.step(_random_message(rng, raft))
        drain(raft, storage)
        if rng.random() < 0.05:
            raft.tick()
            drain(raft, storage)
        if raft.role is Role.LEADER:
            steps_as_leader += 1
        elif rng.random() < 0.2:
            _elect_again(raft)
            drain(raft, storage)
    assert raft.rejected_messages > 100
    assert steps_as_leader > 1_000


def _elect_again(raft: Raft) -> None:
    raft.campaign()
    if raft.role is Role.PRE_CANDIDATE:
        raft.step(RequestVoteReply(raft.term + 1, N2, raft.id, granted=True, pre_vote=True))
    if raft.role is Role.CANDIDATE:
        raft.step(RequestVoteReply(raft.term, N2, raft.id, granted=True))
