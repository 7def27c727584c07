"""The chain replica's storage on the node's WAL: records round-trip, a snapshot once they
pass the threshold lets the log drop them and a restart reads both, a damaged snapshot is
refused by name, and a WAL of the old format is migrated (or refused, if newer records
exist)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from distlab.protocols.chain import StoredReplica, Update, durable, recover
from distlab.runtime.chain.storage import OLD_WAL_DIRECTORY, ChainWalStorage
from distlab.runtime.host.sync import SharedSync
from distlab.storage import (
    CorruptLogError,
    CorruptSnapshotError,
    FileSharedLog,
    StorageError,
    WriteAheadLog,
)

SMALL_SEGMENT = 600


class Node:
    """A data directory with the node's shared log open, as a node holds it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log: FileSharedLog | None = None

    def open(self, snapshot_records: int = 1000) -> ChainWalStorage:
        self.close()
        self.log = log = FileSharedLog.open(self.data_dir / "wal", groups=1,
                                            segment_size=SMALL_SEGMENT)
        return ChainWalStorage.open(self.data_dir, log, SharedSync(log.sync,
                                                                   lambda: log.written_seq),
                                    snapshot_records=snapshot_records)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    held = Node(tmp_path)
    yield held
    held.close()


def update(seq: int) -> tuple[int, bytes]:
    return durable.update_record(Update(seq, f"k{seq % 5}".encode(), f"v{seq}".encode()))


def folded(records: list[tuple[int, bytes]]) -> StoredReplica:
    """What `records` replay to, as a replica whose successor holds everything keeps it:
    no updates, the latest version of every key."""
    stored = recover(records)
    digest = stored.base_digest
    latest = dict(stored.latest)
    for each in stored.updates:
        digest = durable.digest_after(digest, each)
        latest[each.key] = (each.seq, each.value)
    return StoredReplica(stored.epoch, stored.last, digest, latest, [], restarted=True)


async def test_records_round_trip_through_a_restart(node: Node) -> None:
    storage = node.open()
    assert node.log is not None
    assert storage.recovered() == StoredReplica()
    written = [(durable.EPOCH, durable.encode_epoch(2)), update(1), update(2)]
    await storage.persist(tuple(written[:2]))
    await storage.persist((written[2],))
    assert node.log.durable_seq >= node.log.written_seq
    assert node.open().recovered() == recover(written)


async def test_a_snapshot_lets_the_log_drop_its_records_and_a_restart_reads_both(
        node: Node) -> None:
    storage = node.open(snapshot_records=50)
    assert node.log is not None
    written: list[tuple[int, bytes]] = [(durable.EPOCH, durable.encode_epoch(3))]
    await storage.persist(tuple(written))
    snapshots = 0
    for seq in range(1, 171):
        written.append(update(seq))
        await storage.persist((written[-1],))
        if storage.wants_snapshot():
            await storage.save_snapshot(folded(written))
            snapshots += 1
    assert snapshots == 3 and not storage.wants_snapshot()
    # The records the last snapshot covers are gone from the disk, segments and all.
    assert node.log.wal.first_seq > 100
    assert len(list((node.data_dir / "chain-0" / "snapshots").glob("*.snap"))) == 2

    reopened = node.open(snapshot_records=50)
    restored = reopened.recovered()
    assert restored.last == 170 and restored.epoch == 3
    assert restored.base == 149 and len(restored.updates) == 21
    assert folded(durable.snapshot_records(restored)) == folded(written)
    # The records read after the snapshot count towards the next one.
    for seq in range(171, 202):
        await reopened.persist((update(seq),))
    assert reopened.wants_snapshot()


async def test_a_damaged_snapshot_is_refused_naming_its_file(node: Node) -> None:
    storage = node.open(snapshot_records=2)
    storage.recovered()
    records = [(durable.EPOCH, durable.encode_epoch(1)), update(1)]
    await storage.persist(tuple(records))
    await storage.save_snapshot(folded(records))
    (snapshot,) = (node.data_dir / "chain-0" / "snapshots").glob("*.snap")
    data = bytearray(snapshot.read_bytes())
    data[-1] ^= 0x40
    snapshot.write_bytes(bytes(data))
    with pytest.raises(CorruptSnapshotError) as refused:
        node.open().recovered()
    assert refused.value.path == snapshot and "checksum" in str(refused.value)


async def test_a_snapshot_beyond_the_wal_it_was_taken_beside_is_refused(node: Node) -> None:
    storage = node.open(snapshot_records=1)
    storage.recovered()
    records = [(durable.EPOCH, durable.encode_epoch(1)), update(1)]
    await storage.persist(tuple(records))
    await storage.save_snapshot(folded(records))
    node.close()
    for segment in (node.data_dir / "wal").glob("*.wal"):
        segment.unlink()
    with pytest.raises(StorageError, match="not the one the snapshot was taken beside"):
        node.open().recovered()


async def test_a_record_that_does_not_follow_is_reported_with_file_and_offset(
        node: Node) -> None:
    storage = node.open()
    storage.recovered()
    await storage.persist((update(1), update(3)))
    with pytest.raises(CorruptLogError, match="follows 1") as refused:
        node.open().recovered()
    assert refused.value.path.parent == node.data_dir / "wal" and refused.value.offset > 0


def write_old_wal(directory: Path, records: list[tuple[int, bytes]]) -> None:
    with WriteAheadLog.open(directory) as wal:
        wal.append_batch(records)
        wal.sync()


async def test_a_wal_of_the_old_format_is_migrated_once(
        node: Node, caplog: pytest.LogCaptureFixture) -> None:
    old = node.data_dir / OLD_WAL_DIRECTORY
    records = [(durable.EPOCH, durable.encode_epoch(4)), *(update(seq) for seq in range(1, 40))]
    write_old_wal(old, records)
    with caplog.at_level(logging.WARNING):
        storage = node.open()
    assert f"migrated the chain replica's write-ahead log {old}" in caplog.text
    assert not old.exists() and not old.with_name("chain.migrated").exists()
    assert storage.recovered() == recover(records)
    await storage.persist((update(40),))
    caplog.clear()
    restored = node.open().recovered()
    assert restored.last == 40 and restored.epoch == 4
    assert "migrated" not in caplog.text


async def test_an_old_wal_beside_newer_records_is_refused_naming_it(node: Node) -> None:
    storage = node.open()
    storage.recovered()
    await storage.persist(((durable.EPOCH, durable.encode_epoch(1)),))
    old = node.data_dir / OLD_WAL_DIRECTORY
    write_old_wal(old, [(durable.EPOCH, durable.encode_epoch(1))])
    with pytest.raises(StorageError, match=f"{old} holds chain records of the old format"):
        node.open()
    assert old.exists()


def test_damage_in_the_middle_of_an_old_wal_stops_the_migration(node: Node) -> None:
    old = node.data_dir / OLD_WAL_DIRECTORY
    write_old_wal(old, [update(1), update(2), update(3)])
    (segment,) = old.glob("*.wal")
    data = bytearray(segment.read_bytes())
    data[data.index(b"v2")] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError) as refused:
        node.open()
    assert refused.value.path == segment
    assert old.exists() and not list((node.data_dir / "chain-0" / "snapshots").glob("*.snap"))
