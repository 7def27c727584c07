"""What a replica keeps on disk, as records of the node's log, and how it reads them back.

Three kinds of record, appended in the order things happen: the epoch it moved to, each
update it took into its history, and a reset (its whole state replaced by a state transfer).
Replaying them in order rebuilds the replica: the latest version of every key, its last
sequence number, its epoch and the digest of its history.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from distlab.protocols.chain.messages import Update

EPOCH = 1
UPDATE = 2
RESET = 3

_EPOCH = struct.Struct(">Q")
_UPDATE = struct.Struct(">QI")  # seq, key length; then key, value
_RESET = struct.Struct(">QII")  # last, digest, number of versions; then each as an update


def digest_after(previous: int, update: Update) -> int:
    """The running checksum of a history after `update`: two replicas whose digests agree at
    a sequence number hold the same updates up to it (short of a CRC collision)."""
    return zlib.crc32(_UPDATE.pack(update.seq, len(update.key)) + update.key + update.value,
                      previous)


def encode_epoch(epoch: int) -> bytes:
    return _EPOCH.pack(epoch)


def encode_update(update: Update) -> bytes:
    return _UPDATE.pack(update.seq, len(update.key)) + update.key + update.value


def _decode_update(body: bytes, offset: int = 0, end: int | None = None) -> Update:
    seq, key_length = _UPDATE.unpack_from(body, offset)
    start = offset + _UPDATE.size
    stop = len(body) if end is None else end
    return Update(seq, body[start:start + key_length], body[start + key_length:stop])


def encode_reset(last: int, digest: int, versions: Iterable[Update]) -> bytes:
    chosen = list(versions)
    parts = [_RESET.pack(last, digest, len(chosen))]
    for version in chosen:
        encoded = encode_update(version)
        parts.append(struct.pack(">I", len(encoded)) + encoded)
    return b"".join(parts)


def decode_reset(body: bytes) -> tuple[int, int, list[Update]]:
    last, digest, count = _RESET.unpack_from(body, 0)
    offset = _RESET.size
    versions = []
    for _ in range(count):
        (length,) = struct.unpack_from(">I", body, offset)
        offset += 4
        versions.append(_decode_update(body, offset, offset + length))
        offset += length
    return last, digest, versions


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
    # Whether anything was ever written: a replica with records has run before.
    restarted: bool = False

    @property
    def last(self) -> int:
        return self.updates[-1].seq if self.updates else self.base


def recover(records: Iterable[tuple[int, bytes]]) -> StoredReplica:
    stored = StoredReplica()
    for kind, body in records:
        stored.restarted = True
        if kind == EPOCH:
            (epoch,) = _EPOCH.unpack(body)
            stored.epoch = max(stored.epoch, epoch)
        elif kind == UPDATE:
            update = _decode_update(body)
            if update.seq != stored.last + 1:
                raise ValueError(f"chain update {update.seq} follows {stored.last} on disk")
            stored.updates.append(update)
        elif kind == RESET:
            last, digest, versions = decode_reset(body)
            stored.base, stored.base_digest = last, digest
            stored.latest = {version.key: (version.seq, version.value) for version in versions}
            stored.updates = []
        else:
            raise ValueError(f"unknown chain record kind {kind}")
    return stored
