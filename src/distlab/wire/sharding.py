"""Which replicated group a key belongs to: the same answer in every client and node."""

from __future__ import annotations

import zlib


def group_of(key: str, groups: int) -> int:
    """`crc32(key) % groups`, over the key's UTF-8 bytes (zlib's CRC-32)."""
    assert groups >= 1, groups
    if groups == 1:
        return 0
    return zlib.crc32(key.encode("utf-8")) % groups
