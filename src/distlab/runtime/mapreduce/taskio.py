"""Reading map input, partitioning and encoding map output, merging it and writing the
reduce output: the data path shared by the workers and the sequential reference.

A partition file is a JSON array of two arrays: its keys, sorted, and their values. Map output
is written to a temporary file and renamed, so a reader never sees half a partition; it is not
fsynced, because it is worth no more than the worker that holds it (the map runs again if it is
lost).
Reduce output is fsynced before its rename: it is the job's result.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import defaultdict
from collections.abc import Iterable
from operator import itemgetter
from pathlib import Path

from distlab.apps.mr.loader import App, ReduceFunction
from distlab.protocols.mapreduce import Split

Pair = tuple[str, str]
# One map task's output for one reduce task: keys in order, and the value of each.
Partition = tuple[list[str], list[str]]


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


# Words recur across the splits a worker maps, so a key's hash is remembered rather than
# encoded and checksummed again for every task; the table is emptied when it grows past this.
_KEY_HASHES_LIMIT = 1 << 20
_key_hashes: dict[str, int] = {}


def key_hash(key: str) -> int:
    return zlib.crc32(key.encode("utf-8", errors="surrogatepass"))


def partition_of(key: str, reduces: int) -> int:
    return key_hash(key) % reduces


def run_map(app: App, filename: str, contents: str, reduces: int) -> list[Partition]:
    """Apply the map function, combine when the app can, partition by key and sort each
    partition by key (stably, so a key's values keep the order the map emitted them in)."""
    pairs = list(app.map(filename, contents))
    if len(_key_hashes) > _KEY_HASHES_LIMIT:
        _key_hashes.clear()
    hashes = _key_hashes
    if app.combine is None:
        buckets: list[list[Pair]] = [[] for _ in range(reduces)]
        for pair in pairs:
            key = pair[0]
            digest = hashes.get(key)
            if digest is None:
                digest = hashes[key] = key_hash(key)
            buckets[digest % reduces].append(pair)
        partitions: list[Partition] = []
        for bucket in buckets:
            bucket.sort(key=itemgetter(0))
            partitions.append(([key for key, _ in bucket], [value for _, value in bucket]))
        return partitions
    groups: list[dict[str, str]] = [{} for _ in range(reduces)]
    for key, value in combine_by_key(app.combine, pairs).items():
        digest = hashes.get(key)
        if digest is None:
            digest = hashes[key] = key_hash(key)
        groups[digest % reduces][key] = value
    sorted_partitions: list[Partition] = []
    for group in groups:
        keys = sorted(group)
        sorted_partitions.append((keys, [group[key] for key in keys]))
    return sorted_partitions


def combine_by_key(combine: ReduceFunction, pairs: list[Pair]) -> dict[str, str]:
    """One value per key: the key's only value, or `combine` over its values in the order
    they were emitted. An app that combines in its map function (wc) emits each key once,
    which a single dict() over the pairs shows without a loop in Python."""
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
    """JSON [keys, values]: two flat arrays decode several times faster than one array of
    pairs."""
    return json.dumps(partition, separators=(",", ":")).encode()


def decode_partition(data: bytes) -> Partition:
    if not data:
        return [], []
    keys, values = json.loads(data)
    if not isinstance(keys, list) or not isinstance(values, list) or len(keys) != len(values):
        raise ValueError("a partition is two arrays of equal length, keys and values")
    return keys, values


def partition_path(work_dir: Path, job_id: int, map_index: int, attempt: int, reduce_index: int
                   ) -> Path:
    return work_dir / f"job-{job_id}" / f"map-{map_index}-{attempt}-{reduce_index}.json"


def write_partitions(work_dir: Path, job_id: int, map_index: int, attempt: int,
                     partitions: list[Partition]) -> int:
    """Write each partition to its file atomically; returns the bytes written."""
    written = 0
    for reduce_index, partition in enumerate(partitions):
        path = partition_path(work_dir, job_id, map_index, attempt, reduce_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = encode_partition(partition)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        written += len(data)
    return written


def merge_partitions(blobs: Iterable[bytes]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for blob in blobs:
        keys, values = decode_partition(blob)
        for key, value in zip(keys, values, strict=True):
            groups[key].append(value)
    return groups


def reduce_lines(app: App, groups: dict[str, list[str]]) -> list[str]:
    """`key value` lines in key order, the lab's mr-out format."""
    return [f"{key} {app.reduce(key, groups[key])}\n" for key in sorted(groups)]


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
