"""SharedSync: how the drivers of one node share the fsyncs of their WAL."""

from __future__ import annotations

import asyncio
import threading

import pytest

from distlab.runtime.host.sync import SharedSync
from distlab.storage import StorageError, SyncReport


class FakeWal:
    """Counts records written and fsyncs, on whichever thread they run; can fail or block."""

    def __init__(self) -> None:
        self.written = 0
        self.synced = 0
        self.syncs: list[int] = []  # the thread of each fsync
        self.fail_next = False
        self.release: threading.Event | None = None

    def write(self) -> int:
        self.written += 1
        return self.written

    def sync(self) -> SyncReport | None:
        self.syncs.append(threading.get_ident())
        if self.release is not None:
            self.release.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise StorageError("fdatasync failed: EIO")
        if self.written <= self.synced:
            return None
        records, self.synced = self.written - self.synced, self.written
        return SyncReport(self.synced, records, (0,), 0.0)


async def test_a_leader_fsyncs_on_a_thread_and_writers_meanwhile_share_the_next() -> None:
    wal = FakeWal()
    wal.release = threading.Event()
    sync = SharedSync(wal.sync, lambda: wal.written, leads_any=lambda: True)
    first = asyncio.ensure_future(sync.durable(wal.write()))
    await asyncio.sleep(0)  # the first fsync starts, and blocks on the thread
    later = [asyncio.ensure_future(sync.durable(wal.write())) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert not first.done() and len(wal.syncs) == 1
    wal.release.set()
    await asyncio.gather(first, *later)
    # The five written during the first fsync share one more.
    assert len(wal.syncs) == 2
    assert threading.get_ident() not in wal.syncs
    assert wal.synced == wal.written == 6


async def test_a_node_that_leads_nothing_fsyncs_on_its_loop() -> None:
    wal = FakeWal()
    sync = SharedSync(wal.sync, lambda: wal.written, leads_any=lambda: False)
    await sync.durable(wal.write())
    assert wal.syncs == [threading.get_ident()]


@pytest.mark.parametrize("leads", [True, False])
async def test_a_failed_fsync_fails_its_waiters_and_the_next_write_syncs_again(
        leads: bool) -> None:
    wal = FakeWal()
    wal.fail_next = True
    sync = SharedSync(wal.sync, lambda: wal.written, leads_any=lambda: leads)
    with pytest.raises(StorageError, match="EIO"):
        await sync.durable(wal.write())
    await sync.durable(wal.write())
    assert len(wal.syncs) == 2 and wal.synced == 2


async def test_a_cancelled_waiter_does_not_cancel_the_fsync_others_wait_on() -> None:
    wal = FakeWal()
    wal.release = threading.Event()
    sync = SharedSync(wal.sync, lambda: wal.written, leads_any=lambda: True)
    target = wal.write()
    impatient = asyncio.ensure_future(sync.durable(target))
    patient = asyncio.ensure_future(sync.durable(target))
    await asyncio.sleep(0.01)
    impatient.cancel()
    wal.release.set()
    await patient
    assert impatient.cancelled()
    assert len(wal.syncs) == 1 and wal.synced == 1


async def test_with_several_groups_a_write_made_while_the_fsync_starts_is_covered() -> None:
    wal = FakeWal()
    sync = SharedSync(wal.sync, lambda: wal.written, leads_any=lambda: True, writers=2)

    async def other_group() -> None:
        await sync.durable(wal.write())

    first = asyncio.ensure_future(sync.durable(wal.write()))
    # The other group's driver runs in the turn the first fsync yields before it starts.
    second = asyncio.ensure_future(other_group())
    await asyncio.gather(first, second)
    assert len(wal.syncs) == 1 and wal.synced == 2
