"""Durable state: a segmented write-ahead log, a Raft log store on it, stable state and
snapshots, each with a file-backed and an in-memory implementation.

Nothing here uses asyncio. Every file-backed store is thread-safe, and `sync()` never holds
a lock while it waits for the disk, so the runtime calls the blocking methods through
`asyncio.to_thread` and shares fsyncs among concurrent writers with `GroupCommitter`.
"""

from distlab.storage.errors import (
    CorruptLogError,
    CorruptSnapshotError,
    CorruptStateError,
    LogCompactedError,
    LogUnavailableError,
    StorageClosedError,
    StorageError,
)
from distlab.storage.group_commit import GroupCommitter
from distlab.storage.interfaces import LogStore, SnapshotStore, StableStore
from distlab.storage.layout import NodeStorage, open_node_storage
from distlab.storage.log_store import FileLogStore
from distlab.storage.memory import MemoryLogStore, MemorySnapshotStore, MemoryStableStore
from distlab.storage.model import LogEntry, Snapshot, SnapshotMeta, StableState
from distlab.storage.snapshot_store import FileSnapshotStore
from distlab.storage.stable_store import FileStableStore
from distlab.storage.wal import SegmentInfo, WalRecord, WriteAheadLog

__all__ = [
    "CorruptLogError",
    "CorruptSnapshotError",
    "CorruptStateError",
    "FileLogStore",
    "FileSnapshotStore",
    "FileStableStore",
    "GroupCommitter",
    "LogCompactedError",
    "LogEntry",
    "LogStore",
    "LogUnavailableError",
    "MemoryLogStore",
    "MemorySnapshotStore",
    "MemoryStableStore",
    "NodeStorage",
    "SegmentInfo",
    "Snapshot",
    "SnapshotMeta",
    "SnapshotStore",
    "StableState",
    "StableStore",
    "StorageClosedError",
    "StorageError",
    "WalRecord",
    "WriteAheadLog",
    "open_node_storage",
]
