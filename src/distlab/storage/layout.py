"""Where a node keeps its durable state inside its data directory.

    DATA_DIR/wal/              the log store's write-ahead log segments
    DATA_DIR/stable-state      term, vote and commit index
    DATA_DIR/snapshots/        the newest snapshots
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from distlab.storage.interfaces import LogStore, SnapshotStore, StableStore
from distlab.storage.log_store import FileLogStore
from distlab.storage.snapshot_store import DEFAULT_RETAIN, FileSnapshotStore
from distlab.storage.stable_store import FileStableStore
from distlab.storage.wal import DEFAULT_SEGMENT_SIZE


@dataclass(frozen=True)
class NodeStorage:
    """The three stores of one node, opened together."""

    log: FileLogStore
    stable: FileStableStore
    snapshots: FileSnapshotStore

    def close(self) -> None:
        self.log.close()


def open_node_storage(
    data_dir: str | os.PathLike[str],
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    retain_snapshots: int = DEFAULT_RETAIN,
) -> NodeStorage:
    """Open (creating if needed) every store under `data_dir`, recovering from a crash.

    Raises `CorruptLogError`, `CorruptStateError` or `CorruptSnapshotError` naming the
    damaged file; these mean durable data was lost and the node must not start.
    """
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    stable = FileStableStore(root / "stable-state")
    snapshots = FileSnapshotStore(root / "snapshots", retain=retain_snapshots)
    log = FileLogStore.open(root / "wal", segment_size=segment_size)
    return NodeStorage(log=log, stable=stable, snapshots=snapshots)


if TYPE_CHECKING:

    def _satisfies_interfaces(
        log: FileLogStore, stable: FileStableStore, snapshots: FileSnapshotStore
    ) -> tuple[LogStore, StableStore, SnapshotStore]:
        """Lets mypy prove the file stores implement the storage interfaces."""
        return log, stable, snapshots
