"""`distlab cluster add|remove|transfer-leader`: membership changes, sent to each group's
leader (every group, or the one named with --group).

When the cluster was found in a cluster file (--cluster-file, or ./data/cluster.json), a
change made in every group is written back to it, so the file keeps listing the members the
cluster has now and `distlab up` restarts those."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, UsageError
from distlab.cli.targets import add_cluster_arguments, cluster_file_in_use, resolve_cluster
from distlab.core.ids import NodeId
from distlab.ops.local_cluster import ClusterFileError, forget_member, record_member
from distlab.ops.membership import GroupChange, change_membership
from distlab.runtime import loop
from distlab.wire.addresses import ConfigError, parse_address


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cluster", help="change membership or hand over leadership",
        description="Membership changes go to the leader of each group, one server at a "
        "time, found from every member's status and the NOT_LEADER hints. When the cluster "
        "comes from a cluster file (--cluster-file, or data/cluster.json), an add or remove "
        "made in every group is written back to it, so `distlab up` restarts the members the "
        "cluster has now.")
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
        action.add_argument("--group", type=int, metavar="N",
                            help="change only group N (default: every group)")
        action.add_argument("--json", action="store_true", help="print the result as JSON")
        action.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.node_id <= 0:
        raise UsageError(f"node id must be a positive integer, got {args.node_id}")
    if args.group is not None and args.group < 0:
        raise UsageError(f"--group must be a group number (0 or more), got {args.group}")
    address = None
    if args.action == "add":
        try:
            address = str(parse_address(args.address, "ADDR"))
        except ConfigError as error:
            raise UsageError(str(error)) from error
    cluster = resolve_cluster(args.cluster, args.cluster_file)
    changes = loop.run(change_membership(cluster, args.action, NodeId(args.node_id), address,
                                         args.group))
    file_note = update_cluster_file(args, address, changes)
    if args.json:
        # The top-level fields are the first group's, as before there were groups.
        first = changes[0]
        print(json.dumps({"leader": first.leader, "voters": list(first.voters),
                          "learners": list(first.learners),
                          "groups": [change.as_json() for change in changes]}))
    for change in changes:
        if change.error is not None:
            print(f"distlab cluster: {args.action} failed in group {change.group}: "
                  f"{change.error}", file=sys.stderr)
        elif not args.json:
            print(f"group {change.group}: leader {change.leader}; voters "
                  f"{list(change.voters)}; learners {list(change.learners)}")
    if file_note is not None:
        print(file_note, file=sys.stderr if args.json else sys.stdout)
    return EXIT_CHECK_FAILED if any(change.error for change in changes) else EXIT_OK


def update_cluster_file(args: argparse.Namespace, address: str | None,
                        changes: list[GroupChange]) -> str | None:
    """Write a membership change made in every group to the cluster file it was read from;
    what was done, in one line (None: nothing to say)."""
    path = cluster_file_in_use(args.cluster, args.cluster_file)
    if (path is None or args.action == "transfer-leader" or args.group is not None
            or any(change.error for change in changes)):
        return None
    node = NodeId(args.node_id)
    try:
        if args.action == "add":
            assert address is not None
            record_member(path, node, address)
            return (f"{path}: node {node} added; `distlab up` restarts it from "
                    f"{path.parent / f'node-{node}'}")
        forget_member(path, node)
    except ClusterFileError as error:
        return f"distlab cluster: the change is made, but {error}"
    return f"{path}: node {node} removed"
