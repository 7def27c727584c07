"""Closed-loop load: C clients each running one operation at a time, back to back.

Throughput is operations acknowledged per second and latency is measured per operation from
send to answer. One Python process can be the bottleneck well before the cluster is, so
`run_processes` spreads the clients over processes that start measuring together.

`measure_load` is the closed loop itself, reusable for any system whose operation is an
awaitable: bench/kv_throughput.py drives its baselines (etcd) with it.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import queue
import random
import time
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from distlab.client import Definite, KVClient
from distlab.runtime import loop
from distlab.runtime.heap import settle_heap
from distlab.telemetry.tracing import client_tracing
from distlab.wire.sharding import keys_by_group

Operation = Callable[[int], Awaitable[None]]
"""One operation of client number N; raises on failure."""

Watcher = Callable[[float, int, int], None]
"""Told, about twice a second while a load runs: seconds measured, operations acknowledged,
operations failed."""

WATCH_INTERVAL_SECONDS = 0.5


@dataclass(slots=True)
class LoadResult:
    """Latencies (seconds) of acknowledged operations, failures, and the measured window."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    definite_failures: int = 0
    indefinite_failures: int = 0
    elapsed_seconds: float = 0.0
    first_error: str | None = None
    # CPU time of the load processes over the measured window: a client near one core per
    # process is the bottleneck, not the system under load.
    cpu_seconds: float = 0.0

    def merge(self, other: LoadResult) -> None:
        self.latencies.extend(other.latencies)
        self.definite_failures += other.definite_failures
        self.indefinite_failures += other.indefinite_failures
        self.elapsed_seconds = max(self.elapsed_seconds, other.elapsed_seconds)
        self.first_error = self.first_error or other.first_error
        self.cpu_seconds += other.cpu_seconds

    def to_wire(self) -> dict[str, Any]:
        return {
            "latencies": self.latencies.tobytes(),
            "definite_failures": self.definite_failures,
            "indefinite_failures": self.indefinite_failures,
            "elapsed_seconds": self.elapsed_seconds,
            "first_error": self.first_error,
            "cpu_seconds": self.cpu_seconds,
        }

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> LoadResult:
        latencies = array("d")
        latencies.frombytes(wire["latencies"])
        return cls(latencies, wire["definite_failures"], wire["indefinite_failures"],
                   wire["elapsed_seconds"], wire["first_error"], wire["cpu_seconds"])


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when it is empty)."""
    if not sorted_values:
        return 0.0
    # ceil(fraction * n), with slack for binary fractions such as 0.99 * 100 = 99.000...01
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values) - 1e-9)))
    return sorted_values[rank - 1]


def summarize(result: LoadResult) -> dict[str, Any]:
    ordered = sorted(result.latencies)
    elapsed = result.elapsed_seconds
    return {
        "ops": len(ordered),
        "ops_per_second": len(ordered) / elapsed if elapsed > 0 else 0.0,
        "elapsed_seconds": elapsed,
        "client_cpu_seconds": result.cpu_seconds,
        "definite_failures": result.definite_failures,
        "indefinite_failures": result.indefinite_failures,
        "latency_ms": {
            "p50": percentile(ordered, 0.50) * 1000,
            "p99": percentile(ordered, 0.99) * 1000,
            "max": (ordered[-1] if ordered else 0.0) * 1000,
        },
        "first_error": result.first_error,
    }


async def measure_load(
    clients: int, duration_seconds: float, operation: Operation,
    is_definite: Callable[[BaseException], bool] = lambda error: False,
    watch: Watcher | None = None,
) -> LoadResult:
    """Run `clients` closed loops of `operation` for `duration_seconds` and time each call.

    A failed operation is counted (as definite when `is_definite` says so) and the loop goes
    on: a benchmark through a leader change should show the dip, not stop. `watch`, when
    given, is told how far the load has got while it runs.
    """
    results = [LoadResult() for _ in range(clients)]
    started, cpu_started = time.perf_counter(), time.process_time()
    stop_at = started + duration_seconds

    async def client_loop(number: int) -> None:
        result = results[number]
        clock = time.perf_counter
        while (begin := clock()) < stop_at:
            try:
                await operation(number)
            except Exception as error:
                if is_definite(error):
                    result.definite_failures += 1
                else:
                    result.indefinite_failures += 1
                if result.first_error is None:
                    result.first_error = f"{type(error).__name__}: {error}"
                continue
            result.latencies.append(clock() - begin)

    def counts() -> tuple[int, int]:
        return (sum(len(r.latencies) for r in results),
                sum(r.definite_failures + r.indefinite_failures for r in results))

    async def watch_loop(watch: Watcher) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            watch(min(time.perf_counter() - started, duration_seconds), *counts())

    watching = asyncio.create_task(watch_loop(watch)) if watch is not None else None
    try:
        await asyncio.gather(*(client_loop(n) for n in range(clients)))
    finally:
        if watching is not None:
            watching.cancel()
    if watch is not None:
        watch(duration_seconds, *counts())
    total = LoadResult(elapsed_seconds=time.perf_counter() - started,
                       cpu_seconds=time.process_time() - cpu_started)
    for result in results:
        total.merge(result)
    return total


# ---- the KV workload ----

@dataclass(frozen=True, slots=True)
class KVLoad:
    """A closed-loop KV load: what each client does, for how long, against which cluster."""

    addresses: dict[int, str] | list[str]
    clients: int
    duration_seconds: float
    value_size: int
    read_fraction: float
    keys: int
    call_timeout: float
    seed: int


def kv_operation(client: KVClient, workload: KVLoad) -> Operation:
    value = "v" * workload.value_size
    rngs: dict[int, random.Random] = {}

    async def operation(number: int) -> None:
        rng = rngs.get(number)
        if rng is None:
            rng = rngs[number] = random.Random(workload.seed * 1_000_003 + number)
        key = f"bench-{rng.randrange(workload.keys)}"
        if workload.read_fraction and rng.random() < workload.read_fraction:
            await client.get(key)
        else:
            await client.put(key, value)

    return operation


async def run_kv_workload(workload: KVLoad, ready: Callable[[], Awaitable[None]] | None = None,
                          watch: Watcher | None = None, interceptors: Sequence[Any] = ()
                          ) -> LoadResult:
    """Warm up (one write per client in every group: sessions opened, leaders found), wait
    for `ready`, then measure (telling `watch` how it goes). `interceptors` go on the
    client's channels (tracing)."""
    client = KVClient(workload.addresses, call_timeout=workload.call_timeout,
                      operation_timeout=max(5.0, workload.call_timeout * 5),
                      interceptors=interceptors)
    async with client:
        value = "v" * workload.value_size
        keys = warmup_keys(workload.clients, await client.group_count())
        await asyncio.gather(*(client.put(key, value) for key in keys))
        settle_heap()
        if ready is not None:
            await ready()
        return await measure_load(
            workload.clients, workload.duration_seconds, kv_operation(client, workload),
            is_definite=lambda error: isinstance(error, Definite), watch=watch,
        )


def warmup_keys(per_group: int, groups: int) -> list[str]:
    """`bench-warmup-0`, `-1`, ...: the first `per_group` names that fall in each group."""
    return [key for names in keys_by_group("bench-warmup-", per_group, groups)
            for key in names]


def worker_process(workload: KVLoad, barrier: Any, results: Any, counters: Any = None,
                   slot: int = 0) -> None:
    """Body of one load process: its share of the clients, started with the others; its
    progress goes into `counters[3 * slot:3 * slot + 3]` (seconds, acknowledged, failed).
    With OTLP_ENDPOINT in its environment, the process traces its own operations."""

    async def ready() -> None:
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)

    def watch(seconds: float, acknowledged: int, failed: int) -> None:
        if counters is not None:
            with counters.get_lock():
                counters[3 * slot:3 * slot + 3] = [seconds, acknowledged, failed]

    tracing = None
    try:
        tracing = client_tracing()
        interceptors = tracing.client_interceptors() if tracing is not None else ()
        result = loop.run(run_kv_workload(workload, ready, watch, interceptors))
    except Exception as error:
        # Release the other processes waiting at the barrier, and tell the parent why.
        barrier.abort()
        results.put({"error": f"{type(error).__name__}: {error}"})
        return
    finally:
        if tracing is not None:
            tracing.shutdown()
    results.put(result.to_wire())


def run_processes(workload: KVLoad, processes: int, watch: Watcher | None = None
                  ) -> LoadResult:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    counters = context.Array("d", 3 * processes)
    shares = [workload.clients // processes + (1 if i < workload.clients % processes else 0)
              for i in range(processes)]
    children = [
        context.Process(
            target=worker_process,
            args=(replace(workload, clients=share, seed=workload.seed + i), barrier, results,
                  counters, i),
            daemon=True,
        )
        for i, share in enumerate(shares)
    ]
    for child in children:
        child.start()

    def tell() -> None:
        if watch is None:
            return
        with counters.get_lock():
            slots = [counters[3 * i:3 * i + 3] for i in range(processes)]
        watch(max(slot[0] for slot in slots), int(sum(slot[1] for slot in slots)),
              int(sum(slot[2] for slot in slots)))

    total = LoadResult()
    errors: list[str] = []
    deadline = time.monotonic() + workload.duration_seconds + 120
    try:
        received = 0
        while received < len(children):
            try:
                wire = results.get(timeout=WATCH_INTERVAL_SECONDS)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise
                tell()
                continue
            received += 1
            if "error" in wire:
                errors.append(wire["error"])
            else:
                total.merge(LoadResult.from_wire(wire))
        tell()
    finally:
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
    if errors:
        raise Definite(errors[0])
    return total
