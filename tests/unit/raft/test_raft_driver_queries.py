"""The small queries a generic driver asks the core, so it needs no knowledge of Raft's types."""

from __future__ import annotations

import pytest

from distlab.core.ids import NO_NODE
from distlab.core.status import EngineStatus
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
    RequestVote,
    RequestVoteReply,
    SnapshotMeta,
    TimeoutNow,
)
from tests.unit.raft.raft_harness import N1, N2, N3, VOTERS, elect, make


def test_engine_status_is_the_cores_role_term_leader_and_indexes() -> None:
    follower = make(N2)
    assert follower.engine_status() == EngineStatus("follower", 0, NO_NODE, 0, 0)
    assert not follower.is_leader()
    leader = elect(make(N1), N2)
    assert leader.is_leader()
    assert leader.engine_status() == EngineStatus("leader", 1, N1, 1, 1)
    leader.propose(b"x")
    leader.step(AppendEntriesReply(1, N2, N1, success=True, match_index=2))
    status = leader.status()  # committed, not yet applied
    assert leader.engine_status() == EngineStatus(
        status.role.value, status.term, status.leader_id, status.commit_index,
        status.applied_index,
    ) == EngineStatus("leader", 1, N1, 2, 1)


def test_a_leaders_own_messages_may_leave_before_the_persist_and_answers_may_not() -> None:
    leader = elect(make(N1), N2, N3)
    leader.propose(b"x")
    leader_messages = leader.ready().messages
    leader.advance()
    assert leader_messages and all(isinstance(m, AppendEntries) for m in leader_messages)
    assert all(leader.sends_before_persist(m) for m in leader_messages)
    meta = SnapshotMeta(1, 1, Membership(VOTERS))
    for own in (Heartbeat(1, N1, N2, commit=0), InstallSnapshot(1, N1, N2, meta, b""),
                TimeoutNow(1, N1, N2)):
        assert leader.sends_before_persist(own)
    # a vote request depends on the persisted term and self-vote; answers acknowledge state
    candidate = make(N3, pre_vote=False)
    candidate.campaign()
    requests = candidate.ready().messages
    assert requests and not any(candidate.sends_before_persist(m) for m in requests)
    follower = make(N2)
    follower.step(AppendEntries(1, N1, N2, 0, 0, (Entry(1, 1, EntryKind.NORMAL, b"x"),), 0))
    [reply] = follower.ready().messages
    assert isinstance(reply, AppendEntriesReply) and not follower.sends_before_persist(reply)
    for answer in (RequestVoteReply(1, N2, N1, granted=True), HeartbeatReply(1, N2, N1),
                   InstallSnapshotReply(1, N2, N1, match_index=1),
                   RequestVote(1, N2, N1, last_log_index=0, last_log_term=0)):
        assert not follower.sends_before_persist(answer)


@pytest.mark.parametrize(
    ("entry", "command"),
    [
        (Entry(1, 1, EntryKind.NORMAL, b"put k v"), b"put k v"),
        (Entry(1, 1, EntryKind.NORMAL, b""), None),
        (Entry(1, 1, EntryKind.NOOP, b""), None),
        (Entry(1, 1, EntryKind.CONFIG, Membership(VOTERS).encode()), None),
    ],
    ids=["command", "empty", "no-op", "config"],
)
def test_an_entry_names_the_command_it_carries(entry: Entry, command: bytes | None) -> None:
    assert entry.command == command


@pytest.mark.parametrize("check_quorum", [True, False])
def test_leader_progress_tells_who_has_caught_up_and_who_answers(check_quorum: bool) -> None:
    leader = make(N1, check_quorum=check_quorum)
    assert leader.leader_progress() == {}
    elect(leader)
    assert leader.leader_progress() == {N2: (0, False), N3: (0, False)}
    leader.step(AppendEntriesReply(1, N2, N1, success=True, match_index=1))
    assert leader.leader_progress() == {N2: (1, True), N3: (0, False)}
    # an election timeout later, activity is counted afresh
    for _ in range(10):
        leader.tick()
    if check_quorum:
        assert leader.is_leader()  # N2 answered: with the leader itself, a quorum
    assert leader.leader_progress() == {N2: (1, False), N3: (0, False)}
    assert make(N2).leader_progress() == {}
