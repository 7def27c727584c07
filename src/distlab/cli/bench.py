"""`distlab bench kv`: closed-loop load on a running cluster's KV store (distlab.ops.load).

C clients each run one operation at a time, back to back, for the duration; throughput is
operations acknowledged per second and latency is measured per operation from send to
answer. `--processes N` spreads the clients over N processes that start measuring together.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from distlab.cli.common import EXIT_OK, EXIT_UNKNOWN, UsageError, print_table
from distlab.cli.progress import Progress
from distlab.cli.targets import add_cluster_arguments, resolve_cluster
from distlab.cli.tracing import check_sampler_environment, command_tracing
from distlab.client import KVError
from distlab.ops.load import KVLoad, run_kv_workload, run_processes, summarize
from distlab.runtime import loop

# ---- the command ----

def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure throughput and latency of a running cluster",
        description="Benchmarks against a running cluster.",
    )
    systems = parser.add_subparsers(dest="system", metavar="SERVICE", required=True)
    kv = systems.add_parser(
        "kv", help="closed-loop load on the KV store",
        description="C clients each issue one operation at a time for S seconds; prints "
        "acknowledged operations per second and p50/p99/max latency.",
    )
    add_cluster_arguments(kv)
    kv.add_argument("--clients", type=int, default=1, metavar="C", help="concurrent clients (1)")
    kv.add_argument("--duration", type=float, default=10.0, metavar="S",
                    help="measured seconds (10)")
    kv.add_argument("--value-size", type=int, default=100, metavar="B",
                    help="bytes per written value (100)")
    kv.add_argument("--reads", type=float, default=0.0, metavar="P",
                    help="fraction of operations that are reads, 0..1 (0)")
    kv.add_argument("--keys", type=int, default=1000, metavar="K",
                    help="distinct keys written and read (1000)")
    kv.add_argument("--processes", type=int, default=1, metavar="N",
                    help="spread the clients over N processes (1)")
    kv.add_argument("--call-timeout", type=float, default=2.0, metavar="S",
                    help="deadline of each RPC (2 s)")
    kv.add_argument("--seed", type=int, default=1, help="seed of the key choice (1)")
    kv.add_argument("--json", action="store_true", help="print the result as JSON")
    kv.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.clients < 1:
        raise UsageError(f"--clients must be at least 1, got {args.clients}")
    if not args.duration > 0:
        raise UsageError(f"--duration must be positive, got {args.duration}")
    if not 0 <= args.value_size <= 1024 * 1024:
        raise UsageError(f"--value-size must be in 0..1048576, got {args.value_size}")
    if not 0.0 <= args.reads <= 1.0:
        raise UsageError(f"--reads is a fraction in 0..1, got {args.reads}")
    if args.keys < 1:
        raise UsageError(f"--keys must be at least 1, got {args.keys}")
    if not 1 <= args.processes <= args.clients:
        raise UsageError(f"--processes must be in 1..{args.clients} (the client count)")
    if not args.call_timeout > 0:
        raise UsageError(f"--call-timeout must be positive, got {args.call_timeout}")
    cluster = resolve_cluster(args.cluster, args.cluster_file)
    # With OTLP_ENDPOINT set the load is traced as any client's requests are: each operation
    # is the root of its trace, so this process's sampler decides which traces are kept.
    tracing = command_tracing() if args.processes == 1 else None
    if args.processes > 1:
        check_sampler_environment()  # each load process sets its own tracing up
    workload = KVLoad(
        addresses=({int(node_id): str(address) for node_id, address in cluster.items()}
                   if isinstance(cluster, dict) else [str(address) for address in cluster]),
        clients=args.clients, duration_seconds=args.duration, value_size=args.value_size,
        read_fraction=args.reads, keys=args.keys, call_timeout=args.call_timeout,
        seed=args.seed,
    )
    try:
        with Progress("distlab bench kv", total=args.duration, json=args.json,
                      prefix=lambda: "distlab bench: ") as progress:
            progress.update(0, status="warming up: a write per client in every group")

            def watch(seconds: float, acknowledged: int, failed: int) -> None:
                rate = acknowledged / seconds if seconds > 0 else 0.0
                progress.update(seconds, status=f"{seconds:.1f} of {args.duration:g} s: "
                                f"{acknowledged} ops ({rate:.0f}/s), {failed} failed")

            if args.processes == 1:
                interceptors = tracing.client_interceptors() if tracing is not None else ()
                result = loop.run(run_kv_workload(workload, watch=watch,
                                                  interceptors=interceptors))
            else:
                result = run_processes(workload, args.processes, watch=watch)
    except KVError as error:
        print(f"distlab bench: error: the cluster did not take the warm-up writes: {error}",
              file=sys.stderr)
        return EXIT_UNKNOWN
    finally:
        if tracing is not None:
            tracing.shutdown()
    summary = {
        "system": "distlab", "clients": args.clients, "processes": args.processes,
        "value_size": args.value_size, "reads": args.reads, "keys": args.keys,
        **summarize(result),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        latency = summary["latency_ms"]
        print_table(
            ("clients", "ops", "ops/s", "p50 ms", "p99 ms", "max ms", "failed"),
            [[args.clients, summary["ops"], f"{summary['ops_per_second']:.0f}",
              f"{latency['p50']:.2f}", f"{latency['p99']:.2f}", f"{latency['max']:.2f}",
              summary["definite_failures"] + summary["indefinite_failures"]]],
        )
        if summary["first_error"]:
            print(f"first error: {summary['first_error']}")
    return EXIT_OK if summary["ops"] else EXIT_UNKNOWN
