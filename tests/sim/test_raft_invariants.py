"""The Raft checker's properties on members made to order: what must be flagged, and what
must not (a checker that cries wolf is as bad as one that sleeps)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from distlab.core.ids import NO_NODE, NodeId
from distlab.protocols.raft import (
    AppendEntriesReply,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Ready,
    RequestVoteReply,
    Role,
)
from distlab.protocols.raft.log import RaftLog
from distlab.sim.raft.invariants import InvariantViolation, RaftInvariants

VOTERS = frozenset(NodeId(n) for n in range(1, 6))


def member(role: Role, term: int, entries: list[Entry], committed: int = 0,
           vote: int = NO_NODE) -> Any:
    """What the checker reads of a core: its role, term, vote, log and membership."""
    return SimpleNamespace(role=role, term=term, vote=NodeId(vote),
                           log=RaftLog(0, 0, entries, committed),
                           membership=Membership(VOTERS))


def ready(*, committed: tuple[Entry, ...] = (), entries: tuple[Entry, ...] = (),
          hard_state: HardState | None = None) -> Ready:
    return Ready(hard_state=hard_state, entries=entries, snapshot=None, messages=(),
                 committed_entries=committed, read_states=())


def elected(checker: RaftInvariants, leader: int, term: int, voters: tuple[int, ...],
            core: Any) -> None:
    for voter in voters:
        checker.message_sent(NodeId(voter), core,
                             RequestVoteReply(term, NodeId(voter), NodeId(leader), granted=True))
    checker.after_ready(NodeId(leader), core, ready(
        hard_state=HardState(term, NodeId(leader), core.log.committed)))


def noop(term: int, index: int) -> Entry:
    return Entry(term, index, EntryKind.NOOP, b"")


def test_a_stale_leader_of_an_earlier_term_need_not_hold_a_later_commit() -> None:
    """The old checker failed 5-node seed 101: "n3, leader of term 1, lacks committed entry
    1/2". Leader completeness is about leaders of terms after the entry's commit."""
    checker = RaftInvariants(0)
    committed = noop(2, 1)
    leader = member(Role.FOLLOWER, 2, [committed], committed=0)
    stale = member(Role.FOLLOWER, 1, [])
    checker.node_started(NodeId(1), leader)
    checker.node_started(NodeId(3), stale)
    leader.role = Role.LEADER
    elected(checker, 1, 2, (1, 2, 4), leader)
    leader.log.commit_to(1)
    leader.log.applied_to(1)
    checker.after_ready(NodeId(1), leader, ready(committed=(committed,)))
    # n3 led term 1 all along, cut off; the checker sees its leadership only now
    stale.role = Role.LEADER
    elected(checker, 3, 1, (3, 4, 5), stale)
    # a leader of a later term without the entry is a violation, though
    late = member(Role.FOLLOWER, 3, [noop(1, 1)])
    checker.node_started(NodeId(5), late)
    late.role = Role.LEADER
    with pytest.raises(InvariantViolation, match="leader completeness: n5, leader of term 3"):
        elected(checker, 5, 3, (5, 3, 2), late)


def test_a_leader_elected_without_a_majority_of_this_terms_votes_is_flagged() -> None:
    checker = RaftInvariants(0)
    core = member(Role.FOLLOWER, 4, [])
    checker.node_started(NodeId(2), core)
    # votes granted in term 3 do not elect anyone in term 4
    for voter in (3, 4):
        checker.message_sent(NodeId(voter), core,
                             RequestVoteReply(3, NodeId(voter), NodeId(2), granted=True))
    core.role = Role.LEADER
    with pytest.raises(InvariantViolation, match="election rule: n2 leads term 4"):
        elected(checker, 2, 4, (), core)


def test_a_leader_committing_an_older_terms_entry_by_counting_is_flagged() -> None:
    checker = RaftInvariants(0)
    old = Entry(1, 1, EntryKind.NORMAL, b"x")
    core = member(Role.FOLLOWER, 3, [old, noop(3, 2)])
    checker.node_started(NodeId(1), core)
    core.role = Role.LEADER
    elected(checker, 1, 3, (1, 2, 3), core)
    core.log.commit_to(1)  # the entry of term 1 alone, before the leader's own no-op
    core.log.applied_to(1)
    with pytest.raises(InvariantViolation, match="commitment rule: n1, leader of term 3"):
        checker.after_ready(NodeId(1), core, ready(committed=(old,)))


def test_an_acknowledged_entry_must_survive_a_restart() -> None:
    checker = RaftInvariants(0)
    entry = Entry(2, 1, EntryKind.NORMAL, b"x")
    follower = member(Role.FOLLOWER, 2, [entry])
    checker.node_started(NodeId(2), follower)
    checker.message_sent(NodeId(2), follower,
                         AppendEntriesReply(2, NodeId(2), NodeId(1), success=True, match_index=1))
    checker.node_stopped(NodeId(2))
    # it comes back having lost the entry it acknowledged (and the term it spoke in)
    forgetful = member(Role.FOLLOWER, 2, [])
    with pytest.raises(InvariantViolation, match="durability: n2 acknowledged entry 1/2"):
        checker.node_started(NodeId(2), forgetful)
