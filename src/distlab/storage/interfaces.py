"""The storage interfaces (after hashicorp/raft's LogStore, StableStore, SnapshotStore), and
the log a node's groups share (after TiKV's raft-engine): one write-ahead log, one fsync
for the writes of every group, a `LogStore` view per group.

Each has a file-backed implementation and an in-memory one with the same behaviour, so the
simulator and unit tests exercise exactly the semantics production relies on.
"""

from collections.abc import Sequence
from typing import Protocol

from distlab.storage.model import (
    LogEntry,
    PaxosRecord,
    Snapshot,
    SnapshotMeta,
    StableState,
    SyncReport,
    SyncStats,
)


class LogStore(Protocol):
    """An ordered log of entries, indexed from 1, with a compacted prefix.

    The compacted prefix ends at `snapshot_index` (whose term `term` still answers); live
    entries run from `first_index()` = snapshot_index + 1 to `last_index()`. Writes are not
    durable until `sync()` returns, except `compact`, which syncs itself.
    """

    def first_index(self) -> int:
        """The index of the oldest live entry (snapshot_index + 1, even when empty)."""
        ...

    def last_index(self) -> int:
        """The index of the newest entry, or `snapshot_index` when there is none."""
        ...

    def snapshot_position(self) -> tuple[int, int]:
        """(index, term) of the last entry the compacted prefix covers; (0, 0) if none."""
        ...

    def term(self, index: int) -> int:
        """The term of the entry at `index` (or of the compacted prefix's last entry).

        Raises `LogCompactedError` below it and `LogUnavailableError` beyond the last entry.
        """
        ...

    def entries(self, low: int, high: int, max_bytes: int | None = None) -> list[LogEntry]:
        """Entries with low <= index < high; with `max_bytes`, stop before exceeding it
        (but always return at least one entry if any is asked for)."""
        ...

    def append(self, entries: Sequence[LogEntry]) -> None:
        """Append consecutive entries. If the first one's index is already in the log, the
        log from that index on is replaced (a conflicting suffix)."""
        ...

    def truncate_suffix(self, from_index: int) -> None:
        """Delete every entry from `from_index` on."""
        ...

    def compact(self, snapshot_index: int, snapshot_term: int) -> None:
        """Record that a durable snapshot covers the log up to `snapshot_index`.

        Follows Raft's rule for installed snapshots: if the log holds that index with that
        term, the entries after it are kept; otherwise the whole log is discarded. Durable
        on return. The snapshot itself must already be durable.
        """
        ...

    def sync(self) -> None:
        """Make every write so far durable."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


class GroupLogStore(LogStore, Protocol):
    """One group's `LogStore` inside a `SharedLog`.

    Its `sync` fsyncs the shared log unless this group's writes are durable already. Its
    `close` releases nothing: the shared log's `close` does.
    """

    @property
    def group(self) -> int:
        """Which group of the shared log this is."""
        ...

    @property
    def written_seq(self) -> int:
        """The shared log's sequence number of this group's newest record (0 if it wrote
        none since the log was opened): its writes are durable once `durable_seq` reaches it."""
        ...

    def paxos_records(self) -> list[PaxosRecord]:
        """A Multi-Paxos group's live records (those a restart needs), in written order."""
        ...

    def append_paxos(self, records: Sequence[PaxosRecord]) -> None:
        """Write a Multi-Paxos group's records, not synced unless one is a COMPACT record
        (which is durable on return, as `compact` is)."""
        ...


class SharedLog(Protocol):
    """The log of every group on a node, in one write-ahead log.

    Records carry their group; each group sees only its own, through `group(g)`. One `sync`
    makes the writes of every group durable, so concurrent groups share fsyncs: to commit
    a group's writes, wait until `durable_seq >= group(g).written_seq`, calling `sync` when
    no sync already under way will cover them.
    """

    @property
    def groups(self) -> int:
        """How many groups the log holds (numbered 0 to groups - 1)."""
        ...

    def group(self, group: int) -> GroupLogStore:
        """The `LogStore` of `group`; raises `ValueError` outside 0 to groups - 1."""
        ...

    @property
    def written_seq(self) -> int:
        """The sequence number of the newest record written, durable or not."""
        ...

    @property
    def durable_seq(self) -> int:
        """Every record up to this sequence number is durable."""
        ...

    @property
    def stats(self) -> SyncStats:
        """Running totals of the fsyncs `sync` made."""
        ...

    def sync(self) -> SyncReport | None:
        """Make every write of every group so far durable with one fsync, and report what
        it covered; None if everything was durable already. Does not hold a lock while it
        waits for the disk, so every group keeps writing meanwhile."""
        ...

    def close(self) -> None:
        """Sync and release the log's resources."""
        ...


class StableStore(Protocol):
    """The node's term, vote and commit index, replaced as one atomic value."""

    def load(self) -> StableState:
        """The last saved state (all zeros if none was ever saved)."""
        ...

    def save(self, state: StableState) -> None:
        """Replace the state atomically; durable on return."""
        ...


class SnapshotStore(Protocol):
    """Durable snapshots, newest kept, older ones pruned to a retention count."""

    def save(
        self,
        last_index: int,
        last_term: int,
        voters: Sequence[int],
        learners: Sequence[int],
        data: bytes,
    ) -> SnapshotMeta:
        """Store a snapshot durably, prune the oldest beyond retention, return its metadata."""
        ...

    def list_snapshots(self) -> list[SnapshotMeta]:
        """Metadata of every kept snapshot, newest first."""
        ...

    def open_latest(self) -> Snapshot | None:
        """The newest snapshot, or None if there is none.

        Raises `CorruptSnapshotError` naming the file if the newest one is damaged.
        """
        ...
