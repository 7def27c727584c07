"""What the transport tells the core: a peer it cannot reach, a snapshot that failed or landed."""

from __future__ import annotations

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.raft import (
    AppendEntries,
    AppendEntriesReply,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    Message,
    Raft,
)
from distlab.protocols.raft.progress import ProgressState
from tests.unit.raft.raft_harness import N1, N2, N3, drain, elect, make


def appends_to(messages: list[Message], peer: NodeId) -> list[AppendEntries]:
    return [m for m in messages if isinstance(m, AppendEntries) and m.recipient == peer]


def leader(*acknowledged_by: NodeId) -> Raft:
    """Node 1, leader of term 1; the followers named have acknowledged its no-op."""
    return elect(make(N1), *acknowledged_by)


# --- unreachable peers ---


def test_an_unreachable_peer_is_probed_instead_of_streamed_to() -> None:
    raft = leader(N2, N3)
    assert raft.progress[N2].state is ProgressState.REPLICATE
    for command in (b"a", b"b", b"c"):
        raft.propose(command)
        assert len(appends_to(drain(raft), N2)) == 1  # streamed, nothing acknowledged yet
    raft.report_unreachable(N2)
    assert raft.progress[N2].state is ProgressState.PROBE
    raft.propose(b"d")
    sent = drain(raft)
    # one probe from what N2 is known to hold, carrying everything after it ...
    [probe] = appends_to(sent, N2)
    assert probe.prev_log_index == 1 and [e.data for e in probe.entries] == [b"a", b"b", b"c", b"d"]
    assert len(appends_to(sent, N3)) == 1
    # ... and nothing more to N2 until it answers, while N3 is still streamed to
    raft.propose(b"e")
    sent = drain(raft)
    assert appends_to(sent, N2) == [] and len(appends_to(sent, N3)) == 1
    raft.step(AppendEntriesReply(1, N2, N1, success=True, match_index=5))
    assert raft.progress[N2].state is ProgressState.REPLICATE
    [catch_up] = appends_to(drain(raft), N2)
    assert [e.data for e in catch_up.entries] == [b"e"]


def test_an_unreachable_report_outside_optimistic_streaming_changes_nothing() -> None:
    raft = leader(N3)  # N2 never answered: it is still being probed
    assert raft.progress[N2].state is ProgressState.PROBE
    before = (raft.progress[N2].next, raft.progress[N2].probe_sent)
    raft.report_unreachable(N2)
    assert (raft.progress[N2].next, raft.progress[N2].probe_sent) == before
    raft.report_unreachable(NodeId(9))  # not a member: nothing to do
    follower = make(N2)
    follower.report_unreachable(N1)
    follower.report_snapshot(N1, succeeded=False)
    assert not follower.has_ready()


def test_a_report_about_oneself_is_a_local_mistake() -> None:
    raft = leader(N2, N3)
    with pytest.raises(ValueError, match="about itself"):
        raft.report_unreachable(N1)
    with pytest.raises(ValueError, match="about itself"):
        raft.report_snapshot(N1, succeeded=True)


def test_reports_wait_like_every_input_for_the_ready_to_be_acknowledged() -> None:
    raft = leader(N2, N3)
    raft.propose(b"a")
    raft.ready()
    with pytest.raises(RuntimeError):
        raft.report_unreachable(N2)
    with pytest.raises(RuntimeError):
        raft.report_snapshot(N2, succeeded=True)


# --- snapshots ---


def leader_sending_a_snapshot_to_n2() -> Raft:
    """N2 lags behind entries the leader has compacted; it is sent a snapshot."""
    raft = leader(N3)
    raft.propose_batch([b"a", b"b", b"c", b"d", b"e"])
    raft.step(AppendEntriesReply(1, N3, N1, success=True, match_index=6))
    drain(raft)
    assert raft.log.applied == 6
    raft.compact(6, b"state")
    raft.step(HeartbeatReply(1, N2, N1))
    [snapshot] = [m for m in drain(raft) if isinstance(m, InstallSnapshot)]
    assert snapshot.recipient == N2 and snapshot.meta.last_index == 6
    assert raft.progress[N2].state is ProgressState.SNAPSHOT
    return raft


def snapshots_sent(messages: list[Message]) -> list[InstallSnapshot]:
    return [m for m in messages if isinstance(m, InstallSnapshot)]


def test_a_failed_snapshot_is_sent_again_at_the_next_heartbeat_reply() -> None:
    raft = leader_sending_a_snapshot_to_n2()
    raft.report_snapshot(N2, succeeded=False)
    progress = raft.progress[N2]
    assert progress.state is ProgressState.PROBE and progress.next == 1
    raft.propose(b"f")
    assert appends_to(drain(raft), N2) == []  # paused until N2 answers
    raft.step(HeartbeatReply(1, N2, N1))
    [again] = snapshots_sent(drain(raft))
    assert again.recipient == N2 and again.meta.last_index == 6


def test_without_a_report_a_lost_snapshot_waits_to_be_presumed_lost() -> None:
    raft = leader_sending_a_snapshot_to_n2()
    raft.step(HeartbeatReply(1, N2, N1))
    assert snapshots_sent(drain(raft)) == []
    assert raft.progress[N2].state is ProgressState.SNAPSHOT


def test_a_delivered_snapshot_waits_for_the_followers_reply_then_replication_resumes() -> None:
    raft = leader_sending_a_snapshot_to_n2()
    raft.report_snapshot(N2, succeeded=True)
    progress = raft.progress[N2]
    assert progress.state is ProgressState.PROBE and progress.next == 7
    raft.propose(b"f")
    assert appends_to(drain(raft), N2) == []  # the follower has not answered yet
    raft.step(InstallSnapshotReply(1, N2, N1, match_index=6))
    assert progress.state is ProgressState.REPLICATE and progress.match == 6
    [append] = appends_to(drain(raft), N2)
    assert append.prev_log_index == 6 and [e.data for e in append.entries] == [b"f"]


def test_a_snapshot_report_for_a_peer_not_receiving_one_changes_nothing() -> None:
    raft = leader(N2, N3)
    raft.report_snapshot(N2, succeeded=False)
    assert raft.progress[N2].state is ProgressState.REPLICATE
