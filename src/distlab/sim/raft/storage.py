"""Raft's records on the simulated disk, and the state a member restarts from.

The format follows the node's real storage: entries replace the log from their first
index; term and vote are written only when they change (the commit index rides along but
may be stale, which is safe); a snapshot is a file of its own, and a compaction record notes
it in the log. Recovery replays the records in order into what `Raft` reads at start.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from distlab.core.ids import NodeId
from distlab.protocols.raft import (
    Entry,
    EntryKind,
    HardState,
    Membership,
    Ready,
    Snapshot,
    SnapshotMeta,
)
from distlab.sim.disk import Record

ENTRIES = 1
HARD_STATE = 2
COMPACTED = 3

_FIRST_INDEX = struct.Struct(">Q")
_ENTRY = struct.Struct(">QBI")  # term, kind, data length
_HARD_STATE = struct.Struct(">QQQ")
_META = struct.Struct(">QQH")  # last index, last term, membership length


class RaftRecoveryError(ValueError):
    """The records on disk do not make a log (a bug in whoever wrote them)."""


def _encode_entries(entries: Sequence[Entry]) -> bytes:
    parts = [_FIRST_INDEX.pack(entries[0].index)]
    pack = _ENTRY.pack
    for entry in entries:
        parts.append(pack(entry.term, int(entry.kind), len(entry.data)))
        parts.append(entry.data)
    return b"".join(parts)


def _decode_entries(body: bytes) -> list[Entry]:
    (index,) = _FIRST_INDEX.unpack_from(body)
    offset = _FIRST_INDEX.size
    entries = []
    while offset < len(body):
        term, kind, length = _ENTRY.unpack_from(body, offset)
        offset += _ENTRY.size
        entries.append(Entry(term, index, EntryKind(kind), body[offset:offset + length]))
        offset += length
        index += 1
    return entries


def _encode_meta(meta: SnapshotMeta) -> bytes:
    membership = meta.membership.encode()
    return _META.pack(meta.last_index, meta.last_term, len(membership)) + membership


def _decode_meta(body: bytes) -> tuple[SnapshotMeta, int]:
    index, term, length = _META.unpack_from(body)
    end = _META.size + length
    return SnapshotMeta(index, term, Membership.decode(body[_META.size:end])), end


def encode_snapshot_file(snapshot: Snapshot) -> bytes:
    return _encode_meta(snapshot.meta) + snapshot.data


def decode_snapshot_file(data: bytes) -> Snapshot:
    meta, end = _decode_meta(data)
    return Snapshot(meta, data[end:])


class RaftFormat:
    """Implements `distlab.sim.storage.DurableFormat` for one Raft member."""

    def __init__(self, hard_state: HardState) -> None:
        self._written = (hard_state.term, hard_state.vote)

    def encode_ready(self, ready: Ready) -> tuple[bytes | None, list[tuple[int, bytes]]]:
        snapshot_file = None
        records: list[tuple[int, bytes]] = []
        if ready.snapshot is not None:
            snapshot_file = encode_snapshot_file(ready.snapshot)
            records.append((COMPACTED, _encode_meta(ready.snapshot.meta)))
        if ready.entries:
            records.append((ENTRIES, _encode_entries(ready.entries)))
        hard = ready.hard_state
        if hard is not None and (hard.term, hard.vote) != self._written:
            self._written = (hard.term, hard.vote)
            records.append((HARD_STATE, _HARD_STATE.pack(hard.term, hard.vote, hard.commit)))
        return snapshot_file, records

    def encode_snapshot(self, snapshot: Snapshot) -> tuple[bytes, list[tuple[int, bytes]]]:
        return encode_snapshot_file(snapshot), [(COMPACTED, _encode_meta(snapshot.meta))]


class RecoveredLog:
    """Implements the core's `Storage`: what a restarting member reads, once."""

    def __init__(self) -> None:
        self._hard_state = HardState()
        self._snapshot: Snapshot | None = None
        self._offset = 0  # the index the snapshot (or the compaction record) covers
        self._offset_term = 0
        self._entries: list[Entry] = []
        # Records to write before the member runs: the compaction a snapshot file implies
        # when the crash lost the log's own record of it (the real store does the same when
        # it opens), so that what is appended next follows it in the log too.
        self.startup_records: list[tuple[int, bytes]] = []

    def hard_state(self) -> HardState:
        return self._hard_state

    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def entries(self) -> Sequence[Entry]:
        return tuple(self._entries)

    def _append(self, entries: list[Entry]) -> None:
        first = entries[0].index
        if first <= self._offset:
            raise RaftRecoveryError(f"entry {first} is inside the snapshot (to {self._offset})")
        keep = first - self._offset - 1
        if keep > len(self._entries):
            raise RaftRecoveryError(
                f"gap: entries from {first} after {self._offset + len(self._entries)}")
        del self._entries[keep:]
        self._entries.extend(entries)

    def _compact(self, index: int, term: int) -> None:
        """Entries after a snapshot survive only where the log agrees with it at its index."""
        if index <= self._offset:
            return
        position = index - self._offset - 1
        if position < len(self._entries) and self._entries[position].term == term:
            self._entries = self._entries[position + 1:]
        else:
            self._entries = []
        self._offset, self._offset_term = index, term


def recover(records: Sequence[Record], snapshot_file: bytes | None) -> RecoveredLog:
    log = RecoveredLog()
    for record in records:
        if record.kind == ENTRIES:
            log._append(_decode_entries(record.body))
        elif record.kind == HARD_STATE:
            term, vote, commit = _HARD_STATE.unpack(record.body)
            log._hard_state = HardState(term, NodeId(vote), commit)
        elif record.kind == COMPACTED:
            meta, _ = _decode_meta(record.body)
            log._compact(meta.last_index, meta.last_term)
        else:
            raise RaftRecoveryError(f"unknown record kind {record.kind}")
    if snapshot_file is not None:
        snapshot = decode_snapshot_file(snapshot_file)
        # The file is written before its compaction record, which a crash may have lost.
        if snapshot.meta.last_index > log._offset:
            log._compact(snapshot.meta.last_index, snapshot.meta.last_term)
            log.startup_records.append((COMPACTED, _encode_meta(snapshot.meta)))
        log._snapshot = snapshot
    if log._snapshot is None and log._offset:
        raise RaftRecoveryError(f"the log was compacted to {log._offset} but no snapshot "
                                "file exists")
    # Entries are written before the term record that carries a commit index covering them,
    # so whatever prefix of the log survived holds them.
    hard = log._hard_state
    last = log._offset + len(log._entries)
    if hard.commit > last:
        raise RaftRecoveryError(f"stored commit index {hard.commit} beyond the stored log "
                                f"({last})")
    return log
