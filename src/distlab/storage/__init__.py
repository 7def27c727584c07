"""Durable state: a segmented write-ahead log, the Raft logs (or Multi-Paxos records) of a
node's groups sharing it (one fsync for all of them), stable state and snapshots per group,
each with a file-backed and an in-memory implementation.

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
from distlab.storage.interfaces import (
    GroupLogStore,
    LogStore,
    SharedLog,
    SnapshotStore,
    StableStore,
)
from distlab.storage.layout import (
    GroupStorage,
    NodeStorage,
    crashed_node_storage,
    memory_node_storage,
    open_node_storage,
)
from distlab.storage.log_store import FileLogStore, FileSharedLog
from distlab.storage.memory import (
    MemoryLogStore,
    MemorySharedLog,
    MemorySnapshotStore,
    MemoryStableStore,
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
from distlab.storage.snapshot_store import FileSnapshotStore
from distlab.storage.stable_store import FileStableStore
from distlab.storage.wal import SegmentInfo, WalRecord, WriteAheadLog

__all__ = [
    "CorruptLogError",
    "CorruptSnapshotError",
    "CorruptStateError",
    "FileLogStore",
    "FileSharedLog",
    "FileSnapshotStore",
    "FileStableStore",
    "GroupCommitter",
    "GroupLogStore",
    "GroupStorage",
    "LogCompactedError",
    "LogEntry",
    "LogStore",
    "LogUnavailableError",
    "MemoryLogStore",
    "MemorySharedLog",
    "MemorySnapshotStore",
    "MemoryStableStore",
    "NodeStorage",
    "PaxosRecord",
    "PaxosRecordKind",
    "SegmentInfo",
    "SharedLog",
    "Snapshot",
    "SnapshotMeta",
    "SnapshotStore",
    "StableState",
    "StableStore",
    "StorageClosedError",
    "StorageError",
    "SyncReport",
    "SyncStats",
    "WalRecord",
    "WriteAheadLog",
    "crashed_node_storage",
    "memory_node_storage",
    "open_node_storage",
]
