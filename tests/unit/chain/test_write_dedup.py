"""A client's retry of a write is applied at most once: the head finds the write in its
history by the client's name for it, answers as the first attempt, refuses an older request,
and the names travel with the history (down the chain, to disk and snapshots, in a state
transfer), so a later head recognises the retry too."""

from __future__ import annotations

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.chain import Forward, Outcome, Problem, Update, WriterMark, durable
from distlab.protocols.chain.durable import recover, snapshot_records
from tests.unit.chain.harness import Cluster

N1, N2, N3 = NodeId(1), NodeId(2), NodeId(3)
CLIENT = 77


def leased(bugs: tuple[str, ...] = ()) -> Cluster:
    cluster = Cluster(3, bugs)
    cluster.tick(3)  # the first renewals grant every lease
    return cluster


def ok(cluster: Cluster, node: NodeId, request: int) -> int:
    reply = cluster.outcome(node, request)
    assert reply is not None and reply.outcome is Outcome.OK, reply
    return reply.seq


def test_a_retry_of_a_committed_write_is_answered_with_its_first_seq() -> None:
    cluster = leased()
    assert cluster.write(N1, 1, b"k", b"v1", CLIENT, 1) == 1
    cluster.deliver()
    assert cluster.write(N1, 2, b"k", b"v1", CLIENT, 1) == 1
    assert ok(cluster, N1, 2) == 1
    assert all(replica.last == 1 for replica in cluster.replicas.values())


def test_a_retry_of_a_write_in_flight_is_answered_when_it_commits() -> None:
    cluster = leased()
    cluster.write(N1, 1, b"k", b"v1", CLIENT, 1)
    cluster.write(N1, 2, b"k", b"v1", CLIENT, 1)
    assert cluster.outcome(N1, 2) is None
    cluster.deliver()
    assert ok(cluster, N1, 1) == ok(cluster, N1, 2) == 1
    assert cluster.replicas[N3].last == 1


def test_the_next_request_is_a_new_write_and_an_older_one_is_refused() -> None:
    cluster = leased()
    cluster.write(N1, 1, b"k", b"v1", CLIENT, 1)
    assert cluster.write(N1, 2, b"k", b"v2", CLIENT, 2) == 2
    cluster.deliver()
    with pytest.raises(Problem) as refused:
        cluster.write(N1, 3, b"k", b"v1", CLIENT, 1)
    assert refused.value.outcome is Outcome.STALE
    assert cluster.replicas[N3].value_of(b"k") == (2, b"v2")
    # Another client's request 1 is its own.
    assert cluster.write(N1, 4, b"k", b"v3", CLIENT + 1, 1) == 3


def test_unnamed_writes_are_never_taken_for_retries() -> None:
    cluster = leased()
    cluster.write(N1, 1, b"k", b"v", 0, 0)
    cluster.write(N1, 2, b"k", b"v", 0, 0)
    assert cluster.replicas[N1].last == 2


def test_the_next_head_recognises_a_retry_of_a_write_the_failed_head_forwarded() -> None:
    cluster = leased()
    cluster.drop = {Forward}
    cluster.write(N1, 1, b"k", b"v1", CLIENT, 1)
    cluster.drop = set()
    # The write reached n2 only; then the head fails before anyone answered the client.
    cluster.replicas[N2].step(Forward(1, N1, N2, (Update(1, b"k", b"v1", CLIENT, 1),), 1))
    cluster.replicas[N2].advance()
    cluster.queue.clear()
    cluster.crash(N1)
    cluster.remove(N1)
    cluster.tick(2)
    assert cluster.write(N2, 2, b"k", b"v1", CLIENT, 1) == 1
    cluster.tick(2)
    assert ok(cluster, N2, 2) == 1
    assert cluster.replicas[N2].last == cluster.replicas[N3].last == 1


def test_the_names_survive_a_restart_from_a_snapshot_and_its_records() -> None:
    cluster = leased()
    cluster.write(N1, 1, b"a", b"1", CLIENT, 5)
    cluster.deliver()
    cluster.snapshot(N1)
    cluster.write(N1, 2, b"b", b"1", CLIENT + 1, 9)
    cluster.deliver()
    # The first write's name is in the snapshot's reset, the second's in its own record.
    assert [kind for kind, _ in cluster.disks[N1]] == [durable.EPOCH, durable.RESET,
                                                        durable.WRITE]
    cluster.crash(N1)
    replica = cluster.start(N1)
    cluster.tick(3)
    assert replica.write(3, b"a", b"1", CLIENT, 5) == 1
    assert replica.write(4, b"b", b"1", CLIENT + 1, 9) == 2
    assert replica.last == 2


def test_a_joining_replica_takes_the_names_with_the_state() -> None:
    cluster = leased()
    cluster.write(N1, 1, b"a", b"1", CLIENT, 3)
    cluster.deliver()
    cluster.crash(N2)
    cluster.remove(N2)
    cluster.start(N2)
    cluster.tick(15)
    assert cluster.master.config.chain == (N1, N3, N2)
    # The two others fail: the joiner, now alone, is head and still knows the write.
    for node in (N1, N3):
        cluster.crash(node)
        cluster.remove(node)
    cluster.tick(3)
    assert cluster.replicas[N2].write(2, b"a", b"1", CLIENT, 3) == 1


def test_marks_round_trip_through_records_and_old_resets_read_back_without_them() -> None:
    marks = [WriterMark(CLIENT, 4, 2), WriterMark(CLIENT + 1, 1, 3)]
    reset = durable.encode_reset(3, 0, [Update(3, b"k", b"v")], marks)
    stored = recover([(durable.EPOCH, durable.encode_epoch(1)), (durable.RESET, reset)])
    assert stored.writers == {mark.client: mark for mark in marks}
    assert recover(snapshot_records(stored)).writers == stored.writers
    # A reset written before writes were named ends after its versions.
    old = reset[:-(4 + 24 * len(marks))]
    assert recover([(durable.RESET, old)]).writers == {}
    with pytest.raises(ValueError):
        recover([(durable.RESET, reset + b"x")])


def test_forget_writers_bug_applies_a_retry_twice() -> None:
    cluster = leased(bugs=("forget-writers",))
    cluster.write(N1, 1, b"k", b"v1", CLIENT, 1)
    cluster.write(N1, 2, b"k", b"v1", CLIENT, 1)
    cluster.deliver()
    assert cluster.replicas[N3].last == 2
