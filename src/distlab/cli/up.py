"""`distlab up`: a local cluster of node processes on loopback, no Docker needed.

On a data directory that already holds a cluster (its cluster.json and the nodes' state),
`distlab up` starts that cluster again: the members it has now (as `distlab cluster add` and
`remove` left the file), on the same ports and data directories.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
from pathlib import Path
from typing import Any

from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, UsageError, format_table
from distlab.cli.tracing import check_sampler_environment
from distlab.cli.waiting import progress_lines
from distlab.core.ids import NodeId
from distlab.ops.local_cluster import ClusterFileError, ClusterStartError, LocalCluster, NodeExit
from distlab.runtime import loop
from distlab.runtime.config import ENGINES, MAX_GROUPS

MAX_NODES = 9


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "up",
        help="run a local cluster of node processes",
        description="Start N nodes on free loopback ports, wait until each serves, write "
        "DIR/cluster.json, and run until Ctrl-C or SIGTERM, which stops every node. On a DIR "
        "that holds a cluster already, start its current members again, as they were.",
    )
    parser.add_argument("--nodes", type=int, default=None, metavar="N",
                        help="cluster size (3)")
    parser.add_argument("--groups", type=int, default=None, metavar="G",
                        help="KV shards, each a replicated group over every node (1)")
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="consensus engine of every group (the node's default: raft)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), metavar="DIR",
                        help="where nodes keep their state and logs (./data)")
    parser.add_argument("--otlp-endpoint", metavar="URL",
                        help="OTLP gRPC endpoint every node exports spans to")
    parser.add_argument("--clock-skews", metavar="MS,...",
                        help="offsets of the nodes' wall clocks in ms, one per node in id "
                             "order (each node's CLOCK_SKEW_MS; refused beyond "
                             "TRUETIME_EPSILON_MS unless CLOCK_SKEW_UNSAFE=1)")
    parser.add_argument("--json", action="store_true", help="print the cluster as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.nodes is not None and not 1 <= args.nodes <= MAX_NODES:
        raise UsageError(f"--nodes must be between 1 and {MAX_NODES}, got {args.nodes}")
    if args.groups is not None and not 1 <= args.groups <= MAX_GROUPS:
        raise UsageError(f"--groups must be between 1 and {MAX_GROUPS}, got {args.groups}")
    check_sampler_environment()
    extra_env = {"OTLP_ENDPOINT": args.otlp_endpoint} if args.otlp_endpoint else {}
    try:
        cluster = LocalCluster.restart(args.data_dir, extra_env)
    except ClusterFileError as error:
        raise UsageError(f"{error}; remove it to start a new cluster in {args.data_dir}"
                         ) from error
    if cluster is None:
        cluster = LocalCluster.plan(args.nodes or 3, args.data_dir, extra_env,
                                    groups=args.groups or 1, engine=args.engine)
    else:
        check_restart_arguments(args, cluster)
        members = ", ".join(str(node) for node in sorted([*cluster.nodes, *cluster.absent]))
        print(f"starting the cluster in {cluster.data_dir} again: members {members}",
              file=sys.stderr)
        for node in cluster.absent.values():
            print(f"distlab up: warning: node {node.node_id} is a member but {node.data_dir} "
                  "holds no state, so it is not started (a voter without its state could "
                  "lose acknowledged writes); start it by hand, or remove it with `distlab "
                  "cluster remove`", file=sys.stderr)
    if args.clock_skews is not None:
        cluster.clock_skews = parse_clock_skews(
            args.clock_skews, sorted([*cluster.nodes, *cluster.absent]))
    return loop.run(serve_cluster(cluster, args.json))


def parse_clock_skews(text: str, members: list[NodeId]) -> dict[NodeId, float]:
    """`--clock-skews 0,3,-2.5`: one offset in ms per member, in id order."""
    skews = []
    for part in text.split(","):
        try:
            skew = float(part)
        except ValueError:
            skew = math.nan
        if not math.isfinite(skew):
            raise UsageError(f"--clock-skews: {part.strip()!r} is not a number of "
                             "milliseconds")
        skews.append(skew)
    if len(skews) != len(members):
        raise UsageError(f"--clock-skews: {len(skews)} offsets for {len(members)} nodes; "
                         "give one per node, in id order")
    return dict(zip(members, skews, strict=True))


def check_restart_arguments(args: argparse.Namespace, cluster: LocalCluster) -> None:
    """A restart runs the cluster as it is: a size, group count or engine asked for that
    differs from the cluster's is an error, never applied silently."""
    size = len(cluster.nodes) + len(cluster.absent)
    differences = [
        f"{flag} {asked} (it has {has})" for flag, asked, has in (
            ("--nodes", args.nodes, size), ("--groups", args.groups, cluster.groups),
            ("--engine", args.engine, cluster.engine or "raft"))
        if asked is not None and asked != has]
    if differences:
        raise UsageError(f"{cluster.data_dir} holds a cluster already, which `distlab up` "
                         f"starts again as it is, not with {', '.join(differences)}; use "
                         "another --data-dir for a new cluster")


async def serve_cluster(cluster: LocalCluster, as_json: bool) -> int:
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(signum, stop.set)
    try:
        async with progress_lines("distlab up", lambda seconds: (
                f"waiting for {len(cluster.nodes)} nodes to serve ({seconds:.0f} s)")):
            await cluster.start()
    except ClusterStartError as error:
        print(f"distlab up: error: {error}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    watch = asyncio.create_task(cluster.watch_exits(report_exit))
    try:
        if as_json:
            print(json.dumps(cluster.describe(), indent=2), flush=True)
        else:
            rows = [[n.node_id, n.address, n.metrics_address, n.pid]
                    for n in cluster.nodes.values()]
            print(format_table(("id", "grpc", "metrics", "pid"), rows))
            print(f"\n{cluster.groups} group{'s' if cluster.groups != 1 else ''} over every "
                  "node" + (f", engine {cluster.engine}" if cluster.engine else ""))
            print(f"\ncluster file: {cluster.data_dir / 'cluster.json'}")
            print("try: distlab status --cluster-file "
                  f"{cluster.data_dir / 'cluster.json'}    (Ctrl-C stops the cluster)", flush=True)
        await stop.wait()
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        await cluster.stop()
    return EXIT_OK


def report_exit(node_exit: NodeExit) -> None:
    print(f"distlab up: {node_exit.describe()}", file=sys.stderr, flush=True)
