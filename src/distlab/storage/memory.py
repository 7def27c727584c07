"""In-memory stores with the file stores' semantics, for unit tests and the simulator.

`MemoryLogStore` keeps what was synced apart from what was only written, so a simulated
crash (`crashed()`) loses exactly what a real crash could lose. Stable state and snapshots
are durable as soon as `save` returns, as with their file stores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from distlab.storage.entry_log import EntryLog
from distlab.storage.interfaces import LogStore, SnapshotStore, StableStore
from distlab.storage.model import LogEntry, Snapshot, SnapshotMeta, StableState
from distlab.storage.snapshot_store import DEFAULT_RETAIN, make_meta

_Operation = Callable[[EntryLog], None]


class MemoryLogStore:
    """`LogStore` in memory; unsynced writes are dropped by `crashed()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log = EntryLog()
        self._durable = EntryLog()
        self._unsynced: list[_Operation] = []
        self.sync_count = 0

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
            conflict_at = fresh[0].index
            if conflict_at <= self._log.last_index():
                self._record(partial(EntryLog.apply_truncate, from_index=conflict_at))
            for entry in fresh:
                self._record(partial(EntryLog.apply_entry, entry=entry))

    def truncate_suffix(self, from_index: int) -> None:
        with self._lock:
            self._log.check_truncate(from_index)
            if from_index <= self._log.last_index():
                self._record(partial(EntryLog.apply_truncate, from_index=from_index))

    def compact(self, snapshot_index: int, snapshot_term: int) -> None:
        with self._lock:
            if snapshot_index <= self._log.snapshot_index:
                return
            keep = self._log.keeps_suffix_after(snapshot_index, snapshot_term)
            self._record(
                partial(
                    EntryLog.apply_compact,
                    snapshot_index=snapshot_index,
                    snapshot_term=snapshot_term,
                    keep_suffix=keep,
                )
            )
            self._sync_locked()

    def sync(self) -> None:
        with self._lock:
            self._sync_locked()

    def close(self) -> None:
        """Nothing to release; present so the store fits the `LogStore` interface."""

    def crashed(self) -> MemoryLogStore:
        """A store as it would be after a crash and restart: only synced writes remain."""
        with self._lock:
            survivor = MemoryLogStore()
            survivor._log = self._durable.copy()
            survivor._durable = self._durable.copy()
            return survivor

    def _record(self, operation: _Operation) -> None:
        operation(self._log)
        self._unsynced.append(operation)

    def _sync_locked(self) -> None:
        for operation in self._unsynced:
            operation(self._durable)
        self._unsynced.clear()
        self.sync_count += 1


class MemoryStableStore:
    """`StableStore` in memory; a save is durable at once, as with the file store."""

    def __init__(self, state: StableState | None = None) -> None:
        self._state = state or StableState()
        self.save_count = 0

    def load(self) -> StableState:
        return self._state

    def save(self, state: StableState) -> None:
        self._state = state
        self.save_count += 1


class MemorySnapshotStore:
    """`SnapshotStore` in memory; keeps the newest `retain` snapshots."""

    def __init__(self, *, retain: int = DEFAULT_RETAIN) -> None:
        if retain < 1:
            raise ValueError(f"must retain at least one snapshot, not {retain}")
        self._retain = retain
        self._snapshots: dict[tuple[int, int], Snapshot] = {}

    def save(
        self,
        last_index: int,
        last_term: int,
        voters: Sequence[int],
        learners: Sequence[int],
        data: bytes,
    ) -> SnapshotMeta:
        meta = make_meta(last_index, last_term, voters, learners, data)
        self._snapshots[(last_index, last_term)] = Snapshot(meta, bytes(data))
        for stale in sorted(self._snapshots, reverse=True)[self._retain :]:
            del self._snapshots[stale]
        return meta

    def list_snapshots(self) -> list[SnapshotMeta]:
        return [self._snapshots[key].meta for key in sorted(self._snapshots, reverse=True)]

    def open_latest(self) -> Snapshot | None:
        if not self._snapshots:
            return None
        return self._snapshots[max(self._snapshots)]


if TYPE_CHECKING:

    def _satisfies_interfaces(
        log: MemoryLogStore, stable: MemoryStableStore, snapshots: MemorySnapshotStore
    ) -> tuple[LogStore, StableStore, SnapshotStore]:
        """Lets mypy prove the in-memory stores implement the interfaces they stand in for."""
        return log, stable, snapshots
