"""A Paxos group's durable state in the node's WAL: what a restart reads back is what was
fsynced (the promise, the latest triple of each slot, the decisions), a restarted acceptor
keeps its promise, a compaction lets old segments go without losing the promise, and a
data directory of the other engine is refused."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from distlab.core.ids import NodeId
from distlab.protocols import multipaxos as paxos
from distlab.runtime.host.sync import SharedSync
from distlab.runtime.paxos.storage import PaxosDurableStorage
from distlab.runtime.raft.storage import DurableStorage
from distlab.storage import (
    FileSharedLog,
    LogEntry,
    NodeStorage,
    PaxosRecord,
    PaxosRecordKind,
    crashed_node_storage,
    memory_node_storage,
    open_node_storage,
)

ME, PEER = NodeId(1), NodeId(2)
VOTERS = frozenset({ME, PEER, NodeId(3)})
LOW, MID, HIGH = paxos.Ballot(1, PEER), paxos.Ballot(2, PEER), paxos.Ballot(5, NodeId(3))


def ready(promised: paxos.Ballot | None = None, accepted: tuple[paxos.Accepted, ...] = (),
          decided: tuple[paxos.Decision, ...] = (), snapshot: paxos.Snapshot | None = None
          ) -> paxos.Ready:
    return paxos.Ready(promised=promised, accepted=accepted, decided=decided, snapshot=snapshot,
                       messages=(), committed_entries=(), read_states=())


def value(text: str, origin: paxos.Ballot = LOW) -> paxos.Value:
    return paxos.Value(text.encode(), origin)


def open_group(data_dir: Path, group: int = 0, groups: int = 2, **options: int
               ) -> tuple[NodeStorage, PaxosDurableStorage]:
    stores = open_node_storage(data_dir, groups=groups, **options)
    sync = SharedSync(stores.sync, lambda: stores.shared_log.written_seq)
    own = stores.group(group)
    return stores, PaxosDurableStorage(own.log, own.stable, own.snapshots, sync, VOTERS)


def segments(stores: NodeStorage) -> int:
    shared = stores.shared_log
    assert isinstance(shared, FileSharedLog)
    return len(shared.wal.segments())


async def test_promise_accepted_and_decided_slots_survive_a_restart(tmp_path: Path) -> None:
    stores, storage = open_group(tmp_path)
    await storage.persist(ready(promised=LOW, accepted=(
        paxos.Accepted(1, LOW, value("a")), paxos.Accepted(2, LOW, value("b")))))
    await storage.persist(ready(promised=MID, accepted=(
        paxos.Accepted(2, MID, value("b2", MID)), paxos.Accepted(3, MID, paxos.Value(None, MID))),
        decided=(paxos.Decision(1, value("a")),)))
    stores.close()

    stores, restarted = open_group(tmp_path)
    assert restarted.promised() == MID
    assert restarted.accepted() == [paxos.Accepted(1, LOW, value("a")),
                                    paxos.Accepted(2, MID, value("b2", MID)),
                                    paxos.Accepted(3, MID, paxos.Value(None, MID))]
    assert restarted.decided() == [paxos.Decision(1, value("a"))]
    assert restarted.snapshot() is None
    stores.close()


async def test_a_restarted_acceptor_keeps_its_promise_and_reports_what_it_accepted(
    tmp_path: Path
) -> None:
    stores, storage = open_group(tmp_path)
    await storage.persist(ready(promised=HIGH, accepted=(paxos.Accepted(4, HIGH, value("x")),)))
    stores.close()

    stores, restarted = open_group(tmp_path)
    core = paxos.MultiPaxos(paxos.Config(node_id=ME, voters=VOTERS), restarted,
                            random.Random(1))
    core.step(paxos.Prepare(PEER, ME, MID, 1))  # below the promise: refused
    core.step(paxos.Prepare(PEER, ME, paxos.Ballot(6, PEER), 1))  # above it: promised
    out = core.ready()
    promises = [m for m in out.messages if isinstance(m, paxos.Promise)]
    refused = next(m for m in promises if m.ballot == MID)
    granted = next(m for m in promises if m.ballot == paxos.Ballot(6, PEER))
    assert not refused.ok and refused.promised == HIGH
    assert granted.ok and granted.accepted == (paxos.Accepted(4, HIGH, value("x")),)
    assert out.promised == paxos.Ballot(6, PEER)
    stores.close()


async def test_groups_sharing_the_wal_read_back_only_their_own_records(tmp_path: Path) -> None:
    stores = open_node_storage(tmp_path, groups=2)
    sync = SharedSync(stores.sync, lambda: stores.shared_log.written_seq)
    zero, one = (PaxosDurableStorage(stores.group(g).log, stores.group(g).stable,
                                     stores.group(g).snapshots, sync, VOTERS) for g in (0, 1))
    await zero.persist(ready(promised=LOW, decided=(paxos.Decision(1, value("zero")),)))
    await one.persist(ready(promised=HIGH, decided=(paxos.Decision(1, value("one")),)))
    stores.close()
    stores, restarted_one = open_group(tmp_path, group=1)
    assert restarted_one.promised() == HIGH
    assert restarted_one.decided() == [paxos.Decision(1, value("one"))]
    stores.close()


async def test_a_compaction_drops_covered_slots_and_old_segments_but_keeps_the_promise(
    tmp_path: Path
) -> None:
    stores, storage = open_group(tmp_path, groups=1, segment_size=4096)
    await storage.persist(ready(promised=MID))
    for slot in range(1, 201):
        await storage.persist(ready(accepted=(paxos.Accepted(slot, MID, value("v" * 40)),),
                                    decided=(paxos.Decision(slot, value("v" * 40)),)))
    segments_before = segments(stores)
    storage.save_snapshot(paxos.Snapshot(paxos.SnapshotMeta(190), b"state"))
    segments_after = segments(stores)
    assert segments_after < segments_before
    stores.close()

    stores, restarted = open_group(tmp_path, groups=1, segment_size=4096)
    assert restarted.promised() == MID
    snapshot = restarted.snapshot()
    assert snapshot is not None and snapshot.meta.last_index == 190
    assert snapshot.data == b"state"
    assert [d.slot for d in restarted.decided()] == list(range(191, 201))
    assert [a.slot for a in restarted.accepted()] == list(range(191, 201))
    stores.close()


async def test_a_snapshot_saved_before_its_compaction_record_is_trusted(tmp_path: Path) -> None:
    stores, storage = open_group(tmp_path)
    await storage.persist(ready(promised=MID, decided=(paxos.Decision(1, value("a")),
                                                       paxos.Decision(2, value("b")))))
    # The crash came after the snapshot file was saved, before the log noted it.
    stores.group(0).snapshots.save(1, 0, sorted(VOTERS), [], b"as of 1")
    stores.close()
    stores, restarted = open_group(tmp_path)
    assert restarted.decided() == [paxos.Decision(2, value("b"))]
    assert restarted.promised() == MID
    stores.close()


def test_a_data_directory_written_by_raft_is_refused(tmp_path: Path) -> None:
    stores = open_node_storage(tmp_path, groups=1)
    stores.group(0).log.append([LogEntry(term=1, index=1, kind=0, data=b"raft")])
    stores.sync()
    stores.close()
    stores = open_node_storage(tmp_path, groups=1)
    own = stores.group(0)
    sync = SharedSync(stores.sync, lambda: stores.shared_log.written_seq)
    try:
        with pytest.raises(ValueError, match="ENGINE=raft"):
            PaxosDurableStorage(own.log, own.stable, own.snapshots, sync, VOTERS)
    finally:
        stores.close()


async def test_in_memory_a_crash_loses_only_what_no_fsync_covered() -> None:
    stores = memory_node_storage(groups=1)
    sync = SharedSync(stores.sync, lambda: stores.shared_log.written_seq)
    own = stores.group(0)
    storage = PaxosDurableStorage(own.log, own.stable, own.snapshots, sync, VOTERS)
    await storage.persist(ready(promised=MID, accepted=(paxos.Accepted(1, MID, value("a")),)))
    # Written, never fsynced: the crash may lose it.
    own.log.append_paxos([PaxosRecord(PaxosRecordKind.PROMISE, 0, b"")])
    survivor = crashed_node_storage(stores).group(0)
    restarted = PaxosDurableStorage(survivor.log, survivor.stable, survivor.snapshots, sync,
                                    VOTERS)
    assert restarted.promised() == MID
    assert restarted.accepted() == [paxos.Accepted(1, MID, value("a"))]


async def test_a_data_directory_written_by_paxos_is_refused_by_raft(tmp_path: Path) -> None:
    stores, storage = open_group(tmp_path, groups=1)
    await storage.persist(ready(promised=MID))
    stores.close()
    stores = open_node_storage(tmp_path, groups=1)
    own = stores.group(0)
    sync = SharedSync(stores.sync, lambda: stores.shared_log.written_seq)
    try:
        with pytest.raises(ValueError, match="ENGINE=paxos"):
            DurableStorage(own.log, own.stable, own.snapshots, sync)
    finally:
        stores.close()
