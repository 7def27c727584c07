"""The least a replicated put costs over grpc.aio on this machine, beside distlab in the same run.

A lean leader/follower design, not a store: three processes on loopback, the leader fixed,
every put durable on all three before it is answered, and nothing else (no elections, no
sessions, no state machine, no snapshots, no metrics):

- the leader serves KV OpenSession and Put (distlab's own service and messages, so the same
  `distlab bench kv` load drives it) and queues each put's bytes;
- one replication task takes everything queued as one batch: it writes the batch to its
  preallocated log and starts an fdatasync on a worker thread, sends the batch as one
  message on a long-lived peer stream to each follower, and answers the batch's puts once
  its own fdatasync is done and the first follower has acknowledged; puts that arrive
  meanwhile form the next batch, with no timer;
- each follower writes the batch to its own preallocated log, fdatasyncs it on its loop and
  acknowledges on its own stream to the leader.

distlab (`distlab up --nodes 3`, Raft, GROUPS=1) and this design are measured in interleaved
passes, each on fresh processes, at 64 and at 1 client: writes/s, p50, each process's CPU per
write (user + system from /proc/PID/stat) and entries per replication message. What distlab
spends above this design's figures is what its own layers cost a write.

Run: .venv/bin/python bench/lean_replication.py [--duration S] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from kv_throughput import (
    CLIENT_COUNTS,
    Build,
    Skipped,
    distlab_cluster,
    ensure_distlab_serves,
    measure_distlab,
    per_write_us,
    preallocated_log,
    process_cpu_seconds,
    queued_rounds,
    run_bench_kv,
)

from distlab.cli.common import format_table
from distlab.ops.local_cluster import free_loopback_ports
from distlab.proto import kv_pb2, peer_pb2
from distlab.runtime import loop

# How often the leader prints its batch counts (a print per batch would cost it a write each).
COUNTS_INTERVAL_SECONDS = 0.25
STREAM_METHOD = "/distlab.v1.Peer/Stream"


# ---- the design's processes ----

def stream_server(port: int, on_batch: Any) -> grpc.aio.Server:
    """A server whose Peer.Stream hands every batch it reads to `on_batch`."""
    async def receive(batches: AsyncIterator[peer_pb2.EnvelopeBatch], context: Any
                      ) -> peer_pb2.PeerAck:
        async for batch in batches:
            on_batch(batch)
        return peer_pb2.PeerAck()

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("distlab.v1.Peer", {
        "Stream": grpc.stream_unary_rpc_method_handler(
            receive, request_deserializer=peer_pb2.EnvelopeBatch.FromString,
            response_serializer=peer_pb2.PeerAck.SerializeToString)}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    return server


async def open_stream(port: int) -> Any:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    await asyncio.wait_for(channel.channel_ready(), 30)
    return channel.stream_unary(STREAM_METHOD,
                                request_serializer=peer_pb2.EnvelopeBatch.SerializeToString,
                                response_deserializer=peer_pb2.PeerAck.FromString)()


def one_envelope(number: int, payload: bytes) -> peer_pb2.EnvelopeBatch:
    batch = peer_pb2.EnvelopeBatch()
    batch.envelopes.add(service="raft", group=number, payload=payload)
    return batch


async def run_follower(port: int, leader_port: int, directory: str) -> None:
    fd = preallocated_log(directory)
    received: asyncio.Queue[peer_pb2.EnvelopeBatch] = asyncio.Queue()
    server = stream_server(port, received.put_nowait)
    await server.start()
    print("serving", flush=True)
    to_leader = await open_stream(leader_port)
    offset = 0
    while True:
        batch = await received.get()
        envelope = batch.envelopes[0]
        offset += os.pwrite(fd, envelope.payload, offset)
        os.fdatasync(fd)
        await to_leader.write(one_envelope(envelope.group, b""))


async def run_leader(port: int, peer_port: int, follower_ports: list[int], directory: str
                     ) -> None:
    fd = preallocated_log(directory)
    queued: list[tuple[bytes, asyncio.Future[None]]] = []
    arrived = asyncio.Event()
    acknowledged: dict[int, asyncio.Event] = {}

    async def put(request: kv_pb2.PutRequest, context: Any) -> kv_pb2.PutResponse:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queued.append((request.SerializeToString(), future))
        arrived.set()
        await future
        return kv_pb2.PutResponse()

    async def open_session(request: kv_pb2.OpenSessionRequest, context: Any
                           ) -> kv_pb2.OpenSessionResponse:
        return kv_pb2.OpenSessionResponse()

    def on_ack(batch: peer_pb2.EnvelopeBatch) -> None:
        waiting = acknowledged.get(batch.envelopes[0].group)
        if waiting is not None:  # the first acknowledgement commits; the second is late
            waiting.set()

    acks = stream_server(peer_port, on_ack)
    await acks.start()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("distlab.v1.KV", {
        "Put": grpc.unary_unary_rpc_method_handler(
            put, request_deserializer=kv_pb2.PutRequest.FromString,
            response_serializer=kv_pb2.PutResponse.SerializeToString),
        "OpenSession": grpc.unary_unary_rpc_method_handler(
            open_session, request_deserializer=kv_pb2.OpenSessionRequest.FromString,
            response_serializer=kv_pb2.OpenSessionResponse.SerializeToString)}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    followers = [await open_stream(p) for p in follower_ports]
    print("serving", flush=True)
    offset = batches = entries = 0

    async def print_counts() -> None:
        while True:
            await asyncio.sleep(COUNTS_INTERVAL_SECONDS)
            print(json.dumps({"batches": batches, "entries": entries}), flush=True)

    async def replicate() -> None:
        nonlocal offset, batches, entries
        async for batch in queued_rounds(queued, arrived):
            batches += 1
            entries += len(batch)
            data = b"".join(len(put).to_bytes(4, "big") + put for put, _ in batch)
            offset += os.pwrite(fd, data, offset)
            own_sync = asyncio.ensure_future(asyncio.to_thread(os.fdatasync, fd))
            acked = acknowledged[batches] = asyncio.Event()
            message = one_envelope(batches, data)
            for stream in followers:
                await stream.write(message)
            await own_sync
            await acked.wait()
            del acknowledged[batches]
            for _, future in batch:
                future.set_result(None)

    await asyncio.gather(print_counts(), replicate())


# ---- measuring ----

def spawn(*arguments: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, __file__, *arguments], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "serving":
        raise Skipped(f"the lean {arguments[1]} did not start")
    return process


def measure_lean(clients: int, duration: float) -> dict[str, float]:
    kv_port, ack_port, *follower_ports = free_loopback_ports(4)
    with tempfile.TemporaryDirectory(prefix="distlab-lean-") as directory:
        processes = [spawn("--role", "follower", str(p), str(ack_port), directory)
                     for p in follower_ports]
        try:
            processes.insert(0, spawn("--role", "leader", str(kv_port), str(ack_port),
                                      *map(str, follower_ports), "--dir", directory))
            before = [process_cpu_seconds(p.pid) for p in processes]
            summary, client_cpu = run_bench_kv(["--cluster", f"1=127.0.0.1:{kv_port}"],
                                               clients, duration)
            cpu = [process_cpu_seconds(p.pid) - b for p, b in zip(processes, before,
                                                                   strict=True)]
            time.sleep(2 * COUNTS_INTERVAL_SECONDS)  # the leader prints its final counts
        finally:
            for process in processes:
                process.kill()
            outputs = [process.communicate()[0] for process in processes]
    writes = int(summary["ops"])
    counts = [json.loads(line) for line in outputs[0].splitlines() if line.startswith("{")]
    last = counts[-1] if counts else {"batches": 0, "entries": 0}
    return {"writes_per_second": float(summary["ops_per_second"]),
            "p50": summary["latency_ms"]["p50"],
            "leader": per_write_us(cpu[0], writes),
            "follower": statistics.mean(per_write_us(c, writes) for c in cpu[1:]),
            "client": per_write_us(client_cpu, writes),
            "entries_per_message": last["entries"] / last["batches"] if last["batches"]
            else float("nan")}


def measure_distlab_once(clients: int, duration: float) -> dict[str, float]:
    build = Build("distlab")
    with distlab_cluster(build=build) as cluster_file:
        ensure_distlab_serves(cluster_file)
        measured = measure_distlab(cluster_file, clients, duration, 1, build)
    return {"writes_per_second": measured.writes_per_second,
            "p50": measured.summary["latency_ms"]["p50"],
            "leader": measured.leader_cpu_us, "follower": measured.follower_cpu_us,
            "client": measured.client_cpu_us,
            "entries_per_message": measured.entries_per_message or float("nan")}


SYSTEMS = (("lean design", measure_lean), ("distlab", measure_distlab_once))
FIELDS = ("writes_per_second", "p50", "leader", "follower", "client", "entries_per_message")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved passes (3)")
    parser.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role is not None:
        role, port, peer_port, *rest = args.role
        if role == "follower":
            loop.run(run_follower(int(port), int(peer_port), rest[0]))
        else:
            loop.run(run_leader(int(port), int(peer_port), [int(p) for p in rest], args.dir))
        return 0
    results: dict[tuple[str, int], list[dict[str, float]]] = {
        (name, clients): [] for name, _ in SYSTEMS for clients in CLIENT_COUNTS}
    try:
        for number in range(1, args.runs + 1):
            for name, measure in SYSTEMS:
                print(f"  pass {number}/{args.runs}: {name}", flush=True)
                for clients in CLIENT_COUNTS:
                    results[name, clients].append(measure(clients, args.duration))
    except Skipped as error:
        print(f"skipped: {error}")
        return 0

    def median(name: str, clients: int, field: str) -> float:
        return statistics.median(run[field] for run in results[name, clients])

    print(f"\n100-byte puts, 3 processes on loopback, fsync on all; medians of {args.runs} "
          f"passes of {args.duration:g} s; CPU is user + system per acknowledged write")
    rows = [[name, clients, f"{median(name, clients, 'writes_per_second'):.0f}",
             f"{median(name, clients, 'p50'):.2f}",
             *(f"{median(name, clients, field):.0f}" for field in ("leader", "follower",
                                                                   "client")),
             f"{median(name, clients, 'entries_per_message'):.1f}"]
            for clients in CLIENT_COUNTS for name, _ in SYSTEMS]
    print(format_table(("system", "clients", "writes/s", "p50 ms", "leader µs", "follower µs",
                        "client µs", "entries/msg"), rows))
    print("\ndistlab over the lean design, per pass (writes/s; leader and follower CPU per "
          "write):")
    for clients in CLIENT_COUNTS:
        lean, ours = results["lean design", clients], results["distlab", clients]
        passes = "  ".join(
            f"{o['writes_per_second'] / m['writes_per_second']:.2f}/"
            f"{o['leader'] / m['leader']:.2f}/{o['follower'] / m['follower']:.2f}"
            for m, o in zip(lean, ours, strict=True))
        print(f"  {clients:>2} clients: {passes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
