"""The Raft log store on the WAL: appends, conflicting suffixes, compaction, restarts."""

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from distlab.storage import (
    CorruptLogError,
    FileLogStore,
    LogCompactedError,
    LogEntry,
    LogStore,
    LogUnavailableError,
    MemoryLogStore,
    WriteAheadLog,
)
from distlab.storage.log_store import RECORD_GROUP_ENTRY, encode_entry

SMALL_SEGMENT = 300


def make_entries(first: int, last: int, term: int, kind: int = 0) -> list[LogEntry]:
    return [
        LogEntry(term=term, index=i, kind=kind, data=f"t{term}-i{i}".encode())
        for i in range(first, last + 1)
    ]


def everything(store: LogStore) -> list[LogEntry]:
    return store.entries(store.first_index(), store.last_index() + 1)


def reopen(store: FileLogStore) -> FileLogStore:
    directory = store.wal.directory
    store.close()
    return FileLogStore.open(directory, segment_size=SMALL_SEGMENT)


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    """Both implementations, for the behaviour they must share."""
    if request.param == "file":
        file_store = FileLogStore.open(tmp_path, segment_size=SMALL_SEGMENT)
        yield file_store
        file_store.close()
    else:
        yield MemoryLogStore()


def test_empty_log(store: LogStore) -> None:
    assert (store.first_index(), store.last_index()) == (1, 0)
    assert store.snapshot_position() == (0, 0)
    assert store.term(0) == 0
    assert store.entries(1, 1) == []
    with pytest.raises(LogUnavailableError):
        store.term(1)


def test_append_and_read_back(store: LogStore) -> None:
    store.append(make_entries(1, 5, term=1, kind=3))
    assert store.last_index() == 5
    assert store.term(4) == 1
    assert [e.index for e in store.entries(2, 5)] == [2, 3, 4]
    assert store.entries(3, 4)[0] == LogEntry(1, 3, 3, b"t1-i3")
    with pytest.raises(LogUnavailableError):
        store.entries(4, 7)


def test_entries_respects_max_bytes_but_returns_at_least_one(store: LogStore) -> None:
    store.append(make_entries(1, 5, term=1))  # 5 bytes of data each
    assert len(store.entries(1, 6, max_bytes=12)) == 2
    assert len(store.entries(1, 6, max_bytes=1)) == 1


def test_gaps_and_non_consecutive_batches_are_refused(store: LogStore) -> None:
    store.append(make_entries(1, 3, term=1))
    with pytest.raises(ValueError, match="gap"):
        store.append(make_entries(5, 6, term=1))
    with pytest.raises(ValueError, match="consecutive"):
        store.append([*make_entries(4, 4, term=1), *make_entries(6, 6, term=1)])
    assert store.last_index() == 3


def test_append_at_an_existing_index_replaces_the_conflicting_suffix(store: LogStore) -> None:
    store.append(make_entries(1, 10, term=1))
    store.append(make_entries(6, 7, term=2))
    assert store.last_index() == 7
    assert [e.term for e in everything(store)] == [1] * 5 + [2, 2]


def test_compaction_keeps_the_suffix_when_the_log_agrees(store: LogStore) -> None:
    store.append(make_entries(1, 10, term=1))
    store.compact(6, 1)
    assert (store.first_index(), store.last_index()) == (7, 10)
    assert store.term(6) == 1
    with pytest.raises(LogCompactedError):
        store.term(5)
    with pytest.raises(LogCompactedError):
        store.entries(6, 8)
    with pytest.raises(LogCompactedError):
        store.truncate_suffix(6)


def test_compaction_discards_the_log_when_the_snapshot_disagrees(store: LogStore) -> None:
    store.append(make_entries(1, 10, term=1))
    store.compact(8, 3)
    assert (store.first_index(), store.last_index()) == (9, 8)
    assert store.snapshot_position() == (8, 3)
    store.append(make_entries(9, 9, term=3))
    assert store.term(9) == 3


def test_compaction_beyond_the_log_installs_a_snapshot(store: LogStore) -> None:
    store.append(make_entries(1, 3, term=1))
    store.compact(50, 4)
    assert (store.first_index(), store.last_index()) == (51, 50)
    store.append(make_entries(51, 52, term=4))
    assert [e.index for e in everything(store)] == [51, 52]


def test_resent_entries_below_the_snapshot_are_skipped(store: LogStore) -> None:
    store.append(make_entries(1, 10, term=1))
    store.compact(5, 1)
    store.append(make_entries(3, 12, term=1))
    assert (store.first_index(), store.last_index()) == (6, 12)


def test_restart_replays_every_entry(tmp_path: Path) -> None:
    store = FileLogStore.open(tmp_path, segment_size=SMALL_SEGMENT)
    for first in range(1, 100, 10):
        store.append(make_entries(first, first + 9, term=1 + first // 30))
    store.sync()
    before = everything(store)
    assert len(store.wal.segments()) > 5
    store = reopen(store)
    assert everything(store) == before
    assert store.last_index() == 100
    store.close()


def test_conflicting_suffix_truncation_survives_restart(tmp_path: Path) -> None:
    store = FileLogStore.open(tmp_path, segment_size=SMALL_SEGMENT)
    store.append(make_entries(1, 20, term=1))
    store.append(make_entries(8, 9, term=2))
    store.truncate_suffix(9)
    store.append(make_entries(9, 11, term=3))
    store.sync()
    store = reopen(store)
    terms = [(e.index, e.term) for e in everything(store)]
    assert terms == [(i, 1) for i in range(1, 8)] + [(8, 2), (9, 3), (10, 3), (11, 3)]
    store.close()


def test_compaction_deletes_old_segments_and_survives_restart(tmp_path: Path) -> None:
    store = FileLogStore.open(tmp_path, segment_size=SMALL_SEGMENT)
    store.append(make_entries(1, 60, term=1))
    store.append(make_entries(61, 80, term=2))
    segments_before = store.wal.segments()
    store.compact(70, 2)
    segments_after = store.wal.segments()
    assert len(segments_after) < len(segments_before)
    deleted = [s.path for s in segments_before if s.path not in {a.path for a in segments_after}]
    assert deleted and not any(path.exists() for path in deleted)
    # The segment holding entry 71 onwards must still be there.
    store = reopen(store)
    assert store.snapshot_position() == (70, 2)
    assert (store.first_index(), store.last_index()) == (71, 80)
    assert everything(store) == make_entries(71, 80, term=2)
    store.append(make_entries(81, 82, term=2))
    store = reopen(store)
    assert store.last_index() == 82
    store.close()


def test_compaction_never_deletes_a_segment_with_live_entries_above_the_snapshot(
    tmp_path: Path,
) -> None:
    store = FileLogStore.open(tmp_path, segment_size=SMALL_SEGMENT)
    store.append(make_entries(1, 40, term=1))
    segment_of_entry_20 = next(
        s for s in store.wal.segments() if s.first_seq <= 20 <= s.last_seq
    )  # one WAL record per entry here, so sequence number == index
    store.compact(19, 1)
    assert segment_of_entry_20.path.exists()
    store = reopen(store)
    assert everything(store) == make_entries(20, 40, term=1)
    store.close()


def test_torn_last_entry_is_dropped_with_a_log_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileLogStore.open(tmp_path)
    store.append(make_entries(1, 5, term=1))
    store.close()
    segment = next(tmp_path.glob("*.wal"))
    os.truncate(segment, segment.stat().st_size - 4)
    with caplog.at_level(logging.WARNING):
        store = FileLogStore.open(tmp_path)
    assert "truncating torn tail" in caplog.text
    assert store.last_index() == 4
    store.append(make_entries(5, 6, term=2))
    store = reopen(store)
    assert [e.term for e in everything(store)] == [1, 1, 1, 1, 2, 2]
    store.close()


def test_a_record_out_of_order_is_reported_with_file_and_offset(tmp_path: Path) -> None:
    with WriteAheadLog.open(tmp_path) as wal:
        wal.append(RECORD_GROUP_ENTRY, encode_entry(0, LogEntry(1, 1, 0, b"a")))
        wal.append(RECORD_GROUP_ENTRY, encode_entry(0, LogEntry(1, 3, 0, b"c")))
    with pytest.raises(CorruptLogError) as caught:
        FileLogStore.open(tmp_path)
    assert caught.value.path.name.endswith(".wal")
    assert caught.value.offset > 0
    assert "entry 3 does not follow 1" in str(caught.value)


def test_memory_store_crash_keeps_only_synced_writes() -> None:
    store = MemoryLogStore()
    store.append(make_entries(1, 5, term=1))
    store.sync()
    store.append(make_entries(4, 8, term=2))
    survivor = store.crashed()
    assert everything(survivor) == make_entries(1, 5, term=1)
    store.sync()
    assert everything(store.crashed())[-1] == LogEntry(2, 8, 0, b"t2-i8")


def test_memory_store_compaction_is_durable_at_once() -> None:
    store = MemoryLogStore()
    store.append(make_entries(1, 5, term=1))
    store.compact(3, 1)
    survivor = store.crashed()
    assert survivor.snapshot_position() == (3, 1)
    assert everything(survivor) == make_entries(4, 5, term=1)
