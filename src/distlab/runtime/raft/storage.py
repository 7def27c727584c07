"""The Raft core's durable state on the file-backed stores, converted between their types.

`persist(ready)` writes everything a Ready asks to keep and fsyncs once, so a batch of many
proposals costs one log fsync. Term and vote are written (atomically, in their own file)
only when they change: the commit index is recorded alongside but need not be current,
since a restarted node learns it again from the leader and a stale value is still safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import Histogram

from distlab.core.ids import NodeId
from distlab.protocols import raft
from distlab.storage import LogEntry, NodeStorage, StableState, open_node_storage
from distlab.storage import Snapshot as StoredSnapshot

log = logging.getLogger(__name__)

FSYNC_SECONDS = Histogram(
    "distlab_wal_fsync_duration_seconds",
    "How long one fsync of the write-ahead log took.",
    buckets=(0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0),
)


# Persisting inline (on the event loop) is cheaper than handing the write to a worker thread
# when the disk is fast: the hand-off costs thread wake-ups and GIL transfers, and under load
# the worker waits for the GIL after its fsync (up to the interpreter's 5 ms switch interval),
# more than a fast disk's fsync takes. While recent writes took less than this on average,
# persist runs inline; a slow disk's writes go to a thread so the loop keeps serving.
INLINE_PERSIST_SECONDS = 0.002
# Weight of the newest write in the running average of write times.
WRITE_TIME_WEIGHT = 0.2


def _to_stored(entry: raft.Entry) -> LogEntry:
    return LogEntry(term=entry.term, index=entry.index, kind=int(entry.kind), data=entry.data)


def _from_stored(entry: LogEntry) -> raft.Entry:
    return raft.Entry(entry.term, entry.index, raft.EntryKind(entry.kind), entry.data)


def _snapshot_from_stored(stored: StoredSnapshot) -> raft.Snapshot:
    meta = stored.meta
    membership = raft.Membership(
        voters=frozenset(NodeId(n) for n in meta.voters),
        learners=frozenset(NodeId(n) for n in meta.learners),
    )
    return raft.Snapshot(raft.SnapshotMeta(meta.last_index, meta.last_term, membership),
                         stored.data)


class DurableStorage:
    """Implements the core's `Storage` (what it restarts from) and persists its Readys."""

    def __init__(self, stores: NodeStorage) -> None:
        self._stores = stores
        stable = stores.stable.load()
        self._hard_state = raft.HardState(
            term=stable.current_term, vote=NodeId(stable.voted_for), commit=stable.commit_index
        )
        # Starts slow: the first writes go to a thread until the disk has shown it is fast.
        self._average_write_seconds = 1.0
        stored_snapshot = stores.snapshots.open_latest()
        self._snapshot = _snapshot_from_stored(stored_snapshot) if stored_snapshot else None
        snapshot_index = self._snapshot.meta.last_index if self._snapshot else 0
        snapshot_term = self._snapshot.meta.last_term if self._snapshot else 0
        if stores.log.snapshot_position()[0] < snapshot_index:
            # The snapshot was saved but the crash came before the log recorded the compaction.
            stores.log.compact(snapshot_index, snapshot_term)

    @classmethod
    def open(cls, data_dir: Path) -> DurableStorage:
        return cls(open_node_storage(data_dir))

    # --- the core's Storage protocol: read once, at start ---

    def hard_state(self) -> raft.HardState:
        return self._hard_state

    def snapshot(self) -> raft.Snapshot | None:
        return self._snapshot

    def entries(self) -> Sequence[raft.Entry]:
        log_store = self._stores.log
        first, last = log_store.first_index(), log_store.last_index()
        if last < first:
            return ()
        snapshot_index = self._snapshot.meta.last_index if self._snapshot else 0
        first = max(first, snapshot_index + 1)
        return [_from_stored(e) for e in log_store.entries(first, last + 1)]

    # --- writes, blocking: the driver calls these from a worker thread ---

    def needs_disk(self, ready: raft.Ready) -> bool:
        """Whether persisting `ready` writes anything (a commit-index change alone does not)."""
        hard = ready.hard_state
        return bool(
            ready.snapshot is not None
            or ready.entries
            or (hard is not None
                and (hard.term, hard.vote) != (self._hard_state.term, self._hard_state.vote))
        )

    def persists_inline(self) -> bool:
        """Whether the disk has been fast enough lately to write on the caller's thread."""
        return self._average_write_seconds < INLINE_PERSIST_SECONDS

    def persist(self, ready: raft.Ready) -> None:
        started = time.perf_counter()
        if self._persist(ready):
            elapsed = time.perf_counter() - started
            self._average_write_seconds += WRITE_TIME_WEIGHT * (
                elapsed - self._average_write_seconds)

    def _persist(self, ready: raft.Ready) -> bool:
        """Keep what `ready` asks to; whether that wrote to the disk."""
        wrote = False
        if ready.snapshot is not None:
            self.save_snapshot(ready.snapshot)
            wrote = True
        if ready.entries:
            first = ready.entries[0].index
            self._stores.log.truncate_suffix(first)
            self._stores.log.append([_to_stored(e) for e in ready.entries])
            started = time.perf_counter()
            self._stores.log.sync()
            FSYNC_SECONDS.observe(time.perf_counter() - started)
            wrote = True
        if ready.hard_state is not None:
            wrote = self._save_hard_state(ready.hard_state) or wrote
        return wrote

    def save_snapshot(self, snapshot: raft.Snapshot) -> None:
        """Keep `snapshot` (taken here or received from the leader) and drop the log it covers."""
        meta = snapshot.meta
        self._stores.snapshots.save(
            meta.last_index, meta.last_term, sorted(meta.membership.voters),
            sorted(meta.membership.learners), snapshot.data,
        )
        self._stores.log.compact(meta.last_index, meta.last_term)
        self._snapshot = snapshot

    def _save_hard_state(self, hard_state: raft.HardState) -> bool:
        """Record `hard_state`; whether that wrote to the disk (only term and vote must)."""
        previous = self._hard_state
        self._hard_state = hard_state
        if (hard_state.term, hard_state.vote) == (previous.term, previous.vote):
            return False
        self._stores.stable.save(
            StableState(hard_state.term, int(hard_state.vote), hard_state.commit)
        )
        return True

    def close(self) -> None:
        self._stores.close()
