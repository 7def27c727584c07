"""Which replicated group a key belongs to: the same answer in every client and node."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from distlab.wire.kv_bytes import KVBytes, to_bytes


def group_of(key: KVBytes, groups: int) -> int:
    """`crc32(key) % groups`, over the key's bytes (a `str` key: its UTF-8 bytes; zlib's
    CRC-32)."""
    assert groups >= 1, groups
    if groups == 1:
        return 0
    return zlib.crc32(to_bytes(key)) % groups


def participant_of(key: str, nodes: Sequence[int]) -> int:
    """The node that holds `key` when each node is one transaction participant (one shard):
    the `crc32(key) % len(nodes)`-th of the ids in ascending order."""
    ordered = sorted(nodes)
    assert ordered, "no nodes"
    return ordered[zlib.crc32(key.encode()) % len(ordered)]
