"""Group commit: many writers, one fsync.

A writer hands `commit` a function that writes its records (without syncing). The first
writer to find no fsync running becomes the syncer and fsyncs everything written so far;
writers that arrive meanwhile write their records and wait, and the next fsync covers all of
them at once. So N concurrent writers cost about two fsyncs, not N.

This module uses threads, not asyncio (asyncio lives only in the runtime). The runtime
calls it from worker threads, one per waiting request:

    await asyncio.to_thread(committer.commit, lambda: log_store.append(entries))

The default executor runs such calls concurrently, which is what lets them share an fsync.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from distlab.storage.errors import StorageError

T = TypeVar("T")


class GroupCommitter:
    """Serializes writes and shares fsyncs among the writers waiting on them.

    `sync` must make durable every write that completed before it was called, and must not
    block writes while it waits for the disk (`WriteAheadLog.sync` and `FileLogStore.sync`
    behave so).
    """

    def __init__(self, sync: Callable[[], object]) -> None:
        self._sync = sync
        self._condition = threading.Condition()
        self._writes_done = 0
        self._writes_durable = 0
        self._syncing = False
        self._failure: BaseException | None = None
        self.sync_count = 0

    def commit(self, write: Callable[[], T]) -> T:
        """Run `write` (writes happen one at a time, in arrival order) and return its
        result once an fsync covers it. Raises `StorageError` if that fsync failed."""
        with self._condition:
            self._check_healthy()
            result = write()
            self._writes_done += 1
            write_number = self._writes_done
            while self._writes_durable < write_number:
                self._check_healthy()
                if self._syncing:
                    self._condition.wait()
                    continue
                self._sync_on_behalf_of_everyone()
            return result

    def waiting(self) -> int:
        """How many completed writes are not yet durable."""
        with self._condition:
            return self._writes_done - self._writes_durable

    def _sync_on_behalf_of_everyone(self) -> None:
        """Fsync every write done so far, releasing the lock so others keep writing."""
        covered = self._writes_done
        self._syncing = True
        self._condition.release()
        try:
            self._sync()
        except BaseException as error:
            self._condition.acquire()
            self._failure = error
            self._syncing = False
            self._condition.notify_all()
            raise
        self._condition.acquire()
        self._syncing = False
        self._writes_durable = covered
        self.sync_count += 1
        self._condition.notify_all()

    def _check_healthy(self) -> None:
        if self._failure is not None:
            raise StorageError(f"an earlier sync failed: {self._failure}") from self._failure
