"""Where a write's CPU goes on one node: the replicated write path alone, against the same
path behind the KV RPC, against the RPC layer alone.

Three measurements of the same 100-byte puts, interleaved over passes, each pass on a fresh
one-node cluster (one member: its own fsync commits, so there is no peer traffic and what is
left is the write path every member runs):

- write path alone: a node started in this script's own process, with 64 tasks calling its
  group's `propose` directly: the driver, the Raft core, the WAL with its fsyncs (on a thread,
  as a leader's), the KV state machine and its sessions, without any RPC; and the same with 8
  tasks, whose batches are as small as those the RPC lets gather;
- through the KV RPC: `distlab up --nodes 1` driven by `distlab bench kv` with 64 clients,
  the same path behind grpc.aio's unary calls;
- RPC floor: a grpc.aio server that answers every Put at once, driven by the same load; then
  the same server answering from a task that takes every queued request per round (the
  least a driver adds), and that task fdatasyncing a preallocated file on a worker thread
  each round before it answers (the least a leader's WAL adds).

Then what one replication round's messages cost alone: two processes, each with a peer stream
open to the other, pass an append and its reply back and forth, as a leader and a follower
do; the CPU per round on each side is what every batch costs a leader per follower (and each
follower once), before any protocol work.

For each: writes/s, the server process's CPU per write (user + system, every thread) and
entries per WAL fsync. The difference between the first two rows is what the RPC costs a
write on top of the node's own work, and their entries per fsync show how many writes one
fsync could cover: 64 writers calling in directly fill a batch each round, while requests that
arrive one RPC at a time gather far fewer.

Run: .venv/bin/python bench/write_path.py [--duration S] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kv_throughput import (
    Skipped,
    cluster_members,
    distlab_cluster,
    distlab_counters,
    ensure_distlab_serves,
    per_write_us,
    process_cpu_seconds,
    run_bench_kv,
    scrape_counters,
)
from lean_replication import one_envelope, open_stream, stream_server

from distlab.apps import kv
from distlab.cli.common import format_table
from distlab.ops.local_cluster import free_loopback_ports
from distlab.proto import peer_pb2
from distlab.runtime import loop

WRITERS = 64
VALUE = b"v" * 100
KEYS = 1000
COMMITTED, FSYNCS, _ = distlab_counters("raft")
SESSION = 7


# ---- the write path alone, in this process ----

def counter_total(name: str) -> float:
    """The sum over labels of a metric of this process's registry."""
    from prometheus_client import REGISTRY

    return sum(sample.value for metric in REGISTRY.collect() for sample in metric.samples
               if sample.name == name)


async def in_process_run(duration: float, writers: int) -> dict[str, float]:
    from distlab.runtime.config import load_node_config
    from distlab.runtime.node import Node

    with tempfile.TemporaryDirectory(prefix="distlab-write-path-") as data_dir:
        grpc_port, metrics_port = free_loopback_ports(2)
        config = load_node_config({
            "NODE_ID": "1", "CLUSTER_NODES": f"1=127.0.0.1:{grpc_port}",
            "LISTEN_ADDR": f"127.0.0.1:{grpc_port}", "METRICS_ADDR": f"127.0.0.1:{metrics_port}",
            "DATA_DIR": data_dir})
        node = Node(config)
        await node.start()
        try:
            assert node.host is not None
            group = node.host.groups[0]
            deadline = time.monotonic() + 30
            while group.status().role != "leader":
                if time.monotonic() > deadline:
                    raise Skipped("the one-node group elected no leader within 30 s")
                await asyncio.sleep(0.05)  # polling the group's own status for its election
            await group.propose(kv.open_session_command(SESSION))
            written = 0
            measuring = asyncio.Event()

            async def writer(number: int) -> None:
                nonlocal written
                sequence = number * 1_000_000_000
                while True:
                    sequence += 1
                    key = b"key-%d" % (sequence % KEYS)
                    await group.propose(kv.put_command(SESSION, sequence, key, VALUE))
                    if measuring.is_set():
                        written += 1

            tasks = [asyncio.create_task(writer(n)) for n in range(1, writers + 1)]
            await asyncio.sleep(0.5)  # warm-up: the writers reach their steady state
            before = resource.getrusage(resource.RUSAGE_SELF)
            committed, fsyncs = counter_total(COMMITTED), counter_total(FSYNCS)
            started = time.perf_counter()
            measuring.set()
            await asyncio.sleep(duration)
            measuring.clear()
            elapsed = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
            batched = counter_total(COMMITTED) - committed
            synced = counter_total(FSYNCS) - fsyncs
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await node.stop()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"writes_per_second": written / elapsed, "cpu_us": per_write_us(cpu, written),
            "entries_per_fsync": batched / synced if synced else float("nan")}


def measure_in_process(duration: float, writers: int = WRITERS) -> dict[str, float]:
    """The in-process run, in a fresh interpreter (its metrics and loop start clean)."""
    completed = subprocess.run([sys.executable, __file__, "--in-process", str(duration),
                                "--writers", str(writers)],
                               capture_output=True, text=True, timeout=duration + 120)
    if completed.returncode != 0:
        raise Skipped(f"the in-process run failed: {completed.stderr.strip()[-500:]}")
    result: dict[str, float] = json.loads(completed.stdout)
    return result


# ---- the same path behind the KV RPC, and the RPC floor ----

def measure_through_rpc(duration: float) -> dict[str, float]:
    with distlab_cluster(nodes=1) as cluster_file:
        ensure_distlab_serves(cluster_file)
        (member,) = cluster_members(cluster_file)
        cpu_before = process_cpu_seconds(member.pid)
        counters_before = scrape_counters(member.metrics_address, (COMMITTED, FSYNCS))
        summary, _ = run_bench_kv(["--cluster-file", str(cluster_file)], WRITERS, duration)
        cpu = process_cpu_seconds(member.pid) - cpu_before
        counters = scrape_counters(member.metrics_address, (COMMITTED, FSYNCS))
    writes = int(summary["ops"])
    synced = counters[FSYNCS] - counters_before[FSYNCS]
    return {"writes_per_second": float(summary["ops_per_second"]),
            "cpu_us": per_write_us(cpu, writes),
            "entries_per_fsync": ((counters[COMMITTED] - counters_before[COMMITTED]) / synced
                                  if synced else float("nan"))}


def measure_floor(duration: float, mode: str = "at-once") -> dict[str, float]:
    (port,) = free_loopback_ports(1)
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("kv_throughput.py")), "--serve-floor",
         str(port), "--floor-mode", mode], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "serving":
            raise Skipped("the floor server did not start")
        cpu_before = process_cpu_seconds(server.pid)
        summary, _ = run_bench_kv(["--cluster", f"1=127.0.0.1:{port}"], WRITERS, duration)
        cpu = process_cpu_seconds(server.pid) - cpu_before
    finally:
        server.kill()
        server.wait()
    return {"writes_per_second": float(summary["ops_per_second"]),
            "cpu_us": per_write_us(cpu, int(summary["ops"])), "entries_per_fsync": float("nan")}


# ---- one replication round's messages alone ----

APPEND_BYTES = 750  # an append of about five 100-byte puts
REPLY_BYTES = 30


async def stream_round_node(port: int, peer_port: int, leads: bool, rounds: int) -> None:
    """One side of the round trip, as a leader and a follower talk: each writes to a stream it
    opened to the other and reads the other's on its own server. The leading side sends an
    append and waits for the reply, `rounds` times; it prints both sides' CPU per round."""
    received: asyncio.Queue[peer_pb2.EnvelopeBatch] = asyncio.Queue()
    server = stream_server(port, received.put_nowait)
    await server.start()
    stream = await open_stream(peer_port)
    message = one_envelope(0, bytes(APPEND_BYTES if leads else REPLY_BYTES))
    await stream.write(message)  # the first round opens both streams; it is not counted
    await received.get()
    before = process_cpu_seconds(os.getpid())
    for _ in range(rounds):
        if leads:
            await stream.write(message)
            await received.get()
        else:
            await received.get()
            await stream.write(message)
    cpu = process_cpu_seconds(os.getpid()) - before
    print(json.dumps({"cpu_us": per_write_us(cpu, rounds)}), flush=True)
    stream.cancel()
    await server.stop(None)


def measure_stream_round(rounds: int) -> dict[str, float]:
    """CPU per replication round trip on each side, in two fresh processes."""
    ports = free_loopback_ports(2)
    sides = {role: subprocess.Popen(
        [sys.executable, __file__, "--stream-node", str(ports[i]), str(ports[1 - i]), role,
         str(rounds)], stdout=subprocess.PIPE, text=True,
        # The side that finishes first ends its streams; grpc would log the other's GOAWAY.
        env={**os.environ, "GRPC_VERBOSITY": "ERROR"})
        for i, role in enumerate(("follower", "leader"))}
    try:
        figures = {}
        for role, process in sides.items():
            out, _ = process.communicate(timeout=rounds / 100 + 60)
            if process.returncode != 0:
                raise Skipped(f"the {role} side of the stream round trip failed")
            figures[role] = json.loads(out.splitlines()[-1])["cpu_us"]
        return figures
    finally:
        for process in sides.values():
            if process.poll() is None:
                process.kill()
                process.wait()


# ---- report ----

PATHS = (
    ("write path alone", measure_in_process, "64 tasks call the group's propose in-process"),
    ("write path alone, 8", lambda duration: measure_in_process(duration, 8),
     "the same with 8 tasks: small batches"),
    ("through the KV RPC", measure_through_rpc, "distlab up --nodes 1, distlab bench kv"),
    ("RPC floor", measure_floor, "grpc.aio answering every Put at once"),
    ("RPC floor, batched", lambda duration: measure_floor(duration, "batched"),
     "answered by a task that takes everything queued per round, as a driver does"),
    ("RPC floor, batched, fsync", lambda duration: measure_floor(duration, "batched-fsync"),
     "that task also writes and fdatasyncs each round on a thread, as a leader's WAL"),
)
STREAM_ROUNDS = 5000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved passes (3)")
    parser.add_argument("--in-process", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
    parser.add_argument("--writers", type=int, default=WRITERS, help=argparse.SUPPRESS)
    parser.add_argument("--stream-node", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stream_node is not None:
        port, peer_port, role, rounds = args.stream_node
        loop.run(stream_round_node(int(port), int(peer_port), role == "leader", int(rounds)))
        return 0
    if args.in_process is not None:
        print(json.dumps(loop.run(in_process_run(args.in_process, args.writers))))
        return 0
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in PATHS}
    stream_rounds: list[dict[str, float]] = []
    try:
        for number in range(1, args.runs + 1):
            print(f"  pass {number}/{args.runs}", flush=True)
            for name, measure, _ in PATHS:
                results[name].append(measure(args.duration))
            stream_rounds.append(measure_stream_round(STREAM_ROUNDS))
    except Skipped as error:
        print(f"skipped: {error}")
        return 0

    def median(name: str, field: str) -> float:
        return statistics.median(run[field] for run in results[name])

    def fmt(value: float, digits: int = 0) -> str:
        return "-" if value != value else f"{value:.{digits}f}"  # NaN: not measured

    print(f"\n{len(VALUE)}-byte puts to one member, medians of "
          f"{args.runs} passes of {args.duration:g} s; CPU is the server process's, every "
          "thread, per write")
    rows: list[list[Any]] = [
        [name, fmt(median(name, "writes_per_second")), fmt(median(name, "cpu_us")),
         fmt(median(name, "entries_per_fsync"), 1), note] for name, _, note in PATHS]
    print(format_table(("path", "writes/s", "CPU µs/write", "entries/fsync", "how"), rows))
    alone, _, rpc, floor, *_ = (median(name, "cpu_us") for name, _, _ in PATHS)
    print(f"\nthrough the KV RPC over the write path alone: x{rpc / alone:.1f} CPU per write; "
          f"the RPC floor alone: x{floor / alone:.1f}")
    leader, follower = (statistics.median(run[role] for run in stream_rounds)
                        for role in ("leader", "follower"))
    print(f"\none replication round's messages alone, on the peer streams of two processes "
          f"({APPEND_BYTES}-byte append out, {REPLY_BYTES}-byte reply back, {STREAM_ROUNDS} "
          f"rounds, medians): {leader:.0f} µs CPU per round on the sending side, "
          f"{follower:.0f} µs on the replying side; a leader pays its side once per follower "
          "per batch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
