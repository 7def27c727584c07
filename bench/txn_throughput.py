"""Transaction throughput of 2PC and 3PC over a local 3-node distlab cluster (each node one
participant), in the same run: 2PC is the baseline, 3PC's ratio to it is its extra round.

Each pass starts a fresh cluster, fills the accounts, then drives closed-loop transfers
between accounts on different nodes (require, add, add: three participants' worth of locks at
most) from 1 and from 16 clients, each transaction sent to a random node, for --duration
seconds per configuration. Committed transactions per second, aborts (wait-die losers
included) per second and latency percentiles of committed ones; the table shows medians
over --runs passes.

Run: .venv/bin/python bench/txn_throughput.py [--duration S] [--runs N] [--accounts K]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from distlab.client import TxnClient
from distlab.core.ids import NodeId
from distlab.ops.local_cluster import LocalCluster
from distlab.protocols.txn import parse_op
from distlab.wire.sharding import participant_of

PROTOCOLS = ("2pc", "3pc")
CLIENTS = (1, 16)


async def one_configuration(client: TxnClient, nodes: list[int], accounts: list[str],
                            protocol: str, clients: int, duration: float
                            ) -> dict[str, float]:
    rng = random.Random(f"{protocol}/{clients}")
    latencies: list[float] = []
    aborted = 0
    stop = time.monotonic() + duration

    async def worker() -> None:
        nonlocal aborted
        while time.monotonic() < stop:
            source = rng.choice(accounts)
            owners = {participant_of(account, nodes) for account in (source,)}
            targets = [a for a in accounts if participant_of(a, nodes) not in owners]
            target = rng.choice(targets or [a for a in accounts if a != source])
            ops = [parse_op(f"require:{source}>=1"), parse_op(f"add:{source}=-1"),
                   parse_op(f"add:{target}=1")]
            started = time.monotonic()
            result = await client.execute(ops, protocol, node=NodeId(rng.choice(nodes)),
                                          timeout=5.0)
            if result.outcome == "committed":
                latencies.append(time.monotonic() - started)
            else:
                aborted += 1

    await asyncio.gather(*(worker() for _ in range(clients)))
    latencies.sort()
    return {
        "committed_per_s": len(latencies) / duration,
        "aborted_per_s": aborted / duration,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
    }


async def one_pass(directory: Path, duration: float, accounts_count: int
                   ) -> dict[tuple[str, int], dict[str, float]]:
    cluster = LocalCluster.plan(3, directory)
    await cluster.start()
    client = TxnClient({node: str(address) for node, address in cluster.addresses.items()})
    try:
        nodes = sorted(int(node) for node in cluster.addresses)
        accounts = [f"acct{index}" for index in range(accounts_count)]
        filled = await client.execute([parse_op(f"put:{a}=1000000") for a in accounts], "2pc")
        assert filled.outcome == "committed", filled
        results = {}
        for clients in CLIENTS:
            for protocol in PROTOCOLS:
                results[(protocol, clients)] = await one_configuration(
                    client, nodes, accounts, protocol, clients, duration)
        return results
    finally:
        await client.close()
        await cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=32)
    args = parser.parse_args()
    passes = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="txn-bench-") as directory:
            passes.append(asyncio.run(one_pass(Path(directory), args.duration, args.accounts)))
        print(f"pass {run + 1}/{args.runs} done", flush=True)
    print(f"\n{'protocol':8} {'clients':>7} {'commits/s':>10} {'aborts/s':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'vs 2pc':>7}")
    for clients in CLIENTS:
        baseline = statistics.median(p[("2pc", clients)]["committed_per_s"] for p in passes)
        for protocol in PROTOCOLS:
            rows = [p[(protocol, clients)] for p in passes]

            def median(name: str, rows: list[dict[str, float]] = rows) -> float:
                return statistics.median(row[name] for row in rows)

            rate = median("committed_per_s")
            ratio = rate / baseline if baseline else float("nan")
            print(f"{protocol:8} {clients:7d} {rate:10.1f} {median('aborted_per_s'):9.1f} "
                  f"{median('p50_ms'):8.1f} {median('p99_ms'):8.1f} {ratio:7.2f}")


if __name__ == "__main__":
    main()
