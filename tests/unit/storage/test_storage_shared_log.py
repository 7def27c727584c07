"""The log a node's groups share: tagged records, one fsync for all groups, per-group
recovery, truncation and compaction confined to their group, segment deletion that never
takes another group's live entries, and logs written before there were groups."""

import logging
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from distlab.storage import (
    CorruptLogError,
    FileLogStore,
    FileSharedLog,
    LogEntry,
    LogStore,
    MemorySharedLog,
    SharedLog,
    StorageClosedError,
    StorageError,
    WriteAheadLog,
)
from distlab.storage.log_store import RECORD_COMPACT, RECORD_ENTRY, RECORD_TRUNCATE

SMALL_SEGMENT = 400
GROUPS = 3


def make_entries(group: int, first: int, last: int, term: int) -> list[LogEntry]:
    """Entries whose data names their group, so a record read into the wrong group shows."""
    return [
        LogEntry(term=term, index=i, kind=i % 2, data=f"g{group}-t{term}-i{i}".encode())
        for i in range(first, last + 1)
    ]


def everything(store: LogStore) -> list[LogEntry]:
    return store.entries(store.first_index(), store.last_index() + 1)


def contents(shared: SharedLog) -> list[tuple[object, ...]]:
    """Every group's whole state, for comparing two logs."""
    return [
        (group.snapshot_position(), everything(group))
        for group in (shared.group(g) for g in range(shared.groups))
    ]


def write_interleaved(shared: SharedLog, rounds: int, per_batch: int = 3) -> None:
    """Each round appends one batch to every group in turn, so their records alternate."""
    for round_number in range(rounds):
        first = round_number * per_batch + 1
        for group in range(shared.groups):
            shared.group(group).append(
                make_entries(group, first, first + per_batch - 1, term=group + 1)
            )


def reopen(shared: FileSharedLog, groups: int = GROUPS) -> FileSharedLog:
    directory = shared.wal.directory
    shared.close()
    return FileSharedLog.open(directory, groups=groups, segment_size=SMALL_SEGMENT)


@pytest.fixture(params=["file", "memory"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SharedLog]:
    """Both implementations, for the behaviour they must share."""
    if request.param == "file":
        file_log = FileSharedLog.open(tmp_path, groups=GROUPS)
        yield file_log
        file_log.close()
    else:
        yield MemorySharedLog(GROUPS)


def test_each_group_sees_only_its_own_entries(shared: SharedLog) -> None:
    write_interleaved(shared, rounds=4)
    for group in range(GROUPS):
        assert everything(shared.group(group)) == make_entries(group, 1, 12, term=group + 1)
        assert shared.group(group).group == group
    with pytest.raises(ValueError, match="outside"):
        shared.group(GROUPS)


def test_truncating_and_compacting_one_group_leave_the_others_alone(shared: SharedLog) -> None:
    write_interleaved(shared, rounds=4)
    shared.group(1).truncate_suffix(5)
    shared.group(1).append(make_entries(1, 5, 6, term=9))
    shared.group(2).compact(10, 3)
    shared.group(0).append(make_entries(0, 8, 9, term=4))  # a conflicting suffix of group 0
    assert everything(shared.group(0)) == [
        *make_entries(0, 1, 7, term=1),
        *make_entries(0, 8, 9, term=4),
    ]
    assert everything(shared.group(1)) == [
        *make_entries(1, 1, 4, term=2),
        *make_entries(1, 5, 6, term=9),
    ]
    assert shared.group(2).snapshot_position() == (10, 3)
    assert everything(shared.group(2)) == make_entries(2, 11, 12, term=3)
    assert shared.group(0).snapshot_position() == (0, 0)
    assert shared.group(1).snapshot_position() == (0, 0)


def test_one_sync_covers_every_group_and_is_counted(shared: SharedLog) -> None:
    write_interleaved(shared, rounds=2)
    written = shared.written_seq
    assert written == 2 * GROUPS * 3  # one record per entry, numbered across groups
    assert all(shared.group(g).written_seq > shared.durable_seq for g in range(GROUPS))
    report = shared.sync()
    assert report is not None
    assert report.groups == (0, 1, 2)
    assert report.records == written
    assert report.durable_seq == written == shared.durable_seq
    assert all(shared.group(g).written_seq <= shared.durable_seq for g in range(GROUPS))
    assert (shared.stats.fsyncs, shared.stats.records, shared.stats.groups) == (1, written, 3)
    assert shared.stats.last == report
    # Every group's writes are durable already: its own sync has nothing left to do.
    for group in range(GROUPS):
        shared.group(group).sync()
    assert shared.sync() is None
    assert shared.stats.fsyncs == 1
    shared.group(1).append(make_entries(1, 7, 7, term=2))
    shared.group(1).sync()
    assert shared.stats.last is not None
    assert shared.stats.last.groups == (1,)
    assert (shared.stats.fsyncs, shared.stats.records, shared.stats.groups) == (
        2,
        written + 1,
        4,
    )


def test_one_fsync_serves_three_groups(tmp_path: Path, fsync_calls) -> None:
    shared = FileSharedLog.open(tmp_path, groups=GROUPS)
    fsync_calls.reset()
    write_interleaved(shared, rounds=3)
    report = shared.sync()
    assert len(fsync_calls.files) == 1
    assert report is not None
    assert report.groups == (0, 1, 2)
    assert report.records == 27
    assert report.seconds >= 0
    shared.close()


def test_writes_made_during_an_fsync_are_reported_by_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = FileSharedLog.open(tmp_path, groups=GROUPS)
    fsync_started = threading.Event()
    fsync_may_finish = threading.Event()
    real_sync = os.fdatasync

    def held_sync(fd: int) -> None:
        if not fsync_started.is_set():
            fsync_started.set()
            assert fsync_may_finish.wait(10)
        real_sync(fd)

    monkeypatch.setattr(os, "fdatasync", held_sync)
    shared.group(0).append(make_entries(0, 1, 2, term=1))
    reports = []
    syncer = threading.Thread(target=lambda: reports.append(shared.sync()))
    syncer.start()
    assert fsync_started.wait(10)
    # The shared log does not block writes while it waits for the disk.
    shared.group(1).append(make_entries(1, 1, 3, term=1))
    shared.group(0).append(make_entries(0, 3, 3, term=1))
    fsync_may_finish.set()
    syncer.join(10)
    first = reports[0]
    assert first is not None
    assert (first.groups, first.records, first.durable_seq) == ((0,), 2, 2)
    second = shared.sync()
    assert second is not None
    assert (second.groups, second.records, second.durable_seq) == ((0, 1), 4, 6)
    shared.close()


def test_every_group_recovers_exactly_its_synced_entries_after_a_power_loss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = FileSharedLog.open(tmp_path / "node", groups=GROUPS)
    write_interleaved(shared, rounds=5)
    shared.group(1).truncate_suffix(14)
    shared.sync()
    synced = contents(shared)
    [segment] = shared.wal.segments()
    synced_size = segment.size
    # More writes of every group, never synced: a power loss may keep any prefix of them.
    for group in range(GROUPS):
        store = shared.group(group)
        store.append(make_entries(group, store.last_index() + 1, store.last_index() + 3, term=7))
    unsynced = segment.path.read_bytes()
    shared.close()
    for kept_bytes in (0, 7, 40):
        survivor = tmp_path / f"after-losing-all-but-{kept_bytes}"
        survivor.mkdir()
        (survivor / segment.path.name).write_bytes(unsynced[: synced_size + kept_bytes])
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            reopened = FileSharedLog.open(survivor, groups=GROUPS)
        assert contents(reopened) == synced
        assert ("truncating torn tail" in caplog.text) == (kept_bytes > 0)
        reopened.close()


def test_acknowledged_writes_of_every_group_survive_a_process_crash(tmp_path: Path) -> None:
    """A process crash (not a power loss) keeps even unsynced writes: they reach the disk
    from the page cache, and the next open makes them durable."""
    shared = FileSharedLog.open(tmp_path, groups=GROUPS, segment_size=SMALL_SEGMENT)
    write_interleaved(shared, rounds=6)
    shared.sync()
    shared.group(2).append(make_entries(2, 19, 20, term=3))
    before = contents(shared)
    assert len(shared.wal.segments()) > 3
    shared = reopen(shared)
    assert contents(shared) == before
    # Appends go on where each group stopped.
    shared.group(0).append(make_entries(0, 19, 19, term=1))
    shared = reopen(shared)
    assert shared.group(0).last_index() == 19
    assert shared.group(2).last_index() == 20
    shared.close()


def test_compacting_one_group_keeps_segments_that_hold_another_groups_live_entries(
    tmp_path: Path,
) -> None:
    shared = FileSharedLog.open(tmp_path, groups=2, segment_size=SMALL_SEGMENT)
    write_interleaved(shared, rounds=10, per_batch=2)
    segments_before = shared.wal.segments()
    assert len(segments_before) > 4
    shared.group(0).compact(20, 1)
    # Every segment holds group 1's live entries: none may go.
    assert shared.wal.first_seq == 1
    assert all(segment.path.exists() for segment in segments_before)
    assert shared.groups_pinning_segments() == [1]
    shared.group(1).compact(8, 2)
    remaining = {segment.path for segment in shared.wal.segments()}
    deleted = [segment.path for segment in segments_before if segment.path not in remaining]
    assert deleted
    assert not any(path.exists() for path in deleted)
    shared = reopen(shared, groups=2)
    assert shared.group(0).snapshot_position() == (20, 1)
    assert everything(shared.group(0)) == []
    assert shared.group(1).snapshot_position() == (8, 2)
    assert everything(shared.group(1)) == make_entries(1, 9, 20, term=2)
    shared.group(1).compact(20, 2)
    assert len(shared.wal.segments()) <= 2
    assert shared.groups_pinning_segments() == []
    shared = reopen(shared, groups=2)
    assert contents(shared) == [((20, 1), []), ((20, 2), [])]
    shared.close()


def test_a_batch_spanning_segments_keeps_every_segment_it_reached(tmp_path: Path) -> None:
    shared = FileSharedLog.open(tmp_path, groups=2, segment_size=SMALL_SEGMENT)
    shared.group(0).append(make_entries(0, 1, 4, term=1))
    # One batch of group 1 fills the rest of the first segment and rolls over twice.
    shared.group(1).append(make_entries(1, 1, 20, term=1))
    assert len(shared.wal.segments()) >= 3
    shared.group(0).append(make_entries(0, 5, 30, term=1))
    shared.group(0).compact(30, 1)
    assert shared.wal.first_seq == 1
    assert shared.groups_pinning_segments() == [1]
    shared = reopen(shared, groups=2)
    assert everything(shared.group(1)) == make_entries(1, 1, 20, term=1)
    shared.close()


def test_a_segment_holding_a_groups_latest_compaction_record_is_kept(tmp_path: Path) -> None:
    shared = FileSharedLog.open(tmp_path, groups=2, segment_size=SMALL_SEGMENT)
    shared.group(1).compact(50, 5)  # a snapshot installed before anything else
    shared.group(0).append(make_entries(0, 1, 40, term=1))
    shared.group(0).compact(40, 1)
    # The oldest segment holds group 1's only COMPACT record: deleting it would forget
    # group 1's snapshot position, so it and everything after it stays.
    assert shared.wal.first_seq == 1
    assert shared.groups_pinning_segments() == [1]
    shared = reopen(shared, groups=2)
    assert shared.group(1).snapshot_position() == (50, 5)
    assert shared.group(0).snapshot_position() == (40, 1)
    shared.group(1).compact(51, 5)
    assert shared.wal.first_seq > 1
    shared = reopen(shared, groups=2)
    assert contents(shared) == [((40, 1), []), ((51, 5), [])]
    shared.close()


def test_concurrent_writers_of_different_groups_recover_intact(tmp_path: Path) -> None:
    shared = FileSharedLog.open(tmp_path, groups=GROUPS, segment_size=SMALL_SEGMENT)
    failures: list[BaseException] = []

    def writer(group: int) -> None:
        try:
            store = shared.group(group)
            for first in range(1, 121, 4):
                store.append(make_entries(group, first, first + 3, term=1))
                store.sync()
                assert shared.durable_seq >= store.written_seq
                if first % 40 == 1 and first > 1:
                    store.compact(first - 10, 1)
        except BaseException as error:
            failures.append(error)
            raise

    threads = [threading.Thread(target=writer, args=(g,)) for g in range(GROUPS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    before = contents(shared)
    assert all(position == (71, 1) for position, _ in before)
    assert shared.stats.fsyncs >= 1
    shared = reopen(shared)
    assert contents(shared) == before
    shared.close()


def test_a_log_from_before_groups_opens_as_group_zero(tmp_path: Path) -> None:
    legacy_entry = struct.Struct(">QQI")
    with WriteAheadLog.open(tmp_path) as wal:
        for index in range(1, 6):
            wal.append(RECORD_ENTRY, legacy_entry.pack(1, index, 0) + f"old-{index}".encode())
        wal.append(RECORD_TRUNCATE, struct.pack(">Q", 5))
        wal.append(RECORD_COMPACT, struct.pack(">QQ?", 2, 1, True))
    with FileLogStore.open(tmp_path) as single_group:
        assert (single_group.first_index(), single_group.last_index()) == (3, 4)
    shared = FileSharedLog.open(tmp_path, groups=2)
    assert shared.group(0).snapshot_position() == (2, 1)
    assert [e.data for e in everything(shared.group(0))] == [b"old-3", b"old-4"]
    assert everything(shared.group(1)) == []
    shared.group(0).append(make_entries(0, 5, 6, term=2))
    shared.group(1).append(make_entries(1, 1, 1, term=1))
    shared = reopen(shared, groups=2)
    assert [e.data for e in everything(shared.group(0))] == [
        b"old-3",
        b"old-4",
        b"g0-t2-i5",
        b"g0-t2-i6",
    ]
    assert everything(shared.group(1)) == make_entries(1, 1, 1, term=1)
    shared.close()


def test_a_single_group_store_refuses_a_log_with_other_groups(tmp_path: Path) -> None:
    with FileSharedLog.open(tmp_path, groups=3) as shared:
        shared.group(2).append(make_entries(2, 1, 1, term=1))
    with pytest.raises(StorageError, match="records of group 2") as caught:
        FileLogStore.open(tmp_path)
    assert "groups 0..0" in str(caught.value)
    with pytest.raises(StorageError, match="records of group 2"):
        FileSharedLog.open(tmp_path, groups=2)
    # The refused opens released the log: the right group count opens it.
    with FileSharedLog.open(tmp_path, groups=4) as shared:
        assert shared.group(2).last_index() == 1


def test_a_corrupt_record_in_one_group_is_reported_with_file_and_offset(tmp_path: Path) -> None:
    with FileSharedLog.open(tmp_path, groups=2) as shared:
        write_interleaved(shared, rounds=3)
    segment = next(tmp_path.glob("*.wal"))
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError) as caught:
        FileSharedLog.open(tmp_path, groups=2)
    assert caught.value.path == segment
    assert 0 < caught.value.offset < len(data)


def test_memory_crash_keeps_a_prefix_of_the_unsynced_records() -> None:
    shared = MemorySharedLog(2)
    shared.group(0).append(make_entries(0, 1, 3, term=1))
    shared.sync()
    shared.group(1).append(make_entries(1, 1, 2, term=1))
    shared.group(0).append(make_entries(0, 2, 4, term=2))  # TRUNCATE, then three entries
    assert shared.unsynced_records == 6
    lost_everything = shared.crashed()
    assert contents(lost_everything) == [((0, 0), make_entries(0, 1, 3, term=1)), ((0, 0), [])]
    assert lost_everything.durable_seq == lost_everything.written_seq == 3
    # Keeping group 1's records and the TRUNCATE, but no new entry of group 0.
    torn = shared.crashed(keep_unsynced=3)
    assert contents(torn) == [
        ((0, 0), make_entries(0, 1, 1, term=1)),
        ((0, 0), make_entries(1, 1, 2, term=1)),
    ]
    assert torn.durable_seq == 6
    kept_all = shared.crashed(keep_unsynced=6)
    assert contents(kept_all) == contents(shared)
    with pytest.raises(ValueError, match="cannot survive"):
        shared.crashed(keep_unsynced=7)


def test_memory_failed_sync_stops_the_log() -> None:
    shared = MemorySharedLog(2)
    shared.group(0).append(make_entries(0, 1, 2, term=1))
    shared.sync()
    shared.group(1).append(make_entries(1, 1, 1, term=1))
    shared.fail_next_sync()
    with pytest.raises(StorageError, match="failed"):
        shared.group(1).sync()
    with pytest.raises(StorageClosedError):
        shared.group(0).append(make_entries(0, 3, 3, term=1))
    with pytest.raises(StorageClosedError):
        shared.sync()
    assert everything(shared.group(0)) == make_entries(0, 1, 2, term=1)
    # What the failed sync was to make durable is lost at the crash that follows.
    assert contents(shared.crashed()) == [((0, 0), make_entries(0, 1, 2, term=1)), ((0, 0), [])]


def test_memory_compaction_syncs_every_group() -> None:
    shared = MemorySharedLog(2)
    shared.group(0).append(make_entries(0, 1, 5, term=1))
    shared.group(1).append(make_entries(1, 1, 2, term=1))
    shared.group(0).compact(3, 1)
    assert shared.stats.last is not None
    assert shared.stats.last.groups == (0, 1)
    assert contents(shared.crashed()) == contents(shared)
