"""A multi-version store: every value kept under the commit timestamp that wrote it (Spanner §4).

One store is the state of one replicated group (it lives inside a consensus group's state
machine and its snapshot), so every method is deterministic: the same calls in the same order
give the same state on every replica, and nothing reads a clock. Timestamps are integer
nanoseconds, as TrueTime hands them out.

- `write(key, value, ts)` adds a version (None deletes); `read_at(key, ts)` answers a snapshot
  read with the newest version at or below `ts`; `latest(key)` the newest version of all, for
  reads under locks.
- Two-phase commit leaves writes prepared but not committed: `prepare`, then `commit` at a
  timestamp at or above the prepare timestamp, or `abort`.
- Safe time (Spanner's t_safe = min(t_paxos_safe, t_TM_safe)): the store can answer a snapshot
  read at `ts` only once no write can still land at or below `ts`. Writes arrive in timestamp
  order except those of prepared transactions, so that is the highest timestamp applied (or
  promised by `advance_safe_time`, a leader's commitment not to assign lower timestamps) and
  one below the lowest pending prepare timestamp, whichever is lower. Every new write and
  prepare must be above the safe time, which is what keeps an answered read answered the same.
- Garbage collection drops versions below a horizon but keeps each key's newest version at or
  below it, so reads at or after the horizon are unchanged; reads below it are refused.
- `snapshot()` is a deterministic byte string (the same state gives the same bytes), checked
  by a CRC on `restore`.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

Key = bytes
Version = bytes | None  # None: the key was deleted at that timestamp

# Before anything is applied, no read is safe: a write may still come at any timestamp >= 0.
NO_TIMESTAMP = -1

SNAPSHOT_MAGIC = b"DLMV"
SNAPSHOT_VERSION = 1
# magic, format version, CRC-32 of the body, body length
_SNAPSHOT_HEADER = struct.Struct(">4sHII")
_I64 = struct.Struct(">q")
_U32 = struct.Struct(">I")


class MVCCError(ValueError):
    """A call the store refuses; the state is as it was before the call."""


class TimestampError(MVCCError):
    """A write, prepare or commit at a timestamp that would rewrite the past."""


class ReadNotSafe(MVCCError):
    """A snapshot read above the safe time: a write may still land at or below its timestamp."""

    def __init__(self, ts: int, safe_time: int) -> None:
        self.ts = ts
        self.safe_time = safe_time
        super().__init__(f"cannot read at {ts} yet: the safe time is {safe_time}, and a write "
                         "at or below the read's timestamp may still come")


class ReadBelowHorizon(MVCCError):
    """A snapshot read below the garbage-collection horizon: its versions are gone."""

    def __init__(self, ts: int, horizon: int) -> None:
        self.ts = ts
        self.horizon = horizon
        super().__init__(f"cannot read at {ts}: versions below the garbage-collection horizon "
                         f"{horizon} have been collected")


class SnapshotError(MVCCError):
    """Bytes that are not an intact MVCC snapshot."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A transaction's writes at this group, locked and logged, waiting for the outcome."""

    txn_id: bytes
    prepare_ts: int
    writes: tuple[tuple[Key, Version], ...]  # sorted by key


@dataclass(slots=True)
class _Versions:
    """One key's versions, oldest first: parallel lists so that a read is one bisect."""

    timestamps: list[int] = field(default_factory=list)
    values: list[Version] = field(default_factory=list)


class MVCCStore:
    def __init__(self) -> None:
        self._keys: dict[Key, _Versions] = {}
        self._max_applied = NO_TIMESTAMP
        self._horizon = NO_TIMESTAMP
        self._prepared: dict[bytes, Prepared] = {}
        self._prepared_keys: dict[Key, bytes] = {}

    # ---- reads ----

    def read_at(self, key: Key, ts: int) -> Version:
        """The value of the newest version at or below `ts` (None if there is none, or it is
        a deletion). Raises ReadNotSafe above the safe time, ReadBelowHorizon below the
        garbage-collection horizon."""
        safe = self.safe_time()
        if ts > safe:
            raise ReadNotSafe(ts, safe)
        return self.value_at(key, ts)

    def value_at(self, key: Key, ts: int) -> Version:
        """`read_at` without the safe-time check, for the one that knows no write can still
        land at or below `ts` (the group's leader, which made the promises); ReadBelowHorizon
        below the garbage-collection horizon."""
        if ts < self._horizon:
            raise ReadBelowHorizon(ts, self._horizon)
        versions = self._keys.get(key)
        if versions is None:
            return None
        position = bisect.bisect_right(versions.timestamps, ts)
        return versions.values[position - 1] if position else None

    def latest(self, key: Key) -> Version:
        """The newest committed version's value, whatever its timestamp (reads under locks)."""
        versions = self._keys.get(key)
        return versions.values[-1] if versions is not None else None

    def latest_ts(self, key: Key) -> int | None:
        """The commit timestamp of the key's newest version, None if it has none."""
        versions = self._keys.get(key)
        return versions.timestamps[-1] if versions is not None else None

    def versions(self, key: Key) -> list[tuple[int, Version]]:
        """Every version still kept, oldest first."""
        versions = self._keys.get(key)
        if versions is None:
            return []
        return list(zip(versions.timestamps, versions.values, strict=True))

    def keys(self) -> list[Key]:
        return sorted(self._keys)

    # ---- safe time ----

    def safe_time(self) -> int:
        """The highest timestamp a snapshot read can be answered at now."""
        if not self._prepared:
            return self._max_applied
        lowest_prepare = min(p.prepare_ts for p in self._prepared.values())
        return min(self._max_applied, lowest_prepare - 1)

    @property
    def max_applied(self) -> int:
        """The highest timestamp applied or promised (t_paxos_safe)."""
        return self._max_applied

    def advance_safe_time(self, ts: int) -> None:
        """Record the leader's promise that no write will be assigned a timestamp at or below
        `ts` (a timestamped no-op through the log), so reads up to `ts` need not wait for
        the next write. A lower `ts` than one already known changes nothing."""
        self._max_applied = max(self._max_applied, ts)

    # ---- writes ----

    def write(self, key: Key, value: Version, commit_ts: int) -> None:
        """Add a version of `key` at `commit_ts` (None deletes it). The timestamp must be
        above the key's newest version and above the safe time; a key prepared by a pending
        transaction takes no other writes."""
        holder = self._prepared_keys.get(key)
        if holder is not None:
            raise MVCCError(f"key {key!r} is prepared by transaction {holder!r}: it takes no "
                            "other write until that transaction commits or aborts")
        self._check_write_ts(key, commit_ts)
        self._add_version(key, value, commit_ts)

    def prepare(self, txn_id: bytes, prepare_ts: int, writes: Mapping[Key, Version]) -> None:
        """Hold `writes` for transaction `txn_id`, to commit at a timestamp >= `prepare_ts`.
        Until it commits or aborts, the safe time stays below `prepare_ts`."""
        if txn_id in self._prepared:
            raise MVCCError(f"transaction {txn_id!r} is already prepared")
        safe = self.safe_time()
        if prepare_ts <= safe:
            raise TimestampError(f"prepare timestamp {prepare_ts} is not above the safe time "
                                 f"{safe}: reads up to {safe} may have been answered")
        for key in writes:
            holder = self._prepared_keys.get(key)
            if holder is not None:
                raise MVCCError(f"key {key!r} is already prepared by transaction {holder!r}")
            newest = self.latest_ts(key)
            if newest is not None and prepare_ts <= newest:
                raise TimestampError(f"prepare timestamp {prepare_ts} is not above key "
                                     f"{key!r}'s newest version at {newest}")
        prepared = Prepared(txn_id, prepare_ts, tuple(sorted(writes.items())))
        self._prepared[txn_id] = prepared
        for key, _ in prepared.writes:
            self._prepared_keys[key] = txn_id

    def commit(self, txn_id: bytes, commit_ts: int) -> None:
        """Apply a prepared transaction's writes at `commit_ts` (>= its prepare timestamp)."""
        prepared = self._prepared.get(txn_id)
        if prepared is None:
            raise MVCCError(f"transaction {txn_id!r} is not prepared here")
        if commit_ts < prepared.prepare_ts:
            raise TimestampError(f"commit timestamp {commit_ts} is below transaction "
                                 f"{txn_id!r}'s prepare timestamp {prepared.prepare_ts}")
        # Validated before anything changes: a commit applies all its writes or none.
        for key, _ in prepared.writes:
            newest = self.latest_ts(key)
            if newest is not None and commit_ts <= newest:
                raise TimestampError(f"commit timestamp {commit_ts} is not above key "
                                     f"{key!r}'s newest version at {newest}")
        self._forget(prepared)
        for key, value in prepared.writes:
            self._add_version(key, value, commit_ts)
        self._max_applied = max(self._max_applied, commit_ts)

    def abort(self, txn_id: bytes) -> bool:
        """Drop a prepared transaction's writes; False if it was not prepared here (an abort
        may be resent: under presumed abort an unknown transaction is an aborted one)."""
        prepared = self._prepared.get(txn_id)
        if prepared is None:
            return False
        self._forget(prepared)
        return True

    def prepared(self) -> list[Prepared]:
        """Pending prepared transactions, by transaction id."""
        return [self._prepared[txn_id] for txn_id in sorted(self._prepared)]

    # ---- garbage collection ----

    @property
    def horizon(self) -> int:
        return self._horizon

    def collect_garbage(self, horizon: int) -> int:
        """Drop versions no read at or after `horizon` can see: for each key, those older
        than its newest version at or below `horizon` (and that one too when it is a
        deletion). Returns how many versions were dropped. The horizon only moves forward
        and never past the safe time."""
        safe = self.safe_time()
        if horizon > safe:
            raise MVCCError(f"cannot collect up to {horizon}: above the safe time {safe}, "
                            "where writes may still land")
        if horizon <= self._horizon:
            return 0
        self._horizon = horizon
        dropped = 0
        for key in list(self._keys):
            versions = self._keys[key]
            position = bisect.bisect_right(versions.timestamps, horizon)
            if position == 0:
                continue
            keep_from = position - 1
            if versions.values[keep_from] is None:
                keep_from = position
            if keep_from == 0:
                continue
            dropped += keep_from
            del versions.timestamps[:keep_from]
            del versions.values[:keep_from]
            if not versions.timestamps:
                del self._keys[key]
        return dropped

    def collect_older_than(self, retention_ns: int) -> int:
        """`collect_garbage` with the horizon `retention_ns` below the safe time."""
        if retention_ns < 0:
            raise MVCCError(f"a retention window is at least 0 ns, not {retention_ns}")
        return self.collect_garbage(self.safe_time() - retention_ns)

    # ---- snapshots ----

    def snapshot(self) -> bytes:
        """The whole state as bytes: keys, versions and prepared transactions in sorted
        order, so equal states give equal bytes."""
        parts: list[bytes] = [_I64.pack(self._max_applied), _I64.pack(self._horizon),
                              _U32.pack(len(self._keys))]
        for key in sorted(self._keys):
            versions = self._keys[key]
            parts += [_pack_bytes(key), _U32.pack(len(versions.timestamps))]
            for ts, value in zip(versions.timestamps, versions.values, strict=True):
                parts += [_I64.pack(ts), _pack_version(value)]
        parts.append(_U32.pack(len(self._prepared)))
        for prepared in self.prepared():
            parts += [_pack_bytes(prepared.txn_id), _I64.pack(prepared.prepare_ts),
                      _U32.pack(len(prepared.writes))]
            for key, value in prepared.writes:
                parts += [_pack_bytes(key), _pack_version(value)]
        body = b"".join(parts)
        return _SNAPSHOT_HEADER.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, zlib.crc32(body),
                                     len(body)) + body

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's; raises SnapshotError, leaving the state
        as it was, when `data` is not an intact snapshot of this format."""
        restored = _decode(data)
        self._keys = restored._keys
        self._max_applied = restored._max_applied
        self._horizon = restored._horizon
        self._prepared = restored._prepared
        self._prepared_keys = restored._prepared_keys

    @classmethod
    def from_snapshot(cls, data: bytes) -> MVCCStore:
        return _decode(data)

    # ---- internals ----

    def _check_write_ts(self, key: Key, commit_ts: int) -> None:
        newest = self.latest_ts(key)
        if newest is not None and commit_ts <= newest:
            raise TimestampError(f"commit timestamp {commit_ts} is not above key {key!r}'s "
                                 f"newest version at {newest}: a key's versions have "
                                 "strictly increasing timestamps")
        safe = self.safe_time()
        if commit_ts <= safe:
            raise TimestampError(f"commit timestamp {commit_ts} is not above the safe time "
                                 f"{safe}: reads up to {safe} may have been answered")

    def _add_version(self, key: Key, value: Version, commit_ts: int) -> None:
        assert value is None or isinstance(value, bytes), value
        versions = self._keys.setdefault(key, _Versions())
        assert not versions.timestamps or commit_ts > versions.timestamps[-1]
        versions.timestamps.append(commit_ts)
        versions.values.append(value)
        self._max_applied = max(self._max_applied, commit_ts)

    def _forget(self, prepared: Prepared) -> None:
        del self._prepared[prepared.txn_id]
        for key, _ in prepared.writes:
            del self._prepared_keys[key]


def _pack_bytes(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def _pack_version(value: Version) -> bytes:
    return b"\x00" if value is None else b"\x01" + _pack_bytes(value)


class _Reader:
    def __init__(self, body: bytes) -> None:
        self._body = body
        self._offset = 0

    def take(self, size: int) -> bytes:
        end = self._offset + size
        if end > len(self._body):
            raise SnapshotError("MVCC snapshot body ends early")
        chunk = self._body[self._offset:end]
        self._offset = end
        return chunk

    def i64(self) -> int:
        value: int = _I64.unpack(self.take(_I64.size))[0]
        return value

    def u32(self) -> int:
        value: int = _U32.unpack(self.take(_U32.size))[0]
        return value

    def bytes_(self) -> bytes:
        return self.take(self.u32())

    def version(self) -> Version:
        flag = self.take(1)
        if flag == b"\x00":
            return None
        if flag != b"\x01":
            raise SnapshotError(f"MVCC snapshot has a bad version flag {flag!r}")
        return self.bytes_()

    def done(self) -> bool:
        return self._offset == len(self._body)


def _decode(data: bytes) -> MVCCStore:
    if len(data) < _SNAPSHOT_HEADER.size:
        raise SnapshotError(f"MVCC snapshot too short: {len(data)} bytes")
    magic, version, checksum, length = _SNAPSHOT_HEADER.unpack_from(data)
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotError(f"not an MVCC snapshot (magic {magic!r})")
    if version != SNAPSHOT_VERSION:
        raise SnapshotError(f"MVCC snapshot version {version} is not supported (this build "
                            f"reads version {SNAPSHOT_VERSION})")
    body = data[_SNAPSHOT_HEADER.size:]
    if len(body) != length:
        raise SnapshotError(f"MVCC snapshot body is {len(body)} bytes, header says {length}")
    if zlib.crc32(body) != checksum:
        raise SnapshotError("MVCC snapshot checksum mismatch: the snapshot is damaged")
    reader = _Reader(body)
    store = MVCCStore()
    store._max_applied = reader.i64()
    store._horizon = reader.i64()
    for _ in range(reader.u32()):
        key = reader.bytes_()
        versions = _Versions()
        for _ in range(reader.u32()):
            ts = reader.i64()
            if versions.timestamps and ts <= versions.timestamps[-1]:
                raise SnapshotError(f"MVCC snapshot: key {key!r}'s versions are out of order")
            versions.timestamps.append(ts)
            versions.values.append(reader.version())
        if versions.timestamps:
            store._keys[key] = versions
    for _ in range(reader.u32()):
        txn_id = reader.bytes_()
        prepare_ts = reader.i64()
        writes = tuple((reader.bytes_(), reader.version()) for _ in range(reader.u32()))
        store._prepared[txn_id] = Prepared(txn_id, prepare_ts, writes)
        for key, _ in writes:
            store._prepared_keys[key] = txn_id
    if not reader.done():
        raise SnapshotError("MVCC snapshot body has trailing bytes")
    return store
