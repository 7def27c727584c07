"""Group commit across instances: every group of a node writes to the one WAL, and one fsync
makes all of their writes durable.

A driver writes its Ready's records (no sync), then awaits `durable()`. The first waiter
starts a sync; before it reads how far the WAL is written, it yields once to the loop, so
every other driver with a Ready in hand (and the peer senders with appends to write) gets to
run first, and the one fsync covers them all. Waiters whose writes came after a sync had
started wait for the next one.

Persisting inline (on the event loop) is cheaper than handing the fsync to a worker thread
when the disk is fast: the hand-off costs thread wake-ups and GIL transfers, and under load
the worker waits for the GIL after its fsync, more than a fast disk's fsync takes. While
recent syncs took less than INLINE_SYNC_SECONDS on average, they run inline; a slow disk's
go to a thread so the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import Histogram

from distlab.storage import SyncReport

INLINE_SYNC_SECONDS = 0.002
# Weight of the newest sync in the running average of sync times.
SYNC_TIME_WEIGHT = 0.2

FSYNC_SECONDS = Histogram(
    "distlab_wal_fsync_duration_seconds",
    "How long one fsync of the write-ahead log took.",
    buckets=(0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0),
)
FSYNC_GROUPS = Histogram(
    "distlab_wal_fsync_groups",
    "How many groups' writes one fsync of the node's write-ahead log made durable.",
    buckets=(1, 2, 3, 4, 8, 16, 32, 64, 128, 256),
)


class SharedSync:
    """Shares the fsyncs of one WAL among the drivers that write to it."""

    def __init__(self, sync: Callable[[], SyncReport | None], written: Callable[[], int]
                 ) -> None:
        self._sync = sync
        self._written = written
        self._durable = 0
        self._running: asyncio.Future[None] | None = None
        # Starts slow: the first syncs go to a thread until the disk has shown it is fast.
        self._average_sync_seconds = 1.0

    async def durable(self, target: int) -> None:
        """Return once the WAL is durable up to record `target` (what the caller wrote);
        raises if the fsync failed."""
        while self._durable < target:
            if self._running is None:
                self._running = asyncio.ensure_future(self._sync_once())
            # Shielded: a waiter that is cancelled must not cancel the fsync others wait on.
            await asyncio.shield(self._running)

    async def _sync_once(self) -> None:
        try:
            await asyncio.sleep(0)
            target = self._written()
            started = time.perf_counter()
            if self._average_sync_seconds < INLINE_SYNC_SECONDS:
                report = self._sync()
            else:
                report = await asyncio.to_thread(self._sync)
            self._durable = max(self._durable, target)
            if report is not None:  # None: another caller's fsync had covered it all
                elapsed = time.perf_counter() - started
                FSYNC_SECONDS.observe(elapsed)
                FSYNC_GROUPS.observe(len(report.groups))
                self._average_sync_seconds += SYNC_TIME_WEIGHT * (
                    elapsed - self._average_sync_seconds)
        finally:
            self._running = None
