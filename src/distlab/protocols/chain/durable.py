"""What a replica keeps on disk, as records of the node's log, and how it reads them back.

Four kinds of record, appended in the order things happen: the epoch it moved to, each
update it took into its history (`UPDATE`, or `WRITE` for one that names the client's write
it came from), and a reset (its whole state replaced by a state transfer). Replaying them in
order rebuilds the replica: the latest version of every key, each client's newest write, its
last sequence number, its epoch and the digest of its history.

A snapshot is the shortest run of the same records that replays to what a replica needs at a
restart (`snapshot_records`): its epoch, a reset to its state as of the oldest update it still
keeps, and every update after that. Encoded as one blob (`encode_snapshot`), each record
framed as kind (u8) | length (u32) | body.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from distlab.protocols.chain.messages import Update, WriterMark

EPOCH = 1
UPDATE = 2
RESET = 3
WRITE = 4

_EPOCH = struct.Struct(">Q")
_UPDATE = struct.Struct(">QI")  # seq, key length; then key, value
_WRITE = struct.Struct(">QIQQ")  # seq, key length, client, request; then key, value
_RESET = struct.Struct(">QII")  # last, digest, number of versions; then each as an update
_COUNT = struct.Struct(">I")
_MARK = struct.Struct(">QQQ")  # client, request, seq
_FRAME = struct.Struct(">BI")  # a snapshot's record: kind, body length; then the body


def update_record(update: Update) -> tuple[int, bytes]:
    """The record of one update: `WRITE` when it names a client's write, else `UPDATE` (the
    only kind before writes were named, so older logs read back unchanged)."""
    if update.client:
        header = _WRITE.pack(update.seq, len(update.key), update.client, update.request)
        return WRITE, header + update.key + update.value
    return UPDATE, _UPDATE.pack(update.seq, len(update.key)) + update.key + update.value


def digest_after(previous: int, update: Update) -> int:
    """The running checksum of a history after `update`: two replicas whose digests agree at
    a sequence number hold the same updates up to it (short of a CRC collision)."""
    return zlib.crc32(update_record(update)[1], previous)


def encode_epoch(epoch: int) -> bytes:
    return _EPOCH.pack(epoch)


def decode_update(kind: int, body: bytes, offset: int = 0, end: int | None = None) -> Update:
    stop = len(body) if end is None else end
    if kind == WRITE:
        seq, key_length, client, request = _WRITE.unpack_from(body, offset)
        start = offset + _WRITE.size
    else:
        seq, key_length = _UPDATE.unpack_from(body, offset)
        client = request = 0
        start = offset + _UPDATE.size
    if start + key_length > stop:
        raise ValueError(f"chain update {seq}'s key runs past its record")
    return Update(seq, body[start:start + key_length], body[start + key_length:stop],
                  client, request)


def encode_reset(last: int, digest: int, versions: Iterable[Update],
                 writers: Iterable[WriterMark] = ()) -> bytes:
    """A reset's body: the versions (each framed by its length), then the clients' newest
    writes (absent from resets written before writes were named)."""
    chosen = list(versions)
    parts = [_RESET.pack(last, digest, len(chosen))]
    for version in chosen:
        _, encoded = update_record(Update(version.seq, version.key, version.value))
        parts.append(_COUNT.pack(len(encoded)) + encoded)
    marks = list(writers)
    parts.append(_COUNT.pack(len(marks)))
    parts.extend(_MARK.pack(mark.client, mark.request, mark.seq) for mark in marks)
    return b"".join(parts)


def decode_reset(body: bytes) -> tuple[int, int, list[Update], list[WriterMark]]:
    last, digest, count = _RESET.unpack_from(body, 0)
    offset = _RESET.size
    versions = []
    for _ in range(count):
        (length,) = _COUNT.unpack_from(body, offset)
        offset += _COUNT.size
        versions.append(decode_update(UPDATE, body, offset, offset + length))
        offset += length
    writers = []
    if offset < len(body):
        (marks,) = _COUNT.unpack_from(body, offset)
        offset += _COUNT.size
        for _ in range(marks):
            writers.append(WriterMark(*_MARK.unpack_from(body, offset)))
            offset += _MARK.size
    if offset != len(body):
        raise ValueError(f"a chain reset has {len(body) - offset} bytes past its end")
    return last, digest, versions, writers


@dataclass(slots=True)
class StoredReplica:
    """A replica's state as its records leave it."""

    epoch: int = 0
    # The state the last reset left (the latest version of every key, as of `base`, whose
    # history digest is `base_digest`), and every update taken since, in order.
    base: int = 0
    base_digest: int = 0
    latest: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)
    updates: list[Update] = field(default_factory=list)
    # Each client's newest write as of the reset, by client (the updates since add theirs).
    writers: dict[int, WriterMark] = field(default_factory=dict)
    # Whether anything was ever written: a replica with records has run before.
    restarted: bool = False

    @property
    def last(self) -> int:
        return self.updates[-1].seq if self.updates else self.base

    def apply(self, kind: int, body: bytes) -> None:
        """Replay one record; ValueError if it makes no sense here."""
        try:
            self._apply(kind, body)
        except struct.error as error:
            raise ValueError(f"chain record of kind {kind}: {error}") from None

    def _apply(self, kind: int, body: bytes) -> None:
        self.restarted = True
        if kind == EPOCH:
            (epoch,) = _EPOCH.unpack(body)
            self.epoch = max(self.epoch, epoch)
        elif kind in (UPDATE, WRITE):
            update = decode_update(kind, body)
            if update.seq != self.last + 1:
                raise ValueError(f"chain update {update.seq} follows {self.last} on disk")
            self.updates.append(update)
        elif kind == RESET:
            last, digest, versions, writers = decode_reset(body)
            self.base, self.base_digest = last, digest
            self.latest = {version.key: (version.seq, version.value) for version in versions}
            self.writers = {mark.client: mark for mark in writers}
            self.updates = []
        else:
            raise ValueError(f"unknown chain record kind {kind}")


def recover(records: Iterable[tuple[int, bytes]]) -> StoredReplica:
    stored = StoredReplica()
    for kind, body in records:
        stored.apply(kind, body)
    return stored


def snapshot_records(stored: StoredReplica) -> list[tuple[int, bytes]]:
    """The fewest records that replay to `stored`."""
    versions = [Update(seq, key, value) for key, (seq, value) in sorted(stored.latest.items())]
    writers = [stored.writers[client] for client in sorted(stored.writers)]
    return [(EPOCH, encode_epoch(stored.epoch)),
            (RESET, encode_reset(stored.base, stored.base_digest, versions, writers)),
            *(update_record(update) for update in stored.updates)]


def encode_snapshot(stored: StoredReplica) -> bytes:
    return b"".join(_FRAME.pack(kind, len(body)) + body
                    for kind, body in snapshot_records(stored))


def decode_snapshot(data: bytes) -> StoredReplica:
    """The state a snapshot holds; ValueError if it does not parse."""
    records = []
    offset = 0
    while offset < len(data):
        if offset + _FRAME.size > len(data):
            raise ValueError(f"a chain snapshot ends inside a record header at byte {offset}")
        kind, length = _FRAME.unpack_from(data, offset)
        offset += _FRAME.size
        if offset + length > len(data):
            raise ValueError(f"a chain snapshot's record at byte {offset} runs past its end")
        records.append((kind, data[offset:offset + length]))
        offset += length
    if not records or records[0][0] != EPOCH:
        raise ValueError("a chain snapshot must start with the replica's epoch")
    return recover(records)
