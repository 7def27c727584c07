"""The KV store on Multi-Paxos beside the same store on Raft: write throughput, latency and
failover time of a fresh 3-node cluster of each engine, in the same run.

Each pass starts a fresh cluster per engine (raft, the baseline, then paxos), measures
closed-loop writes with `distlab bench kv` at 64 clients and at 1 client, then kills the
leader of group 0 with SIGKILL while one writer writes, and times the gap from the kill to
the next acknowledged write. Passes interleave the engines, so a noisy neighbour slows both;
the table shows the medians over the passes and paxos/raft ratios.

Run: .venv/bin/python bench/engines.py [--runs N] [--duration S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from distlab.client import KVClient, KVError
from distlab.ops.local_cluster import LocalCluster
from distlab.ops.status import wait_for_leader
from distlab.wire.sharding import group_of

ENGINES = ("raft", "paxos")


def bench_kv(cluster: LocalCluster, clients: int, duration: float) -> dict[str, Any]:
    addresses = ",".join(f"{n}={a}" for n, a in sorted(cluster.addresses.items()))
    done = subprocess.run(
        [sys.executable, "-m", "distlab", "bench", "kv", "--cluster", addresses, "--clients",
         str(clients), "--duration", str(duration), "--json"],
        capture_output=True, text=True, check=True, timeout=duration + 120)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def failover_seconds(cluster: LocalCluster) -> float:
    """From the SIGKILL of group 0's leader to the next acknowledged write to group 0."""
    leader = (await wait_for_leader(cluster.addresses, 15.0))[0]
    key = next(f"failover-{i}" for i in range(1000) if group_of(f"failover-{i}", 1) == 0)
    members = {n: str(a) for n, a in cluster.addresses.items()}
    async with KVClient(members, call_timeout=0.5, operation_timeout=30.0) as client:
        await client.put(key, "before")
        killed = time.monotonic()
        await cluster.stop_node(leader, signal.SIGKILL)
        while True:
            try:
                await client.put(key, "after", budget=0.5)
                return time.monotonic() - killed
            except KVError:
                continue


async def one_pass(engine: str, duration: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"distlab-{engine}-") as directory:
        cluster = LocalCluster.plan(3, Path(directory), engine=engine)
        await cluster.start()
        try:
            await wait_for_leader(cluster.addresses, 15.0)
            many = await asyncio.to_thread(bench_kv, cluster, 64, duration)
            one = await asyncio.to_thread(bench_kv, cluster, 1, duration)
            failover = await failover_seconds(cluster)
        finally:
            await cluster.stop()
    return {"writes_64": many["ops_per_second"], "p50_64_ms": many["latency_ms"]["p50"],
            "writes_1": one["ops_per_second"], "p50_1_ms": one["latency_ms"]["p50"],
            "failover_s": failover}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {engine: [] for engine in ENGINES}
    for run in range(args.runs):
        for engine in ENGINES:
            results[engine].append(await one_pass(engine, args.duration))
            print(f"pass {run + 1}/{args.runs} {engine}: {results[engine][-1]}", file=sys.stderr)
    columns = ("writes_64", "p50_64_ms", "writes_1", "p50_1_ms", "failover_s")
    medians = {engine: {c: statistics.median(r[c] for r in results[engine]) for c in columns}
               for engine in ENGINES}
    print(f"medians of {args.runs} interleaved passes, 3 nodes, 1 group, 100-byte writes")
    print(f"{'':14}" + "".join(f"{c:>12}" for c in columns))
    for engine in ENGINES:
        print(f"{engine:14}" + "".join(f"{medians[engine][c]:12.2f}" for c in columns))
    print(f"{'paxos/raft':14}" + "".join(
        f"{medians['paxos'][c] / medians['raft'][c]:12.2f}" for c in columns))


if __name__ == "__main__":
    asyncio.run(main())
