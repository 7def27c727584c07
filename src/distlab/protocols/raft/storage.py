"""What the core reads when it starts, and an in-memory store that keeps it.

The core holds its log in memory while running and hands changes out through `Ready`; it
reads storage once, at construction. A file-backed store implements the same `Storage`
protocol (hashicorp/raft's LogStore/StableStore/SnapshotStore folded into one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from distlab.protocols.raft.messages import Entry, Snapshot
from distlab.protocols.raft.state import HardState


class Storage(Protocol):
    """The durable state a member restarts from."""

    def hard_state(self) -> HardState: ...

    def snapshot(self) -> Snapshot | None: ...

    def entries(self) -> Sequence[Entry]:
        """The log after the snapshot, in index order, contiguous."""
        ...


class MemoryStorage:
    """Durable state kept in memory: the simulator keeps one alive across a node's crashes."""

    def __init__(self) -> None:
        self._hard_state = HardState()
        self._snapshot: Snapshot | None = None
        self._entries: list[Entry] = []

    # --- the Storage protocol ---

    def hard_state(self) -> HardState:
        return self._hard_state

    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def entries(self) -> Sequence[Entry]:
        return tuple(self._entries)

    # --- writes, in the order a Ready asks for them ---

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def append(self, entries: Sequence[Entry]) -> None:
        """Replaces the log from `entries[0].index` on."""
        if not entries:
            return
        first = entries[0].index
        offset = self._snapshot.meta.last_index if self._snapshot else 0
        if first <= offset:
            raise ValueError(f"entry {first} is inside the snapshot (up to {offset})")
        keep = first - offset - 1
        if keep > len(self._entries):
            raise ValueError(f"gap: appending {first} after {offset + len(self._entries)}")
        del self._entries[keep:]
        self._entries.extend(entries)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Stores a snapshot, keeping only the log entries that follow it and agree with it.

        Used both for a snapshot received from a leader and for local compaction: in both
        cases entries after the snapshot survive only if the entry at its index matches.
        """
        meta = snapshot.meta
        old_offset = self._snapshot.meta.last_index if self._snapshot else 0
        if meta.last_index <= old_offset:
            return
        position = meta.last_index - old_offset - 1
        if position < len(self._entries) and self._entries[position].term == meta.last_term:
            self._entries = self._entries[position + 1 :]
        else:
            self._entries = []
        self._snapshot = snapshot
