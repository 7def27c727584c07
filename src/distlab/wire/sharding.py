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


def keys_by_group(prefix: str, per_group: int, groups: int) -> list[list[str]]:
    """`prefix0`, `prefix1`, ...: the first `per_group` names that fall in each group, by
    group."""
    names: list[list[str]] = [[] for _ in range(groups)]
    number = 0
    while any(len(group) < per_group for group in names):
        name = f"{prefix}{number}"
        group = names[group_of(name, groups)]
        if len(group) < per_group:
            group.append(name)
        number += 1
    return names
