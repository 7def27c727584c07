"""`distlab cluster add|remove|transfer-leader`: membership changes, sent to the leader."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import grpc

from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, UsageError
from distlab.cli.status import collect_status
from distlab.cli.targets import add_cluster_arguments, resolve_cluster
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.runtime import loop
from distlab.runtime.config import ConfigError, parse_address
from distlab.wire.channels import open_channel

DEADLINE_SECONDS = 15.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cluster", help="change membership or hand over leadership",
        description="Membership changes go to the leader, one server at a time.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a node (started with --join) as a learner; it "
                             "becomes a voter once caught up")
    add.add_argument("node_id", type=int, metavar="ID")
    add.add_argument("address", metavar="ADDR", help="the new node's host:port")
    remove = actions.add_parser("remove", help="remove a member")
    remove.add_argument("node_id", type=int, metavar="ID")
    transfer = actions.add_parser("transfer-leader", help="hand leadership to a voter")
    transfer.add_argument("node_id", type=int, metavar="ID")
    for action in (add, remove, transfer):
        add_cluster_arguments(action)
        action.add_argument("--json", action="store_true", help="print the result as JSON")
        action.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.node_id <= 0:
        raise UsageError(f"node id must be a positive integer, got {args.node_id}")
    if args.action == "add":
        try:
            parse_address(args.address, "ADDR")
        except ConfigError as error:
            raise UsageError(str(error)) from error
    cluster = resolve_cluster(args.cluster, args.cluster_file)
    return loop.run(change(args, cluster))


async def change(args: argparse.Namespace, cluster: Any) -> int:
    rows = await collect_status(cluster, 1.0)
    leaders = [row for row in rows if row["role"] == "leader"]
    if not leaders:
        print("distlab cluster: no leader answers; try again once one is elected",
              file=sys.stderr)
        return EXIT_CHECK_FAILED
    leader = leaders[0]
    async with open_channel(leader["address"]) as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        try:
            if args.action == "add":
                reply = await admin.AddMember(admin_pb2.AddMemberRequest(
                    node_id=args.node_id, address=args.address), timeout=DEADLINE_SECONDS)
            elif args.action == "remove":
                reply = await admin.RemoveMember(
                    admin_pb2.RemoveMemberRequest(node_id=args.node_id), timeout=DEADLINE_SECONDS)
            else:
                reply = await admin.TransferLeader(
                    admin_pb2.TransferLeaderRequest(node_id=args.node_id),
                    timeout=DEADLINE_SECONDS)
        except grpc.aio.AioRpcError as error:
            print(f"distlab cluster: {args.action} failed: {error.code().name}: "
                  f"{error.details()}", file=sys.stderr)
            return EXIT_CHECK_FAILED
    result = {"leader": reply.leader_id, "voters": list(reply.voters),
              "learners": list(reply.learners)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"leader {result['leader']}; voters {result['voters']}; "
              f"learners {result['learners']}")
    return EXIT_OK
