"""Word count with `distlab mr run` against the count a user would write in one process.

The baseline is the plain count: one process, `re.findall` of the wc app's word (a maximal
run of letters, `[^\\W\\d_]+`) over each file's text into one `collections.Counter`. Its
counts are also the reference every distributed output is checked against. Each repetition
runs the plain count, then `distlab mr run --app wc` with each worker count, so that the
machine's other load falls on all of them alike; the table shows medians of --repeat.

Wall is what a user waits: from starting `distlab mr run` (which starts W worker processes,
serves as their coordinator, submits the job and waits for every process to exit) to its
exit. Job is
the coordinator's own figure, submission to the last reduce. CPU is the CPU time of every
process of the run, start-up included. The ratio is the plain count's wall time over the
distributed wall time: above 1 the distributed run is the faster. The input is the eight
lab texts repeated, generated into a temporary directory. distlab's modules are compiled to
bytecode first, as installing a package does: with PYTHONDONTWRITEBYTECODE set and no cache,
every process of every run would compile them again.

    python bench/mr_wordcount.py [--megabytes 50] [--workers 2[,4,...]] [--repeat 3]
"""

from __future__ import annotations

import argparse
import collections
import compileall
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import distlab
from distlab.cli.common import format_table

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "mapreduce"
# The wc app's word (distlab.apps.mr.wc.WORD), written out as a user would.
WORD = re.compile(r"[^\W\d_]+")


def generate_input(directory: Path, megabytes: int) -> list[Path]:
    """Files of the eight texts concatenated, as many as it takes to reach `megabytes`."""
    block = b"".join(path.read_bytes() for path in sorted(DATA.glob("pg-*.txt")))
    count = -(-megabytes * 1_000_000 // len(block))
    paths = []
    for index in range(count):
        path = directory / f"input-{index:03d}.txt"
        path.write_bytes(block)
        paths.append(path)
    return paths


def plain_count(paths: list[Path]) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as handle:
            counts.update(WORD.findall(handle.read()))
    return counts


def output_counts(directory: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in directory.glob("mr-out-*"):
        for line in path.read_text().splitlines():
            word, _, count = line.rpartition(" ")
            if word in counts:
                raise SystemExit(f"{path}: {word!r} is in more than one line")
            counts[word] = int(count)
    return counts


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_distributed(inputs: Path, output: Path, run_dir: Path, workers: int, reduces: int,
                    env: Mapping[str, str] | None = None) -> tuple[float, float, float]:
    """(job seconds, wall seconds, CPU seconds) of one `distlab mr run` (in `env`, this
    process's environment by default): its CPU time counts the coordinator's and the
    workers', which it waits for."""
    cpu = children_cpu()
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "distlab", "mr", "run", "--app", "wc",
         "--input", str(inputs / "input-*.txt"), "--reduces", str(reduces),
         "--workers", str(workers), "--output", str(output), "--run-dir", str(run_dir),
         "--json"],
        capture_output=True, text=True, check=False, env=env,
    )
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"distlab mr run failed ({result.returncode}): {result.stderr}")
    return float(json.loads(result.stdout)["elapsed_seconds"]), wall, children_cpu() - cpu


def worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected worker counts such as 2 or 1,2,4, "
                                         f"got {text!r}") from None
    if not counts or any(not 1 <= count <= 64 for count in counts):
        raise argparse.ArgumentTypeError(f"worker counts are 1 to 64, got {text!r}")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--workers", type=worker_counts, default=[2], metavar="W[,W...]",
                        help="worker counts to run (2)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reduces", type=int, default=4)
    args = parser.parse_args()
    if args.megabytes < 1 or args.repeat < 1 or args.reduces < 1:
        parser.error("--megabytes, --repeat and --reduces must be positive")

    compileall.compile_dir(Path(distlab.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="distlab-mr-bench-") as scratch:
        root = Path(scratch)
        (root / "in").mkdir()
        inputs = generate_input(root / "in", args.megabytes)
        megabytes = sum(path.stat().st_size for path in inputs) / 1e6
        print(f"word count over {megabytes:.0f} MB in {len(inputs)} files, {args.reduces} "
              f"reduces, median of {args.repeat} interleaved repetitions", flush=True)

        plain_walls: list[float] = []
        plain_cpus: list[float] = []
        runs: dict[int, list[tuple[float, float, float]]] = {w: [] for w in args.workers}
        reference: dict[str, int] | None = None
        for attempt in range(args.repeat):
            started, cpu = time.monotonic(), time.process_time()
            counts = plain_count(inputs)
            plain_walls.append(time.monotonic() - started)
            plain_cpus.append(time.process_time() - cpu)
            if reference is None:
                reference = dict(counts)
            for workers in args.workers:
                output = root / f"out-{workers}-{attempt}"
                runs[workers].append(run_distributed(
                    root / "in", output, root / f"run-{workers}-{attempt}", workers,
                    args.reduces))
                if output_counts(output) != reference:
                    raise SystemExit(f"{workers} workers: output differs from the plain count")
            print(f"  repetition {attempt + 1}: plain {plain_walls[-1]:.2f} s, " + ", ".join(
                f"{w} workers {runs[w][-1][1]:.2f} s" for w in args.workers), flush=True)

        plain = statistics.median(plain_walls)
        rows: list[list[object]] = [
            ["plain count (1 process)", "-", f"{plain:.2f}",
             f"{statistics.median(plain_cpus):.2f}", f"{megabytes / plain:.1f}", "1.00"]
        ]
        for workers in args.workers:
            job = statistics.median(run[0] for run in runs[workers])
            wall = statistics.median(run[1] for run in runs[workers])
            cpu = statistics.median(run[2] for run in runs[workers])
            rows.append([f"mr run, {workers} worker{'s' if workers > 1 else ''}", f"{job:.2f}",
                         f"{wall:.2f}", f"{cpu:.2f}", f"{megabytes / wall:.1f}",
                         f"{plain / wall:.2f}"])
        print(format_table(("run", "job s", "wall s", "CPU s", "MB/s (wall)", "x plain"),
                           rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
