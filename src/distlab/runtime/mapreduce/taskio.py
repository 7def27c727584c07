"""Reading map input, partitioning and encoding map output, merging it and writing the
reduce output: the data path shared by the workers and the sequential reference.

A partition file is one JSON array of [key, value] pairs sorted by key. Map output is written
to a temporary file and renamed, so a reader never sees half a partition; it is not fsynced,
because it is worth no more than the worker that holds it (the map runs again if it is lost).
Reduce output is fsynced before its rename: it is the job's result.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from distlab.apps.mr.loader import App
from distlab.protocols.mapreduce import Split

Pair = tuple[str, str]


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


def partition_of(key: str, reduces: int) -> int:
    return zlib.crc32(key.encode("utf-8", errors="surrogatepass")) % reduces


def run_map(app: App, filename: str, contents: str, reduces: int) -> list[list[Pair]]:
    """Apply the map function, partition by key, combine when the app can, sort each
    partition by key."""
    pairs = app.map(filename, contents)
    if app.combine is None:
        buckets: list[list[Pair]] = [[] for _ in range(reduces)]
        for key, value in pairs:
            buckets[partition_of(key, reduces)].append((key, value))
        for bucket in buckets:
            bucket.sort(key=lambda pair: pair[0])
        return buckets
    grouped: list[dict[str, list[str]]] = [defaultdict(list) for _ in range(reduces)]
    for key, value in pairs:
        grouped[partition_of(key, reduces)][key].append(value)
    combine = app.combine
    return [
        [(key, values[0] if len(values) == 1 else combine(key, values))
         for key, values in sorted(group.items())]
        for group in grouped
    ]


def encode_partition(pairs: list[Pair]) -> bytes:
    return json.dumps(pairs, separators=(",", ":")).encode()


def decode_partition(data: bytes) -> list[list[str]]:
    decoded: list[list[str]] = json.loads(data) if data else []
    return decoded


def partition_path(work_dir: Path, job_id: int, map_index: int, attempt: int, reduce_index: int
                   ) -> Path:
    return work_dir / f"job-{job_id}" / f"map-{map_index}-{attempt}-{reduce_index}.json"


def write_partitions(work_dir: Path, job_id: int, map_index: int, attempt: int,
                     buckets: list[list[Pair]]) -> int:
    """Write each bucket to its partition file atomically; returns the bytes written."""
    written = 0
    for reduce_index, bucket in enumerate(buckets):
        path = partition_path(work_dir, job_id, map_index, attempt, reduce_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = encode_partition(bucket)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        written += len(data)
    return written


def merge_partitions(blobs: Iterable[bytes]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for blob in blobs:
        for key, value in decode_partition(blob):
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
