"""A node's stores, one set per group around one shared log, and where they live on disk.

Inside the node's data directory:

    DATA_DIR/wal/                      the write-ahead log every group shares: segments of
                                       records tagged with their group (see log_store.py)
    DATA_DIR/group-<g>/stable-state    group g's term, vote and commit index
    DATA_DIR/group-<g>/snapshots/      group g's newest snapshots
    DATA_DIR/chain-<i>/snapshots/      chain replica i's newest snapshots (its records are in
                                       the shared WAL)

A data directory written before there were groups holds DATA_DIR/stable-state and
DATA_DIR/snapshots/ at its root, and its WAL's records carry no group. Opening it moves both
into group-0/ and logs that once; the untagged records read back as group 0's. Each move is
one rename, made durable by fsyncing both directories, so a crash part-way leaves each item
either moved or not, and the next open finishes the job.

`memory_node_storage` makes the same stores in memory, for the simulator and tests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from distlab.storage.errors import StorageError
from distlab.storage.fsutil import fsync_directory, remove_leftover
from distlab.storage.interfaces import GroupLogStore, SharedLog, SnapshotStore, StableStore
from distlab.storage.log_store import FileSharedLog
from distlab.storage.memory import MemorySharedLog, MemorySnapshotStore, MemoryStableStore
from distlab.storage.model import SyncReport
from distlab.storage.snapshot_store import DEFAULT_RETAIN, FileSnapshotStore
from distlab.storage.stable_store import FileStableStore
from distlab.storage.wal import DEFAULT_SEGMENT_SIZE

logger = logging.getLogger(__name__)

WAL_DIRECTORY = "wal"
STABLE_STATE_FILE = "stable-state"
SNAPSHOT_DIRECTORY = "snapshots"


def group_directory(data_dir: str | os.PathLike[str], group: int) -> Path:
    """Where group `group` keeps its stable state and snapshots."""
    return Path(data_dir) / f"group-{group}"


def chain_directory(data_dir: str | os.PathLike[str], instance: int = 0) -> Path:
    """Where chain replica `instance` keeps its snapshots."""
    return Path(data_dir) / f"chain-{instance}"


@dataclass(frozen=True, slots=True)
class GroupStorage:
    """The three stores of one group."""

    log: GroupLogStore
    stable: StableStore
    snapshots: SnapshotStore


class NodeStorage:
    """Every group's stores on one node, around the log they share."""

    def __init__(self, shared_log: SharedLog, groups: Sequence[GroupStorage]) -> None:
        if len(groups) != shared_log.groups:
            raise ValueError(
                f"{len(groups)} groups of stores for a shared log of {shared_log.groups}"
            )
        self._shared_log = shared_log
        self._groups = tuple(groups)

    @property
    def shared_log(self) -> SharedLog:
        """The log of every group: `written_seq`, `durable_seq` and `stats` live there."""
        return self._shared_log

    @property
    def groups(self) -> int:
        return len(self._groups)

    def group(self, group: int) -> GroupStorage:
        """Group `group`'s stores; raises `ValueError` outside 0 to groups - 1."""
        if not 0 <= group < len(self._groups):
            raise ValueError(f"group {group} is outside 0..{len(self._groups) - 1}")
        return self._groups[group]

    # A single-group node's stores, by the names it used before there were groups.

    @property
    def log(self) -> GroupLogStore:
        return self._groups[0].log

    @property
    def stable(self) -> StableStore:
        return self._groups[0].stable

    @property
    def snapshots(self) -> SnapshotStore:
        return self._groups[0].snapshots

    def sync(self) -> SyncReport | None:
        """Make every group's log writes durable with one fsync (see `SharedLog.sync`)."""
        return self._shared_log.sync()

    def close(self) -> None:
        self._shared_log.close()


def open_node_storage(
    data_dir: str | os.PathLike[str],
    groups: int = 1,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    retain_snapshots: int = DEFAULT_RETAIN,
) -> NodeStorage:
    """Open (creating if needed) the stores of `groups` groups under `data_dir`, moving a
    single-group layout into group 0's place first and recovering from a crash.

    Raises `CorruptLogError`, `CorruptStateError` or `CorruptSnapshotError` naming the
    damaged file; these mean durable data was lost and the node must not start. Raises
    `StorageError` if the WAL holds records of a group at or beyond `groups`.
    """
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    # Opened first: its lock keeps a second process out of the migration too.
    shared_log = FileSharedLog.open(root / WAL_DIRECTORY, groups=groups, segment_size=segment_size)
    try:
        _move_single_group_layout(root)
        for group in range(groups):
            directory = group_directory(root, group)
            (directory / SNAPSHOT_DIRECTORY).mkdir(parents=True, exist_ok=True)
            fsync_directory(directory)
        # Directories an earlier process (or this one) created are durable once their
        # parent is fsynced; the stores inside rely on it.
        fsync_directory(root)
        stores = [
            GroupStorage(
                log=shared_log.group(group),
                stable=FileStableStore(group_directory(root, group) / STABLE_STATE_FILE),
                snapshots=FileSnapshotStore(
                    group_directory(root, group) / SNAPSHOT_DIRECTORY, retain=retain_snapshots
                ),
            )
            for group in range(groups)
        ]
    except BaseException:
        shared_log.close()
        raise
    return NodeStorage(shared_log, stores)


def memory_node_storage(
    groups: int = 1, *, retain_snapshots: int = DEFAULT_RETAIN
) -> NodeStorage:
    """The stores of `groups` groups in memory, with the file stores' semantics."""
    shared_log = MemorySharedLog(groups)
    return NodeStorage(
        shared_log,
        [
            GroupStorage(
                log=shared_log.group(group),
                stable=MemoryStableStore(),
                snapshots=MemorySnapshotStore(retain=retain_snapshots),
            )
            for group in range(groups)
        ],
    )


def crashed_node_storage(storage: NodeStorage, *, keep_unsynced: int = 0) -> NodeStorage:
    """In-memory `storage` as a restart after a crash finds it: the log keeps what was
    synced and the first `keep_unsynced` records after that (`MemorySharedLog.crashed`);
    stable state and snapshots, durable on save, are kept whole."""
    shared_log = storage.shared_log
    if not isinstance(shared_log, MemorySharedLog):
        raise TypeError(f"only in-memory storage can crash on demand, not {shared_log!r}")
    survivor = shared_log.crashed(keep_unsynced=keep_unsynced)
    return NodeStorage(
        survivor,
        [
            GroupStorage(survivor.group(group), stores.stable, stores.snapshots)
            for group, stores in enumerate(storage._groups)
        ],
    )


def _move_single_group_layout(root: Path) -> None:
    """Move the stable state and snapshots of a layout from before groups into group 0."""
    group_zero = group_directory(root, 0)
    unfinished_save = root / (STABLE_STATE_FILE + ".tmp")
    if remove_leftover(unfinished_save):
        fsync_directory(root)
        logger.warning("removed unfinished stable-state file %s left by a crash", unfinished_save)
    moves = [
        (root / name, group_zero / name)
        for name in (STABLE_STATE_FILE, SNAPSHOT_DIRECTORY)
        if (root / name).exists()
    ]
    if not moves:
        return
    for old, new in moves:
        if new.exists():
            raise StorageError(
                f"{old} (the layout from before groups) and {new} both exist: "
                "one of them is stale, and which one cannot be told here"
            )
    if not group_zero.exists():
        group_zero.mkdir()
        fsync_directory(root)
    for old, new in moves:
        os.rename(old, new)
        fsync_directory(group_zero)
        fsync_directory(root)
    logger.warning(
        "moved %s of the single-group layout in %s into %s",
        " and ".join(old.name for old, _ in moves),
        root,
        group_zero,
    )
