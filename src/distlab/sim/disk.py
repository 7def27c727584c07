"""A simulated disk: one write-ahead log per node, with the faults real disks have.

The log is a byte file of framed records (`length`, CRC-32 of the payload, payload), as the
node's real WAL is, shared by every instance on the node (records are tagged with their
group) so that one fsync covers all of them. A write lands in the page cache at once; only
an fsync, which takes virtual time, makes it durable. Snapshots are separate files, written
atomically and durable on return, as the real store does with rename and fsync.

Faults:
- a crash that is a power loss keeps only what was fsynced, plus some prefix of what was
  written after it, possibly ending in a record cut short (torn); a process crash keeps
  everything written, since the page cache survives it;
- an fsync that fails raises `FsyncFailed` to every writer waiting on it; the node must stop,
  and the pages it did not sync are gone (Linux drops them after reporting the error);
- a record corrupted at rest (a flipped byte) is found by its checksum when the node restarts:
  recovery raises `CorruptRecord` naming the offset and the node refuses to start;
- a slow disk: each fsync takes a latency drawn from the disk's range.

Recovery reads records in order: a record cut short at the end is a torn write and is
truncated; a whole record whose checksum fails is corruption, wherever it is.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

_FRAME = struct.Struct(">II")  # payload length, CRC-32 of the payload
_TAG = struct.Struct(">HB")  # group, record kind


class DiskError(Exception):
    """A fault of the simulated disk."""


class FsyncFailed(DiskError, OSError):
    """fsync reported an I/O error: what was written since the last fsync may be lost."""


class CorruptRecord(DiskError):
    """A whole record whose checksum does not match: the log cannot be trusted."""


@dataclass(frozen=True, slots=True)
class Record:
    group: int
    kind: int
    body: bytes


@dataclass(slots=True)
class Recovered:
    """What a node finds on its disk when it starts."""

    records: dict[int, list[Record]] = field(default_factory=dict)
    snapshots: dict[int, bytes] = field(default_factory=dict)
    torn_bytes: int = 0


@dataclass(slots=True)
class _Sync:
    upto: int
    future: asyncio.Future[None]


class SimDisk:
    """One node's disk. It outlives the node's crashes: that is what the node restarts from."""

    def __init__(self, *, rng: Random, loop: asyncio.AbstractEventLoop,
                 note: Callable[[str], None] | None, name: str,
                 fsync_ms: tuple[float, float] = (0.2, 1.0), lose_unsynced: bool = True) -> None:
        self.rng = rng
        self._loop = loop
        self._note = note
        self.name = name
        self.fsync_ms = fsync_ms
        # Whether unsynced writes can be lost at all (at a power loss, after a failed fsync);
        # without, the disk is one whose page cache always reaches the platter.
        self.lose_unsynced = lose_unsynced
        self._data = bytearray()
        self._synced = 0  # bytes of `_data` known durable
        self._snapshots: dict[int, bytes] = {}
        self._syncs: list[_Sync] = []
        self._busy_until = 0.0  # fsyncs run one after another
        self._fail_next_sync = False
        # Called with an fsync's latency when the next one starts (a power loss armed to
        # strike while it runs).
        self._on_next_sync: Callable[[float], None] | None = None
        # After a failed fsync nothing this incarnation writes can be trusted to be durable.
        self._failed: FsyncFailed | None = None
        self.fsyncs = 0

    # --- writing ---

    def write(self, group: int, kind: int, body: bytes) -> None:
        """Append one record to the page cache; not durable until an fsync covers it."""
        payload = _TAG.pack(group, kind) + body
        self._data += _FRAME.pack(len(payload), zlib.crc32(payload))
        self._data += payload

    def unsynced_bytes(self) -> int:
        return len(self._data) - self._synced

    async def sync(self) -> None:
        """Make everything written so far durable; raises FsyncFailed if the disk fails."""
        if self._failed is not None:
            raise self._failed
        upto = len(self._data)
        if upto <= self._synced:
            return
        loop = self._loop
        future: asyncio.Future[None] = loop.create_future()
        low, high = self.fsync_ms
        latency = (low + (high - low) * self.rng.random()) / 1000.0
        start = max(loop.time(), self._busy_until)
        self._busy_until = start + latency
        sync = _Sync(upto, future)
        self._syncs.append(sync)
        loop.call_at(self._busy_until, self._finish_sync, sync)
        if self._on_next_sync is not None:
            strike, self._on_next_sync = self._on_next_sync, None
            strike(self._busy_until - loop.time())
        await future

    def _finish_sync(self, sync: _Sync) -> None:
        if sync not in self._syncs:
            return  # the node crashed while it ran
        self._syncs.remove(sync)
        self.fsyncs += 1
        if self._fail_next_sync:
            self._fail_next_sync = False
            if self.lose_unsynced:
                self._lose_unsynced(keep=0, torn=False)
            error = self._failed = FsyncFailed(f"{self.name}: fsync failed with EIO")
            if self._note is not None:
                self._note(f"{self.name} fsync FAILED; {len(self._syncs) + 1} writers see EIO")
            for waiting in [sync, *self._syncs]:
                if not waiting.future.done():
                    waiting.future.set_exception(error)
            self._syncs.clear()
            return
        self._synced = max(self._synced, sync.upto)
        if not sync.future.done():
            sync.future.set_result(None)

    def save_snapshot(self, group: int, data: bytes) -> None:
        """Write a snapshot file atomically (temporary file, fsync, rename): durable now."""
        self._snapshots[group] = data

    # --- faults ---

    def fail_next_sync(self) -> None:
        self._fail_next_sync = True

    def on_next_sync(self, strike: Callable[[float], None]) -> None:
        """Call `strike(seconds until that fsync completes)` when the next fsync starts."""
        self._on_next_sync = strike

    def repair(self) -> None:
        """Back to a healthy, fast disk (what is corrupt stays corrupt)."""
        self._fail_next_sync = False
        self._on_next_sync = None
        self.fsync_ms = (0.2, 1.0)

    def crash(self, *, power_loss: bool, torn: bool) -> None:
        """The node stops. Pending fsyncs never finish; a power loss loses unsynced writes,
        all or in part, and with `torn` the last surviving record may be cut short."""
        self._on_next_sync = None
        for sync in self._syncs:
            sync.future.cancel()
        self._syncs.clear()
        self._busy_until = 0.0
        self._failed = None
        if not power_loss or not self.lose_unsynced:
            self._synced = len(self._data)  # the page cache reaches the disk in time
            return
        unsynced = len(self._data) - self._synced
        keep = self.rng.randrange(unsynced + 1) if unsynced else 0
        self._lose_unsynced(keep=keep, torn=torn)

    def _lose_unsynced(self, *, keep: int, torn: bool) -> None:
        unsynced = len(self._data) - self._synced
        if not unsynced:
            return
        if not torn:
            keep = self._record_boundary_at_or_before(self._synced + keep) - self._synced
        lost = unsynced - keep
        del self._data[self._synced + keep:]
        self._synced = len(self._data)
        if self._note is not None and lost:
            self._note(f"{self.name} lost {lost} of {unsynced} unsynced bytes"
                       + (" (the last record may be torn)" if torn else ""))

    def _record_boundary_at_or_before(self, position: int) -> int:
        # `_synced` sits on a record boundary: fsyncs cover whole writes.
        offset = self._synced
        data = self._data
        while offset + _FRAME.size <= position:
            length, _ = _FRAME.unpack_from(data, offset)
            end = offset + _FRAME.size + length
            if end > position:
                break
            offset = end
        return offset

    def corrupt_a_record(self) -> bool:
        """Flip one byte inside a durable record's payload (bit rot); False if none."""
        boundaries = self._record_offsets(self._synced)
        if not boundaries:
            return False
        offset, length = boundaries[self.rng.randrange(len(boundaries))]
        position = offset + _FRAME.size + self.rng.randrange(length)
        self._data[position] ^= 1 << self.rng.randrange(8)
        if self._note is not None:
            self._note(f"{self.name} record at offset {offset} corrupted at rest")
        return True

    def _record_offsets(self, limit: int) -> list[tuple[int, int]]:
        offsets = []
        offset = 0
        data = self._data
        while offset + _FRAME.size <= limit:
            length, _ = _FRAME.unpack_from(data, offset)
            if offset + _FRAME.size + length > limit or length == 0:
                break
            offsets.append((offset, length))
            offset += _FRAME.size + length
        return offsets

    # --- recovery ---

    def recover(self) -> Recovered:
        """Read the log back as a restarting node does; truncates a torn tail, raises
        CorruptRecord at a whole record that fails its checksum."""
        recovered = Recovered(snapshots=dict(self._snapshots))
        data = self._data
        offset = 0
        while offset < len(data):
            if offset + _FRAME.size > len(data):
                break
            length, checksum = _FRAME.unpack_from(data, offset)
            start = offset + _FRAME.size
            if start + length > len(data):
                break
            payload = bytes(data[start:start + length])
            if zlib.crc32(payload) != checksum:
                raise CorruptRecord(
                    f"{self.name}: WAL record at offset {offset} ({length} bytes) fails its "
                    "checksum; refusing to start")
            group, kind = _TAG.unpack_from(payload)
            recovered.records.setdefault(group, []).append(
                Record(group, kind, payload[_TAG.size:]))
            offset = start + length
        if offset < len(data):
            recovered.torn_bytes = len(data) - offset
            if self._note is not None:
                self._note(f"{self.name} recovery: torn record at offset {offset} "
                           f"({recovered.torn_bytes} bytes) truncated")
            del data[offset:]
            self._synced = min(self._synced, offset)
        return recovered
