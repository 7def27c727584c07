"""The segmented write-ahead log: framing, rollover, group commit and crash recovery."""

import logging
import os
from pathlib import Path

import pytest

from distlab.storage import CorruptLogError, StorageError, WalRecord, WriteAheadLog
from distlab.storage.wal import RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE, segment_name


def payload(seq: int, size: int = 40) -> bytes:
    return (f"record-{seq}-".encode() * size)[:size]


def write_records(directory: Path, count: int, segment_size: int = 1 << 20) -> None:
    with WriteAheadLog.open(directory, segment_size=segment_size) as wal:
        wal.append_batch((1 + seq % 3, payload(seq)) for seq in range(1, count + 1))
        wal.sync()


def read_all(directory: Path, segment_size: int = 1 << 20) -> list[WalRecord]:
    with WriteAheadLog.open(directory, segment_size=segment_size) as wal:
        return list(wal.replay())


def record_offset(position: int, size: int = 40) -> int:
    """Byte offset of the record at 0-based `position` in a segment of equal-sized records."""
    return SEGMENT_HEADER_SIZE + position * (RECORD_HEADER_SIZE + size)


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.wal"))


def test_records_round_trip_with_types_and_sequence_numbers(tmp_path: Path) -> None:
    write_records(tmp_path, 5)
    records = read_all(tmp_path)
    assert records == [WalRecord(seq, 1 + seq % 3, payload(seq)) for seq in range(1, 6)]


def test_append_returns_sequence_numbers_and_empty_payloads_work(tmp_path: Path) -> None:
    with WriteAheadLog.open(tmp_path) as wal:
        assert wal.append(7, b"") == 1
        assert wal.append_batch([(1, b"a"), (2, b"b")]) == 3
        assert wal.last_seq == 3
        assert wal.synced_seq == 0
        wal.sync()
        assert wal.synced_seq == 3
    assert [(r.seq, r.type, r.payload) for r in read_all(tmp_path)] == [
        (1, 7, b""),
        (2, 1, b"a"),
        (3, 2, b"b"),
    ]


def test_invalid_record_type_is_refused(tmp_path: Path) -> None:
    with WriteAheadLog.open(tmp_path) as wal:
        with pytest.raises(ValueError, match="record type 0"):
            wal.append(0, b"x")
        with pytest.raises(ValueError, match="record type 256"):
            wal.append_batch([(1, b"fine"), (256, b"x")])
        assert wal.last_seq == 0, "a refused batch writes nothing"
        assert wal.append(1, b"next") == 1


def test_segments_roll_over_at_the_size_threshold(tmp_path: Path) -> None:
    record_size = RECORD_HEADER_SIZE + 40
    segment_size = SEGMENT_HEADER_SIZE + 4 * record_size
    write_records(tmp_path, 10, segment_size)
    files = segment_files(tmp_path)
    assert [f.name for f in files] == [segment_name(1), segment_name(5), segment_name(9)]
    assert [f.stat().st_size for f in files[:2]] == [segment_size, segment_size]
    assert [r.seq for r in read_all(tmp_path, segment_size)] == list(range(1, 11))


def test_restart_replays_everything_and_appends_continue(tmp_path: Path) -> None:
    write_records(tmp_path, 30, segment_size=500)
    with WriteAheadLog.open(tmp_path, segment_size=500) as wal:
        assert wal.first_seq == 1
        assert wal.last_seq == 30
        assert wal.append(1, b"after restart") == 31
    records = read_all(tmp_path, 500)
    assert [r.seq for r in records] == list(range(1, 32))
    assert records[-1].payload == b"after restart"


def test_replay_from_a_sequence_number(tmp_path: Path) -> None:
    write_records(tmp_path, 20, segment_size=400)
    with WriteAheadLog.open(tmp_path, segment_size=400) as wal:
        assert [r.seq for r in wal.replay(from_seq=13)] == list(range(13, 21))


def test_remove_segments_before_keeps_the_active_segment(tmp_path: Path) -> None:
    with WriteAheadLog.open(tmp_path, segment_size=record_offset(3)) as wal:
        wal.append_batch((1, payload(seq)) for seq in range(1, 21))
        segments = wal.segments()
        assert len(segments) > 3
        removed = wal.remove_segments_before(segments[2].first_seq)
        assert removed == [segments[0].path, segments[1].path]
        assert not segments[0].path.exists()
        assert wal.first_seq == segments[2].first_seq
        assert wal.remove_segments_before(10**9) == [s.path for s in segments[2:-1]]
        assert wal.segments()[0].path == segments[-1].path
    assert [r.seq for r in read_all(tmp_path)] == list(range(segments[-1].first_seq, 21))


def test_torn_tail_short_payload_is_truncated_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_records(tmp_path, 6)
    segment = segment_files(tmp_path)[0]
    full_size = segment.stat().st_size
    os.truncate(segment, full_size - 3)
    with (
        caplog.at_level(logging.WARNING, logger="distlab.storage.wal"),
        WriteAheadLog.open(tmp_path) as wal,
    ):
        assert wal.last_seq == 5
        assert wal.append(2, b"after recovery") == 6
    message = caplog.text
    assert str(segment) in message
    assert f"byte offset {record_offset(5)}" in message
    assert "short payload" in message
    records = read_all(tmp_path)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[-1].payload == b"after recovery"


def test_torn_tail_short_header_is_truncated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_records(tmp_path, 3)
    segment = segment_files(tmp_path)[0]
    os.truncate(segment, record_offset(2) + 5)
    with caplog.at_level(logging.WARNING, logger="distlab.storage.wal"):
        assert [r.seq for r in read_all(tmp_path)] == [1, 2]
    assert "short record header" in caplog.text
    assert segment.stat().st_size == record_offset(2)


def test_garbage_after_the_last_record_is_truncated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_records(tmp_path, 4)
    segment = segment_files(tmp_path)[0]
    clean_size = segment.stat().st_size
    with open(segment, "ab") as file:
        file.write(b"\x13\x00\x00\x00garbage that is not a record" * 3)
    with (
        caplog.at_level(logging.WARNING, logger="distlab.storage.wal"),
        WriteAheadLog.open(tmp_path) as wal,
    ):
        assert wal.last_seq == 4
        wal.append(1, b"five")
    assert f"byte offset {clean_size}" in caplog.text
    assert [r.seq for r in read_all(tmp_path)] == [1, 2, 3, 4, 5]


def test_checksum_mismatch_in_the_very_last_record_counts_as_torn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_records(tmp_path, 4)
    segment = segment_files(tmp_path)[0]
    flip_byte(segment, segment.stat().st_size - 1)
    with caplog.at_level(logging.WARNING, logger="distlab.storage.wal"):
        assert [r.seq for r in read_all(tmp_path)] == [1, 2, 3]
    assert "checksum mismatch" in caplog.text


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_flipped_byte_in_the_middle_of_a_segment_raises_naming_file_and_offset(
    tmp_path: Path,
) -> None:
    write_records(tmp_path, 10)
    segment = segment_files(tmp_path)[0]
    flip_byte(segment, record_offset(3) + RECORD_HEADER_SIZE + 7)
    with pytest.raises(CorruptLogError) as caught:
        WriteAheadLog.open(tmp_path)
    error = caught.value
    assert error.path == segment
    assert error.offset == record_offset(3)
    assert str(segment) in str(error)
    assert f"byte offset {record_offset(3)}" in str(error)
    assert "checksum mismatch" in str(error)
    assert "\n" not in str(error)
    assert segment.stat().st_size == record_offset(10), "nothing may be truncated"


def test_flipped_length_field_in_the_middle_is_not_mistaken_for_a_torn_tail(
    tmp_path: Path,
) -> None:
    write_records(tmp_path, 10)
    segment = segment_files(tmp_path)[0]
    flip_byte(segment, record_offset(4) + 2)  # the length prefix's third byte
    with pytest.raises(CorruptLogError) as caught:
        WriteAheadLog.open(tmp_path)
    assert caught.value.offset == record_offset(4)
    assert "intact record follows" in str(caught.value)


def test_corrupt_record_in_a_non_last_segment_raises(tmp_path: Path) -> None:
    write_records(tmp_path, 12, segment_size=record_offset(4))
    first, *_ = segment_files(tmp_path)
    assert len(segment_files(tmp_path)) == 3
    flip_byte(first, first.stat().st_size - 1)  # the last record of the first segment
    with pytest.raises(CorruptLogError) as caught:
        WriteAheadLog.open(tmp_path, segment_size=record_offset(4))
    assert caught.value.path == first
    assert caught.value.offset == record_offset(3)
    assert "later segments follow" in str(caught.value)


def test_torn_non_last_segment_raises_instead_of_truncating(tmp_path: Path) -> None:
    write_records(tmp_path, 12, segment_size=record_offset(4))
    middle = segment_files(tmp_path)[1]
    os.truncate(middle, middle.stat().st_size - 2)
    with pytest.raises(CorruptLogError, match=str(middle)):
        WriteAheadLog.open(tmp_path, segment_size=record_offset(4))


def test_missing_middle_segment_raises(tmp_path: Path) -> None:
    write_records(tmp_path, 12, segment_size=record_offset(4))
    _, middle, last = segment_files(tmp_path)
    middle.unlink()
    with pytest.raises(CorruptLogError) as caught:
        WriteAheadLog.open(tmp_path, segment_size=record_offset(4))
    assert caught.value.path == last
    assert "ends at 4" in str(caught.value)


def test_bad_segment_magic_raises(tmp_path: Path) -> None:
    write_records(tmp_path, 2)
    segment = segment_files(tmp_path)[0]
    flip_byte(segment, 0)
    with pytest.raises(CorruptLogError, match="bad segment magic"):
        WriteAheadLog.open(tmp_path)


def test_damage_after_open_is_caught_by_replay(tmp_path: Path) -> None:
    write_records(tmp_path, 5)
    with WriteAheadLog.open(tmp_path) as wal:
        flip_byte(segment_files(tmp_path)[0], record_offset(1) + RECORD_HEADER_SIZE)
        with pytest.raises(CorruptLogError) as caught:
            list(wal.replay())
        assert caught.value.offset == record_offset(1)


def crashed_copy(source: Path, destination: Path, count: int) -> Path:
    """What a crash leaves on disk after `count` records were synced: the segment as it is
    while the log is open, its preallocated zeros included. Returns the copied segment."""
    destination.mkdir()
    with WriteAheadLog.open(source) as wal:
        wal.append_batch((1, payload(seq)) for seq in range(1, count + 1))
        wal.sync()
        (live,) = segment_files(source)
        assert live.stat().st_size > record_offset(count), "the segment is preallocated"
        copy = destination / live.name
        copy.write_bytes(live.read_bytes())
    return copy


def test_preallocated_zeros_left_by_a_crash_read_as_the_end(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = crashed_copy(tmp_path / "live", tmp_path / "crashed", 5)
    with (
        caplog.at_level(logging.WARNING, logger="distlab.storage.wal"),
        WriteAheadLog.open(copy.parent) as wal,
    ):
        assert [r.seq for r in wal.replay()] == [1, 2, 3, 4, 5]
        assert copy.stat().st_size == record_offset(5), "the zeros are cut off"
        assert wal.append(2, b"after recovery") == 6
    assert caplog.records == [], "zeros after the last record are no damage"
    assert [r.payload for r in read_all(copy.parent)][-1] == b"after recovery"


def test_a_torn_record_in_the_preallocated_zeros_is_truncated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = crashed_copy(tmp_path / "live", tmp_path / "crashed", 5)
    with open(copy, "r+b") as file:
        file.seek(record_offset(5))
        file.write(b"\x28\x00\x00\x00\x99\x99")  # a header cut short by the crash
    with (
        caplog.at_level(logging.WARNING, logger="distlab.storage.wal"),
        WriteAheadLog.open(copy.parent) as wal,
    ):
        assert wal.last_seq == 5
    assert copy.stat().st_size == record_offset(5)
    assert "truncating torn tail" in caplog.text


def test_damage_in_the_middle_is_still_refused_when_zeros_follow(tmp_path: Path) -> None:
    copy = crashed_copy(tmp_path / "live", tmp_path / "crashed", 10)
    flip_byte(copy, record_offset(3) + RECORD_HEADER_SIZE + 7)
    with pytest.raises(CorruptLogError) as caught:
        WriteAheadLog.open(copy.parent)
    assert caught.value.offset == record_offset(3)


def test_closing_leaves_no_preallocated_zeros(tmp_path: Path) -> None:
    write_records(tmp_path, 7)
    (segment,) = segment_files(tmp_path)
    assert segment.stat().st_size == record_offset(7)


def test_group_commit_of_k_records_is_one_fsync(tmp_path: Path, fsync_calls) -> None:
    with WriteAheadLog.open(tmp_path) as wal:
        calls = fsync_calls
        calls.reset()
        wal.append_batch((1, payload(seq)) for seq in range(1, 65))
        assert calls.files == []
        wal.sync()
        assert len(calls.files) == 1
        wal.sync()  # nothing new: no fsync at all
        assert len(calls.files) == 1
        for seq in range(65, 73):
            wal.append(1, payload(seq))
            wal.sync()
        assert len(calls.files) == 9
        assert calls.directories == []


def test_directory_is_fsynced_on_create_roll_and_remove(
    tmp_path: Path, fsync_calls
) -> None:
    calls = fsync_calls
    with WriteAheadLog.open(tmp_path, segment_size=record_offset(2)) as wal:
        assert len(calls.directories) == 1
        wal.append_batch((1, payload(seq)) for seq in range(1, 4))  # rolls once
        assert len(calls.directories) == 2
        wal.remove_segments_before(wal.segments()[-1].first_seq)
        assert len(calls.directories) == 3


def test_reopen_makes_the_inherited_tail_durable(tmp_path: Path, fsync_calls) -> None:
    # A previous process may have died with records in the page cache only: opening the
    # log must fsync the last segment and the directory before anyone relies on them.
    write_records(tmp_path, 3, segment_size=record_offset(2))
    fsync_calls.reset()
    WriteAheadLog.open(tmp_path).close()
    assert len(fsync_calls.files) == 1
    assert len(fsync_calls.directories) == 1


def test_leftover_segment_temporary_is_removed(tmp_path: Path) -> None:
    write_records(tmp_path, 2)
    leftover = tmp_path / (segment_name(3) + ".tmp")
    leftover.write_bytes(b"half a header")
    assert [r.seq for r in read_all(tmp_path)] == [1, 2]
    assert not leftover.exists()


def test_a_second_open_of_the_same_directory_is_refused(tmp_path: Path) -> None:
    with WriteAheadLog.open(tmp_path), pytest.raises(StorageError, match="already open"):
        WriteAheadLog.open(tmp_path)
    WriteAheadLog.open(tmp_path).close()


def test_use_after_close_raises(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path)
    wal.close()
    wal.close()
    with pytest.raises(StorageError, match="closed"):
        wal.append(1, b"x")


def test_failed_fsync_makes_the_log_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = WriteAheadLog.open(tmp_path)
    wal.append(1, b"x")

    def failing_sync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing_sync)
    with pytest.raises(StorageError, match="fdatasync"):
        wal.sync()
    with pytest.raises(StorageError, match="unusable"):
        wal.append(1, b"y")
    monkeypatch.undo()
    wal.close()
