"""`distlab status`: every node's role, term, leader and indexes, or `down` when it is silent.

Each node is asked directly (Admin.Status, with a deadline), so the table shows what every
node says of itself rather than what one node believes of the others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import grpc

from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, format_table
from distlab.cli.targets import add_cluster_arguments, resolve_cluster
from distlab.core.ids import NodeId
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.runtime import loop
from distlab.runtime.config import Address
from distlab.wire.channels import open_channel

COLUMNS = ("id", "address", "health", "pid", "role", "term", "leader", "commit", "applied")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show every node's role, term, leader and indexes",
        description="Ask every node for its status. Exit status 1 when any node is down.",
    )
    add_cluster_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=1.0, metavar="S",
                        help="deadline for each node's answer (default 1 s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cluster = resolve_cluster(args.cluster, args.cluster_file)
    rows = loop.run(collect_status(cluster, args.timeout))
    if args.json:
        print(json.dumps({"nodes": rows}, indent=2))
    else:
        print(format_table(COLUMNS, [[row[column] for column in COLUMNS] for row in rows]))
        for row in rows:
            if row["error"]:
                print(f"node {row['id']} is down: {row['error']}")
    return EXIT_OK if all(row["health"] == "up" for row in rows) else EXIT_CHECK_FAILED


async def collect_status(
    cluster: dict[NodeId, Address], deadline_seconds: float
) -> list[dict[str, Any]]:
    return list(
        await asyncio.gather(
            *(node_status(node_id, address, deadline_seconds)
              for node_id, address in sorted(cluster.items()))
        )
    )


async def node_status(node_id: NodeId, address: Address, deadline_seconds: float
                      ) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": int(node_id), "address": str(address), "health": "down", "pid": None,
        "role": None, "term": None, "leader": None, "commit": None, "applied": None,
        "error": None,
    }
    async with open_channel(address) as channel:
        try:
            status = await admin_pb2_grpc.AdminStub(channel).Status(
                admin_pb2.StatusRequest(), timeout=deadline_seconds
            )
        except grpc.aio.AioRpcError as error:
            row["error"] = f"{error.code().name}: {error.details()}"
            return row
    row.update(
        health="up", pid=status.pid, role=status.role, term=status.term,
        leader=status.leader_id or None, commit=status.commit_index,
        applied=status.applied_index,
    )
    if status.node_id != node_id:
        row["health"] = "wrong-node"
        row["error"] = f"{address} answers as node {status.node_id}, not {node_id}"
    return row
