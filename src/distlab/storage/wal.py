"""A segmented write-ahead log of checksummed, length-prefixed records.

Model: etcd's `wal/`. The log is a directory of segment files, each named by the sequence
number of its first record (``00000000000000000001.wal``). Every record gets the next
sequence number; a segment rolls over to a new file once it has reached the size threshold.

On-disk format (all integers little-endian):

    segment header  magic b"DLWAL\\x00\\x00\\x01" (8 bytes) | first sequence number (u64)
    record          payload length (u32) | CRC-32 (u32) | record type (u8) | sequence (u64)
                    | payload

The checksum is IEEE CRC-32 (``zlib.crc32``, the polynomial of zip and Ethernet, not CRC-32C)
over the length, type, sequence number and payload, so a flipped bit anywhere in a record is
caught, including in its length. Record type 0 is reserved: zeroed disk blocks never parse as
a record.

Durability: `append` and `append_batch` only write; `sync` fsyncs once for everything
written so far (group commit). A segment is fsynced before the next one is created, and a new
segment appears atomically (written under a temporary name, fsynced, renamed, directory
fsynced), so every segment but the last is always complete.

Preallocation: the segment being appended to is extended ahead of its records, a chunk at a
time, with zeros (as etcd's WAL preallocates its segments). A sync then finds the file's size
and blocks already on disk, so it is an `fdatasync` that writes the records and little else:
measured on ext4, a quarter less time and CPU per sync than an fsync of a file that grows
with every write. The zeros past the last record are not records (type 0 is reserved) and
read as the log's end; closing the log, sealing a segment and recovery cut them off.

Recovery on open: a damaged record in the last segment with nothing valid after it is a write
that a crash cut short; it was never synced, so it is truncated and logged. Any other damage
(a bad record followed by valid ones, or anywhere in an earlier segment) means durable data
was lost: `CorruptLogError` names the file and byte offset and the log refuses to open.

Threads: every public method is safe to call from any thread. `sync` does not hold the lock
while it waits for the disk, so appends from other threads proceed during an fsync; that is
what lets `GroupCommitter` (and an asyncio runtime calling through `asyncio.to_thread`) cover
many writers with one fsync.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from distlab.storage.errors import CorruptLogError, StorageClosedError, StorageError
from distlab.storage.fsutil import fsync_directory, remove_leftover, write_all, write_at

logger = logging.getLogger(__name__)

SEGMENT_MAGIC = b"DLWAL\x00\x00\x01"
_SEGMENT_HEADER = struct.Struct("<8sQ")
_RECORD_HEADER = struct.Struct("<IIBQ")
_CHECKED_FIELDS = struct.Struct("<IBQ")
SEGMENT_HEADER_SIZE = _SEGMENT_HEADER.size
RECORD_HEADER_SIZE = _RECORD_HEADER.size
MAX_RECORD_SIZE = 64 * 1024 * 1024
DEFAULT_SEGMENT_SIZE = 64 * 1024 * 1024
# How far ahead of its records the active segment is extended at a time: small enough that
# the many logs of a test run or a host of nodes cost little disk, large enough that the size
# changes (which a sync must then write too) come once per thousands of records.
PREALLOCATION_BYTES = 1 << 20
_ZERO_HEADER = bytes(RECORD_HEADER_SIZE)
_SEGMENT_NAME = re.compile(r"^(\d{20})\.wal$")
_LOCK_FILE = "LOCK"


@dataclass(frozen=True, slots=True)
class WalRecord:
    """One record as read back: its sequence number, type byte (1-255) and payload."""

    seq: int
    type: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """One segment file and the records it holds (`last_seq` < `first_seq` when empty)."""

    path: Path
    first_seq: int
    last_seq: int
    size: int


def segment_name(first_seq: int) -> str:
    """The file name of the segment whose first record has sequence number `first_seq`."""
    return f"{first_seq:020d}.wal"


class _BadRecord(Exception):
    """The record at `offset` does not read back; `problem` says how."""

    def __init__(self, offset: int, problem: str) -> None:
        super().__init__(problem)
        self.offset = offset
        self.problem = problem


def _parse_record(data: bytes, offset: int) -> tuple[WalRecord, int]:
    """Decode the record at `offset`; return it and the offset just past it."""
    remaining = len(data) - offset
    if remaining < RECORD_HEADER_SIZE:
        raise _BadRecord(
            offset, f"short record header ({remaining} of {RECORD_HEADER_SIZE} bytes)"
        )
    length, stored_checksum, record_type, seq = _RECORD_HEADER.unpack_from(data, offset)
    payload_start = offset + RECORD_HEADER_SIZE
    if length > MAX_RECORD_SIZE:
        raise _BadRecord(offset, f"record length {length} exceeds the {MAX_RECORD_SIZE} limit")
    if payload_start + length > len(data):
        raise _BadRecord(
            offset,
            f"short payload ({len(data) - payload_start} of {length} bytes before end of file)",
        )
    payload = data[payload_start : payload_start + length]
    checksum = zlib.crc32(payload, zlib.crc32(_CHECKED_FIELDS.pack(length, record_type, seq)))
    if checksum != stored_checksum:
        raise _BadRecord(
            offset, f"checksum mismatch (stored {stored_checksum:#010x}, computed {checksum:#010x})"
        )
    if record_type == 0:
        raise _BadRecord(offset, "record type 0 is reserved")
    return WalRecord(seq, record_type, payload), payload_start + length


def _records(data: bytes, path: Path, first_seq: int) -> Iterator[tuple[int, WalRecord]]:
    """Yield (offset, record) for every record of one segment's bytes, in order.

    Raises `_BadRecord` at the first record that does not decode; raises `CorruptLogError`
    for what no crash can produce: a bad header, or a record out of sequence.
    """
    if len(data) < SEGMENT_HEADER_SIZE:
        raise CorruptLogError(path, 0, f"short segment header ({len(data)} bytes)")
    magic, header_seq = _SEGMENT_HEADER.unpack_from(data, 0)
    if magic != SEGMENT_MAGIC:
        raise CorruptLogError(path, 0, f"bad segment magic {magic!r}")
    if header_seq != first_seq:
        raise CorruptLogError(
            path, 8, f"header says first sequence {header_seq}, file name says {first_seq}"
        )
    offset = SEGMENT_HEADER_SIZE
    expected_seq = first_seq
    while offset < len(data):
        if _is_zero_tail(data, offset):
            return
        record, end = _parse_record(data, offset)
        if record.seq != expected_seq:
            raise CorruptLogError(
                path, offset, f"record has sequence {record.seq}, expected {expected_seq}"
            )
        yield offset, record
        offset = end
        expected_seq += 1


def _is_zero_tail(data: bytes, offset: int) -> bool:
    """Whether everything from `offset` on is preallocated zeros: the end of the records. An
    all-zero header is never a record's (type 0 is reserved)."""
    if data[offset:offset + RECORD_HEADER_SIZE] != _ZERO_HEADER[:len(data) - offset]:
        return False
    return data.count(0, offset) == len(data) - offset


def _records_end(data: bytes) -> int:
    """The length of `data` without its preallocated zeros: no record extends past it but
    one whose own last bytes are zeros."""
    return len(data.rstrip(b"\0"))


def _valid_record_after(data: bytes, offset: int, next_seq: int) -> int | None:
    """The offset of an intact record after `offset` that could belong to this log, if any.

    A crash only ever cuts the end off the last write, so finding an intact later record
    behind a damaged one proves the damage is not a torn tail. A candidate must carry a
    plausible sequence number before its checksum is even computed, which keeps the scan
    cheap over garbage.
    """
    highest_plausible = next_seq + (len(data) - offset) // RECORD_HEADER_SIZE
    # A record has a non-zero type byte, so none starts in the preallocated zeros at the end:
    # the scan stops where they begin.
    last_start = min(len(data) - RECORD_HEADER_SIZE, _records_end(data) - 1)
    for candidate in range(offset + 1, last_start + 1):
        length, _, record_type, seq = _RECORD_HEADER.unpack_from(data, candidate)
        if record_type == 0 or not next_seq <= seq <= highest_plausible:
            continue
        if candidate + RECORD_HEADER_SIZE + length > len(data):
            continue
        try:
            _parse_record(data, candidate)
        except _BadRecord:
            continue
        return candidate
    return None


def _list_segments(directory: Path) -> list[tuple[int, Path]]:
    """Segment files sorted by first sequence number; leftover temporaries are removed."""
    found: list[tuple[int, Path]] = []
    for entry in directory.iterdir():
        if entry.name.endswith(".wal.tmp"):
            remove_leftover(entry)
            logger.warning("removed unfinished WAL segment %s left by a crash", entry)
            continue
        match = _SEGMENT_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry))
    found.sort()
    return found


def _recover_segment(path: Path, first_seq: int, is_last: bool) -> SegmentInfo:
    """Validate one segment; truncate a torn tail if it is the last one."""
    data = path.read_bytes()
    last_seq = first_seq - 1
    end = SEGMENT_HEADER_SIZE
    try:
        for offset, record in _records(data, path, first_seq):
            last_seq = record.seq
            end = offset + RECORD_HEADER_SIZE + len(record.payload)
    except _BadRecord as bad:
        if not is_last:
            raise CorruptLogError(
                path, bad.offset, f"{bad.problem} (in a segment that later segments follow)"
            ) from None
        later = _valid_record_after(data, bad.offset, last_seq + 1)
        if later is not None:
            raise CorruptLogError(
                path, bad.offset, f"{bad.problem}; an intact record follows at offset {later}"
            ) from None
        logger.warning(
            "truncating torn tail of WAL segment %s at byte offset %d (%s); dropping %d bytes",
            path,
            bad.offset,
            bad.problem,
            len(data) - bad.offset,
        )
        with open(path, "r+b") as torn:
            torn.truncate(bad.offset)
            torn.flush()
            os.fsync(torn.fileno())
        return SegmentInfo(path, first_seq, last_seq, bad.offset)
    if end < len(data):
        # Preallocated zeros after the last record (a crash left the segment open): not
        # data, and appends resume at the end of the records.
        with open(path, "r+b") as preallocated:
            preallocated.truncate(end)
            preallocated.flush()
            os.fsync(preallocated.fileno())
    return SegmentInfo(path, first_seq, last_seq, end)


def _acquire_directory_lock(directory: Path) -> int:
    """Hold an exclusive lock so two processes never append to one log."""
    import fcntl

    fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageError(f"write-ahead log {directory} is already open elsewhere") from None
    return fd


def check_not_open(directory: Path) -> None:
    """Raise the StorageError that opening the log at `directory` would raise because another
    process has it open; a directory that does not exist holds no open log."""
    if directory.is_dir():
        os.close(_acquire_directory_lock(directory))


class WriteAheadLog:
    """A directory of segment files, appended to at the end, synced in groups.

    Open with `WriteAheadLog.open(directory)`; read what survived with `replay()`; append
    with `append` / `append_batch`; make it durable with `sync()`.
    """

    def __init__(
        self,
        directory: Path,
        segments: list[SegmentInfo],
        segment_size: int,
        lock_fd: int,
    ) -> None:
        self._directory = directory
        self._segment_size = segment_size
        self._lock_fd: int | None = lock_fd
        self._lock = threading.Lock()
        self._sealed = segments[:-1]
        active = segments[-1]
        self._active_path = active.path
        self._active_first_seq = active.first_seq
        self._active_size = active.size
        self._active_fd: int | None = os.open(active.path, os.O_WRONLY)
        # The active segment's file size: its records end at `_active_size`, zeros follow.
        self._allocated = active.size
        self._last_seq = active.last_seq
        self._synced_seq = active.last_seq
        self._syncs_in_flight = 0
        self._retired_fds: list[int] = []
        self._failure: BaseException | None = None
        self._closed = False

    @classmethod
    def open(
        cls, directory: str | os.PathLike[str], *, segment_size: int = DEFAULT_SEGMENT_SIZE
    ) -> WriteAheadLog:
        """Open (or create) the log in `directory`, recovering from a crash if needed.

        Raises `CorruptLogError` if durable data is damaged.
        """
        if segment_size < SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE:
            raise ValueError(f"segment size {segment_size} is too small to hold a record")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        lock_fd = _acquire_directory_lock(path)
        try:
            found = _list_segments(path)
            if found:
                _fsync_inherited_tail(path, found[-1][1])
            else:
                _create_segment(path, 1)
                found = [(1, path / segment_name(1))]
            segments: list[SegmentInfo] = []
            for position, (first_seq, segment_path) in enumerate(found):
                if segments and first_seq != segments[-1].last_seq + 1:
                    previous = segments[-1]
                    raise CorruptLogError(
                        segment_path,
                        0,
                        f"segment starts at sequence {first_seq} but {previous.path.name} "
                        f"ends at {previous.last_seq}",
                    )
                is_last = position == len(found) - 1
                segments.append(_recover_segment(segment_path, first_seq, is_last))
            return cls(path, segments, segment_size, lock_fd)
        except BaseException:
            os.close(lock_fd)
            raise

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def first_seq(self) -> int:
        """The sequence number of the oldest record still kept."""
        with self._lock:
            return self._sealed[0].first_seq if self._sealed else self._active_first_seq

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest record written (synced or not)."""
        with self._lock:
            return self._last_seq

    @property
    def synced_seq(self) -> int:
        """Every record up to this sequence number is known to be on disk."""
        with self._lock:
            return self._synced_seq

    @property
    def active_first_seq(self) -> int:
        """The sequence number the segment being appended to starts at."""
        with self._lock:
            return self._active_first_seq

    def segments(self) -> list[SegmentInfo]:
        """Every segment, oldest first; the last one is the one being appended to."""
        with self._lock:
            return [*self._sealed, self._active_info()]

    def append(self, record_type: int, payload: bytes) -> int:
        """Write one record (not yet durable); return its sequence number."""
        return self.append_batch([(record_type, payload)])

    def append_batch(self, records: Iterable[tuple[int, bytes]]) -> int:
        """Write records in order (not yet durable); return the last one's sequence number.

        The records of a batch are written with as few system calls as segment boundaries
        allow. Follow with one `sync()` to make the whole batch durable.
        """
        batch = records if isinstance(records, list) else list(records)
        for record_type, payload in batch:
            if not 1 <= record_type <= 255 or len(payload) > MAX_RECORD_SIZE:
                _refuse_record(record_type, payload)
        # This loop runs once per record on the hot path, so the encoding is inlined.
        pack_checked, pack_header, crc32 = _CHECKED_FIELDS.pack, _RECORD_HEADER.pack, zlib.crc32
        with self._lock:
            self._check_usable()
            try:
                # Headers and payloads are joined once, by the write: a payload is copied
                # exactly once on its way to the file.
                pending: list[bytes] = []
                pending_size = 0
                for record_type, payload in batch:
                    has_records = self._last_seq >= self._active_first_seq or bool(pending)
                    if self._active_size + pending_size >= self._segment_size and has_records:
                        self._write_pending(pending, pending_size)
                        pending, pending_size = [], 0
                        self._roll()
                    seq = self._last_seq = self._last_seq + 1
                    length = len(payload)
                    checksum = crc32(payload, crc32(pack_checked(length, record_type, seq)))
                    pending.append(pack_header(length, checksum, record_type, seq))
                    pending.append(payload)
                    pending_size += RECORD_HEADER_SIZE + length
                self._write_pending(pending, pending_size)
            except OSError as error:
                self._failure = error
                raise StorageError(
                    f"write to write-ahead log {self._active_path} failed: {error}"
                ) from error
            return self._last_seq

    def sync(self) -> bool:
        """Make every record written so far durable with (at most) one fsync; return
        whether it fsynced (not when everything written was durable already).

        The lock is released during the fsync so other threads keep appending; their
        records are covered by the next `sync`.
        """
        with self._lock:
            self._check_usable()
            target_seq = self._last_seq
            if target_seq <= self._synced_seq:
                return False
            fd = self._active_fd
            assert fd is not None
            self._syncs_in_flight += 1
        fsynced = False
        try:
            # The data alone: the file's size and blocks changed only when it was extended,
            # and `_preallocate` synced them then.
            os.fdatasync(fd)
            fsynced = True
        except OSError as error:
            # After a failed fsync the kernel may have dropped the dirty pages: nothing
            # written since the last good sync can be trusted, so the log stops here.
            with self._lock:
                self._failure = error
            raise StorageError(
                f"fdatasync of write-ahead log {self._active_path} failed: {error}"
            ) from error
        finally:
            with self._lock:
                self._syncs_in_flight -= 1
                if fsynced:
                    self._synced_seq = max(self._synced_seq, target_seq)
                self._close_retired_fds()
        return True

    def replay(self, from_seq: int | None = None) -> Iterator[WalRecord]:
        """Read back every record from `from_seq` (default: the oldest kept), in order.

        Reads the files again and checks every checksum, so damage done after `open`
        raises `CorruptLogError` too.
        """
        segments = self.segments()
        last_seq = segments[-1].last_seq
        for segment in segments:
            if from_seq is not None and segment.last_seq < from_seq:
                continue
            data = segment.path.read_bytes()
            try:
                for _, record in _records(data, segment.path, segment.first_seq):
                    if record.seq > last_seq:
                        return
                    if from_seq is None or record.seq >= from_seq:
                        yield record
            except _BadRecord as bad:
                if bad.offset >= segment.size:
                    return  # a write in progress beyond what the snapshot of segments saw
                raise CorruptLogError(segment.path, bad.offset, bad.problem) from None

    def locate(self, seq: int) -> tuple[Path, int]:
        """The segment file and byte offset of record `seq` (to point an operator at it)."""
        for segment in self.segments():
            if segment.first_seq <= seq <= segment.last_seq:
                data = segment.path.read_bytes()
                try:
                    for offset, record in _records(data, segment.path, segment.first_seq):
                        if record.seq == seq:
                            return segment.path, offset
                except _BadRecord as bad:
                    return segment.path, bad.offset
        raise LookupError(f"record {seq} is not in write-ahead log {self._directory}")

    def remove_segments_before(self, seq: int) -> list[Path]:
        """Delete, oldest first, every sealed segment whose records all precede `seq`.

        The segment being appended to is never deleted. Returns the deleted paths.
        """
        with self._lock:
            self._check_usable()
            removed: list[Path] = []
            while self._sealed and self._sealed[0].last_seq < seq:
                segment = self._sealed.pop(0)
                segment.path.unlink()
                removed.append(segment.path)
            if removed:
                fsync_directory(self._directory)
            return removed

    def close(self) -> None:
        """Sync what was written and release the files. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
        if self._failure is None and self._active_fd is not None:
            self.sync()
        with self._lock:
            self._closed = True
            if (self._failure is None and self._active_fd is not None
                    and self._cut_preallocation()):
                os.fsync(self._active_fd)
            if self._active_fd is not None:
                self._retired_fds.append(self._active_fd)
                self._active_fd = None
            self._close_retired_fds()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _active_info(self) -> SegmentInfo:
        return SegmentInfo(
            self._active_path, self._active_first_seq, self._last_seq, self._active_size
        )

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise StorageClosedError(
                f"write-ahead log {self._directory} is unusable after an I/O error: "
                f"{self._failure}"
            )
        if self._closed:
            raise StorageClosedError(f"write-ahead log {self._directory} is closed")

    def _write_pending(self, pending: list[bytes], size: int) -> None:
        if not pending:
            return
        fd = self._active_fd
        assert fd is not None
        if self._active_size + size > self._allocated:
            self._preallocate(fd, self._active_size + size)
        write_at(fd, b"".join(pending), self._active_size)
        self._active_size += size

    def _preallocate(self, fd: int, needed: int) -> None:
        """Extend the active segment with zeros to hold `needed` bytes and a chunk more. The
        next sync's fdatasync writes the new size with the data (it writes whatever metadata
        reading the data back needs), and the syncs after it, the data alone."""
        allocated = needed + PREALLOCATION_BYTES
        os.posix_fallocate(fd, self._allocated, allocated - self._allocated)
        self._allocated = allocated

    def _cut_preallocation(self) -> bool:
        """Drop the zeros after the active segment's records, if any (the caller fsyncs);
        return whether there were."""
        fd = self._active_fd
        assert fd is not None
        if self._allocated <= self._active_size:
            return False
        os.ftruncate(fd, self._active_size)
        self._allocated = self._active_size
        return True

    def _roll(self) -> None:
        """Seal the active segment (durably, without its preallocated zeros) and start the
        next one."""
        assert self._active_fd is not None
        self._cut_preallocation()
        os.fsync(self._active_fd)
        self._synced_seq = max(self._synced_seq, self._last_seq)
        self._sealed.append(self._active_info())
        self._retired_fds.append(self._active_fd)
        self._active_fd = None
        self._close_retired_fds()
        first_seq = self._last_seq + 1
        self._active_path = _create_segment(self._directory, first_seq)
        self._active_first_seq = first_seq
        self._active_size = self._allocated = SEGMENT_HEADER_SIZE
        self._active_fd = os.open(self._active_path, os.O_WRONLY)

    def _close_retired_fds(self) -> None:
        # A segment's descriptor may still be in an fsync on another thread; it is closed
        # once no sync is in flight so that fsync never sees a closed or reused descriptor.
        if self._syncs_in_flight:
            return
        for fd in self._retired_fds:
            os.close(fd)
        self._retired_fds.clear()


def _refuse_record(record_type: int, payload: bytes) -> None:
    """Raise for a record `append_batch` cannot write."""
    if not 1 <= record_type <= 255:
        raise ValueError(f"record type {record_type} is outside 1..255")
    if len(payload) > MAX_RECORD_SIZE:
        raise ValueError(f"record of {len(payload)} bytes exceeds the {MAX_RECORD_SIZE} limit")


def _fsync_inherited_tail(directory: Path, last_segment: Path) -> None:
    """Make durable what an earlier process may have written but not synced.

    After a process crash (not a power loss) unsynced records are still in the page cache
    and read back as if durable. The node is about to rely on them, so they must reach the
    disk before it does; sealed segments were synced when they were sealed.
    """
    fd = os.open(last_segment, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_directory(directory)


def _create_segment(directory: Path, first_seq: int) -> Path:
    """Create an empty segment atomically: it either exists with its header or not at all."""
    final = directory / segment_name(first_seq)
    temporary = directory / (segment_name(first_seq) + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, _SEGMENT_HEADER.pack(SEGMENT_MAGIC, first_seq))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temporary, final)
    fsync_directory(directory)
    return final
