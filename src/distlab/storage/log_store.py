"""Raft logs kept in a write-ahead log: every group of a node shares one WAL.

Every change to a group's log is a WAL record that carries the group's number, so replaying
the WAL reproduces each group's log exactly (payloads big-endian):

    GROUP_ENTRY     group (u32) | term (u64) | index (u64) | kind (u32) | data
    GROUP_TRUNCATE  group (u32) | from_index (u64)        entries >= from_index removed
    GROUP_COMPACT   group (u32) | index (u64) | term (u64) | keep_suffix (u8)
                                                          prefix replaced by a snapshot

A Multi-Paxos group writes records keyed by slot instead (its bodies are the engine's):

    GROUP_PAXOS_<KIND>  group (u32) | slot (u64) | body    kinds PROMISE, ACCEPT, DECIDE,
                                                          COMPACT (record types 7 to 10)

`slot` is the highest slot the record names (0 for a promise), or for COMPACT the slot the
group's snapshot covers; retention treats it as it treats an entry's index. A group that
compacts writes its promise again after the COMPACT record, so no deleted segment held the
only copy of it.

The transaction roles of a node (DESIGN §16) write their own records, tagged with their
instance (0 for the node's participant and coordinator):

    TXN             instance (u32) | kind (u8) | body   record type 11

They are never compacted: a segment holding one is never deleted.

A chain replica (DESIGN §14) writes its records tagged with its instance too, and compacts
them after it has saved a snapshot of its state elsewhere (the shared log holds no snapshot
of it):

    CHAIN           instance (u32) | kind (u8) | body      record type 12
    CHAIN_COMPACT   instance (u32) | through (u64)         record type 13
                    the instance's durable snapshot holds all that its records up to
                    sequence number `through` said

Replay hands each instance the records after its latest CHAIN_COMPACT, once, with their
sequence numbers; the records it appends later are not kept here (the replica holds its own
state). Records cannot be deleted one by one, only whole segments: a segment holding an
instance's records goes once a durable CHAIN_COMPACT of that instance reaches the segment's
last record (and nothing else in the segment is needed), so the segment holding the latest
CHAIN_COMPACT is always kept.

A log written before there were groups holds the same three records without the group
(ENTRY, TRUNCATE, COMPACT: record types 1 to 3, the tagged ones are 4 to 6); they read back
as group 0's, so such a directory still opens. Overwriting a conflicting suffix writes
TRUNCATE and then the new entries in one batch, so a crash can never leave new entries
spliced onto stale ones.

One `FileSharedLog.sync` is one fsync for the writes of every group (as TiKV's raft-engine
shares one log among its regions); each group reads and writes through its own view, a
`FileLogStore`.

Old segments are deleted once durable COMPACT records cover them: a sealed segment goes when,
for every group with a record in it, each of that group's entries in it is at or below the
group's snapshot index and the segment lies wholly before the group's latest COMPACT record,
and every chain instance with a record in it has compacted through its last record.
Replay then starts part-way through the history; `EntryLog` is built for that. A group that
never compacts keeps every segment from its oldest record on; `groups_pinning_segments`
names such groups, so the node can take their snapshots.

Locks: each view has its own, so reading one group never waits for another group's write.
The shared log's lock covers a write to the WAL together with the note of which groups the
segment it landed in holds: a segment must never be judged deletable while a write into it
is not yet noted. Order: a view's lock, then the shared log's, then the WAL's own.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from distlab.storage.entry_log import EntryLog
from distlab.storage.errors import CorruptLogError, StorageError
from distlab.storage.interfaces import GroupLogStore, SharedLog
from distlab.storage.model import (
    LogEntry,
    PaxosRecord,
    PaxosRecordKind,
    SyncReport,
    SyncStats,
)
from distlab.storage.wal import DEFAULT_SEGMENT_SIZE, SegmentInfo, WalRecord, WriteAheadLog

RECORD_ENTRY = 1
RECORD_TRUNCATE = 2
RECORD_COMPACT = 3
# Each tagged type is its untagged one plus this; an untagged payload is a tagged one
# without the leading group number.
_TAGGED = 3
RECORD_GROUP_ENTRY = RECORD_ENTRY + _TAGGED
RECORD_GROUP_TRUNCATE = RECORD_TRUNCATE + _TAGGED
RECORD_GROUP_COMPACT = RECORD_COMPACT + _TAGGED

# A Paxos record's type is its kind plus this.
_PAXOS = RECORD_GROUP_COMPACT
RECORD_GROUP_PAXOS_FIRST = _PAXOS + min(PaxosRecordKind)
RECORD_GROUP_PAXOS_LAST = _PAXOS + max(PaxosRecordKind)

RECORD_TXN = RECORD_GROUP_PAXOS_LAST + 1
_TXN = struct.Struct(">IB")
RECORD_CHAIN = RECORD_TXN + 1
RECORD_CHAIN_COMPACT = RECORD_CHAIN + 1
_CHAIN = struct.Struct(">IB")
_CHAIN_COMPACT = struct.Struct(">IQ")
_INSTANCE = struct.Struct(">I")

_GROUP_ENTRY = struct.Struct(">IQQI")
_GROUP_PAXOS = struct.Struct(">IQ")
_GROUP_TRUNCATE = struct.Struct(">IQ")
_GROUP_COMPACT = struct.Struct(">IQQ?")
_GROUP_ZERO = bytes(4)
MAX_GROUPS = 2**32


def encode_entry(group: int, entry: LogEntry) -> bytes:
    """The payload of `entry`'s GROUP_ENTRY record."""
    return _GROUP_ENTRY.pack(group, entry.term, entry.index, entry.kind) + entry.data


class FileSharedLog:
    """The logs of a node's groups in one `WriteAheadLog`; thread-safe (`SharedLog`).

    Open with `FileSharedLog.open(directory, groups=G)`; `group(g)` is group g's
    `LogStore`; `sync()` makes every group's writes durable with one fsync.
    """

    def __init__(self, wal: WriteAheadLog, groups: int) -> None:
        if not 1 <= groups <= MAX_GROUPS:
            raise ValueError(f"a shared log holds 1 to {MAX_GROUPS} groups, not {groups}")
        self._wal = wal
        self._lock = threading.Lock()
        self._views = tuple(FileLogStore(self, group) for group in range(groups))
        # Which groups have records in each segment (keyed by its first sequence number),
        # with the highest entry index each wrote there (0 for TRUNCATE and COMPACT only):
        # what decides whether the segment may go.
        self._segment_groups: dict[int, dict[int, int]] = {}
        # Per group: the sequence number of its latest durable COMPACT record, and the
        # snapshot index that record compacted to.
        self._compact_seq = [0] * groups
        self._compacted_to = [0] * groups
        self._group_written_seq = [0] * groups
        # Groups with writes no sync has reported yet, with the first such record.
        self._first_unreported: dict[int, int] = {}
        self._reported_seq = wal.synced_seq
        self._stats = SyncStats()
        # Transaction records, replayed and written: (instance, kind, body) in written order.
        self._txn_records: list[tuple[int, int, bytes]] = []
        # Segments (by first sequence number) holding transaction records: never deleted.
        self._txn_segments: set[int] = set()
        # Chain records the replay found after each instance's latest compaction, (seq,
        # kind, body), until the instance takes them; the instances with records in each
        # segment; and how far each instance's latest durable CHAIN_COMPACT reaches.
        self._chain_replayed: dict[int, list[tuple[int, int, bytes]]] = {}
        self._chain_segments: dict[int, set[int]] = {}
        self._chain_through: dict[int, int] = {}
        self._replay()

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        groups: int,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> FileSharedLog:
        """Open the log in `directory`, replaying its WAL into every group's log.

        Raises `CorruptLogError` if durable data is damaged, and `StorageError` if the WAL
        holds records of a group at or beyond `groups`.
        """
        wal = WriteAheadLog.open(directory, segment_size=segment_size)
        try:
            return cls(wal, groups)
        except BaseException:
            wal.close()
            raise

    @property
    def wal(self) -> WriteAheadLog:
        """The WAL underneath, to inspect: a record appended to it directly would bypass
        the note of which groups each segment holds."""
        return self._wal

    @property
    def groups(self) -> int:
        return len(self._views)

    def group(self, group: int) -> FileLogStore:
        if not 0 <= group < len(self._views):
            raise ValueError(f"group {group} is outside 0..{len(self._views) - 1}")
        return self._views[group]

    @property
    def written_seq(self) -> int:
        return self._wal.last_seq

    @property
    def durable_seq(self) -> int:
        return self._wal.synced_seq

    @property
    def stats(self) -> SyncStats:
        return self._stats

    def sync(self) -> SyncReport | None:
        # Not under the lock: the WAL syncs without blocking appends.
        started = time.perf_counter()
        if not self._wal.sync():
            return None
        seconds = time.perf_counter() - started
        durable_seq = self._wal.synced_seq
        with self._lock:
            unreported = self._first_unreported
            covered = [group for group, first in unreported.items() if first <= durable_seq]
            covered.sort()
            for group in covered:
                if self._group_written_seq[group] <= durable_seq:
                    del unreported[group]
                else:
                    unreported[group] = durable_seq + 1
            records = max(0, durable_seq - self._reported_seq)
            report = SyncReport(durable_seq, records, tuple(covered), seconds)
            self._reported_seq = max(self._reported_seq, durable_seq)
            self._stats.count(report)
        return report

    def txn_records(self, instance: int = 0) -> list[tuple[int, bytes]]:
        """The transaction records of `instance`, (kind, body) in written order."""
        with self._lock:
            return [(kind, body) for owner, kind, body in self._txn_records if owner == instance]

    def append_txn(self, records: Sequence[tuple[int, bytes]], instance: int = 0) -> int:
        """Write transaction records (not synced: `sync` makes them durable); return the
        last one's sequence number."""
        with self._lock:
            last_seq = self._wal.append_batch(
                [(RECORD_TXN, _TXN.pack(instance, kind) + body) for kind, body in records])
            first_seq = last_seq - len(records) + 1
            self._txn_segments.update(self._segments_holding(first_seq, last_seq))
            self._txn_records.extend((instance, kind, body) for kind, body in records)
            return last_seq

    def take_chain_records(self, instance: int = 0) -> list[tuple[int, int, bytes]]:
        """The records of chain instance `instance` that the replay found after its latest
        compaction, (seq, kind, body) in written order; handed over once (a second call
        returns none), so that the log keeps no copy of them."""
        with self._lock:
            return self._chain_replayed.pop(instance, [])

    def chain_compacted_through(self, instance: int = 0) -> int:
        """How far the instance's latest durable CHAIN_COMPACT reaches (0: none)."""
        with self._lock:
            return self._chain_through.get(instance, 0)

    def append_chain(self, records: Sequence[tuple[int, bytes]], instance: int = 0) -> int:
        """Write chain records, (kind, body), not synced (`sync` makes them durable);
        return the last one's sequence number."""
        with self._lock:
            last_seq = self._wal.append_batch(
                [(RECORD_CHAIN, _CHAIN.pack(instance, kind) + body) for kind, body in records])
            self._note_chain(instance, last_seq - len(records) + 1, last_seq)
            return last_seq

    def compact_chain(self, through: int, instance: int = 0) -> None:
        """Record that a durable snapshot of chain instance `instance` holds all that its
        records up to sequence number `through` said; durable on return. Deletes the
        segments nothing needs any more."""
        with self._lock:
            if through > self._wal.synced_seq:
                raise ValueError(f"a chain snapshot cannot cover record {through}: records "
                                 f"are durable only up to {self._wal.synced_seq}")
            if through <= self._chain_through.get(instance, 0):
                return
            seq = self._wal.append(RECORD_CHAIN_COMPACT, _CHAIN_COMPACT.pack(instance, through))
            self._note_chain(instance, seq, seq)
        # The record must be durable before the segments it lets go are deleted.
        self.sync()
        with self._lock:
            self._chain_through[instance] = max(self._chain_through.get(instance, 0), through)
            self._remove_unneeded_segments()

    def groups_pinning_segments(self) -> list[int]:
        """The groups whose records keep the oldest sealed segment on disk, in order:
        compacting them (after a snapshot) lets it go. Empty when no segment is sealed."""
        with self._lock:
            segments = self._wal.segments()
            if len(segments) < 2:
                return []
            oldest = segments[0]
            held = self._segment_groups.get(oldest.first_seq, {})
            return sorted(
                group
                for group, highest in held.items()
                if not self._covers(group, oldest, highest)
            )

    def close(self) -> None:
        self._wal.close()

    def __enter__(self) -> FileSharedLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(
        self,
        group: int,
        records: list[tuple[int, bytes]],
        entry_count: int = 0,
        last_index: int = 0,
    ) -> int:
        """Append `group`'s records (the last `entry_count` of them entries, ending at index
        `last_index`) and note where they landed; return the last one's sequence number."""
        with self._lock:
            last_seq = self._wal.append_batch(records)
            first_seq = last_seq - len(records) + 1
            active_first_seq = self._wal.active_first_seq
            if first_seq >= active_first_seq:
                self._note(active_first_seq, group, last_index if entry_count else 0)
            else:  # the batch rolled over into new segments
                first_entry_seq = last_seq - entry_count + 1
                for segment in self._wal.segments():
                    if segment.last_seq < first_seq or segment.first_seq > last_seq:
                        continue
                    span_end = min(segment.last_seq, last_seq)
                    has_entries = span_end >= first_entry_seq
                    highest = last_index - (last_seq - span_end) if has_entries else 0
                    self._note(segment.first_seq, group, highest)
            self._group_written_seq[group] = last_seq
            self._first_unreported.setdefault(group, first_seq)
            return last_seq

    def _segments_holding(self, first_seq: int, last_seq: int) -> list[int]:
        """The segments (by first sequence number) that records first_seq..last_seq, just
        written, landed in."""
        active_first_seq = self._wal.active_first_seq
        if first_seq >= active_first_seq:
            return [active_first_seq]
        return [segment.first_seq for segment in self._wal.segments()
                if segment.first_seq <= last_seq and segment.last_seq >= first_seq]

    def _note_chain(self, instance: int, first_seq: int, last_seq: int) -> None:
        for segment in self._segments_holding(first_seq, last_seq):
            self._chain_segments.setdefault(segment, set()).add(instance)

    def _note(self, segment_first_seq: int, group: int, highest_index: int) -> None:
        """Note that `group` has records, with entries up to `highest_index` (0: none), in
        the segment starting at `segment_first_seq`."""
        held = self._segment_groups.setdefault(segment_first_seq, {})
        if held.get(group, -1) < highest_index:
            held[group] = highest_index

    def _compacted(self, group: int, compact_seq: int, snapshot_index: int) -> None:
        """Note `group`'s durable COMPACT record and delete the segments no group needs."""
        with self._lock:
            self._compact_seq[group] = compact_seq
            self._compacted_to[group] = snapshot_index
            self._remove_unneeded_segments()

    def _remove_unneeded_segments(self) -> None:
        """Delete, oldest first, the sealed segments no group or chain instance needs (the
        shared log's lock held)."""
        first_kept: int | None = None
        for segment in self._wal.segments()[:-1]:
            if segment.first_seq in self._txn_segments:
                break
            held = self._segment_groups.get(segment.first_seq, {})
            if not all(self._covers(g, segment, highest) for g, highest in held.items()):
                break
            chains = self._chain_segments.get(segment.first_seq, ())
            if not all(segment.last_seq <= self._chain_through.get(instance, 0)
                       for instance in chains):
                break
            first_kept = segment.last_seq + 1
        if first_kept is None:
            return
        for path in self._wal.remove_segments_before(first_kept):
            self._segment_groups.pop(_first_seq_of(path), None)
            self._chain_segments.pop(_first_seq_of(path), None)

    def _covers(self, group: int, segment: SegmentInfo, highest_index: int) -> bool:
        """Whether `group`'s durable compaction makes its records in `segment` unneeded."""
        return (
            segment.last_seq < self._compact_seq[group]
            and highest_index <= self._compacted_to[group]
        )

    def _replay(self) -> None:
        segments = self._wal.segments()
        starts = [segment.first_seq for segment in segments]
        trimmed = starts[0] > 1
        saw_compact = False
        position = 0
        # Every instance's chain records not yet covered by a compaction, in written order.
        chain_replayed: list[WalRecord] = []
        chain_noted: tuple[int, int] | None = None
        for record in self._wal.replay():
            while position + 1 < len(starts) and record.seq >= starts[position + 1]:
                position += 1
            if record.type == RECORD_TXN:
                try:
                    instance, kind = _TXN.unpack_from(record.payload)
                except struct.error as error:
                    raise self._corrupt(record, str(error)) from None
                self._txn_records.append((instance, kind, record.payload[_TXN.size:]))
                self._txn_segments.add(starts[position])
                continue
            if record.type == RECORD_CHAIN:
                # The hot path of a long chain log: kept whole, decoded only if it outlives
                # the compactions after it.
                if len(record.payload) < _CHAIN.size:
                    raise self._corrupt(record, f"a chain record of {len(record.payload)} bytes")
                chain_replayed.append(record)
                held = (starts[position], _INSTANCE.unpack_from(record.payload)[0])
                if held != chain_noted:
                    self._chain_segments.setdefault(held[0], set()).add(held[1])
                    chain_noted = held
                continue
            if record.type == RECORD_CHAIN_COMPACT:
                try:
                    instance = self._replay_chain_compact(record, chain_replayed)
                except (ValueError, struct.error) as error:
                    raise self._corrupt(record, str(error)) from None
                self._chain_segments.setdefault(starts[position], set()).add(instance)
                saw_compact = True
                continue
            try:
                group, highest_index, compacted = self._apply_record(record)
            except (ValueError, struct.error) as error:
                raise self._corrupt(record, str(error)) from None
            self._note(starts[position], group, highest_index)
            if compacted:
                self._compact_seq[group] = record.seq
                saw_compact = True
        for view in self._views:
            problem = view._log.check_consistent()
            if problem is not None:
                raise CorruptLogError(segments[0].path, 0, f"group {view.group}: {problem}")
            self._compacted_to[view.group] = max(view._log.snapshot_index,
                                                 view._log.paxos.compacted_through)
        if trimmed and not saw_compact:
            raise CorruptLogError(
                segments[0].path, 0, "old segments are gone but no compaction record explains it"
            )
        for record in chain_replayed:
            instance, kind = _CHAIN.unpack_from(record.payload)
            self._chain_replayed.setdefault(instance, []).append(
                (record.seq, kind, record.payload[_CHAIN.size:]))

    def _replay_chain_compact(self, record: WalRecord, replayed: list[WalRecord]) -> int:
        """Note a replayed CHAIN_COMPACT and drop from `replayed` the records it covers;
        its instance."""
        instance, through = _CHAIN_COMPACT.unpack(record.payload)
        if through >= record.seq:
            raise ValueError(f"a chain compaction through {through} cannot be record {record.seq}")
        self._chain_through[instance] = max(self._chain_through.get(instance, 0), through)
        replayed[:] = [each for each in replayed if each.seq > through
                       or _INSTANCE.unpack_from(each.payload)[0] != instance]
        return int(instance)

    def _apply_record(self, record: WalRecord) -> tuple[int, int, bool]:
        """Apply one replayed record to its group's log: (group, entry index or 0, whether
        it is a COMPACT record)."""
        record_type, payload = record.type, record.payload
        if RECORD_ENTRY <= record_type <= RECORD_COMPACT:  # written before groups: group 0
            record_type, payload = record_type + _TAGGED, _GROUP_ZERO + payload
        if record_type == RECORD_GROUP_ENTRY:
            group, term, index, kind = _GROUP_ENTRY.unpack_from(payload)
            entry = LogEntry(term=term, index=index, kind=kind, data=payload[_GROUP_ENTRY.size :])
            self._replayed_log(group, record).apply_entry(entry)
            return group, index, False
        if record_type == RECORD_GROUP_TRUNCATE:
            group, from_index = _GROUP_TRUNCATE.unpack(payload)
            self._replayed_log(group, record).apply_truncate(from_index)
            return group, 0, False
        if record_type == RECORD_GROUP_COMPACT:
            group, snapshot_index, snapshot_term, keep_suffix = _GROUP_COMPACT.unpack(payload)
            self._replayed_log(group, record).apply_compact(
                snapshot_index, snapshot_term, keep_suffix
            )
            return group, 0, True
        if RECORD_GROUP_PAXOS_FIRST <= record_type <= RECORD_GROUP_PAXOS_LAST:
            group, slot = _GROUP_PAXOS.unpack_from(payload)
            kind = PaxosRecordKind(record_type - _PAXOS)
            self._replayed_log(group, record).paxos.apply(
                PaxosRecord(kind, slot, payload[_GROUP_PAXOS.size :]))
            compacts = kind is PaxosRecordKind.COMPACT
            return group, 0 if compacts else slot, compacts
        raise ValueError(f"unknown log record type {record.type}")

    def _replayed_log(self, group: int, record: WalRecord) -> EntryLog:
        if group >= len(self._views):
            path, offset = self._wal.locate(record.seq)
            raise StorageError(
                f"write-ahead log {self._wal.directory} holds records of group {group} "
                f"(first at {path} offset {offset}), but it was opened for groups "
                f"0..{len(self._views) - 1}: the node's group count must not shrink"
            )
        return self._views[group]._log

    def _corrupt(self, record: WalRecord, problem: str) -> CorruptLogError:
        """Name the file and offset of a record that decodes but makes no sense."""
        path, offset = self._wal.locate(record.seq)
        return CorruptLogError(path, offset, f"record {record.seq}: {problem}")


class FileLogStore:
    """One group's `LogStore` inside a `FileSharedLog` (a `GroupLogStore`); thread-safe.

    `append` and `truncate_suffix` write without syncing; `sync()` (or the shared log's)
    makes them durable. `compact` syncs itself before deleting anything.

    `FileLogStore.open(directory)` opens a log of its own whose only group (0) this is; its
    `close` closes that log. A view handed out by a shared log releases nothing on `close`.
    """

    def __init__(self, shared: FileSharedLog, group: int) -> None:
        self._shared = shared
        self._group = group
        self._lock = threading.Lock()
        self._log = EntryLog()
        self._owns_shared = False

    @classmethod
    def open(
        cls, directory: str | os.PathLike[str], *, segment_size: int = DEFAULT_SEGMENT_SIZE
    ) -> FileLogStore:
        """Open a single-group log in `directory`, replaying its WAL. Raises
        `CorruptLogError`, and `StorageError` if the WAL holds other groups' records."""
        store = FileSharedLog.open(directory, groups=1, segment_size=segment_size).group(0)
        store._owns_shared = True
        return store

    @property
    def wal(self) -> WriteAheadLog:
        return self._shared.wal

    @property
    def shared(self) -> FileSharedLog:
        return self._shared

    @property
    def group(self) -> int:
        return self._group

    @property
    def written_seq(self) -> int:
        return self._shared._group_written_seq[self._group]

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
            group = self._group
            records: list[tuple[int, bytes]] = []
            conflict_at = fresh[0].index
            conflicts = conflict_at <= self._log.last_index()
            if conflicts:
                records.append((RECORD_GROUP_TRUNCATE, _GROUP_TRUNCATE.pack(group, conflict_at)))
            records += [(RECORD_GROUP_ENTRY, encode_entry(group, entry)) for entry in fresh]
            self._shared._write(group, records, len(fresh), fresh[-1].index)
            if conflicts:
                self._log.apply_truncate(conflict_at)
            self._log.apply_entries(fresh)

    def truncate_suffix(self, from_index: int) -> None:
        with self._lock:
            self._log.check_truncate(from_index)
            if from_index > self._log.last_index():
                return
            record = _GROUP_TRUNCATE.pack(self._group, from_index)
            self._shared._write(self._group, [(RECORD_GROUP_TRUNCATE, record)])
            self._log.apply_truncate(from_index)

    def compact(self, snapshot_index: int, snapshot_term: int) -> None:
        with self._lock:
            if snapshot_index <= self._log.snapshot_index:
                return
            keep_suffix = self._log.keeps_suffix_after(snapshot_index, snapshot_term)
            record = _GROUP_COMPACT.pack(self._group, snapshot_index, snapshot_term, keep_suffix)
            seq = self._shared._write(self._group, [(RECORD_GROUP_COMPACT, record)])
            # The COMPACT record must be durable before the segments it replaces go away.
            self._shared.sync()
            self._log.apply_compact(snapshot_index, snapshot_term, keep_suffix)
            self._shared._compacted(self._group, seq, snapshot_index)

    def paxos_records(self) -> list[PaxosRecord]:
        """The group's live Multi-Paxos records, in the order they were written."""
        with self._lock:
            return self._log.paxos.records()

    def append_paxos(self, records: Sequence[PaxosRecord]) -> None:
        """Write Multi-Paxos records, without syncing; a batch that holds a COMPACT record
        syncs (so the compaction is durable before any segment it covers goes)."""
        with self._lock:
            compact_seq, compacted = 0, 0
            for record in records:
                payload = _GROUP_PAXOS.pack(self._group, record.slot) + record.body
                compacts = record.kind is PaxosRecordKind.COMPACT
                # One record a write: a segment's highest slot is then exactly noted.
                seq = self._shared._write(self._group, [(_PAXOS + record.kind, payload)],
                                          0 if compacts else 1, record.slot)
                self._log.paxos.apply(record)
                if compacts:
                    compact_seq, compacted = seq, max(compacted, record.slot)
            if compact_seq:
                self._shared.sync()
                self._shared._compacted(self._group, compact_seq,
                                        max(compacted, self._log.snapshot_index))

    def sync(self) -> None:
        # Not under the view's lock: the WAL syncs without blocking appends. Another
        # group's sync may have covered this group's writes already.
        shared = self._shared
        if shared._group_written_seq[self._group] > shared.wal.synced_seq:
            shared.sync()

    def close(self) -> None:
        if self._owns_shared:
            self._shared.close()

    def __enter__(self) -> FileLogStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _first_seq_of(path: Path) -> int:
    return int(path.name.split(".", 1)[0])


if TYPE_CHECKING:

    def _satisfies_interfaces(shared: FileSharedLog, store: FileLogStore) -> tuple[
        SharedLog, GroupLogStore
    ]:
        """Lets mypy prove the file stores implement the shared-log interfaces."""
        return shared, store
