"""Reading map input, partitioning and encoding map output, merging it and writing the
reduce output: the data path shared by the workers and the sequential reference.

A partition file holds one map task's output for one reduce task: its keys and the value of
each, in the order the map emitted them (the reducer sorts keys; sorting here as well would
be work done twice). Two encodings, told apart by the first byte:

- `L<n>\\n` then the n keys and the n values, each followed by a newline, in UTF-8: splitting
  on newlines decodes it in one C call. Used whenever no key or value holds a newline.
- a JSON array of two arrays, keys and values, for output that has newlines in it.

Map output is written to a temporary file and renamed, so a reader never sees half a
partition; it is not fsynced, because it is worth no more than the worker that holds it (the
map runs again if it is lost). Reduce output is fsynced before its rename: it is the job's
result.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import cast

from distlab.apps.mr.loader import App, ReduceFunction
from distlab.protocols.mapreduce import Split

Pair = tuple[str, str]
# One map task's output for one reduce task: its keys, and the value of each.
Partition = tuple[list[str], list[str]]

LINES_MAGIC = b"L"
JSON_MAGIC = b"["


def read_split(split: Split) -> tuple[str, int]:
    """The text of `split`, widened to whole lines, and how many bytes were read.

    A line belongs to the split its first byte falls in: a split that does not start the file
    skips the line in progress at its offset, and every split finishes its last line.
    """
    with open(split.path, "rb") as handle:
        if split.whole_file and split.offset == 0:
            data = handle.read()
            return data.decode("utf-8", errors="replace"), len(data)
        start = split.offset
        if start > 0:
            handle.seek(start - 1)
            handle.readline()
            start = handle.tell()
        end = split.offset + split.length
        if split.whole_file:
            data = handle.read()
        elif start >= end:
            data = b""
        else:
            data = handle.read(end - start)
            if data and not data.endswith(b"\n"):
                data += handle.readline()
    return data.decode("utf-8", errors="replace"), len(data)


def key_hash(key: str) -> int:
    return zlib.crc32(key.encode("utf-8", errors="surrogatepass"))


def partition_of(key: str, reduces: int) -> int:
    return key_hash(key) % reduces


# Words recur across the splits a worker maps, so a key's partition is remembered rather than
# encoded and checksummed again for every task: one table per reduce count, emptied when it
# grows past this many keys.
_PARTITIONS_LIMIT = 1 << 20
_partitions: dict[int, dict[str, int]] = {}


def partitions_of(keys: list[str], reduces: int) -> list[int]:
    """partition_of(key, reduces) for each key."""
    known = _partitions.get(reduces)
    if known is None or len(known) > _PARTITIONS_LIMIT:
        known = _partitions[reduces] = {}
    found: list[int | None] = list(map(known.get, keys))  # one C loop when every key is known
    if None not in found:
        return cast(list[int], found)
    result: list[int] = []
    for key, partition in zip(keys, found, strict=True):
        if partition is None:
            partition = known[key] = key_hash(key) % reduces
        result.append(partition)
    return result


def run_map(app: App, filename: str, contents: str, reduces: int) -> list[Partition]:
    """Apply the map function, combine when the app can, and partition by key. A key's
    values stay in the order the map emitted them in."""
    pairs = app.map(filename, contents)
    if app.combine is None:
        pairs = pairs if isinstance(pairs, list) else list(pairs)
        keys = [key for key, _ in pairs]
        values = [value for _, value in pairs]
    else:
        combined = combine_by_key(app.combine, pairs)
        keys = list(combined)
        values = list(combined.values())
    if reduces == 1:
        return [(keys, values)]
    partitions: list[Partition] = [([], []) for _ in range(reduces)]
    appends = [(part_keys.append, part_values.append) for part_keys, part_values in partitions]
    for key, value, partition in zip(keys, values, partitions_of(keys, reduces), strict=True):
        add_key, add_value = appends[partition]
        add_key(key)
        add_value(value)
    return partitions


def combine_by_key(combine: ReduceFunction, pairs: Iterable[Pair]) -> dict[str, str]:
    """One value per key: the key's only value, or `combine` over its values in the order
    they were emitted. An app that combines in its map function (wc) emits each key once,
    which a single dict() over the pairs shows without a loop in Python."""
    pairs = pairs if isinstance(pairs, list) else list(pairs)
    combined = dict(pairs)
    if len(combined) == len(pairs):
        return combined
    combined = {}
    repeated: dict[str, list[str]] = {}
    for key, value in pairs:
        if key in combined:
            values = repeated.get(key)
            if values is None:
                repeated[key] = [combined[key], value]
            else:
                values.append(value)
        else:
            combined[key] = value
    for key, values in repeated.items():
        combined[key] = combine(key, values)
    return combined


def encode_partition(partition: Partition) -> bytes:
    keys, values = partition
    if len(keys) != len(values):
        raise ValueError("a partition is two lists of equal length, keys and values")
    if not keys:
        return LINES_MAGIC + b"0\n"
    fields = keys + values
    text = "\n".join(fields)
    if text.count("\n") == len(fields) - 1:
        header = b"%s%d\n" % (LINES_MAGIC, len(keys))
        return header + text.encode("utf-8", errors="surrogatepass") + b"\n"
    return json.dumps(partition, separators=(",", ":")).encode()


def decode_partition(data: bytes) -> Partition:
    if not data:
        return [], []
    if data[:1] == LINES_MAGIC:
        header_end = data.index(b"\n")
        count = int(data[1:header_end])
        if count == 0:
            return [], []
        fields = data[header_end + 1:-1].decode("utf-8", errors="surrogatepass").split("\n")
        if len(fields) != 2 * count or data[-1:] != b"\n":
            raise ValueError(f"a partition of {count} keys holds {len(fields)} fields")
        return fields[:count], fields[count:]
    keys, values = json.loads(data)
    if not isinstance(keys, list) or not isinstance(values, list) or len(keys) != len(values):
        raise ValueError("a partition is two arrays of equal length, keys and values")
    return keys, values


def partition_path(work_dir: Path, job_id: int, map_index: int, attempt: int, reduce_index: int
                   ) -> Path:
    return work_dir / f"job-{job_id}" / f"map-{map_index}-{attempt}-{reduce_index}.part"


def write_partitions(work_dir: Path, job_id: int, map_index: int, attempt: int,
                     partitions: list[Partition]) -> int:
    """Write each partition to its file atomically; returns the bytes written."""
    written = 0
    for reduce_index, partition in enumerate(partitions):
        path = partition_path(work_dir, job_id, map_index, attempt, reduce_index)
        if reduce_index == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        data = encode_partition(partition)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        written += len(data)
    return written


def merge_partitions(blobs: Iterable[bytes]) -> dict[str, list[str]]:
    """Every key of the partitions with its values: the first partition's first, each
    partition's in the order it holds them."""
    groups: defaultdict[str, list[str]] = defaultdict(list)
    for blob in blobs:
        keys, values = decode_partition(blob)
        for key, value in zip(keys, values, strict=True):
            groups[key].append(value)
    return groups


def reduce_lines(app: App, groups: dict[str, list[str]]) -> list[str]:
    """`key value` lines in key order, the lab's mr-out format."""
    reduce = app.reduce
    return [f"{key} {reduce(key, groups[key])}\n" for key in sorted(groups)]


def write_output(output_dir: Path, reduce_index: int, lines: list[str], tag: str) -> int:
    """Write mr-out-<r> atomically and durably; returns its size. `tag` keeps concurrent
    copies of the same task from sharing a temporary file."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"mr-out-{reduce_index}"
    temporary = output_dir / f".mr-out-{reduce_index}.{tag}.tmp"
    data = "".join(lines).encode("utf-8", errors="surrogateescape")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fd = os.open(output_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(data)
