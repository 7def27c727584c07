"""Group commit: concurrent writers share one fsync."""

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from distlab.storage import (
    FileLogStore,
    GroupCommitter,
    LogEntry,
    StorageError,
    WriteAheadLog,
)


def wait_until(condition: Callable[[], bool], deadline_seconds: float = 10.0) -> None:
    """Poll a condition with a deadline (no fixed sleeps standing in for progress)."""
    deadline = time.monotonic() + deadline_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.001)


def test_writers_that_arrive_during_an_fsync_share_the_next_one(
    tmp_path: Path, fsync_calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = WriteAheadLog.open(tmp_path)
    committer = GroupCommitter(wal.sync)
    fsync_calls.reset()
    first_fsync_started = threading.Event()
    first_fsync_may_finish = threading.Event()
    counting_sync = os.fdatasync

    def slow_first_sync(fd: int) -> None:
        if not first_fsync_started.is_set():
            first_fsync_started.set()
            assert first_fsync_may_finish.wait(10)
        counting_sync(fd)

    monkeypatch.setattr(os, "fdatasync", slow_first_sync)
    results: dict[int, int] = {}

    def writer(number: int) -> None:
        results[number] = committer.commit(lambda: wal.append(1, f"writer {number}".encode()))

    threads = [threading.Thread(target=writer, args=(0,))]
    threads[0].start()
    assert first_fsync_started.wait(10)
    # While that fsync is in flight, five more writers append (the WAL does not block
    # appends during an fsync) and queue up behind it.
    for number in range(1, 6):
        thread = threading.Thread(target=writer, args=(number,))
        thread.start()
        threads.append(thread)
    wait_until(lambda: committer.waiting() == 6)
    assert wal.last_seq == 6
    first_fsync_may_finish.set()
    for thread in threads:
        thread.join(10)
    assert sorted(results.values()) == [1, 2, 3, 4, 5, 6]
    assert committer.sync_count == 2
    assert len(fsync_calls.files) == 2
    assert wal.synced_seq == 6
    wal.close()


def test_a_failed_sync_fails_every_waiting_writer(tmp_path: Path) -> None:
    def broken_sync() -> None:
        raise OSError("disk gone")

    committer = GroupCommitter(broken_sync)
    with pytest.raises(OSError, match="disk gone"):
        committer.commit(lambda: None)
    with pytest.raises(StorageError, match="earlier sync failed"):
        committer.commit(lambda: None)


async def test_asyncio_callers_go_through_worker_threads(tmp_path: Path) -> None:
    store = FileLogStore.open(tmp_path)
    committer = GroupCommitter(store.sync)

    def append_one(index: int) -> None:
        store.append([LogEntry(term=1, index=index, kind=0, data=b"x")])

    # Writes are serialized in arrival order by the committer, so indexes must be handed
    # out inside the write itself.
    def append_next() -> int:
        index = store.last_index() + 1
        append_one(index)
        return index

    indexes = await asyncio.gather(
        *(asyncio.to_thread(committer.commit, append_next) for _ in range(20))
    )
    assert sorted(indexes) == list(range(1, 21))
    assert 1 <= committer.sync_count <= 20
    assert store.wal.synced_seq == 20
    store.close()
    reopened = FileLogStore.open(tmp_path)
    assert reopened.last_index() == 20
    reopened.close()
