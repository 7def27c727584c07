"""`distlab sim raft`: deterministic simulations of Raft, one seed or a sweep of many.

`--seed N` replays one run and prints its event trace; `--seeds K [--start S]` runs K seeds
and lists every one that failed. A failing seed replays exactly with `--seed`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, UsageError
from distlab.runtime.sim.swarm import CHAOS_MS, CLUSTER_SIZES, RunResult, run_seed


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="deterministic simulations and seed sweeps",
        description="Run protocols on virtual time with seeded faults.",
    )
    protocols = parser.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)
    raft = protocols.add_parser(
        "raft",
        help="random fault schedules against Raft, invariants checked at every step",
        description=(
            "Run one seed with its event trace (--seed N) or sweep many seeds (--seeds K "
            "--start S). Cluster sizes default to 3, 5 and 7 by seed. Exit status 1 if any "
            "run violates an invariant or fails to recover."
        ),
    )
    which = raft.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=int, help="replay one seed and print its trace")
    which.add_argument("--seeds", type=int, metavar="K", help="run K seeds")
    raft.add_argument("--start", type=int, default=1, help="first seed of a sweep (default 1)")
    raft.add_argument("--nodes", type=int, choices=CLUSTER_SIZES,
                      help="cluster size (default: 3, 5 or 7 chosen by seed)")
    raft.add_argument("--chaos-ms", type=int, default=CHAOS_MS, metavar="MS",
                      help=f"virtual milliseconds of faults before recovery (default {CHAOS_MS})")
    raft.add_argument("--no-trace", action="store_true", help="with --seed: only the outcome")
    raft.add_argument("--json", action="store_true", help="print JSON")
    raft.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.chaos_ms < 0:
        raise UsageError("--chaos-ms must not be negative")
    if args.seed is not None:
        return _run_one(args)
    if args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    return _run_sweep(args)


def _run_one(args: argparse.Namespace) -> int:
    trace = not args.no_trace
    result, cluster = run_seed(args.seed, args.nodes, trace=trace, chaos_ms=args.chaos_ms)
    if args.json:
        body = result.as_dict()
        if trace and cluster is not None:
            body["trace"] = cluster.trace_lines
        print(json.dumps(body, indent=2))
    else:
        if trace and cluster is not None:
            sys.stdout.write(cluster.trace_text())
        print(_outcome(result))
    return EXIT_OK if result.ok else EXIT_CHECK_FAILED


def _run_sweep(args: argparse.Namespace) -> int:
    started = time.monotonic()
    failures: list[RunResult] = []
    runs = 0
    events = 0
    for seed in range(args.start, args.start + args.seeds):
        result, _ = run_seed(seed, args.nodes, chaos_ms=args.chaos_ms)
        runs += 1
        events += result.events
        if not result.ok:
            failures.append(result)
            if not args.json:
                print(_outcome(result), flush=True)
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({
            "runs": runs,
            "first_seed": args.start,
            "last_seed": args.start + args.seeds - 1,
            "failed": len(failures),
            "failures": [failure.as_dict() for failure in failures],
            "events": events,
            "wall_seconds": round(elapsed, 3),
        }, indent=2))
    else:
        print(f"{runs} runs (seeds {args.start}..{args.start + args.seeds - 1}), "
              f"{len(failures)} failed, {events} events, {elapsed:.1f} s")
        if failures:
            print("failing seeds: " + " ".join(str(failure.seed) for failure in failures))
    return EXIT_CHECK_FAILED if failures else EXIT_OK


def _outcome(result: RunResult) -> str:
    if result.ok:
        return (f"seed {result.seed} ({result.nodes} nodes): ok, "
                f"{result.commands_committed} commands acknowledged, "
                f"{result.virtual_ms} ms virtual, {result.events} events")
    return f"seed {result.seed} ({result.nodes} nodes): FAILED: {result.failure}"
