"""Simulator throughput of Multi-Paxos beside Raft, the baseline, in the same run.

Each repetition sweeps the same seeds for both protocols, one process each, interleaved
(raft, paxos, raft, paxos, ...) so that the machine's load falls on both alike; the table
shows medians of seeds per second and of virtual operations completed per run, and the
ratio to Raft. Both run the same worlds, faults, clients and checks; only the engine and
the draws that depend on the protocol's name differ.

Run: .venv/bin/python bench/sim_engines.py [--seeds N] [--runs R]
"""

from __future__ import annotations

import argparse
import statistics
import time

from distlab.cli.common import format_table
from distlab.sim import harness

PROTOCOLS = ("raft", "paxos")


def measure(name: str, seeds: range) -> tuple[float, float, int]:
    started = time.process_time()
    report = harness.sweep(harness.protocol(name), seeds)
    seconds = time.process_time() - started
    operations = statistics.median(result.operations["ok"] for result in report.results)
    return len(report.results) / seconds, operations, len(report.failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=60, help="seeds per sweep (default 60)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions (default 3)")
    args = parser.parse_args()
    seeds = range(1, args.seeds + 1)
    rates: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
    operations: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
    failures = dict.fromkeys(PROTOCOLS, 0)
    for _ in range(args.runs):
        for name in PROTOCOLS:
            rate, ops, failed = measure(name, seeds)
            rates[name].append(rate)
            operations[name].append(ops)
            failures[name] += failed
    baseline = statistics.median(rates["raft"])
    rows = []
    for name in PROTOCOLS:
        rate = statistics.median(rates[name])
        rows.append([name, f"{rate:.2f}", f"{rate / baseline:.2f}",
                     f"{statistics.median(operations[name]):.0f}", failures[name]])
    print(f"{args.seeds} seeds x {args.runs} interleaved runs, CPU seconds of one process")
    print(format_table(["engine", "seeds/s", "vs raft", "ok ops/run (median)", "failed"],
                       rows))


if __name__ == "__main__":
    main()
