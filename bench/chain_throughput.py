"""Chain replication on a 3-node distlab cluster: writes beside the Raft KV store's, and
reads alone and a 90/10 read/write mix, with reads at the tail (CR) beside reads at any
replica (CRAQ).

One fresh `distlab up`-style cluster (ops/local_cluster) on this machine's loopback, driven
by closed loops of `--clients` concurrent clients in this process for `--duration` seconds
per measurement; the measurements are interleaved over `--runs` passes and the table shows
medians. The baseline is the Raft KV store's put on the same cluster in the same pass:
chain writes pass through every replica (three fsyncs in a row) where a Raft write needs a
majority, and CRAQ spreads reads over the replicas where CR sends them all to the tail.

Run: .venv/bin/python bench/chain_throughput.py [--duration S] [--runs N] [--clients N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from distlab.client import KVClient
from distlab.client.chain import ChainClient
from distlab.ops.local_cluster import LocalCluster

KEYS = [f"k{index}".encode() for index in range(16)]
VALUE = b"x" * 100


async def closed_loop(clients: int, duration: float,
                      operation: Callable[[int], Awaitable[None]]) -> tuple[float, float]:
    """(operations per second, median latency in ms) of `clients` loops of `operation`."""
    latencies: list[float] = []
    deadline = time.monotonic() + duration
    counter = itertools.count()

    async def loop() -> None:
        while time.monotonic() < deadline:
            started = time.monotonic()
            await operation(next(counter))
            latencies.append(time.monotonic() - started)

    started = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(clients)))
    elapsed = time.monotonic() - started
    return len(latencies) / elapsed, statistics.median(latencies) * 1000 if latencies else 0.0


async def measure(cluster: LocalCluster, clients: int, duration: float, runs: int
                  ) -> dict[str, list[tuple[float, float]]]:
    members = {node: str(local.address) for node, local in cluster.nodes.items()}
    chain = ChainClient(members)
    kv = KVClient(members, call_timeout=2.0, operation_timeout=10.0)
    rng = random.Random(1)
    for key in KEYS:  # every key exists before reads are measured
        await chain.put(key, VALUE)
    results: dict[str, list[tuple[float, float]]] = {}

    async def kv_put(index: int) -> None:
        await kv.put(KEYS[index % len(KEYS)], VALUE)

    async def chain_put(index: int) -> None:
        await chain.put(KEYS[index % len(KEYS)], VALUE)

    def mixed(mode: str, read_share: float) -> Callable[[int], Awaitable[None]]:
        async def operation(index: int) -> None:
            key = KEYS[index % len(KEYS)]
            if rng.random() < read_share:
                await chain.get(key, mode)
            else:
                await chain.put(key, VALUE)

        return operation

    cases: dict[str, Callable[[int], Awaitable[None]]] = {
        "raft kv put (baseline)": kv_put,
        "chain put": chain_put,
        "chain reads only, cr reads": mixed("cr", 1.0),
        "chain reads only, craq reads": mixed("craq", 1.0),
        "chain 90/10, cr reads": mixed("cr", 0.9),
        "chain 90/10, craq reads": mixed("craq", 0.9),
    }
    try:
        for _ in range(runs):
            for name, operation in cases.items():
                results.setdefault(name, []).append(
                    await closed_loop(clients, duration, operation))
    finally:
        await chain.close()
        await kv.close()
    return results


async def bench(clients: int, duration: float, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chain-bench-") as directory:
        cluster = LocalCluster.plan(3, Path(directory))
        await cluster.start()
        try:
            results = await measure(cluster, clients, duration, runs)
        finally:
            await cluster.stop()
    baseline = statistics.median(rate for rate, _ in results["raft kv put (baseline)"])
    print(f"3 nodes on loopback, {clients} clients, {duration:g} s x {runs} passes (medians)")
    print(f"{'workload':28} {'ops/s':>8} {'median ms':>10} {'vs baseline':>12}")
    for name, samples in results.items():
        rate = statistics.median(rate for rate, _ in samples)
        latency = statistics.median(latency for _, latency in samples)
        print(f"{name:28} {rate:8.0f} {latency:10.1f} {rate / baseline:11.2f}x")
    for mix in ("reads only", "90/10"):
        ratios = [craq / cr for (cr, _), (craq, _) in zip(
            results[f"chain {mix}, cr reads"], results[f"chain {mix}, craq reads"],
            strict=True)]
        print(f"CRAQ / CR, {mix}: " + ", ".join(f"{ratio:.2f}" for ratio in ratios)
              + f" (median {statistics.median(ratios):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(bench(args.clients, args.duration, args.runs))


if __name__ == "__main__":
    main()
