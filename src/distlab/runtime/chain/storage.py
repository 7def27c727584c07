"""The chain replica's durable state on the node's WAL: the driver's `ChainStorage`.

Its records go to the shared log tagged with the replica's instance, and `persist` returns
once an fsync covers them, shared with the fsyncs of the node's groups. Once more than
`snapshot_records` of them have been written since the last snapshot, the driver hands over
the replica's durable state: it is saved as a snapshot (temporary file, fsync, rename, fsync
of the directory) in DATA_DIR/chain-<instance>/snapshots/, named by the sequence number of
the last record it covers and the replica's epoch, and then a CHAIN_COMPACT record lets the
shared log drop the records it covers. A restart reads the newest snapshot and the records
written after it.

A node from before the shared log kept the replica's records in a WAL of their own,
DATA_DIR/chain. Opening the storage migrates it: its records are replayed (under the WAL's
rules: a torn tail is truncated and logged, damage elsewhere stops the node) into a snapshot,
then the directory is renamed out of the way, made durable, and deleted. A crash part-way
leaves either the old directory, which the next start migrates again (nothing was written
to the shared log meanwhile), or a renamed one, which it deletes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

from distlab.protocols.chain import StoredReplica, decode_snapshot, encode_snapshot
from distlab.runtime.host.sync import SharedSync
from distlab.storage import (
    CorruptLogError,
    CorruptSnapshotError,
    FileSharedLog,
    FileSnapshotStore,
    StorageError,
    WriteAheadLog,
)
from distlab.storage.fsutil import fsync_directory
from distlab.storage.layout import SNAPSHOT_DIRECTORY, chain_directory
from distlab.storage.snapshot_store import snapshot_name

log = logging.getLogger(__name__)

NODE_INSTANCE = 0
# Where a node kept the replica's records before they moved to the shared log.
OLD_WAL_DIRECTORY = "chain"
_MIGRATED_SUFFIX = ".migrated"
DEFAULT_SNAPSHOT_RECORDS = 4096


class ChainWalStorage:
    def __init__(self, shared_log: FileSharedLog, sync: SharedSync, snapshots: FileSnapshotStore,
                 replayed: list[tuple[int, int, bytes]], *, instance: int = NODE_INSTANCE,
                 snapshot_records: int = DEFAULT_SNAPSHOT_RECORDS) -> None:
        if snapshot_records < 1:
            raise ValueError(f"a snapshot needs at least one record, not {snapshot_records}")
        self._log = shared_log
        self._sync = sync
        self._snapshots = snapshots
        self._replayed: list[tuple[int, int, bytes]] | None = replayed
        self._instance = instance
        self._snapshot_records = snapshot_records
        self._since_snapshot = 0
        # The sequence number of the newest record the replica's state includes.
        self._last_seq = 0

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str], shared_log: FileSharedLog,
             sync: SharedSync, *, instance: int = NODE_INSTANCE,
             snapshot_records: int = DEFAULT_SNAPSHOT_RECORDS) -> ChainWalStorage:
        """The replica's storage in `data_dir` around the node's shared log, after migrating
        a WAL of the old format. Raises `StorageError` (`CorruptLogError` naming the file and
        offset of a damaged record) when what is on disk cannot be used."""
        root = Path(data_dir)
        directory = chain_directory(root, instance)
        created = not directory.exists()
        snapshots = FileSnapshotStore(directory / SNAPSHOT_DIRECTORY)
        if created:
            fsync_directory(root)
        replayed = shared_log.take_chain_records(instance)
        if instance == NODE_INSTANCE:
            _migrate_old_wal(root / OLD_WAL_DIRECTORY, shared_log, snapshots, replayed)
        return cls(shared_log, sync, snapshots, replayed, instance=instance,
                   snapshot_records=snapshot_records)

    def recovered(self) -> StoredReplica:
        """The replica's state: the newest snapshot, then every record written after it.
        Raises `CorruptSnapshotError` or `CorruptLogError` naming what is damaged."""
        replayed, self._replayed = self._replayed, None
        if replayed is None:
            raise RuntimeError("the chain replica's state is recovered once, at start-up")
        snapshot = self._snapshots.open_latest()
        stored, through = StoredReplica(), 0
        if snapshot is not None:
            meta = snapshot.meta
            path = self._snapshots.directory / snapshot_name(meta.last_index, meta.last_term)
            through = meta.last_index
            if through > self._log.written_seq:
                raise StorageError(
                    f"chain snapshot {path} covers the node's WAL up to record {through}, but "
                    f"{self._log.wal.directory} ends at {self._log.written_seq}: the WAL is not "
                    "the one the snapshot was taken beside")
            try:
                stored = decode_snapshot(snapshot.data)
            except ValueError as error:
                raise CorruptSnapshotError(path, str(error)) from None
            if stored.epoch != meta.last_term:
                raise CorruptSnapshotError(path, f"it holds epoch {stored.epoch}, its name "
                                                 f"says {meta.last_term}")
        self._last_seq = through
        for seq, kind, body in replayed:
            if seq <= through:
                continue
            try:
                stored.apply(kind, body)
            except ValueError as error:
                path, offset = self._log.wal.locate(seq)
                raise CorruptLogError(path, offset, f"chain record {seq}: {error}") from None
            self._last_seq = seq
            self._since_snapshot += 1
        return stored

    async def persist(self, records: tuple[tuple[int, bytes], ...]) -> None:
        if not records:
            return
        seq = self._log.append_chain(records, self._instance)
        self._last_seq = seq
        self._since_snapshot += len(records)
        await self._sync.durable(seq)

    def wants_snapshot(self) -> bool:
        return self._since_snapshot >= self._snapshot_records

    async def save_snapshot(self, state: StoredReplica) -> None:
        """Save `state`, what every record persisted so far replays to, and let the shared
        log drop those records."""
        through = self._last_seq
        await asyncio.to_thread(self._save, through, state)
        self._since_snapshot = 0

    def _save(self, through: int, state: StoredReplica) -> None:
        self._snapshots.save(through, state.epoch, (), (), encode_snapshot(state))
        self._log.compact_chain(through, self._instance)

    def close(self) -> None:
        pass  # the node's storage closes the shared log


def _migrate_old_wal(old: Path, shared_log: FileSharedLog, snapshots: FileSnapshotStore,
                     replayed: list[tuple[int, int, bytes]]) -> None:
    moved = old.with_name(old.name + _MIGRATED_SUFFIX)
    if moved.exists():
        shutil.rmtree(moved)
        fsync_directory(moved.parent)
        log.warning("removed %s, left by a migration a crash interrupted", moved)
    if not old.exists():
        return
    if replayed or shared_log.chain_compacted_through(NODE_INSTANCE):
        raise StorageError(
            f"{old} holds chain records of the old format, and {shared_log.wal.directory} "
            f"holds newer ones: move {old} away if this node ran since it was migrated")
    stored = StoredReplica()
    records = 0
    with WriteAheadLog.open(old) as wal:
        for record in wal.replay():
            try:
                stored.apply(record.type, record.payload)
            except ValueError as error:
                path, offset = wal.locate(record.seq)
                raise CorruptLogError(path, offset, f"chain record {record.seq}: {error}"
                                      ) from None
            records += 1
    snapshots.save(shared_log.written_seq, stored.epoch, (), (), encode_snapshot(stored))
    os.rename(old, moved)
    fsync_directory(old.parent)
    shutil.rmtree(moved)
    fsync_directory(old.parent)
    log.warning("migrated the chain replica's write-ahead log %s (%d records, up to update "
                "%d, epoch %d) into a snapshot beside the node's WAL", old, records,
                stored.last, stored.epoch)
