"""The driver's Storage port over the simulated disk.

A protocol says how its Readys become records (`DurableFormat`); this port writes them to
the node's shared log and waits for one fsync, as the real WAL does, and keeps snapshots in
their own atomically written files. An instance whose node has crashed can no longer reach
the disk: whatever its dying task still tries is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from distlab.sim.disk import SimDisk


class DurableFormat(Protocol):
    """One instance's on-disk format: what a Ready or a snapshot writes."""


    def encode_ready(self, ready: Any) -> tuple[bytes | None, list[tuple[int, bytes]]]:
        """The snapshot file to write (or None) and the log records to append, in order."""
        ...

    def encode_snapshot(self, snapshot: Any) -> tuple[bytes, list[tuple[int, bytes]]]:
        """A snapshot taken here: its file, and the records that note the compaction."""
        ...


# A core that hands out this many Readys without virtual time moving is spinning: a real node
# would burn its CPU for ever. No sane burst of inputs comes near it.
READYS_PER_INSTANT = 10_000


class Livelock(RuntimeError):
    """An instance keeps producing Readys and time cannot move on."""


class InstanceGone(asyncio.CancelledError):
    """The instance's node crashed: its task is being torn down, and writes nothing."""


class SimStorage:
    """Implements `distlab.runtime.host.ports.Storage` for one instance."""

    def __init__(self, disk: SimDisk, group: int, durable_format: DurableFormat,
                 alive: Callable[[], bool], now: Callable[[], float]) -> None:
        self._disk = disk
        self._group = group
        self._format = durable_format
        self._alive = alive
        self._now = now
        self._closed = False
        self._instant = -1.0
        self._readys_at_instant = 0

    async def persist(self, ready: Any) -> None:
        self._require_alive()
        self._count_ready()
        snapshot_file, records = self._format.encode_ready(ready)
        disk = self._disk
        if snapshot_file is not None:
            disk.save_snapshot(self._group, snapshot_file)
        if not records:
            return
        for kind, body in records:
            disk.write(self._group, kind, body)
        await disk.sync()
        self._require_alive()

    def save_snapshot(self, snapshot: Any) -> None:
        self._require_alive()
        snapshot_file, records = self._format.encode_snapshot(snapshot)
        self._disk.save_snapshot(self._group, snapshot_file)
        # The compaction record rides on the next fsync; recovery trusts the snapshot file
        # even if the record is lost, as the real store does.
        for kind, body in records:
            self._disk.write(self._group, kind, body)

    def close(self) -> None:
        self._closed = True

    def _count_ready(self) -> None:
        now = self._now()
        if now != self._instant:
            self._instant, self._readys_at_instant = now, 0
            return
        self._readys_at_instant += 1
        if self._readys_at_instant >= READYS_PER_INSTANT:
            raise Livelock(f"{self._readys_at_instant} Readys at t={now * 1000:.3f}ms without "
                           "time moving on: the core never settles")

    def _require_alive(self) -> None:
        if self._closed or not self._alive():
            raise InstanceGone()
