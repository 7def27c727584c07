"""The coordinator's job log: append-only JSON lines, each with a CRC32, fsynced per append.

A line is `<crc32 of the JSON, 8 hex digits> <JSON>\n`. Recovery reads every line; a torn
tail (a last line cut short or failing its checksum, as a crash mid-write leaves it) is cut
off and reported in the log, while a bad line followed by good ones is corruption: the
coordinator stops with the file and byte offset rather than silently dropping a record.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOG_NAME = "jobs.log"


class JobLogCorrupt(RuntimeError):
    """A damaged record before the end of the log; the message names the file and offset."""


def encode_record(record: dict[str, Any]) -> bytes:
    payload = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def _decode_line(line: bytes) -> dict[str, Any] | None:
    """The record on `line` (without its newline), or None when it is damaged."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    payload = line[9:]
    try:
        checksum = int(line[:8], 16)
    except ValueError:
        return None
    if zlib.crc32(payload) != checksum:
        return None
    try:
        record = json.loads(payload)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JobLog:
    """One append-only file in the coordinator's data directory."""

    def __init__(self, path: Path, recovered: list[dict[str, Any]]) -> None:
        self.path = path
        self.recovered = recovered
        self._file = path.open("ab")

    @classmethod
    def open(cls, data_dir: Path) -> JobLog:
        """Open (creating) the log in `data_dir`, recovering the records it holds."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / LOG_NAME
        if not path.exists():
            path.touch()
            fsync_directory(data_dir)
        return cls(path, recover(path))

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write `records` and fsync: when this returns they survive a crash."""
        if not records:
            return
        self._file.write(b"".join(encode_record(record) for record in records))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def recover(path: Path) -> list[dict[str, Any]]:
    """Every intact record of the log at `path`; a torn tail is truncated away."""
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        line = data[offset:] if end < 0 else data[offset:end]
        record = None if end < 0 else _decode_line(line)
        if record is None:
            following = data[end + 1:] if end >= 0 else b""
            if following.strip():
                raise JobLogCorrupt(
                    f"{path}: damaged record at byte offset {offset} with intact records after "
                    "it; refusing to start (move the file aside to start with no jobs)"
                )
            log.warning("%s: cutting a torn tail of %d bytes at offset %d",
                        path, len(data) - offset, offset)
            with path.open("r+b") as handle:
                handle.truncate(offset)
                handle.flush()
                os.fsync(handle.fileno())
            break
        records.append(record)
        offset = end + 1
    return records
