"""Spanner's timestamps over consensus groups (DESIGN §17) beside plain 2PC over the same
groups, on local 3-node clusters hosting 3 Raft groups.

Two questions, on fresh clusters, each workload a closed loop of `--clients` concurrent
clients in this process for `--duration` seconds:

- Commit wait against epsilon: with TRUETIME_EPSILON_MS 1, 4 and 7 (`--epsilons`), transfers
  between accounts of two groups (bench/txn_groups.py's "txn 2 shards"), and each node's
  `distlab_truetime_commit_wait_seconds` histogram scraped before and after: the mean wait
  per commit is its sum over its count. A coordinator picks s at TT.now().latest, then
  forces COMMIT to its group and only then waits until TT.after(s), i.e. until 2 epsilon
  after it picked s; so it waits about 2 epsilon less the time its group took to apply
  the record (Spanner's "commit wait overlaps with Paxos communication"), and nothing when
  that took longer.
- Throughput and latency with TrueTime (epsilon 4) against 2PC over groups without it
  (TXN_TIMESTAMPS=off, the baseline), at 1 and 16 clients: read-write transactions (the same
  transfers) and reads of one account in each group. With TrueTime a read is a read-only
  transaction at TT.now().latest, without locks or 2PC; without it, the only consistent
  read over groups is a read-write transaction of gets (locks, prepare and commit records
  in every group).

The clusters are started in turn and each pass (`--runs`) starts them again; the tables
show medians over the passes. Every transfer conserves money: each cluster's balances are
read at the end and must sum to zero. Before measuring, each cluster is given a few seconds
for its leaders to spread (the nodes balance leadership: one group each).

Run: .venv/bin/python bench/spanner.py [--duration S] [--runs N] [--clients 1,16]
     [--epsilons 1,4,7] [--accounts K] [--quick] [--json]
(`--quick` is `--duration 1 --runs 1 --accounts 8`: under a minute on an idle 2-core
machine, most of it starting and stopping the four clusters.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kv_throughput import scrape_counters
from txn_groups import (
    GROUPS,
    NODES,
    TXN_TIMEOUT_SECONDS,
    NotCommitted,
    accounts_by_group,
    add_load_arguments,
    balance_sum,
    integers,
    is_aborted,
    txn_operation,
    warm_up,
)

from distlab.cli.common import format_table
from distlab.client import TxnClient
from distlab.ops.load import Operation, measure_load, summarize
from distlab.ops.local_cluster import LocalCluster
from distlab.ops.status import wait_for_leader
from distlab.protocols.txn import parse_op

BASELINE = "2pc"  # TXN_TIMESTAMPS=off
SPANNER_EPSILON_MS = 4
TRANSFER_SHARDS = 2
COMMIT_WAIT = "distlab_truetime_commit_wait_seconds"
# The wait's sum and count, and the waits of half a millisecond at most (its first bucket).
COMMIT_WAIT_SERIES = (f"{COMMIT_WAIT}_sum", f"{COMMIT_WAIT}_count",
                      f'{COMMIT_WAIT}_bucket{{le="0.0005"}}')
BALANCE_SECONDS = 10.0
ACCOUNTS_PER_GROUP = 32


def cluster_kinds(epsilons: list[int]) -> list[str]:
    """`2pc` (no TrueTime) and `eps=E` for each epsilon; the throughput comparison runs on
    `2pc` and on `eps=4`."""
    return [BASELINE, *(f"eps={epsilon}" for epsilon in epsilons)]


def environment(kind: str) -> dict[str, str]:
    if kind == BASELINE:
        return {"TXN_TIMESTAMPS": "off"}
    return {"TRUETIME_EPSILON_MS": kind.removeprefix("eps=")}


def read_operation(client: TxnClient, accounts: list[list[str]], read_only: bool, seed: str
                   ) -> Operation:
    """A read of one account of each group: read-only at TT.now().latest, or as a 2PC
    transaction of gets."""
    rngs: dict[int, random.Random] = {}

    async def operation(number: int) -> None:
        rng = rngs.setdefault(number, random.Random(f"{seed}/{number}"))
        ops = [parse_op(f"get:{rng.choice(names)}") for names in accounts]
        result = await client.execute(ops, "2pc", participants="groups", read_only=read_only,
                                      timeout=TXN_TIMEOUT_SECONDS)
        if result.outcome != "committed":
            raise NotCommitted(result.outcome, result.reason)

    return operation


def commit_waits(cluster: LocalCluster) -> tuple[float, float, float]:
    """Seconds waited, waits, and waits of half a millisecond at most, over the nodes."""
    seconds = waits = short = 0.0
    for node in cluster.nodes.values():
        scraped = scrape_counters(str(node.metrics_address), COMMIT_WAIT_SERIES)
        seconds += scraped[COMMIT_WAIT_SERIES[0]]
        waits += scraped[COMMIT_WAIT_SERIES[1]]
        short += scraped[COMMIT_WAIT_SERIES[2]]
    return seconds, waits, short


async def spread_leaders(cluster: LocalCluster) -> dict[int, int]:
    """Group -> leader, once every node leads one group (or BALANCE_SECONDS have passed)."""
    deadline = time.monotonic() + BALANCE_SECONDS
    while True:
        leaders = await wait_for_leader(cluster.addresses, 30)
        if len(set(leaders.values())) == min(NODES, GROUPS) or time.monotonic() > deadline:
            return {group: int(node) for group, node in sorted(leaders.items())}
        await asyncio.sleep(0.2)


async def measure(cluster: LocalCluster, operation: Operation, clients: int, duration: float
                  ) -> dict[str, Any]:
    before = commit_waits(cluster)
    result = await measure_load(clients, duration, operation, is_definite=is_aborted)
    after = commit_waits(cluster)
    summary = summarize(result)
    summary["commit_wait_seconds"] = after[0] - before[0]
    summary["commit_waits"] = int(after[1] - before[1])
    summary["short_commit_waits"] = int(after[2] - before[2])
    return summary


async def run_cluster(kind: str, args: argparse.Namespace, run: int,
                      accounts: list[list[str]], say: Callable[[str], None]
                      ) -> dict[tuple[str, int], dict[str, Any]]:
    """Every workload this kind of cluster runs, on a fresh one: (workload, clients) ->
    summary."""
    measured: dict[tuple[str, int], dict[str, Any]] = {}
    compared = kind in (BASELINE, f"eps={SPANNER_EPSILON_MS}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spanner-bench-") as directory:
        cluster = LocalCluster.plan(NODES, Path(directory), environment(kind), groups=GROUPS)
        await cluster.start()
        client = TxnClient({node: str(address) for node, address in cluster.addresses.items()})
        try:
            leaders = await spread_leaders(cluster)
            await warm_up(client, accounts)
            for clients in args.clients:
                seed = f"{kind}/{clients}/{run}"
                measured[("rw", clients)] = await measure(
                    cluster, txn_operation(client, accounts, TRANSFER_SHARDS, seed), clients,
                    args.duration)
                if compared:
                    measured[("read", clients)] = await measure(
                        cluster, read_operation(client, accounts, kind != BASELINE, seed),
                        clients, args.duration)
            total = await balance_sum(client, accounts)
        finally:
            await client.close()
            await cluster.stop()
    say(f"pass {run + 1}: {kind} done in {time.monotonic() - started:.0f} s (leaders "
        f"{leaders}; balances sum to {total})")
    if total != 0:
        raise SystemExit(f"{kind}: the balances sum to {total}, not 0: a transfer was lost")
    return measured


async def bench(args: argparse.Namespace, say: Callable[[str], None]
                ) -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    accounts = accounts_by_group(args.accounts)
    samples: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    kinds = cluster_kinds(args.epsilons)
    for run in range(args.runs):
        # Each pass in another order, so that no kind always runs first on a cold machine.
        for kind in kinds[run % len(kinds):] + kinds[:run % len(kinds)]:
            for (workload, clients), summary in (await run_cluster(
                    kind, args, run, accounts, say)).items():
                samples.setdefault((kind, workload, clients), []).append(summary)
    return samples


def median(runs: list[dict[str, Any]], pick: Callable[[dict[str, Any]], float | None]
           ) -> float | None:
    values = [value for run in runs if (value := pick(run)) is not None]
    return statistics.median(values) if values else None


def mean_wait_ms(run: dict[str, Any]) -> float | None:
    if not run["commit_waits"]:
        return None
    return float(run["commit_wait_seconds"]) / run["commit_waits"] * 1000


def waited_share(run: dict[str, Any]) -> float | None:
    """The share of commits that waited more than half a millisecond."""
    if not run["commit_waits"]:
        return None
    return 1 - run["short_commit_waits"] / run["commit_waits"]


def report(args: argparse.Namespace,
           samples: dict[tuple[str, str, int], list[dict[str, Any]]]) -> dict[str, Any]:
    waits = []
    for epsilon in args.epsilons:
        for clients in args.clients:
            runs = samples[(f"eps={epsilon}", "rw", clients)]
            wait = median(runs, mean_wait_ms)
            waits.append({
                "epsilon_ms": epsilon, "clients": clients, "two_epsilon_ms": 2 * epsilon,
                "commit_wait_ms": wait,
                "ratio_to_two_epsilon": wait / (2 * epsilon) if wait is not None else None,
                "commit_waits": sum(run["commit_waits"] for run in runs),
                "waited_share": median(runs, waited_share),
                "rw_p50_ms": median(runs, lambda s: s["latency_ms"]["p50"]),
                "rw_per_second": median(runs, lambda s: s["ops_per_second"])})
    rows = []
    spanner = f"eps={SPANNER_EPSILON_MS}"
    for workload in ("rw", "read"):
        for clients in args.clients:
            row: dict[str, Any] = {"workload": workload, "clients": clients}
            for kind, name in ((spanner, "truetime"), (BASELINE, "baseline")):
                runs = samples.get((kind, workload, clients), [])
                row[name] = {
                    "ops_per_second": median(runs, lambda s: s["ops_per_second"]),
                    "p50_ms": median(runs, lambda s: s["latency_ms"]["p50"]),
                    "p99_ms": median(runs, lambda s: s["latency_ms"]["p99"]),
                    "aborted": sum(s["definite_failures"] for s in runs),
                    "unknown": sum(s["indefinite_failures"] for s in runs),
                    "first_error": next((s["first_error"] for s in runs if s["first_error"]),
                                        None)}
            # Each pass's ratio (its two clusters ran minutes apart at most), then the median.
            ratios = [truetime["ops_per_second"] / baseline["ops_per_second"]
                      for truetime, baseline in zip(
                          samples.get((spanner, workload, clients), []),
                          samples.get((BASELINE, workload, clients), []), strict=True)
                      if baseline["ops_per_second"]]
            row["ratio"] = statistics.median(ratios) if ratios else None
            rows.append(row)
    return {"nodes": NODES, "groups": GROUPS, "duration_seconds": args.duration,
            "runs": args.runs, "clients": args.clients, "transfer_shards": TRANSFER_SHARDS,
            "accounts_per_group": args.accounts,
            "commit_wait": waits, "throughput": rows,
            "samples": {"/".join(map(str, key)): runs for key, runs in samples.items()}}


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(document: dict[str, Any]) -> None:
    print(f"\n{document['nodes']} nodes, {document['groups']} Raft groups on loopback, a "
          f"fresh cluster per kind and pass; medians of {document['runs']} passes of "
          f"{document['duration_seconds']:g} s per workload")
    print("\ncommit wait against epsilon (read-write transfers over "
          f"{document['transfer_shards']} groups; the mean wait per commit, from the "
          "nodes' distlab_truetime_commit_wait_seconds)")
    print(format_table(
        ("epsilon ms", "clients", "2 eps ms", "wait ms", "wait / 2 eps", "waits",
         "> 0.5 ms", "rw/s", "rw p50 ms"),
        [[row["epsilon_ms"], row["clients"], row["two_epsilon_ms"],
          fmt(row["commit_wait_ms"], 2), fmt(row["ratio_to_two_epsilon"], 2),
          row["commit_waits"], fmt(row["waited_share"], 2), fmt(row["rw_per_second"]),
          fmt(row["rw_p50_ms"], 1)]
         for row in document["commit_wait"]]))
    print(f"\nwith TrueTime (epsilon {SPANNER_EPSILON_MS} ms) against 2PC over groups "
          "without it (TXN_TIMESTAMPS=off); rw: transfers, read: one account of each group "
          "(read-only at TT.now().latest, or a 2PC transaction of gets)")
    table = []
    for row in document["throughput"]:
        truetime, baseline = row["truetime"], row["baseline"]
        table.append([row["workload"], row["clients"], fmt(truetime["ops_per_second"]),
                      fmt(truetime["p50_ms"], 1), fmt(truetime["p99_ms"], 1),
                      fmt(baseline["ops_per_second"]), fmt(baseline["p50_ms"], 1),
                      fmt(baseline["p99_ms"], 1), fmt(row["ratio"], 2),
                      f"{truetime['aborted'] + truetime['unknown']}/"
                      f"{baseline['aborted'] + baseline['unknown']}"])
    print(format_table(("workload", "clients", "truetime/s", "p50 ms", "p99 ms", "2pc/s",
                        "p50 ms", "p99 ms", "vs 2pc", "failed"), table))
    print("vs 2pc: the median of each pass's ratio; failed: aborted or unknown, with TrueTime "
          "/ without")
    for row in document["throughput"]:
        for name in ("truetime", "baseline"):
            if row[name]["first_error"]:
                print(f"{row['workload']} at {row['clients']} ({name}): first failure: "
                      f"{row[name]['first_error']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument("--epsilons", default="1,4,7", type=integers,
                        help="TRUETIME_EPSILON_MS values, comma-separated (1,4,7)")
    parser.add_argument("--accounts", type=int, default=ACCOUNTS_PER_GROUP,
                        help=f"accounts per group ({ACCOUNTS_PER_GROUP})")
    parser.add_argument("--quick", action="store_true",
                        help="--duration 1 --runs 1 --accounts 8: a look in under a minute")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.runs, args.accounts = 1.0, 1, 8
    if args.runs < 1 or min(args.clients) < 1 or min(args.epsilons) < 1 or args.accounts < 2:
        parser.error("--runs, --clients and --epsilons are at least 1, --accounts 2")
    if SPANNER_EPSILON_MS not in args.epsilons:
        args.epsilons = sorted({*args.epsilons, SPANNER_EPSILON_MS})

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    document = report(args, asyncio.run(bench(args, say)))
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print_report(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
