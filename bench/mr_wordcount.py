"""Word count over >= 200 MB with 1, 2 and 4 workers against the sequential reference.

The input is the eight lab texts repeated, generated into a temporary directory. The
sequential reference (`distlab mr seq`'s code, in this process) and every distributed run
(`distlab mr run`, which starts a coordinator and W worker processes) work on the same files
in the same run; each distributed output is checked against the reference. Throughput is
input MB per second of job time (submission to the last reduce, as the coordinator reports
it); the wall column adds process start-up. The CPU column is the CPU time of every process
of the run (user + system, start-up included): on a shared machine the job times move with
the other load, the CPU spent per run much less. Medians of --repeat runs.

    python bench/mr_wordcount.py [--megabytes 200] [--repeat 3] [--reduces 4]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from distlab.apps.mr.loader import load_app
from distlab.cli.common import format_table
from distlab.runtime.mapreduce.sequential import run_sequential

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "mapreduce"


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


def sorted_output(directory: Path) -> list[str]:
    lines: list[str] = []
    for path in directory.glob("mr-out-*"):
        lines += path.read_text().splitlines()
    return sorted(lines)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reduces", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="distlab-mr-bench-") as scratch:
        root = Path(scratch)
        (root / "in").mkdir()
        inputs = generate_input(root / "in", args.megabytes)
        total = sum(path.stat().st_size for path in inputs)
        megabytes = total / 1e6
        print(f"word count over {megabytes:.0f} MB in {len(inputs)} files, "
              f"{args.reduces} reduces, median of {args.repeat}", flush=True)

        app = load_app("wc")
        seq_times, seq_cpus = [], []
        for attempt in range(args.repeat):
            started, cpu = time.monotonic(), time.process_time()
            run_sequential(app, inputs, root / f"seq-{attempt}")
            seq_times.append(time.monotonic() - started)
            seq_cpus.append(time.process_time() - cpu)
        reference = sorted_output(root / "seq-0")
        seq = statistics.median(seq_times)
        rows: list[list[object]] = [
            ["sequential", f"{seq:.1f}", f"{seq:.1f}", f"{statistics.median(seq_cpus):.1f}",
             f"{megabytes / seq:.1f}", "1.00"]
        ]
        for workers in (1, 2, 4):
            jobs, walls, cpus = [], [], []
            for attempt in range(args.repeat):
                output = root / f"out-{workers}-{attempt}"
                job, wall, cpu = run_distributed(root / "in", output,
                                                 root / f"run-{workers}-{attempt}", workers,
                                                 args.reduces)
                if sorted_output(output) != reference:
                    raise SystemExit(f"{workers} workers: output differs from the reference")
                jobs.append(job)
                walls.append(wall)
                cpus.append(cpu)
            job = statistics.median(jobs)
            rows.append([f"{workers} worker{'s' if workers > 1 else ''}", f"{job:.1f}",
                         f"{statistics.median(walls):.1f}", f"{statistics.median(cpus):.1f}",
                         f"{megabytes / job:.1f}", f"{seq / job:.2f}"])
            print(f"  {workers} workers done", flush=True)
        print(format_table(("run", "job s", "wall s", "CPU s", "MB/s", "x sequential"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
