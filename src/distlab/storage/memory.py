"""In-memory stores with the file stores' semantics, for unit tests and the simulator.

`MemorySharedLog` is the twin of `FileSharedLog`: the logs of several groups, one sync for
all of them, and sequence numbers counted as the file log counts its records (one per
entry, truncation and compaction). It keeps what was synced apart from what was only
written, so a simulated crash (`crashed()`) loses exactly what a real crash could lose, and
it can fail a sync as a failing disk does. `MemoryLogStore` is one group's view; made on
its own, it is the only group of a shared log of its own. Stable state and snapshots are
durable as soon as `save` returns, as with their file stores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from distlab.storage.entry_log import EntryLog
from distlab.storage.errors import StorageClosedError, StorageError
from distlab.storage.interfaces import (
    GroupLogStore,
    LogStore,
    SharedLog,
    SnapshotStore,
    StableStore,
)
from distlab.storage.model import (
    LogEntry,
    PaxosRecord,
    PaxosRecordKind,
    Snapshot,
    SnapshotMeta,
    StableState,
    SyncReport,
    SyncStats,
)
from distlab.storage.snapshot_store import DEFAULT_RETAIN, make_meta

_Operation = Callable[[EntryLog], None]


class MemorySharedLog:
    """`SharedLog` in memory; unsynced writes of every group are dropped by `crashed()`."""

    def __init__(self, groups: int = 1) -> None:
        if groups < 1:
            raise ValueError(f"a shared log holds at least one group, not {groups}")
        self._lock = threading.Lock()
        self._logs = [EntryLog() for _ in range(groups)]
        self._durable = [EntryLog() for _ in range(groups)]
        # Every write not yet synced, in the order the file log would hold its records.
        self._unsynced: list[tuple[int, _Operation]] = []
        self._durable_seq = 0
        self._group_written_seq = [0] * groups
        self._failure: str | None = None
        self._fail_next_sync = False
        self._stats = SyncStats()
        self._views = tuple(MemoryLogStore(self, group) for group in range(groups))

    @property
    def groups(self) -> int:
        return len(self._views)

    def group(self, group: int) -> MemoryLogStore:
        if not 0 <= group < len(self._views):
            raise ValueError(f"group {group} is outside 0..{len(self._views) - 1}")
        return self._views[group]

    @property
    def written_seq(self) -> int:
        with self._lock:
            return self._durable_seq + len(self._unsynced)

    @property
    def durable_seq(self) -> int:
        with self._lock:
            return self._durable_seq

    @property
    def stats(self) -> SyncStats:
        return self._stats

    @property
    def unsynced_records(self) -> int:
        """How many records a crash now could lose."""
        with self._lock:
            return len(self._unsynced)

    def sync(self) -> SyncReport | None:
        with self._lock:
            return self._sync_locked()

    def close(self) -> None:
        """Nothing to release; present so the log fits the `SharedLog` interface."""

    def fail_next_sync(self) -> None:
        """Make the next sync fail as a failed fsync does: it raises `StorageError`, its
        writes stay unsynced (a crash loses them) and every later write or sync raises
        `StorageClosedError`. Reads keep working."""
        with self._lock:
            self._fail_next_sync = True

    def crashed(self, *, keep_unsynced: int = 0) -> MemorySharedLog:
        """The log as a restart after a crash finds it: what was synced, and the first
        `keep_unsynced` records written after that (the disk writes in order, so a crash
        keeps a prefix of the unsynced records; the file log truncates the torn rest)."""
        with self._lock:
            if not 0 <= keep_unsynced <= len(self._unsynced):
                raise ValueError(
                    f"{keep_unsynced} unsynced records cannot survive: "
                    f"{len(self._unsynced)} were written"
                )
            survivor = MemorySharedLog(len(self._logs))
            for group, log in enumerate(self._durable):
                survivor._logs[group] = log.copy()
                survivor._durable[group] = log.copy()
            for group, operation in self._unsynced[:keep_unsynced]:
                operation(survivor._logs[group])
                operation(survivor._durable[group])
            survivor._durable_seq = self._durable_seq + keep_unsynced
            return survivor

    def _record(self, group: int, operation: _Operation) -> None:
        self._check_usable()
        operation(self._logs[group])
        self._unsynced.append((group, operation))
        self._group_written_seq[group] = self._durable_seq + len(self._unsynced)

    def _sync_locked(self) -> SyncReport | None:
        self._check_usable()
        if not self._unsynced:
            return None
        if self._fail_next_sync:
            self._failure = "a sync failed (injected)"
            raise StorageError(f"fsync of the in-memory shared log failed: {self._failure}")
        groups: set[int] = set()
        for group, operation in self._unsynced:
            operation(self._durable[group])
            groups.add(group)
        records = len(self._unsynced)
        self._unsynced.clear()
        self._durable_seq += records
        report = SyncReport(
            durable_seq=self._durable_seq,
            records=records,
            groups=tuple(sorted(groups)),
            seconds=0.0,
        )
        self._stats.count(report)
        return report

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise StorageClosedError(
                f"the in-memory shared log is unusable after an I/O error: {self._failure}"
            )


def _apply_paxos(log: EntryLog, record: PaxosRecord) -> None:
    log.paxos.apply(record)


class MemoryLogStore:
    """One group's `LogStore` in a `MemorySharedLog` (a `GroupLogStore`).

    `MemoryLogStore()` makes the only group of a shared log of its own.
    """

    def __init__(self, shared: MemorySharedLog | None = None, group: int = 0) -> None:
        self._shared = shared if shared is not None else MemorySharedLog()
        if not 0 <= group < len(self._shared._logs):
            raise ValueError(f"group {group} is outside 0..{len(self._shared._logs) - 1}")
        self._group = group

    @property
    def shared(self) -> MemorySharedLog:
        return self._shared

    @property
    def group(self) -> int:
        return self._group

    @property
    def written_seq(self) -> int:
        with self._shared._lock:
            return self._shared._group_written_seq[self._group]

    def first_index(self) -> int:
        with self._shared._lock:
            return self._shared._logs[self._group].first_index()

    def last_index(self) -> int:
        with self._shared._lock:
            return self._shared._logs[self._group].last_index()

    def snapshot_position(self) -> tuple[int, int]:
        with self._shared._lock:
            log = self._shared._logs[self._group]
            return log.snapshot_index, log.snapshot_term

    def term(self, index: int) -> int:
        with self._shared._lock:
            return self._shared._logs[self._group].term(index)

    def entries(self, low: int, high: int, max_bytes: int | None = None) -> list[LogEntry]:
        with self._shared._lock:
            return self._shared._logs[self._group].entries(low, high, max_bytes)

    def append(self, entries: Sequence[LogEntry]) -> None:
        shared = self._shared
        with shared._lock:
            log = shared._logs[self._group]
            fresh = log.check_append(entries)
            if not fresh:
                return
            shared._check_usable()
            conflict_at = fresh[0].index
            group = self._group
            if conflict_at <= log.last_index():
                shared._record(group, partial(EntryLog.apply_truncate, from_index=conflict_at))
            for entry in fresh:
                shared._record(group, partial(EntryLog.apply_entry, entry=entry))

    def truncate_suffix(self, from_index: int) -> None:
        shared = self._shared
        with shared._lock:
            log = shared._logs[self._group]
            log.check_truncate(from_index)
            if from_index <= log.last_index():
                shared._record(self._group, partial(EntryLog.apply_truncate, from_index=from_index))

    def compact(self, snapshot_index: int, snapshot_term: int) -> None:
        shared = self._shared
        with shared._lock:
            log = shared._logs[self._group]
            if snapshot_index <= log.snapshot_index:
                return
            keep = log.keeps_suffix_after(snapshot_index, snapshot_term)
            shared._record(
                self._group,
                partial(
                    EntryLog.apply_compact,
                    snapshot_index=snapshot_index,
                    snapshot_term=snapshot_term,
                    keep_suffix=keep,
                ),
            )
            shared._sync_locked()

    def paxos_records(self) -> list[PaxosRecord]:
        with self._shared._lock:
            return self._shared._logs[self._group].paxos.records()

    def append_paxos(self, records: Sequence[PaxosRecord]) -> None:
        shared = self._shared
        with shared._lock:
            shared._check_usable()
            for record in records:
                shared._record(self._group, partial(_apply_paxos, record=record))
            if any(record.kind is PaxosRecordKind.COMPACT for record in records):
                shared._sync_locked()

    def sync(self) -> None:
        shared = self._shared
        with shared._lock:
            if shared._group_written_seq[self._group] > shared._durable_seq:
                shared._sync_locked()

    def close(self) -> None:
        """Nothing to release: the shared log holds everything."""

    def crashed(self, *, keep_unsynced: int = 0) -> MemoryLogStore:
        """This group's log after a crash and restart of the shared log (see
        `MemorySharedLog.crashed`)."""
        return self._shared.crashed(keep_unsynced=keep_unsynced).group(self._group)


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
        shared: MemorySharedLog,
        log: MemoryLogStore,
        stable: MemoryStableStore,
        snapshots: MemorySnapshotStore,
    ) -> tuple[SharedLog, GroupLogStore, LogStore, StableStore, SnapshotStore]:
        """Lets mypy prove the in-memory stores implement the interfaces they stand in for."""
        return shared, log, log, stable, snapshots
