"""What vector clocks cost a peer message: off, on (stamped and carried, as with tracing), and
on with a ShiViz log (VCLOCK_LOG).

Two measurements per configuration, each in a fresh process, the configurations' passes
interleaved:

- path: CPU nanoseconds per message of the code a clock touches, run for real in one
  process: `PeerTransport.send` (into a sender that only queues), and `PeerServicer`'s
  handling of a received batch of 256 envelopes (into an instance that takes them);
- loopback: two nodes' transports and Peer services over gRPC on 127.0.0.1 in one process,
  20000 messages of 100 bytes in bursts; the process's CPU microseconds per message, from
  the first send until the last one arrived.

With `--before SRC` (the `src` directory of another build, such as `git worktree add
/tmp/base HEAD~3` then `/tmp/base/src`), "off" is also measured on that build: the baseline
for "costs nothing when off". Ratios are each configuration's median over the baseline's
(the other build's off when given, else this build's off); medians of --runs passes.

Run: .venv/bin/python bench/vclock_cost.py [--runs N] [--before SRC]
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
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
MESSAGES = 20_000
BURST = 200
PATH_SENDS = 200_000
PATH_BATCHES = 800
BATCH = 256
PAYLOAD = b"x" * 100


def child(config: str) -> dict[str, float]:
    """Measure one configuration in this process: 'off', 'on' or 'log'."""
    from distlab.core.ids import NodeId
    from distlab.proto import peer_pb2
    from distlab.runtime.grpc.channels import PeerChannels
    from distlab.runtime.peer import PeerRouter, PeerServicer, PeerTransport

    tmp = Path(tempfile.mkdtemp(prefix="vclock-bench-"))

    def clock_for(node: int) -> Any:
        if config == "off":
            return None
        from distlab.runtime.peer import PeerClock, ShivizLog

        log = ShivizLog(tmp / f"{node}.log") if config == "log" else None
        clock = PeerClock(NodeId(node), log)
        clock.describe_with("bench", lambda payload: f"{len(payload)} bytes")
        return clock

    def clocked(node: int) -> dict[str, Any]:
        clock = clock_for(node)
        return {} if clock is None else {"clock": clock}

    class QueueOnly:
        def __init__(self) -> None:
            self.queued: list[Any] = []

        def enqueue(self, outgoing: Any) -> bool:
            self.queued.append(outgoing)
            if len(self.queued) > 4096:
                self.queued.clear()
            return True

    async def path() -> tuple[float, float]:
        transport = PeerTransport(NodeId(1), 1, PeerChannels({}), **clocked(1))
        transport._senders[NodeId(2)] = QueueOnly()  # type: ignore[assignment]
        started = time.process_time_ns()
        for _ in range(PATH_SENDS):
            transport.send(NodeId(2), "bench", 0, PAYLOAD)
        send_ns = (time.process_time_ns() - started) / PATH_SENDS
        router = PeerRouter()
        router.register("bench", 0, lambda sender, payload: True,
                        lambda sender, payload: True)
        servicer = PeerServicer(NodeId(2), 1, router, **clocked(2))
        batch = peer_pb2.EnvelopeBatch()
        for n in range(BATCH):
            envelope = batch.envelopes.add(service="bench", group=0, payload=PAYLOAD)
            if config != "off":
                envelope.vector_clock.update({"node-1": n + 1, "node-2": n})
        started = time.process_time_ns()
        for _ in range(PATH_BATCHES):
            servicer._receive(NodeId(1), batch)
        receive_ns = (time.process_time_ns() - started) / (PATH_BATCHES * BATCH)
        return send_ns, receive_ns

    async def loopback() -> float:
        import grpc

        from distlab.ops.local_cluster import free_loopback_ports
        from distlab.proto import peer_pb2_grpc
        from distlab.runtime.config import Address

        ports = free_loopback_ports(2)
        addresses = {NodeId(1): Address("127.0.0.1", ports[0]),
                     NodeId(2): Address("127.0.0.1", ports[1])}
        arrived = 0
        target = 1
        reached = asyncio.Event()

        def take(sender: NodeId, payload: bytes) -> bool:
            nonlocal arrived
            arrived += 1
            if arrived >= target:
                reached.set()
            return True

        async def until(count: int) -> None:
            nonlocal target
            target = count
            if arrived < count:
                reached.clear()
                await asyncio.wait_for(reached.wait(), 60)

        router = PeerRouter()
        router.register("bench", 0, take, take)
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        peer_pb2_grpc.add_PeerServicer_to_server(
            PeerServicer(NodeId(2), 1, router, **clocked(2)), server)
        server.add_insecure_port(str(addresses[NodeId(2)]))
        await server.start()
        channels = PeerChannels({NodeId(2): addresses[NodeId(2)]})
        transport = PeerTransport(NodeId(1), 1, channels, **clocked(1))
        # Warm up: open the stream.
        transport.send(NodeId(2), "bench", 0, PAYLOAD)
        await until(1)
        arrived = 0
        started = time.process_time()
        for sent in range(0, MESSAGES, BURST):
            for _ in range(min(BURST, MESSAGES - sent)):
                transport.send(NodeId(2), "bench", 0, PAYLOAD)
            await until(sent)  # one burst in flight while the next is queued
        await until(MESSAGES)
        cpu_us = (time.process_time() - started) * 1e6 / MESSAGES
        await transport.close()
        await server.stop(None)
        await channels.close()
        return cpu_us

    async def main() -> dict[str, float]:
        send_ns, receive_ns = await path()
        return {"send_ns": send_ns, "receive_ns": receive_ns, "loopback_us": await loopback()}

    return asyncio.run(main())


def measure(config: str, src: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    output = subprocess.run([sys.executable, __file__, "--child", config], env=env,
                            check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", type=Path, metavar="SRC",
                        help="the src directory of another build, measured with clocks off")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    configs: list[tuple[str, str, Path]] = []
    if args.before is not None:
        configs.append(("before: off", "off", args.before.resolve()))
    configs += [("off", "off", SRC), ("on", "on", SRC), ("on + VCLOCK_LOG", "log", SRC)]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in configs}
    for run in range(args.runs):
        rotated = configs[run % len(configs):] + configs[:run % len(configs)]
        for name, config, src in rotated:
            results[name].append(measure(config, src))
            print(f"  pass {run + 1}/{args.runs}: {name} done", file=sys.stderr)
    baseline = configs[0][0]
    medians = {name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
               for name, rows in results.items()}
    print(f"vector clock cost per peer message, medians of {args.runs} passes "
          f"(ratio to '{baseline}')")
    print(f"{'configuration':<18} {'send ns':>10} {'ratio':>6} {'receive ns':>11} {'ratio':>6} "
          f"{'loopback CPU us':>16} {'ratio':>6}")
    base = medians[baseline]
    for name, row in medians.items():
        print(f"{name:<18} {row['send_ns']:>10.0f} {row['send_ns'] / base['send_ns']:>6.2f} "
              f"{row['receive_ns']:>11.0f} {row['receive_ns'] / base['receive_ns']:>6.2f} "
              f"{row['loopback_us']:>16.1f} {row['loopback_us'] / base['loopback_us']:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
