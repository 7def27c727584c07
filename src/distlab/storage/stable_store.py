"""Stable state (term, vote, commit index) in one small file, replaced atomically.

Format (big-endian): magic b"DLSTATE1" | current_term (u64) | voted_for (u64) |
commit_index (u64) | CRC-32 (u32, zlib.crc32) of everything before it.

A save writes a temporary file, fsyncs it, renames it over the old one and fsyncs the
directory: a crash leaves the old state or the new one, never a mix.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from pathlib import Path

from distlab.storage.errors import CorruptStateError
from distlab.storage.fsutil import fsync_directory, remove_leftover, write_file_atomically
from distlab.storage.model import StableState

logger = logging.getLogger(__name__)

STATE_MAGIC = b"DLSTATE1"
_BODY = struct.Struct(">8sQQQ")
_CHECKSUM = struct.Struct(">I")
STATE_FILE_SIZE = _BODY.size + _CHECKSUM.size


def encode_stable_state(state: StableState) -> bytes:
    body = _BODY.pack(STATE_MAGIC, state.current_term, state.voted_for, state.commit_index)
    return body + _CHECKSUM.pack(zlib.crc32(body))


def decode_stable_state(data: bytes, path: Path) -> StableState:
    if len(data) != STATE_FILE_SIZE:
        raise CorruptStateError(path, f"file is {len(data)} bytes, expected {STATE_FILE_SIZE}")
    body = data[: _BODY.size]
    (stored,) = _CHECKSUM.unpack_from(data, _BODY.size)
    computed = zlib.crc32(body)
    if stored != computed:
        raise CorruptStateError(
            path, f"checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )
    magic, current_term, voted_for, commit_index = _BODY.unpack(body)
    if magic != STATE_MAGIC:
        raise CorruptStateError(path, f"bad magic {magic!r}")
    return StableState(current_term, voted_for, commit_index)


class FileStableStore:
    """`StableStore` in one file. Reads it (and checks it) once, on construction."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        leftover = self._path.with_name(self._path.name + ".tmp")
        if remove_leftover(leftover):
            logger.warning("removed unfinished stable-state file %s left by a crash", leftover)
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            self._state = StableState()
        else:
            self._state = decode_stable_state(data, self._path)
            # A rename an earlier process made but never fsynced is visible now yet could
            # still be lost: make it durable before the node acts on it.
            fsync_directory(self._path.parent)

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> StableState:
        with self._lock:
            return self._state

    def save(self, state: StableState) -> None:
        with self._lock:
            if state == self._state and self._path.exists():
                return
            write_file_atomically(self._path, encode_stable_state(state))
            self._state = state

