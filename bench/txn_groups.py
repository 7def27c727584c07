"""Transactions over consensus groups (DESIGN §16, `--participants groups`) beside plain KV
writes of the same store, on one local 3-node cluster hosting 3 Raft groups.

Each group is one 2PC participant, and the leader of a transaction's first key's group its
coordinator; every vote and decision is an entry its group commits. The workloads, each a
closed loop of `--clients` concurrent clients in this process for `--duration` seconds:

- kv put (the baseline): single-key puts of the KV client (`distlab.ops.load`, what
  `distlab bench kv` runs) over the same groups;
- txn 1 shard: a transfer between two accounts of one group (`add:A=-1`, `add:B=1`);
- txn 2 shards: the same transfer between accounts of two groups;
- txn 3 shards: `add:A=-2`, `add:B=1`, `add:C=1` over accounts of all three groups.

The accounts are `--accounts` per group, placed by `group_of(key, 3)`; which group comes
first (and so coordinates) is drawn per transaction. A transaction that loses wait-die is
retried by the client under the same age, so its latency includes its retries; the table
counts the losses from the nodes' `distlab_txn_lock_deaths_total` (one per participant an
attempt lost at, so an attempt may count twice; a core rebuilt by a new leader restarts its
count). An aborted transaction (every retry lost within its 5 s) or one of unknown outcome
is a failure, counted apart and not in the rate. The workloads are
interleaved over `--runs` passes on the same cluster and the table shows medians; every
transfer conserves money, so at the end the balances are read in one transaction and must
sum to zero.

With `--txn-timestamps off` the nodes run plain 2PC over groups, without TrueTime's
timestamps and commit wait (`bench/spanner.py` sets the two side by side).

Run: .venv/bin/python bench/txn_groups.py [--duration S] [--runs N] [--clients 1,16]
     [--accounts K] [--txn-timestamps truetime|off] [--json]
(`--duration 2 --runs 1` takes about half a minute.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kv_throughput import scrape_counters

from distlab.cli.common import format_table
from distlab.client import TxnClient
from distlab.ops.load import KVLoad, Operation, measure_load, run_kv_workload, summarize
from distlab.ops.local_cluster import LocalCluster
from distlab.ops.status import wait_for_leader
from distlab.protocols.txn import Op, parse_op
from distlab.wire.sharding import keys_by_group

GROUPS = 3
NODES = 3
BASELINE = "kv put"
WORKLOADS = (BASELINE, "txn 1 shard", "txn 2 shards", "txn 3 shards")
# A balance's size, so that the baseline writes as many bytes per key as a transfer does.
VALUE_SIZE = 8
TXN_TIMEOUT_SECONDS = 5.0
KV_CALL_TIMEOUT_SECONDS = 2.0
TXN_COUNTERS = ("distlab_txn_lock_deaths_total", "distlab_txn_lock_waits_total")


class NotCommitted(Exception):
    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(f"{outcome}: {reason}")
        self.outcome = outcome


def accounts_by_group(per_group: int) -> list[list[str]]:
    """`acct0`, `acct1`, ...: the first `per_group` names that fall in each group."""
    return keys_by_group("acct", per_group, GROUPS)


def transfer(rng: random.Random, accounts: list[list[str]], shards: int) -> list[Op]:
    if shards == 1:
        source, target = rng.sample(rng.choice(accounts), 2)
        return [parse_op(f"add:{source}=-1"), parse_op(f"add:{target}=1")]
    names = [rng.choice(accounts[group]) for group in rng.sample(range(GROUPS), shards)]
    ops = [parse_op(f"add:{names[0]}=-{shards - 1}")]
    return ops + [parse_op(f"add:{name}=1") for name in names[1:]]


def txn_operation(client: TxnClient, accounts: list[list[str]], shards: int, seed: str
                  ) -> Operation:
    rngs: dict[int, random.Random] = {}

    async def operation(number: int) -> None:
        rng = rngs.setdefault(number, random.Random(f"{seed}/{number}"))
        result = await client.execute(transfer(rng, accounts, shards), "2pc",
                                      participants="groups", timeout=TXN_TIMEOUT_SECONDS)
        if result.outcome != "committed":
            raise NotCommitted(result.outcome, result.reason)

    return operation


def is_aborted(error: BaseException) -> bool:
    """An aborted transaction is a definite failure; `unknown` (or no answer) is not."""
    return isinstance(error, NotCommitted) and error.outcome == "aborted"


def txn_counters(cluster: LocalCluster) -> dict[str, float]:
    totals = dict.fromkeys(TXN_COUNTERS, 0.0)
    for node in cluster.nodes.values():
        for name, value in scrape_counters(str(node.metrics_address), TXN_COUNTERS).items():
            totals[name] += value
    return totals


async def measure(cluster: LocalCluster, client: TxnClient, accounts: list[list[str]],
                  workload: str, clients: int, duration: float, seed: str) -> dict[str, Any]:
    addresses = {int(node): str(address) for node, address in cluster.addresses.items()}
    before = txn_counters(cluster)
    if workload == BASELINE:
        result = await run_kv_workload(KVLoad(
            addresses, clients, duration, VALUE_SIZE, read_fraction=0.0,
            keys=GROUPS * len(accounts[0]), call_timeout=KV_CALL_TIMEOUT_SECONDS,
            seed=zlib.crc32(seed.encode())))
    else:
        shards = int(workload.split()[1])
        result = await measure_load(clients, duration,
                                    txn_operation(client, accounts, shards, seed),
                                    is_definite=is_aborted)
    after = txn_counters(cluster)
    summary = summarize(result)
    summary["lock_deaths"] = int(after[TXN_COUNTERS[0]] - before[TXN_COUNTERS[0]])
    summary["lock_waits"] = int(after[TXN_COUNTERS[1]] - before[TXN_COUNTERS[1]])
    return summary


async def warm_up(client: TxnClient, accounts: list[list[str]]) -> None:
    """One read of every account as a transaction's first key: the client learns which node
    leads each key's group before anything is timed."""
    names = [name for group in accounts for name in group]
    for start in range(0, len(names), 16):
        results = await asyncio.gather(*(
            client.execute([parse_op(f"get:{name}")], "2pc", participants="groups",
                           timeout=TXN_TIMEOUT_SECONDS) for name in names[start:start + 16]))
        failed = [result for result in results if result.outcome != "committed"]
        if failed:
            raise SystemExit(f"warm-up read not committed: {failed[0]}")


async def balance_sum(client: TxnClient, accounts: list[list[str]]) -> int:
    names = [name for group in accounts for name in group]
    result = await client.execute([parse_op(f"get:{name}") for name in names], "2pc",
                                  participants="groups", timeout=30.0)
    if result.outcome != "committed":
        raise SystemExit(f"the final read of the balances did not commit: {result}")
    return sum(int(value or 0) for value in result.reads.values())


async def bench(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    accounts = accounts_by_group(args.accounts)
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="txn-groups-bench-") as directory:
        cluster = LocalCluster.plan(NODES, Path(directory),
                                    {"TXN_TIMESTAMPS": args.txn_timestamps}, groups=GROUPS)
        await cluster.start()
        client = TxnClient({node: str(address) for node, address in cluster.addresses.items()})
        try:
            leaders = await wait_for_leader(cluster.addresses, 30)
            say("leaders: " + ", ".join(f"group {group} on node {node}"
                                        for group, node in sorted(leaders.items())))
            await warm_up(client, accounts)
            for run in range(args.runs):
                for clients in args.clients:
                    for workload in WORKLOADS:
                        samples.setdefault((workload, clients), []).append(await measure(
                            cluster, client, accounts, workload, clients, args.duration,
                            f"{workload}/{clients}/{run}"))
                say(f"pass {run + 1}/{args.runs} done")
            total = await balance_sum(client, accounts)
            leaders_after = await wait_for_leader(cluster.addresses, 30)
        finally:
            await client.close()
            await cluster.stop()
    return {"samples": samples, "balance_sum": total,
            "leaders": {str(g): int(n) for g, n in sorted(leaders.items())},
            "leaders_after": {str(g): int(n) for g, n in sorted(leaders_after.items())}}


def report(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any]:
    samples = measured["samples"]
    rows = []
    for clients in args.clients:
        baseline = statistics.median(s["ops_per_second"] for s in samples[(BASELINE, clients)])
        for workload in WORKLOADS:
            runs = samples[(workload, clients)]

            def median(pick: Callable[[dict[str, Any]], float],
                       runs: list[dict[str, Any]] = runs) -> float:
                return statistics.median(pick(run) for run in runs)

            rate = median(lambda s: s["ops_per_second"])
            ops = sum(s["ops"] for s in runs)
            rows.append({
                "workload": workload, "clients": clients, "ops_per_second": rate,
                "p50_ms": median(lambda s: s["latency_ms"]["p50"]),
                "p99_ms": median(lambda s: s["latency_ms"]["p99"]),
                "ratio_to_baseline": rate / baseline if baseline else None,
                "ops": ops,
                "aborted": sum(s["definite_failures"] for s in runs),
                "unknown": sum(s["indefinite_failures"] for s in runs),
                "lock_deaths": sum(s["lock_deaths"] for s in runs),
                "lock_waits": sum(s["lock_waits"] for s in runs),
                "first_error": next((s["first_error"] for s in runs if s["first_error"]), None),
                "passes": runs,
            })
    return {"nodes": NODES, "groups": GROUPS, "txn_timestamps": args.txn_timestamps,
            "duration_seconds": args.duration,
            "runs": args.runs, "accounts_per_group": args.accounts,
            "leaders": measured["leaders"], "leaders_after": measured["leaders_after"],
            "balance_sum": measured["balance_sum"], "rows": rows}


def print_report(document: dict[str, Any]) -> None:
    def fmt(value: float | None, digits: int = 0) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    print(f"\n{document['nodes']} nodes, {document['groups']} Raft groups on loopback "
          f"(TXN_TIMESTAMPS={document['txn_timestamps']}); "
          f"medians of {document['runs']} passes of {document['duration_seconds']:g} s; "
          f"{document['accounts_per_group']} accounts per group; failures summed over the "
          "passes; wait-die: lost locks per committed transaction")
    table = [[row["workload"], row["clients"], fmt(row["ops_per_second"]),
              fmt(row["p50_ms"], 1), fmt(row["p99_ms"], 1),
              fmt(row["ratio_to_baseline"], 2), row["aborted"], row["unknown"],
              fmt(row["lock_deaths"] / row["ops"] if row["ops"] else None, 3)]
             for row in document["rows"]]
    print(format_table(("workload", "clients", "ops/s", "p50 ms", "p99 ms", "vs kv put",
                        "aborted", "unknown", "wait-die/txn"), table))
    for row in document["rows"]:
        if row["first_error"]:
            print(f"{row['workload']} at {row['clients']}: first failure: {row['first_error']}")
    if document["leaders"] != document["leaders_after"]:
        print(f"leadership moved during the run: {document['leaders']} -> "
              f"{document['leaders_after']}")
    print(f"balances sum to {document['balance_sum']} (every transfer conserves: 0)")


def integers(text: str) -> list[int]:
    """A comma-separated list of integers, as the command line gives it."""
    return [int(part) for part in text.split(",")]


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """How long, how often and at what concurrency each workload runs."""
    parser.add_argument("--duration", type=float, default=4.0,
                        help="seconds per workload and client count (4)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved passes (3)")
    parser.add_argument("--clients", default="1,16", type=integers,
                        help="concurrent clients, comma-separated (1,16)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument("--accounts", type=int, default=32, help="accounts per group (32)")
    parser.add_argument("--txn-timestamps", choices=("truetime", "off"), default="truetime",
                        help="the nodes' TXN_TIMESTAMPS: Spanner's timestamps and commit wait "
                             "(truetime, the default) or plain 2PC over groups (off)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args()
    if args.accounts < 2 or args.runs < 1 or min(args.clients) < 1:
        parser.error("--accounts is at least 2, --runs and --clients at least 1")

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    document = report(args, asyncio.run(bench(args, say)))
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print_report(document)
    return 0 if document["balance_sum"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
