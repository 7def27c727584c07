"""`distlab status`: every node's engine, and per group its role, term, leader, indexes and
membership, or `down` when the node is silent; then what is wrong, if anything.

Each node is asked directly (Admin.Status, with a deadline), so the table shows what every
node says of itself rather than what one node believes of the others. The exit status is 1
when anything is wrong: a node is down or no longer a member, or a group has no leader that
a majority of its voters agree on.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from typing import Any

from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, format_table
from distlab.cli.targets import add_cluster_arguments, resolve_cluster
from distlab.ops.status import NodeReport, assess, collect_status
from distlab.runtime import loop

COLUMNS = ("id", "address", "health", "pid", "engine", "group", "role", "term", "leader",
           "commit", "applied", "voters", "learners")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show every node's engine, and per group its role, term, leader, indexes and "
        "members",
        description="Ask every node for its status. Exit status 1 when any node is down or "
        "not a member, or any group has no leader that a majority of its voters agree on.",
    )
    add_cluster_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=1.0, metavar="S",
                        help="deadline for each node's answer (default 1 s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cluster = resolve_cluster(args.cluster, args.cluster_file)
    health = assess(loop.run(collect_status(cluster, args.timeout)))
    if args.json:
        print(json.dumps({"nodes": [report.as_json() for report in health.reports],
                          "groups": health.groups_json(),
                          "healthy": health.healthy,
                          "problems": list(health.problems),
                          "notes": list(health.notes)}, indent=2))
    else:
        print(status_table(health.reports))
        for line in (*health.problems, *health.notes):
            print(line)
    return EXIT_OK if health.healthy else EXIT_CHECK_FAILED


def status_table(reports: Sequence[NodeReport]) -> str:
    """One line per group of each node; a node's own columns only on its first line."""
    rows: list[list[object]] = []
    for report in reports:
        node = [report.id, report.address, report.health, report.pid, report.engine]
        if not report.groups:
            rows.append([*node, *[None] * (len(COLUMNS) - len(node))])
        for index, group in enumerate(report.groups):
            rows.append([*(node if index == 0 else [""] * len(node)), group.group, group.role,
                         group.term, group.leader, group.commit, group.applied,
                         id_list(group.voters), id_list(group.learners)])
    return format_table(COLUMNS, rows)


def id_list(ids: Iterable[int]) -> str | None:
    """`1,3,4`, or None (printed `-`) for none."""
    return ",".join(str(node) for node in sorted(ids)) or None
