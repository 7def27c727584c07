"""Raft's records on the simulated disk: what a restarted member reads back."""

from __future__ import annotations

from random import Random

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.raft import (
    Entry,
    EntryKind,
    HardState,
    Membership,
    Ready,
    Snapshot,
    SnapshotMeta,
)
from distlab.sim.disk import FsyncFailed, SimDisk
from distlab.sim.loop import VirtualTimeLoop
from distlab.sim.raft.storage import RaftFormat, recover


def entries(first: int, last: int, term: int) -> tuple[Entry, ...]:
    return tuple(Entry(term, index, EntryKind.NORMAL, b"x") for index in range(first, last + 1))


def ready(*, entries: tuple[Entry, ...] = (), snapshot: Snapshot | None = None,
          hard_state: HardState | None = None) -> Ready:
    return Ready(hard_state=hard_state, entries=entries, snapshot=snapshot, messages=(),
                 committed_entries=(), read_states=())


def persist(loop: VirtualTimeLoop, disk: SimDisk, form: RaftFormat, batch: Ready) -> None:
    snapshot_file, records = form.encode_ready(batch)
    if snapshot_file is not None:
        disk.save_snapshot(0, snapshot_file)
    for kind, body in records:
        disk.write(0, kind, body)
    loop.run_until_complete(disk.sync())


def reopen(disk: SimDisk) -> tuple[RaftFormat, list[int]]:
    recovered = disk.recover()
    stored = recover(recovered.records.get(0, ()), recovered.snapshots.get(0))
    for kind, body in stored.startup_records:
        disk.write(0, kind, body)
    snapshot = stored.snapshot()
    offset = snapshot.meta.last_index if snapshot else 0
    return RaftFormat(stored.hard_state()), [offset] + [e.index for e in stored.entries()]


def test_a_snapshot_whose_compaction_record_was_lost_is_recorded_when_the_member_opens() -> None:
    loop = VirtualTimeLoop()
    disk = SimDisk(rng=Random(1), loop=loop, note=None, name="n1 disk")
    form = RaftFormat(HardState())
    persist(loop, disk, form, ready(entries=entries(1, 5, 1),
                                    hard_state=HardState(1, NodeId(2), 0)))
    # a snapshot arrives from the leader: its file is durable at once, its log record is not
    meta = SnapshotMeta(13, 4, Membership(frozenset({NodeId(1), NodeId(2), NodeId(3)})))
    snapshot_file, records = form.encode_ready(ready(snapshot=Snapshot(meta, b"state")))
    assert snapshot_file is not None
    disk.save_snapshot(0, snapshot_file)
    for kind, body in records:
        disk.write(0, kind, body)
    disk.fail_next_sync()  # the fsync fails: what it did not cover is gone
    with pytest.raises(FsyncFailed):
        loop.run_until_complete(disk.sync())
    disk.crash(power_loss=False, torn=False)
    form, indexes = reopen(disk)
    assert indexes == [13]  # the snapshot file wins; the log after it is gone
    persist(loop, disk, form, ready(entries=entries(14, 15, 4)))
    _, indexes = reopen(disk)
    assert indexes == [13, 14, 15]
    loop.close()
