"""A group's replicated transaction records: what every replica applies, what a new leader
rebuilds its transaction core from, and what a snapshot keeps."""

from __future__ import annotations

import pytest

from distlab.apps.kv import KVStateMachine
from distlab.apps.txn_log import TxnLogMachine, decode_records, encode_records
from distlab.core.ids import NodeId
from distlab.protocols.txn import (
    CorruptTxnRecord,
    LockMode,
    LogRecord,
    Protocol,
    RecordKind,
    TxnConfig,
    TxnNode,
)
from distlab.runtime.host.machine import AddressBook, HostedMachine, txn_records_command

COORDINATOR = NodeId(1)
PARTICIPANTS = (NodeId(1), NodeId(2))


def prepared(txn: str, writes: tuple[tuple[str, str], ...]) -> LogRecord:
    return LogRecord(RecordKind.PREPARED, txn, coordinator=COORDINATOR,
                     participants=PARTICIPANTS, protocol=Protocol.TWO_PHASE,
                     priority=(5, txn), writes=writes,
                     locks=tuple((key, LockMode.EXCLUSIVE) for key, _ in writes))


def machine() -> tuple[KVStateMachine, TxnLogMachine]:
    shard = KVStateMachine()
    return shard, TxnLogMachine(shard.apply_writes, finished_limit=3)


def apply(records: TxnLogMachine, index: int, *entries: LogRecord) -> bytes:
    return records.apply(index, encode_records(entries))


def test_records_round_trip_through_an_entry() -> None:
    entries = [prepared("t1", (("a", "1"),)),
               LogRecord(RecordKind.COORDINATOR_COMMIT, "t1", participants=PARTICIPANTS,
                         reads=(("a", None),))]
    assert decode_records(encode_records(entries)) == entries
    with pytest.raises(CorruptTxnRecord):
        decode_records(encode_records(entries)[:-3])


def test_a_commit_writes_into_the_shard_and_an_abort_does_not() -> None:
    shard, records = machine()
    apply(records, 1, prepared("t1", (("a", "1"), ("b", "2"))), prepared("t2", (("c", "3"),)))
    assert shard.get(b"a") is None  # prepared is not committed
    apply(records, 2, LogRecord(RecordKind.COMMITTED, "t1"))
    apply(records, 3, LogRecord(RecordKind.ABORTED, "t2"))
    assert (shard.get(b"a"), shard.get(b"b"), shard.get(b"c")) == (b"1", b"2", None)
    # A duplicate COMMITTED (a retried proposal) writes nothing again.
    shard.apply_writes([("a", "9")])
    apply(records, 4, LogRecord(RecordKind.COMMITTED, "t1"))
    assert shard.get(b"a") == b"9"
    assert records.unfinished() == 0


def test_a_new_leader_recovers_locks_and_decisions() -> None:
    _, records = machine()
    apply(records, 1, prepared("t1", (("a", "1"),)), prepared("t2", (("b", "2"),)))
    apply(records, 2, LogRecord(RecordKind.COMMITTED, "t2"))
    apply(records, 3, LogRecord(RecordKind.COORDINATOR_COMMIT, "t3", participants=PARTICIPANTS,
                                reads=(("x", "7"),)))
    core = TxnNode(TxnConfig(node_id=NodeId(1), owner=lambda key: NodeId(1)),
                   records.records())
    # t1 is still prepared, its lock held; t2 is remembered as committed; t3 is being
    # committed by this group as coordinator, its reads kept for a client's retry.
    assert core.participant.locks.held_by("t1") == {"a": LockMode.EXCLUSIVE}
    assert core.participant.finished["t2"] is True
    assert core.coordinator.txns["t3"].reads == {"x": "7"}
    # A client's retry of t3 hears the outcome at once.
    core.begin("t3", (0, "t3"), (), Protocol.TWO_PHASE)
    outcomes = core.ready().outcomes
    assert [(o.txn, o.committed, o.reads) for o in outcomes] == [("t3", True, (("x", "7"),))]


def test_finished_outcomes_are_bounded() -> None:
    _, records = machine()
    for index in range(6):
        apply(records, index + 1, LogRecord(RecordKind.ABORTED, f"t{index}"))
    kept = [record.txn for record in records.records()]
    assert kept == ["t3", "t4", "t5"]


def test_the_records_ride_in_the_group_snapshot() -> None:
    shard, records = machine()
    hosted = HostedMachine(shard, AddressBook({}), txn_log=records)
    hosted.apply(1, txn_records_command(encode_records([prepared("t1", (("a", "1"),))])))
    hosted.apply(2, txn_records_command(encode_records([
        LogRecord(RecordKind.COORDINATOR_END, "t0", reads=(("a", None),))])))
    snapshot = hosted.snapshot()

    restored_shard, restored_records = machine()
    HostedMachine(restored_shard, AddressBook({}), txn_log=restored_records).restore(snapshot)
    assert restored_records.records() == records.records()
    # The commit after the snapshot still finds the writes PREPARED recorded.
    restored_records.apply(3, encode_records([LogRecord(RecordKind.COMMITTED, "t1")]))
    assert restored_shard.get(b"a") == b"1"


def test_an_unreadable_entry_is_answered_and_skipped() -> None:
    _, records = machine()
    assert b"cut short" in records.apply(1, b"\x01\x00\x00\x00\x09{}")
    assert records.records() == []
    with pytest.raises(ValueError, match="unreadable transaction records snapshot"):
        records.restore(b"{\"format\": 1}")
