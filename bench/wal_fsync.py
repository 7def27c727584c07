"""What group commit buys: WAL appends of 100-byte records, one fsync each vs one per batch.

The baseline syncs after every record. Group commit appends a batch (1, 8 or 64 records)
and syncs once. The last row runs concurrent writer threads through `GroupCommitter`, the
path an asyncio runtime takes via `asyncio.to_thread`: nobody batches by hand, the writers
that arrive during an fsync share the next one.

Every configuration runs in the same process against the same file system, several times;
the table shows medians. Run: .venv/bin/python bench/wal_fsync.py [--records N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from distlab.storage import GroupCommitter, WriteAheadLog

RECORD = b"r" * 100
RECORD_TYPE = 1


def one_fsync_per_record(directory: Path, records: int) -> int:
    with WriteAheadLog.open(directory) as wal:
        for _ in range(records):
            wal.append(RECORD_TYPE, RECORD)
            wal.sync()
    return records


def group_commit(batch: int) -> Callable[[Path, int], int]:
    def run(directory: Path, records: int) -> int:
        syncs = 0
        with WriteAheadLog.open(directory) as wal:
            for start in range(0, records, batch):
                count = min(batch, records - start)
                wal.append_batch([(RECORD_TYPE, RECORD)] * count)
                wal.sync()
                syncs += 1
        return syncs

    return run


def concurrent_writers(threads: int) -> Callable[[Path, int], int]:
    def run(directory: Path, records: int) -> int:
        with WriteAheadLog.open(directory) as wal:
            committer = GroupCommitter(wal.sync)

            def writer(count: int) -> None:
                for _ in range(count):
                    committer.commit(lambda: wal.append(RECORD_TYPE, RECORD))

            share, extra = divmod(records, threads)
            workers = [
                threading.Thread(target=writer, args=(share + (1 if n < extra else 0),))
                for n in range(threads)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            assert wal.synced_seq == records
            return committer.sync_count

    return run


def measure(
    root: Path, name: str, run: Callable[[Path, int], int], records: int, repeats: int
) -> tuple[float, int]:
    """Median seconds over `repeats` runs, each in a fresh directory, and the fsync count."""
    timings = []
    syncs = 0
    for attempt in range(repeats):
        directory = root / f"{name}-{attempt}"
        started = time.perf_counter()
        syncs = run(directory, records)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), syncs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000, help="records per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    parser.add_argument("--threads", type=int, default=8, help="concurrent writers")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: temp)")
    args = parser.parse_args()

    configurations: list[tuple[str, Callable[[Path, int], int]]] = [
        ("fsync per record (baseline)", one_fsync_per_record),
        ("group commit, batch 1", group_commit(1)),
        ("group commit, batch 8", group_commit(8)),
        ("group commit, batch 64", group_commit(64)),
        (f"GroupCommitter, {args.threads} threads", concurrent_writers(args.threads)),
    ]
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="wal-fsync-") as temporary:
        root = Path(temporary)
        print(f"{args.records} records of {len(RECORD)} bytes, median of {args.repeats} runs,")
        print(f"written under {root}\n")
        header = (
            f"{'configuration':<32} {'fsyncs':>7} {'seconds':>8} {'records/s':>11} {'ratio':>7}"
        )
        print(header)
        print("-" * len(header))
        baseline_rate: float | None = None
        for index, (name, run) in enumerate(configurations):
            seconds, syncs = measure(root, f"config{index}", run, args.records, args.repeats)
            rate = args.records / seconds
            baseline_rate = baseline_rate or rate
            print(
                f"{name:<32} {syncs:>7} {seconds:>8.3f} {rate:>11,.0f} "
                f"{rate / baseline_rate:>6.2f}x"
            )


if __name__ == "__main__":
    main()
