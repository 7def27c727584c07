"""The simulated disk: what a crash keeps, what recovery finds, how faults surface."""

from __future__ import annotations

import asyncio
from random import Random

import pytest

from distlab.sim.disk import CorruptRecord, FsyncFailed, SimDisk
from distlab.sim.loop import VirtualTimeLoop


def make_disk(loop: VirtualTimeLoop, seed: int = 1, **options: object) -> SimDisk:
    return SimDisk(rng=Random(seed), loop=loop, note=None, name="n1 disk",
                   **options)  # type: ignore[arg-type]


def bodies(disk: SimDisk, group: int = 0) -> list[bytes]:
    return [record.body for record in disk.recover().records.get(group, [])]


def test_a_process_crash_keeps_what_was_written_and_a_power_loss_only_what_was_synced() -> None:
    loop = VirtualTimeLoop()
    process = make_disk(loop)
    power = make_disk(loop)

    async def write_sync_write(disk: SimDisk) -> None:
        disk.write(0, 1, b"synced")
        await disk.sync()
        disk.write(0, 1, b"written only")

    for disk in (process, power):
        loop.run_until_complete(write_sync_write(disk))
    process.crash(power_loss=False, torn=False)
    assert bodies(process) == [b"synced", b"written only"]
    lost = [make_disk(loop, seed) for seed in range(20)]
    kept = set()
    for disk in lost:
        loop.run_until_complete(write_sync_write(disk))
        disk.crash(power_loss=True, torn=False)
        kept.add(tuple(bodies(disk)))
    # whole or in part: some crashes lose the unsynced record, some keep it, none the synced
    assert kept == {(b"synced",), (b"synced", b"written only")}
    loop.close()


def test_an_fsync_takes_virtual_time_and_a_slow_disk_takes_longer() -> None:
    loop = VirtualTimeLoop()
    fast = make_disk(loop, fsync_ms=(1.0, 1.0))
    slow = make_disk(loop, fsync_ms=(80.0, 80.0))

    async def timed(disk: SimDisk) -> float:
        started = loop.time()
        disk.write(0, 1, b"x")
        await disk.sync()
        return loop.time() - started

    assert loop.run_until_complete(timed(fast)) == pytest.approx(0.001)
    assert loop.run_until_complete(timed(slow)) == pytest.approx(0.080)
    loop.close()


def test_a_torn_last_record_is_truncated_at_recovery() -> None:
    loop = VirtualTimeLoop()
    torn_seen = False
    for seed in range(40):
        disk = make_disk(loop, seed)

        async def write(disk: SimDisk = disk) -> None:
            disk.write(0, 1, b"durable")
            await disk.sync()
            disk.write(0, 1, b"x" * 200)

        loop.run_until_complete(write())
        disk.crash(power_loss=True, torn=True)
        recovered = disk.recover()
        assert recovered.records[0][0].body == b"durable"
        if recovered.torn_bytes:
            torn_seen = True
            assert len(recovered.records[0]) == 1
            assert disk.recover().torn_bytes == 0  # truncated once, for good
    assert torn_seen
    loop.close()


def test_a_record_rotten_at_rest_stops_recovery_with_its_offset() -> None:
    loop = VirtualTimeLoop()
    disk = make_disk(loop)

    async def write() -> None:
        for body in (b"one", b"two", b"three"):
            disk.write(0, 1, body)
        await disk.sync()

    loop.run_until_complete(write())
    assert disk.corrupt_a_record()
    with pytest.raises(CorruptRecord, match=r"n1 disk: WAL record at offset \d+ .*checksum"):
        disk.recover()
    loop.close()


def test_a_failed_fsync_fails_every_writer_waiting_and_loses_the_unsynced_pages() -> None:
    loop = VirtualTimeLoop()
    disk = make_disk(loop)

    async def writers() -> list[BaseException | None]:
        disk.write(0, 1, b"kept")
        await disk.sync()
        disk.fail_next_sync()

        async def writer(group: int) -> None:
            disk.write(group, 1, b"lost")
            await disk.sync()

        results = await asyncio.gather(writer(0), writer(1), return_exceptions=True)
        return list(results)  # type: ignore[arg-type]

    results = loop.run_until_complete(writers())
    assert all(isinstance(result, FsyncFailed) for result in results)
    disk.crash(power_loss=False, torn=False)
    assert bodies(disk, 0) == [b"kept"] and bodies(disk, 1) == []
    loop.close()


def test_a_disk_that_never_loses_unsynced_writes() -> None:
    loop = VirtualTimeLoop()
    for seed in range(10):
        disk = make_disk(loop, seed, lose_unsynced=False)
        disk.write(0, 1, b"written only")
        disk.crash(power_loss=True, torn=True)
        assert bodies(disk) == [b"written only"]
    loop.close()
