"""`distlab node`: run one cluster member until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from distlab.cli.common import EXIT_OK, EXIT_USAGE
from distlab.runtime import loop
from distlab.runtime.config import ConfigError, load_node_config
from distlab.runtime.node import Node, StartupError, serve_until_signalled

# Flag destination -> configuration variable it overrides.
FLAG_VARIABLES = {
    "node_id": "NODE_ID",
    "cluster_nodes": "CLUSTER_NODES",
    "listen": "LISTEN_ADDR",
    "metrics": "METRICS_ADDR",
    "data_dir": "DATA_DIR",
    "otlp_endpoint": "OTLP_ENDPOINT",
    "join": "JOIN",
    "groups": "GROUPS",
    "engine": "ENGINE",
    "vclock_log": "VCLOCK_LOG",
    "truetime_epsilon_ms": "TRUETIME_EPSILON_MS",
    "clock_skew_ms": "CLOCK_SKEW_MS",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "node",
        help="run one cluster member",
        description="Run one cluster member. Flags override the environment variables named.",
    )
    parser.add_argument("--node-id", help="this node's id (NODE_ID)")
    parser.add_argument("--cluster-nodes", help="1=host:port,2=host:port,... (CLUSTER_NODES)")
    parser.add_argument("--listen", help="gRPC listen address (LISTEN_ADDR, 0.0.0.0:7000)")
    parser.add_argument("--metrics", help="Prometheus address (METRICS_ADDR, 0.0.0.0:9000)")
    parser.add_argument("--data-dir", help="durable state (DATA_DIR, ./data/node-<id>)")
    parser.add_argument("--otlp-endpoint", help="OTLP gRPC endpoint for spans (OTLP_ENDPOINT)")
    parser.add_argument("--join", action="store_const", const="true", default=None,
                        help="join an existing cluster (wait for `distlab cluster add`) instead "
                        "of bootstrapping one (JOIN)")
    parser.add_argument("--groups", help="number of KV shards, each a replicated group (GROUPS, 1)")
    parser.add_argument("--engine",
                        help="consensus engine of every group: raft or paxos (ENGINE, raft)")
    parser.add_argument("--vclock-log", metavar="FILE",
                        help="append every peer message sent and received, with its vector "
                             "clock, to FILE in ShiViz's log format (VCLOCK_LOG)")
    parser.add_argument("--truetime-epsilon-ms", metavar="MS",
                        help="TrueTime's uncertainty bound: milliseconds, 'sawtooth' (1 to 7 "
                             "ms over 30 s) or 'sawtooth:LOW:HIGH:PERIOD_S' "
                             "(TRUETIME_EPSILON_MS, 4)")
    parser.add_argument("--clock-skew-ms", metavar="MS",
                        help="an offset added to this node's wall clock, refused beyond "
                             "epsilon unless CLOCK_SKEW_UNSAFE=1 (CLOCK_SKEW_MS, 0)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    overrides = {variable: getattr(args, dest) for dest, variable in FLAG_VARIABLES.items()}
    try:
        config = load_node_config(os.environ, overrides)
    except ConfigError as error:
        print(f"distlab node: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=args.log_level,
        format=f"%(asctime)s node-{config.node_id} %(levelname)s %(name)s: %(message)s",
    )
    try:
        loop.run(serve_until_signalled(Node(config)))
    except (ConfigError, StartupError) as error:
        print(f"distlab node: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
