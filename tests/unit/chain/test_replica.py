from __future__ import annotations

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.chain import (
    Ack,
    ChainConfig,
    Forward,
    Outcome,
    Problem,
    ReadMode,
    Role,
    Update,
    durable,
)
from tests.unit.chain.harness import Cluster

N1, N2, N3, N4 = NodeId(1), NodeId(2), NodeId(3), NodeId(4)


def leased(size: int = 3, bugs: tuple[str, ...] = ()) -> Cluster:
    cluster = Cluster(size, bugs)
    cluster.tick(3)  # the first renewals grant every lease
    return cluster


def test_roles_follow_the_configuration() -> None:
    cluster = Cluster(3)
    assert [cluster.replicas[n].role for n in (N1, N2, N3)] == [Role.HEAD, Role.MIDDLE,
                                                                Role.TAIL]
    assert all(replica.epoch == 1 for replica in cluster.replicas.values())


def test_a_write_is_answered_once_the_tail_applied_it() -> None:
    cluster = leased()
    seq = cluster.write(N1, 7, b"k", b"v1")
    assert seq == 1
    assert cluster.outcome(N1, 7) is None  # forwarded, not yet applied at the tail
    assert cluster.replicas[N1].sent == 1
    cluster.deliver()
    reply = cluster.outcome(N1, 7)
    assert reply is not None and reply.outcome is Outcome.OK and reply.seq == 1
    for replica in cluster.replicas.values():
        assert replica.last == 1 and replica.committed == 1 and replica.sent == 0


def test_writes_are_refused_away_from_the_head() -> None:
    cluster = leased()
    with pytest.raises(Problem) as refused:
        cluster.write(N2, 1, b"k", b"v")
    assert refused.value.outcome is Outcome.NOT_HEAD and refused.value.hint == N1


def test_cr_reads_only_at_the_tail() -> None:
    cluster = leased()
    cluster.write(N1, 1, b"k", b"v1")
    cluster.deliver()
    with pytest.raises(Problem):
        cluster.read(N2, 2, b"k", ReadMode.CR)
    cluster.read(N3, 3, b"k", ReadMode.CR)
    reply = cluster.outcome(N3, 3)
    assert reply is not None and reply.value == b"v1" and reply.how == "tail"


def test_craq_clean_read_answers_at_once_and_dirty_asks_the_tail() -> None:
    cluster = leased()
    cluster.write(N1, 1, b"k", b"v1")
    cluster.deliver()
    cluster.read(N2, 2, b"k", ReadMode.CRAQ)
    assert cluster.outcome(N2, 2).value == b"v1"  # type: ignore[union-attr]
    cluster.drop = {Ack}  # the tail's acknowledgement is held back: v2 stays dirty upstream
    cluster.write(N1, 3, b"k", b"v2")
    cluster.deliver()
    assert cluster.replicas[N2].value_of(b"k") == (2, b"v2")
    cluster.drop = set()
    cluster.read(N2, 4, b"k", ReadMode.CRAQ)
    cluster.deliver()
    reply = cluster.outcome(N2, 4)
    # The tail has applied v2 (it lacked only the way back up): the committed version is 2.
    assert reply is not None and reply.value == b"v2" and reply.how == "dirty"


def test_dirty_read_bug_answers_an_uncommitted_version() -> None:
    cluster = leased(bugs=("dirty-read",))
    cluster.drop = {Forward}
    cluster.write(N1, 1, b"k", b"v1")
    cluster.read(N1, 2, b"k", ReadMode.CRAQ)
    reply = cluster.outcome(N1, 2)
    assert reply is not None and reply.value == b"v1" and reply.seq > \
        cluster.replicas[N3].committed


def test_reply_before_tail_bug_answers_before_the_tail_applied() -> None:
    cluster = leased(bugs=("reply-before-tail",))
    cluster.write(N1, 1, b"k", b"v1")
    assert cluster.outcome(N1, 1) is not None
    assert cluster.replicas[N3].committed == 0


def test_messages_of_an_older_epoch_are_refused() -> None:
    cluster = leased()
    stale = Forward(0, N1, N2, (Update(1, b"k", b"x"),), 1)
    cluster.replicas[N2].step(stale)
    assert cluster.replicas[N2].last == 0
    assert cluster.replicas[N2].counters.refused_stale == 1
    assert cluster.replicas[N2].counters.stale_messages == {N1: 1}
    cluster.replicas[N2].configure(ChainConfig(0, (N2,)))
    assert cluster.replicas[N2].epoch == 1
    assert cluster.replicas[N2].counters.stale_configs == 1


def test_stale_epoch_bug_goes_back_to_an_older_configuration() -> None:
    cluster = leased(bugs=("stale-epoch-accepted",))
    cluster.remove(N1)
    assert cluster.replicas[N2].epoch == 2
    cluster.replicas[N2].configure(ChainConfig(1, (N1, N2, N3)))
    assert cluster.replicas[N2].epoch == 1


def test_head_failure_the_successor_becomes_head() -> None:
    cluster = leased()
    cluster.write(N1, 1, b"k", b"v1")
    cluster.deliver()
    cluster.crash(N1)
    cluster.remove(N1)
    assert cluster.replicas[N2].role is Role.HEAD
    cluster.tick(2)
    assert cluster.write(N2, 2, b"k", b"v2") == 2
    cluster.deliver()
    assert cluster.outcome(N2, 2).outcome is Outcome.OK  # type: ignore[union-attr]


def test_tail_failure_the_predecessor_becomes_tail_and_commits_what_it_holds() -> None:
    cluster = leased()
    cluster.crash(N3)
    cluster.write(N1, 1, b"k", b"v1")
    cluster.deliver()
    assert cluster.outcome(N1, 1) is None
    cluster.remove(N3)
    cluster.tick(2)
    assert cluster.replicas[N2].role is Role.TAIL
    assert cluster.outcome(N1, 1).outcome is Outcome.OK  # type: ignore[union-attr]


def test_middle_failure_the_predecessor_resends_what_the_successor_lacks() -> None:
    cluster = leased(4)
    cluster.drop = {Forward}
    cluster.write(N1, 1, b"k", b"v1")
    cluster.deliver()
    # v1 reached nobody: now let it reach n2 only, then n2 fails.
    cluster.drop = set()
    cluster.replicas[N2].step(Forward(1, N1, N2, (Update(1, b"k", b"v1"),), 1))
    cluster.replicas[N2].advance()
    cluster.queue.clear()
    cluster.crash(N2)
    assert cluster.replicas[N1].sent == 1 and cluster.replicas[N3].last == 0
    cluster.remove(N2)
    cluster.tick(3)
    assert cluster.replicas[N3].last == 1 and cluster.replicas[N4].last == 1
    assert cluster.outcome(N1, 1).outcome is Outcome.OK  # type: ignore[union-attr]


def test_skip_resend_bug_leaves_the_successor_stalled() -> None:
    cluster = leased(4, bugs=("skip-resend",))
    cluster.crash(N2)
    cluster.write(N1, 1, b"k", b"v1")
    cluster.deliver()
    cluster.remove(N2)
    cluster.tick(10)
    assert cluster.replicas[N3].last == 0
    assert cluster.outcome(N1, 1) is None


def test_a_replica_restarted_within_its_lease_resumes_its_place_from_its_disk() -> None:
    cluster = leased()
    cluster.write(N1, 1, b"a", b"1")
    cluster.deliver()
    cluster.crash(N2)
    cluster.write(N1, 2, b"a", b"2")
    cluster.deliver()
    replica = cluster.start(N2)
    assert replica.role is Role.MIDDLE and replica.last == 1
    cluster.tick(6)
    assert replica.last == 2 and cluster.replicas[N3].value_of(b"a") == (2, b"2")
    assert cluster.outcome(N1, 2).outcome is Outcome.OK  # type: ignore[union-attr]


def test_a_replica_restarted_from_a_snapshot_resumes_its_place() -> None:
    cluster = leased()
    cluster.write(N1, 1, b"a", b"1")
    cluster.write(N1, 2, b"b", b"1")
    cluster.deliver()
    before = cluster.replicas[N2]
    cluster.snapshot(N2)
    # Everything it holds was acknowledged and applied: the snapshot is one reset.
    assert [kind for kind, _ in cluster.disks[N2]] == [durable.EPOCH, durable.RESET]
    cluster.crash(N2)
    cluster.write(N1, 3, b"a", b"2")
    cluster.deliver()
    replica = cluster.start(N2)
    assert replica.role is Role.MIDDLE and replica.last == 2 and replica.epoch == before.epoch
    assert replica.digest_at(2) == before.digest_at(2)
    cluster.tick(6)
    assert replica.value_of(b"a") == (3, b"2") and replica.value_of(b"b") == (2, b"1")
    assert cluster.outcome(N1, 3).outcome is Outcome.OK  # type: ignore[union-attr]


def test_a_snapshot_keeps_what_the_successor_may_lack() -> None:
    cluster = leased(4)
    cluster.drop = {Forward}
    cluster.write(N1, 1, b"k", b"v1")
    cluster.deliver()
    cluster.drop = set()
    cluster.replicas[N2].step(Forward(1, N1, N2, (Update(1, b"k", b"v1"),), 1))
    cluster.replicas[N2].advance()
    cluster.queue.clear()
    # The head restarts from a snapshot while v1 has reached n2 only; then n2 fails.
    cluster.snapshot(N1)
    assert [kind for kind, _ in cluster.disks[N1]][-1] == durable.UPDATE
    cluster.crash(N1)
    cluster.start(N1)
    cluster.crash(N2)
    cluster.remove(N2)
    cluster.tick(6)
    assert cluster.replicas[N3].last == 1 and cluster.replicas[N4].value_of(b"k") == (1, b"v1")


def test_a_removed_replica_rejoins_as_the_new_tail_by_state_transfer() -> None:
    cluster = leased()
    cluster.write(N1, 1, b"a", b"1")
    cluster.write(N1, 2, b"b", b"2")
    cluster.deliver()
    cluster.crash(N2)
    cluster.remove(N2)
    cluster.start(N2)
    cluster.tick(3)
    assert cluster.master.config.joining == N2 or cluster.master.config.chain[-1] == N2
    cluster.tick(12)
    assert cluster.master.config.chain == (N1, N3, N2)
    replica = cluster.replicas[N2]
    assert replica.role is Role.TAIL and replica.synced
    assert replica.value_of(b"a") == (1, b"1")
    cluster.write(N1, 3, b"a", b"3")
    cluster.tick(4)  # n1 learns the new epoch at its next renewal, then resynchronises
    assert cluster.outcome(N1, 3).outcome is Outcome.OK  # type: ignore[union-attr]
    assert replica.value_of(b"a") == (3, b"3")


def test_the_chain_keeps_serving_while_a_replica_joins() -> None:
    cluster = leased()
    cluster.crash(N3)
    cluster.remove(N3)
    cluster.start(N3)
    cluster.tick(3)
    assert cluster.master.config.joining == N3
    cluster.write(N1, 1, b"k", b"v")
    cluster.deliver()
    assert cluster.outcome(N1, 1).outcome is Outcome.OK  # type: ignore[union-attr]
    cluster.tick(12)
    assert cluster.master.config.chain == (N1, N2, N3)
    assert cluster.replicas[N3].value_of(b"k") == (1, b"v")


def test_reads_stop_when_the_lease_runs_out() -> None:
    cluster = Cluster(3)
    with pytest.raises(Problem) as refused:
        cluster.read(N3, 1, b"k", ReadMode.CR)
    assert "lease" in str(refused.value)
