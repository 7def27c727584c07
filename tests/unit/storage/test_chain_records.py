"""Chain records in the node's WAL: tagged with their instance, replayed with their sequence
numbers after a restart, dropped by a compaction of their own instance, and their segments
deleted once nothing else in them is needed."""

from pathlib import Path

import pytest

from distlab.storage import CorruptLogError, FileSharedLog, LogEntry, WriteAheadLog
from distlab.storage.log_store import RECORD_CHAIN

SMALL_SEGMENT = 400


def reopen(log: FileSharedLog, groups: int = 1) -> FileSharedLog:
    directory = log.wal.directory
    log.close()
    return FileSharedLog.open(directory, groups=groups, segment_size=SMALL_SEGMENT)


def test_chain_records_survive_a_restart_per_instance_beside_other_records(
        tmp_path: Path) -> None:
    log = FileSharedLog.open(tmp_path, groups=1)
    log.group(0).append([LogEntry(term=1, index=1, kind=0, data=b"entry")])
    first = log.append_chain([(1, b"epoch"), (2, b"update")])
    log.append_txn([(1, b"prepared")])
    other = log.append_chain([(2, b"another replica")], instance=7)
    log.sync()
    log = reopen(log)
    try:
        assert log.take_chain_records() == [(first - 1, 1, b"epoch"), (first, 2, b"update")]
        assert log.take_chain_records(7) == [(other, 2, b"another replica")]
        assert log.take_chain_records() == []  # handed over once
        assert log.txn_records() == [(1, b"prepared")]
        assert log.group(0).last_index() == 1
    finally:
        log.close()


def test_a_compaction_drops_its_instances_records_and_the_segments_they_filled(
        tmp_path: Path) -> None:
    log = FileSharedLog.open(tmp_path, groups=1, segment_size=SMALL_SEGMENT)
    for index in range(20):
        log.append_chain([(2, f"update {index}".encode())])
    other = log.append_chain([(2, b"kept: another instance")], instance=1)
    through = 0
    for index in range(20, 40):
        through = log.append_chain([(2, f"update {index}".encode())])
    log.sync()
    assert log.wal.segments()[0].last_seq < other
    log.compact_chain(through)
    # The other instance's record pins its segment and every later one.
    oldest = log.wal.segments()[0]
    assert oldest.first_seq <= other <= oldest.last_seq
    later = log.append_chain([(2, b"after the snapshot")])
    log.sync()
    log = reopen(log)
    try:
        assert log.take_chain_records() == [(later, 2, b"after the snapshot")]
        assert log.take_chain_records(1) == [(other, 2, b"kept: another instance")]
        assert log.chain_compacted_through() == through
    finally:
        log.close()


def test_segments_with_a_groups_live_entries_outlive_a_chain_compaction(
        tmp_path: Path) -> None:
    log = FileSharedLog.open(tmp_path, groups=1, segment_size=SMALL_SEGMENT)
    log.group(0).append([LogEntry(term=1, index=1, kind=0, data=b"live entry")])
    through = 0
    for index in range(40):
        through = log.append_chain([(2, f"update {index}".encode())])
    log.sync()
    first = log.wal.segments()[0].first_seq
    log.compact_chain(through)
    assert log.wal.segments()[0].first_seq == first
    log.group(0).compact(1, 1)
    assert log.wal.segments()[0].first_seq > first
    log = reopen(log)
    try:
        assert log.take_chain_records() == []
        assert log.group(0).snapshot_position() == (1, 1)
    finally:
        log.close()


def test_the_segment_holding_the_latest_chain_compaction_is_kept(tmp_path: Path) -> None:
    log = FileSharedLog.open(tmp_path, groups=1, segment_size=SMALL_SEGMENT)
    through = 0
    for index in range(40):
        through = log.append_chain([(2, f"update {index}".encode())])
    log.sync()
    log.compact_chain(through)
    # Fill more segments with nothing but other, covered, chain records.
    for index in range(40):
        log.append_chain([(2, f"more {index}".encode())])
    log.sync()
    log = reopen(log)
    try:
        # The old segments are gone; what explains it is still there.
        assert log.wal.segments()[0].first_seq > 1
        assert log.chain_compacted_through() == through
        assert len(log.take_chain_records()) == 40
    finally:
        log.close()


def test_a_compaction_beyond_what_is_durable_is_refused(tmp_path: Path) -> None:
    with FileSharedLog.open(tmp_path, groups=1) as log:
        written = log.append_chain([(2, b"not synced")])
        with pytest.raises(ValueError, match="durable only up to 0"):
            log.compact_chain(written)
        log.sync()
        log.compact_chain(written)
        assert log.chain_compacted_through() == written


def test_a_torn_chain_record_is_truncated_and_a_corrupt_one_stops_the_open(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = FileSharedLog.open(tmp_path, groups=1)
    log.append_chain([(2, b"first"), (2, b"second"), (2, b"third")])
    log.sync()
    log.close()
    (segment,) = tmp_path.glob("*.wal")
    with open(segment, "r+b") as file:
        file.truncate(segment.stat().st_size - 3)  # the last record cut short by a crash
    log = FileSharedLog.open(tmp_path, groups=1)
    assert [body for _, _, body in log.take_chain_records()] == [b"first", b"second"]
    log.close()
    assert "torn" in caplog.text or "truncat" in caplog.text

    data = bytearray(segment.read_bytes())
    data[data.index(b"first")] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError) as raised:
        FileSharedLog.open(tmp_path, groups=1)
    assert raised.value.path == segment and raised.value.offset > 0


def test_a_chain_record_too_short_for_its_tag_names_its_file_and_offset(
        tmp_path: Path) -> None:
    with WriteAheadLog.open(tmp_path) as wal:
        wal.append(RECORD_CHAIN, b"\x00\x00")
        wal.sync()
    with pytest.raises(CorruptLogError, match="record 1"):
        FileSharedLog.open(tmp_path, groups=1)
