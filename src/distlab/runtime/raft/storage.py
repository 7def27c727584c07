"""One Raft group's durable state on the node's stores, converted between their types.

`persist(ready)` writes what a Ready asks to keep, then waits for the node's shared fsync,
so a batch of many proposals, from every group of the node, costs one log fsync. Term and
vote are written (atomically, in the group's own file) only when they change: the commit
index is recorded alongside but need not be current, since a restarted node learns it again
from the leader and a stale value is still safe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from distlab.core.ids import NodeId
from distlab.protocols import raft
from distlab.runtime.host.sync import SharedSync
from distlab.storage import GroupLogStore, LogEntry, SnapshotStore, StableState, StableStore
from distlab.storage import Snapshot as StoredSnapshot

log = logging.getLogger(__name__)


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
    """Implements the core's `Storage` (what it restarts from) and the driver's Storage port."""

    def __init__(self, log_store: GroupLogStore, stable: StableStore, snapshots: SnapshotStore,
                 shared_sync: SharedSync) -> None:
        """Raises ValueError when the group's state on disk is Multi-Paxos's."""
        if log_store.paxos_records():
            raise ValueError(f"group {log_store.group} holds Multi-Paxos records: this data "
                             "directory was written with ENGINE=paxos")
        self._log = log_store
        self._stable = stable
        self._snapshots = snapshots
        self._shared_sync = shared_sync
        state = stable.load()
        self._hard_state = raft.HardState(
            term=state.current_term, vote=NodeId(state.voted_for), commit=state.commit_index
        )
        stored_snapshot = snapshots.open_latest()
        self._snapshot = _snapshot_from_stored(stored_snapshot) if stored_snapshot else None
        snapshot_index = self._snapshot.meta.last_index if self._snapshot else 0
        snapshot_term = self._snapshot.meta.last_term if self._snapshot else 0
        if log_store.snapshot_position()[0] < snapshot_index:
            # The snapshot was saved but the crash came before the log recorded the compaction.
            log_store.compact(snapshot_index, snapshot_term)

    # --- the core's Storage protocol: read once, at start ---

    def hard_state(self) -> raft.HardState:
        return self._hard_state

    def snapshot(self) -> raft.Snapshot | None:
        return self._snapshot

    def entries(self) -> Sequence[raft.Entry]:
        log_store = self._log
        first, last = log_store.first_index(), log_store.last_index()
        if last < first:
            return ()
        snapshot_index = self._snapshot.meta.last_index if self._snapshot else 0
        first = max(first, snapshot_index + 1)
        return [_from_stored(e) for e in log_store.entries(first, last + 1)]

    # --- the driver's Storage port ---

    async def persist(self, ready: raft.Ready) -> None:
        if ready.snapshot is not None:
            self.save_snapshot(ready.snapshot)
        if ready.entries:
            # The store replaces whatever it holds from the first entry on (a suffix the
            # leader overwrote), in the same write as the entries.
            self._log.append([_to_stored(e) for e in ready.entries])
        if ready.hard_state is not None:
            self._save_hard_state(ready.hard_state)
        if ready.entries:
            await self._shared_sync.durable(self._log.written_seq)

    def save_snapshot(self, snapshot: raft.Snapshot) -> None:
        """Keep `snapshot` (taken here or received from the leader) and drop the log it covers."""
        meta = snapshot.meta
        self._snapshots.save(
            meta.last_index, meta.last_term, sorted(meta.membership.voters),
            sorted(meta.membership.learners), snapshot.data,
        )
        self._log.compact(meta.last_index, meta.last_term)
        self._snapshot = snapshot

    def _save_hard_state(self, hard_state: raft.HardState) -> None:
        """Record `hard_state`; only a change of term or vote must reach the disk."""
        previous = self._hard_state
        self._hard_state = hard_state
        if (hard_state.term, hard_state.vote) != (previous.term, previous.vote):
            self._stable.save(
                StableState(hard_state.term, int(hard_state.vote), hard_state.commit))

    def close(self) -> None:
        """The node closes the shared stores; one group has nothing of its own to release."""
