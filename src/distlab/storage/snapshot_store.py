"""Snapshots as single files in a directory, written atomically, newest N kept.

File name: ``snapshot-<last index>-<last term>.snap`` (20-digit decimals, so names sort in
log order). Format: magic b"DLSNAP01" | metadata length (u32) | metadata CRC-32 (u32) |
metadata (UTF-8 JSON) | data, integers big-endian. The metadata holds the last included
index and term, the membership (voters and learners) and the data's size and CRC-32
(zlib.crc32), so both halves are checked when a snapshot is opened.

A snapshot is written under a temporary name, fsynced, renamed into place and the directory
fsynced; an unfinished temporary left by a crash is never mistaken for a snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distlab.storage.errors import CorruptSnapshotError
from distlab.storage.fsutil import fsync_directory, remove_leftover, write_file_atomically
from distlab.storage.model import Snapshot, SnapshotMeta

logger = logging.getLogger(__name__)

SNAPSHOT_MAGIC = b"DLSNAP01"
_HEADER = struct.Struct(">8sII")
_NAME = re.compile(r"^snapshot-(\d{20})-(\d{20})\.snap$")
DEFAULT_RETAIN = 2


def snapshot_name(last_index: int, last_term: int) -> str:
    return f"snapshot-{last_index:020d}-{last_term:020d}.snap"


def make_meta(
    last_index: int, last_term: int, voters: Sequence[int], learners: Sequence[int], data: bytes
) -> SnapshotMeta:
    if last_index < 0 or last_term < 0:
        raise ValueError(f"snapshot position ({last_index}, {last_term}) is negative")
    return SnapshotMeta(
        last_index=last_index,
        last_term=last_term,
        voters=tuple(voters),
        learners=tuple(learners),
        size=len(data),
        checksum=zlib.crc32(data),
    )


def encode_snapshot(meta: SnapshotMeta, data: bytes) -> bytes:
    meta_bytes = json.dumps(
        {
            "last_index": meta.last_index,
            "last_term": meta.last_term,
            "voters": list(meta.voters),
            "learners": list(meta.learners),
            "size": meta.size,
            "checksum": meta.checksum,
        },
        sort_keys=True,
    ).encode()
    return _HEADER.pack(SNAPSHOT_MAGIC, len(meta_bytes), zlib.crc32(meta_bytes)) + meta_bytes + data


def _decode_meta(blob: bytes, path: Path) -> tuple[SnapshotMeta, int]:
    """Parse and check the header and metadata; return them and where the data starts."""
    if len(blob) < _HEADER.size:
        raise CorruptSnapshotError(path, f"short header ({len(blob)} bytes)")
    magic, meta_length, stored = _HEADER.unpack_from(blob)
    if magic != SNAPSHOT_MAGIC:
        raise CorruptSnapshotError(path, f"bad magic {magic!r}")
    meta_bytes = blob[_HEADER.size : _HEADER.size + meta_length]
    if len(meta_bytes) != meta_length:
        raise CorruptSnapshotError(path, f"short metadata ({len(meta_bytes)} of {meta_length})")
    computed = zlib.crc32(meta_bytes)
    if computed != stored:
        raise CorruptSnapshotError(
            path, f"metadata checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )
    try:
        fields: dict[str, Any] = json.loads(meta_bytes)
        meta = SnapshotMeta(
            last_index=int(fields["last_index"]),
            last_term=int(fields["last_term"]),
            voters=tuple(int(node) for node in fields["voters"]),
            learners=tuple(int(node) for node in fields["learners"]),
            size=int(fields["size"]),
            checksum=int(fields["checksum"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptSnapshotError(path, f"unreadable metadata: {error}") from None
    return meta, _HEADER.size + meta_length


def _read_snapshot(path: Path, expected: tuple[int, int]) -> Snapshot:
    blob = path.read_bytes()
    meta, data_start = _decode_meta(blob, path)
    if (meta.last_index, meta.last_term) != expected:
        raise CorruptSnapshotError(
            path,
            f"metadata says index {meta.last_index} term {meta.last_term}, "
            f"file name says index {expected[0]} term {expected[1]}",
        )
    data = blob[data_start:]
    if len(data) != meta.size:
        raise CorruptSnapshotError(path, f"data is {len(data)} bytes, metadata says {meta.size}")
    computed = zlib.crc32(data)
    if computed != meta.checksum:
        raise CorruptSnapshotError(
            path,
            f"data checksum mismatch (stored {meta.checksum:#010x}, computed {computed:#010x})",
        )
    return Snapshot(meta, data)


class FileSnapshotStore:
    """`SnapshotStore` in a directory; keeps the newest `retain` snapshots."""

    def __init__(self, directory: str | os.PathLike[str], *, retain: int = DEFAULT_RETAIN) -> None:
        if retain < 1:
            raise ValueError(f"must retain at least one snapshot, not {retain}")
        self._directory = Path(directory)
        self._directory.mkdir(parents=True, exist_ok=True)
        self._retain = retain
        self._lock = threading.Lock()
        for leftover in self._directory.glob("*.snap.tmp"):
            remove_leftover(leftover)
            logger.warning("removed unfinished snapshot %s left by a crash", leftover)
        # Renames and deletions an earlier process made may not be durable yet.
        fsync_directory(self._directory)

    @property
    def directory(self) -> Path:
        return self._directory

    def save(
        self,
        last_index: int,
        last_term: int,
        voters: Sequence[int],
        learners: Sequence[int],
        data: bytes,
    ) -> SnapshotMeta:
        meta = make_meta(last_index, last_term, voters, learners, data)
        with self._lock:
            path = self._directory / snapshot_name(last_index, last_term)
            write_file_atomically(path, encode_snapshot(meta, data))
            self._prune()
        return meta

    def list_snapshots(self) -> list[SnapshotMeta]:
        """Metadata of every kept snapshot, newest first (checks the metadata, not the data)."""
        with self._lock:
            metas = []
            for path, _ in self._files():
                with open(path, "rb") as file:
                    head = file.read(_HEADER.size)
                    if len(head) == _HEADER.size:
                        head += file.read(_HEADER.unpack(head)[1])
                metas.append(_decode_meta(head, path)[0])
            return metas

    def open_latest(self, *, fall_back: bool = False) -> Snapshot | None:
        """The newest snapshot, fully checked; None if there is none.

        A damaged newest snapshot raises `CorruptSnapshotError`. With `fall_back`, it is
        logged instead and the next older intact one is returned: only safe if the log
        still holds every entry after that older snapshot.
        """
        with self._lock:
            for path, position in self._files():
                try:
                    return _read_snapshot(path, position)
                except CorruptSnapshotError as error:
                    if not fall_back:
                        raise
                    logger.error("skipping damaged snapshot: %s", error)
            return None

    def _files(self) -> list[tuple[Path, tuple[int, int]]]:
        """Snapshot files with their (index, term), newest first."""
        found = []
        for entry in self._directory.iterdir():
            match = _NAME.match(entry.name)
            if match:
                found.append((entry, (int(match.group(1)), int(match.group(2)))))
        found.sort(key=lambda item: item[1], reverse=True)
        return found

    def _prune(self) -> None:
        stale = self._files()[self._retain :]
        for path, _ in reversed(stale):
            path.unlink()
        if stale:
            fsync_directory(self._directory)
