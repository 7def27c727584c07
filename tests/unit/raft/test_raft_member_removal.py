"""A member being removed hears of its removal, then keeps quiet."""

from __future__ import annotations

from distlab.protocols.raft import (
    AppendEntries,
    AppendEntriesReply,
    EntryKind,
    Heartbeat,
    Membership,
    MemoryStorage,
    RequestVote,
    Role,
)
from tests.unit.raft.raft_harness import N1, N2, N3, drain, elect, make


def test_the_removed_member_receives_its_removal_until_it_commits() -> None:
    leader = elect(make(N1), N2, N3)
    assert leader.remove_member(N3)
    sent = drain(leader)
    to_removed = [m for m in sent if isinstance(m, AppendEntries) and m.recipient == N3]
    assert [entry.kind for m in to_removed for entry in m.entries] == [EntryKind.CONFIG]
    assert leader.membership.voters == {N1, N2}

    # Node 2 alone commits the change in the new configuration; node 3 is then forgotten.
    index = leader.log.last_index()
    leader.step(AppendEntriesReply(1, N2, N1, success=True, match_index=index))
    assert leader.log.committed == index
    for _ in range(10):
        leader.tick()
    after_commit = drain(leader)
    assert any(isinstance(m, Heartbeat) and m.recipient == N2 for m in after_commit)
    assert not [m for m in after_commit if m.recipient == N3]


def test_a_member_that_holds_its_removal_never_campaigns() -> None:
    storage = MemoryStorage()
    removed = make(N3, storage)
    leader = elect(make(N1), N2, N3)
    assert leader.remove_member(N3)
    drain(leader)
    # Node 3 takes the leader's log: its no-op, then the change that removes node 3.
    entries = tuple(leader.log.slice(1, leader.log.last_index() + 1))
    assert entries[-1].kind is EntryKind.CONFIG
    removed.step(AppendEntries(1, N1, N3, 0, 0, entries, leader_commit=1))
    drain(removed, storage)
    assert removed.membership == Membership(frozenset({N1, N2}))
    for _ in range(100):  # many election timeouts without a word from the leader
        removed.tick()
    sent = drain(removed, storage)
    assert removed.role is Role.FOLLOWER
    assert not [m for m in sent if isinstance(m, RequestVote)]
