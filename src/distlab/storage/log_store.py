"""A Raft log store kept in a write-ahead log.

Every change is a WAL record, so replaying the WAL reproduces the log exactly:

    ENTRY     term (u64) | index (u64) | kind (u32) | data        one appended entry
    TRUNCATE  from_index (u64)                                    entries >= from_index removed
    COMPACT   index (u64) | term (u64) | keep_suffix (u8)         prefix replaced by a snapshot

(big-endian). Overwriting a conflicting suffix writes TRUNCATE and then the new entries in
the same batch, so a crash can never leave new entries spliced onto stale ones.

Old segments are deleted once a durable COMPACT record covers them: a sealed segment goes
when every entry record in it is at or below the snapshot index and it lies wholly before the
COMPACT record. Replay then starts part-way through the history; `EntryLog` is built for that.
"""

from __future__ import annotations

import bisect
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path

from distlab.storage.entry_log import EntryLog
from distlab.storage.errors import CorruptLogError
from distlab.storage.model import LogEntry
from distlab.storage.wal import DEFAULT_SEGMENT_SIZE, WalRecord, WriteAheadLog

RECORD_ENTRY = 1
RECORD_TRUNCATE = 2
RECORD_COMPACT = 3

_ENTRY = struct.Struct(">QQI")
_TRUNCATE = struct.Struct(">Q")
_COMPACT = struct.Struct(">QQ?")


def encode_entry(entry: LogEntry) -> bytes:
    return _ENTRY.pack(entry.term, entry.index, entry.kind) + entry.data


def decode_entry(payload: bytes) -> LogEntry:
    term, index, kind = _ENTRY.unpack_from(payload)
    return LogEntry(term=term, index=index, kind=kind, data=payload[_ENTRY.size :])


class FileLogStore:
    """`LogStore` on a `WriteAheadLog`; thread-safe, so it may be driven from a worker thread.

    `append` and `truncate_suffix` write without syncing; call `sync()` once per batch of
    writes (or go through `GroupCommitter`). `compact` syncs itself before deleting anything.
    """

    def __init__(self, wal: WriteAheadLog) -> None:
        self._wal = wal
        self._lock = threading.Lock()
        self._log = EntryLog()
        # The highest entry index written into each segment, keyed by the segment's first
        # sequence number: what decides whether a segment lies wholly below a snapshot.
        self._segment_max_index: dict[int, int] = {}
        self._last_compact_seq = 0
        self._replay()

    @classmethod
    def open(
        cls, directory: str | os.PathLike[str], *, segment_size: int = DEFAULT_SEGMENT_SIZE
    ) -> FileLogStore:
        """Open the log in `directory`, replaying its WAL. Raises `CorruptLogError`."""
        wal = WriteAheadLog.open(directory, segment_size=segment_size)
        try:
            return cls(wal)
        except BaseException:
            wal.close()
            raise

    @property
    def wal(self) -> WriteAheadLog:
        return self._wal

    def first_index(self) -> int:
        with self._lock:
            return self._log.first_index()

    def last_index(self) -> int:
        with self._lock:
            return self._log.last_index()

    def snapshot_position(self) -> tuple[int, int]:
        with self._lock:
            return self._log.snapshot_index, self._log.snapshot_term

    def term(self, index: int) -> int:
        with self._lock:
            return self._log.term(index)

    def entries(self, low: int, high: int, max_bytes: int | None = None) -> list[LogEntry]:
        with self._lock:
            return self._log.entries(low, high, max_bytes)

    def append(self, entries: Sequence[LogEntry]) -> None:
        with self._lock:
            fresh = self._log.check_append(entries)
            if not fresh:
                return
            records: list[tuple[int, bytes]] = []
            conflict_at = fresh[0].index
            conflicts = conflict_at <= self._log.last_index()
            if conflicts:
                records.append((RECORD_TRUNCATE, _TRUNCATE.pack(conflict_at)))
            records.extend((RECORD_ENTRY, encode_entry(entry)) for entry in fresh)
            last_seq = self._wal.append_batch(records)
            self._note_entries(last_seq - len(fresh) + 1, fresh)
            if conflicts:
                self._log.apply_truncate(conflict_at)
            for entry in fresh:
                self._log.apply_entry(entry)

    def truncate_suffix(self, from_index: int) -> None:
        with self._lock:
            self._log.check_truncate(from_index)
            if from_index > self._log.last_index():
                return
            self._wal.append(RECORD_TRUNCATE, _TRUNCATE.pack(from_index))
            self._log.apply_truncate(from_index)

    def compact(self, snapshot_index: int, snapshot_term: int) -> None:
        with self._lock:
            if snapshot_index <= self._log.snapshot_index:
                return
            keep_suffix = self._log.keeps_suffix_after(snapshot_index, snapshot_term)
            seq = self._wal.append(
                RECORD_COMPACT, _COMPACT.pack(snapshot_index, snapshot_term, keep_suffix)
            )
            # The COMPACT record must be durable before the segments it replaces go away.
            self._wal.sync()
            self._log.apply_compact(snapshot_index, snapshot_term, keep_suffix)
            self._last_compact_seq = seq
            self._remove_covered_segments()

    def sync(self) -> None:
        # Not under the store's lock: the WAL syncs without blocking appends.
        self._wal.sync()

    def close(self) -> None:
        self._wal.close()

    def __enter__(self) -> FileLogStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _note_entries(self, first_seq: int, entries: Sequence[LogEntry]) -> None:
        starts = [segment.first_seq for segment in self._wal.segments()]
        for offset, entry in enumerate(entries):
            segment_start = starts[bisect.bisect_right(starts, first_seq + offset) - 1]
            known = self._segment_max_index.get(segment_start, 0)
            self._segment_max_index[segment_start] = max(known, entry.index)

    def _remove_covered_segments(self) -> None:
        first_kept: int | None = None
        for segment in self._wal.segments()[:-1]:
            below_snapshot = (
                self._segment_max_index.get(segment.first_seq, 0) <= self._log.snapshot_index
            )
            if segment.last_seq >= self._last_compact_seq or not below_snapshot:
                first_kept = segment.first_seq
                break
            first_kept = segment.last_seq + 1
        if first_kept is None:
            return
        for path in self._wal.remove_segments_before(first_kept):
            del self._segment_max_index[_first_seq_of(path)]

    def _replay(self) -> None:
        starts = [segment.first_seq for segment in self._wal.segments()]
        trimmed = starts[0] > 1
        saw_compact = False
        for record in self._wal.replay():
            try:
                self._apply_record(record, starts)
            except (ValueError, struct.error) as error:
                raise self._corrupt(record, str(error)) from None
            if record.type == RECORD_COMPACT:
                saw_compact = True
                self._last_compact_seq = record.seq
        problem = self._log.check_consistent()
        if problem is None and trimmed and not saw_compact:
            problem = "old segments are gone but no compaction record explains it"
        if problem is not None:
            raise CorruptLogError(self._wal.segments()[0].path, 0, problem)

    def _apply_record(self, record: WalRecord, starts: list[int]) -> None:
        if record.type == RECORD_ENTRY:
            entry = decode_entry(record.payload)
            self._log.apply_entry(entry)
            segment_start = starts[bisect.bisect_right(starts, record.seq) - 1]
            known = self._segment_max_index.get(segment_start, 0)
            self._segment_max_index[segment_start] = max(known, entry.index)
        elif record.type == RECORD_TRUNCATE:
            (from_index,) = _TRUNCATE.unpack(record.payload)
            self._log.apply_truncate(from_index)
        elif record.type == RECORD_COMPACT:
            snapshot_index, snapshot_term, keep_suffix = _COMPACT.unpack(record.payload)
            self._log.apply_compact(snapshot_index, snapshot_term, keep_suffix)
        else:
            raise ValueError(f"unknown log record type {record.type}")

    def _corrupt(self, record: WalRecord, problem: str) -> CorruptLogError:
        """Name the file and offset of a record that decodes but makes no sense."""
        path, offset = self._wal.locate(record.seq)
        return CorruptLogError(path, offset, f"record {record.seq}: {problem}")


def _first_seq_of(path: Path) -> int:
    return int(path.name.split(".", 1)[0])
