"""Group commit across instances: every group of a node writes to the one WAL, and one fsync
makes all of their writes durable.

A driver writes its Ready's records (no sync), then awaits `durable()`. The first waiter
starts a sync; on a node with several groups, before it reads how far the WAL is written, it
yields once to the loop, so every other driver with a Ready in hand gets to run first, and
the one fsync covers them all (with one group nobody else could join it, and the sync starts
at once). Waiters whose writes came after a sync had started wait for the next one.

Where the fsync runs depends on what the node leads. A node that leads a group fsyncs on a
worker thread, never on the event loop: while the disk works, its loop keeps taking requests
in and stepping the followers' acknowledgements, which is what lets the next batch grow
(measured under 64 writers on 3 nodes, an inline fsync, even a fast disk's 1 ms, cost 20% of
the throughput and shrank the batches). A node that leads nothing has nothing to take in
meanwhile: the next append waits for this fsync either way, since its acknowledgement must
follow it. It fsyncs inline and saves the hand-off, which cost a follower a fifth of its CPU.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import Histogram

from distlab.storage import SyncReport

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

    def __init__(self, sync: Callable[[], SyncReport | None], written: Callable[[], int],
                 leads_any: Callable[[], bool] = lambda: True, writers: int = 1) -> None:
        """`writers`: how many drivers write to the WAL (the node's groups)."""
        self._sync = sync
        self._written = written
        self._leads_any = leads_any
        self._alone = writers <= 1
        self._durable = 0
        self._running: asyncio.Future[None] | None = None

    async def durable(self, target: int) -> None:
        """Return once the WAL is durable up to record `target` (what the caller wrote);
        raises if the fsync failed."""
        while self._durable < target:
            running = self._running
            if running is None:
                if not self._leads_any():
                    await self._sync_here()
                    continue
                running = self._running = (self._sync_on_thread() if self._alone
                                           else asyncio.ensure_future(self._sync_after_others()))
            # Shielded: a waiter that is cancelled must not cancel the fsync others wait on.
            await asyncio.shield(running)

    async def _sync_after_others(self) -> None:
        try:
            # Other groups' drivers may have a Ready in hand: this fsync covers theirs too.
            await asyncio.sleep(0)
            await self._sync_on_thread()
        finally:
            if self._running is asyncio.current_task():
                self._running = None

    def _sync_on_thread(self) -> asyncio.Future[None]:
        """Start an fsync of everything written so far on the worker thread; the future is
        done (or failed) with it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        target = self._written()
        started = time.perf_counter()

        def finished(syncing: asyncio.Future[SyncReport | None]) -> None:
            if self._running is done:
                self._running = None
            if syncing.cancelled():  # the loop is closing
                done.cancel()
            elif (error := syncing.exception()) is not None:
                done.set_exception(error)
            else:
                self._record(target, started, syncing.result())
                done.set_result(None)

        # The loop's own executor, without `to_thread`'s copy of the context: the fsync needs
        # none, and this runs once a batch.
        loop.run_in_executor(None, self._sync).add_done_callback(finished)
        return done

    async def _sync_here(self) -> None:
        """The inline fsync of a node that leads nothing, run by the waiter that found none
        running (no task to start and shield: it has nothing else to do meanwhile). Waiters
        that come meanwhile wait on `_running`, and look again once it is done."""
        done = self._running = asyncio.get_running_loop().create_future()
        try:
            if not self._alone:
                # Other groups' drivers may have a Ready in hand: this fsync covers theirs too.
                await asyncio.sleep(0)
            target = self._written()
            started = time.perf_counter()
            self._record(target, started, self._sync())
        finally:
            self._running = None
            # The others only look again: a failure reaches each through its own fsync.
            done.set_result(None)

    def _record(self, target: int, started: float, report: SyncReport | None) -> None:
        """The WAL is durable up to `target`, by an fsync started at `started`."""
        self._durable = max(self._durable, target)
        if report is not None:  # None: another caller's fsync had covered it all
            FSYNC_SECONDS.observe(time.perf_counter() - started)
            FSYNC_GROUPS.observe(len(report.groups))
