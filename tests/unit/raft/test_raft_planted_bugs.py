"""Each bug of the catalogue, planted in the real core, changes exactly the behaviour it names.

Every scenario runs twice, without and with the bug, and the two runs differ where the bug
says they do. (Whether a simulator's sweep catches each bug is the simulator's test.)
"""

from __future__ import annotations

import dataclasses

import pytest

from distlab.core.ids import NO_NODE, NodeId
from distlab.protocols.raft import (
    BUG_CATALOGUE,
    AppendEntries,
    AppendEntriesReply,
    Config,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    MemoryStorage,
    Raft,
    RequestVote,
    RequestVoteReply,
    Role,
)
from distlab.protocols.raft.bugs import PlantedBugs
from tests.unit.raft.raft_harness import N1, N2, N3, VOTERS, drain, elect, make

PLANTED = pytest.mark.parametrize("planted", [False, True], ids=["correct", "planted"])


def make_with(
    bug: str, planted: bool, node: NodeId, storage: MemoryStorage | None = None,
    **overrides: object,
) -> Raft:
    """A core with `bug` planted, or not."""
    chosen = frozenset({bug}) if planted else frozenset()
    return make(node, storage, planted_bugs=chosen, **overrides)


def entries(term: int, first: int, last: int) -> tuple[Entry, ...]:
    return tuple(Entry(term, i, EntryKind.NORMAL, b"%d" % i) for i in range(first, last + 1))


# --- the catalogue ---


def test_the_catalogue_names_exactly_the_known_bugs_one_line_each() -> None:
    assert sorted(BUG_CATALOGUE) == sorted([
        "old-term-commit", "stale-vote-count", "vote-not-persisted", "no-prev-log-check",
        "no-up-to-date-check", "truncate-on-stale-append", "read-without-confirm",
        "ack-before-persist",
    ])
    assert all(text and "\n" not in text for text in BUG_CATALOGUE.values())
    flags = [field.name for field in dataclasses.fields(PlantedBugs)]
    assert sorted(flags) == sorted(name.replace("-", "_") for name in BUG_CATALOGUE)
    every = PlantedBugs.from_names(BUG_CATALOGUE)
    assert all(getattr(every, flag) for flag in flags)
    assert not any(getattr(PlantedBugs.from_names([]), flag) for flag in flags)


def test_an_unknown_bug_is_a_local_mistake() -> None:
    with pytest.raises(ValueError, match="unknown planted bugs: off-by-one"):
        Config(node_id=N1, voters=VOTERS, planted_bugs=frozenset({"off-by-one"}))
    assert Config(node_id=N1).planted_bugs == frozenset()


# --- each bug ---


@PLANTED
def test_old_term_commit(planted: bool) -> None:
    """Figure 8: the leader of term 3 holds entry 1 of term 1 on a majority."""
    storage = MemoryStorage()
    storage.append([Entry(1, 1, EntryKind.NORMAL, b"old")])
    storage.set_hard_state(HardState(term=2))
    leader = make_with("old-term-commit", planted, N1, storage, pre_vote=False)
    leader.campaign()
    leader.step(RequestVoteReply(3, N2, N1, granted=True))
    assert leader.role is Role.LEADER and leader.term == 3
    drain(leader)
    leader.step(AppendEntriesReply(3, N2, N1, success=True, match_index=1))
    assert leader.log.committed == (1 if planted else 0)


@PLANTED
def test_stale_vote_count(planted: bool) -> None:
    candidate = make_with("stale-vote-count", planted, N1, pre_vote=False)
    candidate.campaign()
    candidate.campaign()  # the first election timed out: term 2
    assert candidate.term == 2
    candidate.step(RequestVoteReply(1, N2, N1, granted=True))  # late, from term 1
    assert candidate.role is (Role.LEADER if planted else Role.CANDIDATE)


@PLANTED
def test_vote_not_persisted(planted: bool) -> None:
    storage = MemoryStorage()
    voter = make_with("vote-not-persisted", planted, N3, storage)
    voter.step(RequestVote(1, N1, N3, last_log_index=0, last_log_term=0))
    ready = voter.ready()
    assert ready.messages == (RequestVoteReply(1, N3, N1, granted=True),)
    assert ready.hard_state == HardState(term=1, vote=NO_NODE if planted else N1)
    assert voter.vote == N1  # it remembers its vote until it crashes
    storage.set_hard_state(ready.hard_state)
    voter.advance()
    restarted = make_with("vote-not-persisted", planted, N3, storage)
    restarted.step(RequestVote(1, N2, N3, last_log_index=0, last_log_term=0))
    assert drain(restarted) == [RequestVoteReply(1, N3, N2, granted=planted)]


@PLANTED
def test_no_prev_log_check(planted: bool) -> None:
    follower = make_with("no-prev-log-check", planted, N2)
    follower.step(AppendEntries(1, N1, N2, 0, 0, entries(1, 1, 2), leader_commit=0))
    drain(follower)
    # a leader of term 2 whose entry 2 is of term 2, not 1
    follower.step(AppendEntries(2, N3, N2, 2, 2, entries(2, 3, 3), leader_commit=0))
    [reply] = drain(follower)
    assert isinstance(reply, AppendEntriesReply)
    assert reply.success is planted
    assert follower.log.last_index() == (3 if planted else 2)
    # a previous entry beyond the log is refused either way
    follower.step(AppendEntries(2, N3, N2, 9, 2, entries(2, 10, 10), leader_commit=0))
    [beyond] = drain(follower)
    assert isinstance(beyond, AppendEntriesReply) and not beyond.success


@PLANTED
def test_no_up_to_date_check(planted: bool) -> None:
    voter = make_with("no-up-to-date-check", planted, N3, check_quorum=False)
    voter.step(AppendEntries(1, N1, N3, 0, 0, entries(1, 1, 1), leader_commit=0))
    drain(voter)
    voter.step(RequestVote(2, N2, N3, last_log_index=0, last_log_term=0))
    assert drain(voter) == [RequestVoteReply(2, N3, N2, granted=planted)]


@PLANTED
def test_truncate_on_stale_append(planted: bool) -> None:
    storage = MemoryStorage()
    follower = make_with("truncate-on-stale-append", planted, N2, storage)
    follower.step(AppendEntries(1, N1, N2, 0, 0, entries(1, 1, 3), leader_commit=0))
    drain(follower, storage)
    # the leader's first, shorter append, overtaken on the way
    follower.step(AppendEntries(1, N1, N2, 0, 0, entries(1, 1, 1), leader_commit=0))
    [reply] = drain(follower, storage)
    assert isinstance(reply, AppendEntriesReply) and reply.success and reply.match_index == 1
    assert follower.log.last_index() == (1 if planted else 3)
    assert len(storage.entries()) == (1 if planted else 3)  # the truncation reaches the disk


@PLANTED
def test_read_without_confirm(planted: bool) -> None:
    leader = elect(make_with("read-without-confirm", planted, N1), N2)
    assert leader.read_index(b"r")
    ready = leader.ready()
    heartbeats = [m for m in ready.messages if isinstance(m, Heartbeat)]
    if planted:
        assert [state.context for state in ready.read_states] == [b"r"] and not heartbeats
    else:
        assert ready.read_states == () and len(heartbeats) == 2  # the round it waits for


@PLANTED
def test_ack_before_persist(planted: bool) -> None:
    follower = make_with("ack-before-persist", planted, N2)
    follower.step(AppendEntries(1, N1, N2, 0, 0, entries(1, 1, 2), leader_commit=0))
    ready = follower.ready()
    [ack] = ready.messages
    assert ready.entries and isinstance(ack, AppendEntriesReply) and ack.success
    assert follower.sends_before_persist(ack) is planted
    follower.advance()
    follower.step(AppendEntries(1, N1, N2, 7, 1, (), leader_commit=0))
    [rejection] = follower.ready().messages
    assert isinstance(rejection, AppendEntriesReply) and not rejection.success
    assert not follower.sends_before_persist(rejection)  # it acknowledges nothing
