"""Multi-Paxos records in the shared log: the file log replays what the memory log keeps,
each group sees only its own, a later promise or compaction supersedes what it covers, a
batch with a compaction is durable on return, and a crash keeps only synced records."""

from __future__ import annotations

from pathlib import Path

from distlab.storage import (
    FileSharedLog,
    MemorySharedLog,
    PaxosRecord,
    PaxosRecordKind,
)

PROMISE, ACCEPT, DECIDE, COMPACT = (PaxosRecordKind.PROMISE, PaxosRecordKind.ACCEPT,
                                    PaxosRecordKind.DECIDE, PaxosRecordKind.COMPACT)


def record(kind: PaxosRecordKind, slot: int, body: bytes = b"") -> PaxosRecord:
    return PaxosRecord(kind, slot, body)


WRITES = [
    record(PROMISE, 0, b"ballot 1"),
    record(ACCEPT, 3, b"slots 1-3"),
    record(DECIDE, 2, b"slots 1-2"),
    record(PROMISE, 0, b"ballot 2"),
    record(ACCEPT, 6, b"slots 4-6"),
    record(COMPACT, 3),
    record(PROMISE, 0, b"ballot 2"),
    record(DECIDE, 5, b"slots 3-5"),
]
# What a restart needs: the latest promise and compaction, and what names a slot after it.
LIVE = [record(ACCEPT, 6, b"slots 4-6"), record(COMPACT, 3), record(PROMISE, 0, b"ballot 2"),
        record(DECIDE, 5, b"slots 3-5")]


def test_the_file_log_replays_what_the_memory_log_keeps(tmp_path: Path) -> None:
    memory = MemorySharedLog(2)
    with FileSharedLog.open(tmp_path, groups=2) as file_log:
        for shared in (memory, file_log):
            for written in WRITES:
                shared.group(1).append_paxos([written])
            shared.group(0).append_paxos([record(PROMISE, 0, b"group zero")])
            shared.sync()
            assert shared.group(1).paxos_records() == LIVE
    with FileSharedLog.open(tmp_path, groups=2) as reopened:
        assert reopened.group(1).paxos_records() == LIVE
        assert reopened.group(0).paxos_records() == [record(PROMISE, 0, b"group zero")]
        assert reopened.group(0).last_index() == 0  # no Raft entry came of them


def test_a_batch_with_a_compaction_is_durable_on_return() -> None:
    for batch, durable in (([record(ACCEPT, 1)], False),
                           ([record(ACCEPT, 1), record(COMPACT, 1)], True)):
        shared = MemorySharedLog(1)
        shared.group(0).append_paxos(batch)
        assert (shared.durable_seq == shared.written_seq) is durable


def test_a_crash_keeps_the_synced_records_only() -> None:
    shared = MemorySharedLog(1)
    shared.group(0).append_paxos([record(PROMISE, 0, b"kept")])
    shared.sync()
    shared.group(0).append_paxos([record(PROMISE, 0, b"lost")])
    assert shared.crashed().group(0).paxos_records() == [record(PROMISE, 0, b"kept")]
    assert shared.crashed(keep_unsynced=1).group(0).paxos_records() == [
        record(PROMISE, 0, b"lost")]


def test_old_segments_go_once_a_compaction_covers_them(tmp_path: Path) -> None:
    with FileSharedLog.open(tmp_path, groups=1, segment_size=2048) as shared:
        log = shared.group(0)
        log.append_paxos([record(PROMISE, 0, b"ballot")])
        for slot in range(1, 101):
            log.append_paxos([record(ACCEPT, slot, b"x" * 50)])
        shared.sync()
        before = len(shared.wal.segments())
        log.append_paxos([record(COMPACT, 90), record(PROMISE, 0, b"ballot")])
        assert len(shared.wal.segments()) < before
    with FileSharedLog.open(tmp_path, groups=1, segment_size=2048) as reopened:
        live = reopened.group(0).paxos_records()
        assert [r.slot for r in live if r.kind is ACCEPT] == list(range(91, 101))
        assert [r.body for r in live if r.kind is PROMISE] == [b"ballot"]
