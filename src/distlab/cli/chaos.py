"""`distlab chaos`: break a running cluster on purpose, then look at what it did.

    distlab chaos kill|stop|start|pause|unpause|restart TARGET...   one container per target
    distlab chaos isolate TARGET...       disconnect the containers from their networks
    distlab chaos partition GROUP GROUP...   e.g. `partition 1,2 3`: cut {1,2} off from {3}
    distlab chaos heal                    undo isolate and partition
    distlab chaos txn-fault NODE [FAULT...]   arm a node with transaction faults by name
                                          (e.g. coordinator-crash-after-commit-logged);
                                          none given disarms it
    distlab chaos status                  every node's role, term, leader and indexes
    distlab chaos demo                    write, kill group 0's leader's container, check
                                          that nothing was lost

A TARGET is a node id (`2`) or a compose service name (`node2`, `coordinator`, `worker1`).
Container faults go through the `docker` command on the compose project's containers.
Partitions go through each node's Admin.SetFault RPC, which replaces the set of peers the node
drops peer traffic to and from (in every group); a node no group names is cut from nobody.
Every action prints what it did and then the cluster's status, read from the nodes' published
addresses (127.0.0.1:7001-7003 by default, or $DISTLAB_PUBLISH_HOST:7001-7003; --cluster,
--cluster-file or $DISTLAB_CLUSTER for other clusters). The faults are those the tester's
nemesis applies (distlab.ops.faults).

Exit status: 0 every fault applied, 1 some could not be (the output says which), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, UsageError
from distlab.cli.status import status_table
from distlab.cli.targets import add_cluster_arguments, resolve_members
from distlab.core.ids import NodeId
from distlab.ops import docker
from distlab.ops.chaos_demo import DemoFailed, kill_leader_demo
from distlab.ops.faults import ComposeContainers, FaultError, FaultInjector, describe_all
from distlab.ops.status import NodeReport, assess, collect_status, wait_answering
from distlab.runtime import loop
from distlab.runtime.txn.driver import TXN_FAULTS
from distlab.wire.addresses import Address, ConfigError

SET_FAULT_DEADLINE_SECONDS = 5.0
# After start, restart, unpause or heal, how long to wait for the nodes to answer again
# before printing the status (the status is printed either way).
RECOVERY_WAIT_SECONDS = 15.0

SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
NODE_SERVICE = re.compile(r"^node([1-9][0-9]*)$")


@dataclass(frozen=True, slots=True)
class Target:
    """A compose service, and the node id it runs when it is a cluster member."""

    service: str
    node_id: NodeId | None


def parse_target(text: str) -> Target:
    """`2` or `node2` (node 2, service node2); any other service name stands for itself."""
    text = text.strip()
    if text.isdigit():
        if int(text) == 0:
            raise UsageError("node ids are positive integers, got 0")
        return Target(f"node{int(text)}", NodeId(int(text)))
    if not SERVICE_NAME.match(text):
        raise UsageError(f"TARGET must be a node id or a compose service name, got {text!r}")
    node = NODE_SERVICE.match(text)
    return Target(text, NodeId(int(node.group(1))) if node else None)


def parse_partition(groups: Sequence[str], members: Sequence[NodeId]
                    ) -> dict[NodeId, set[NodeId]]:
    """Each node's isolated set for `groups` such as ["1,2", "3"]: every node of a group is
    cut off from every node of the other groups; members no group names are cut from nobody.
    """
    if len(groups) < 2:
        raise UsageError("a partition needs at least two groups, e.g. `partition 1,2 3`")
    seen: dict[NodeId, int] = {}
    for index, group in enumerate(groups):
        items = [item for item in group.split(",") if item.strip()]
        if not items:
            raise UsageError(f"empty group {group!r} in the partition")
        for item in items:
            target = parse_target(item)
            if target.node_id is None:
                raise UsageError(f"a partition groups nodes; {item!r} is not a node")
            if target.node_id not in members:
                raise UsageError(f"node {target.node_id} is not in the cluster "
                                 f"({', '.join(str(m) for m in members)})")
            if target.node_id in seen:
                raise UsageError(f"node {target.node_id} is in two groups")
            seen[target.node_id] = index
    isolated: dict[NodeId, set[NodeId]] = {member: set() for member in members}
    for node, group_index in seen.items():
        isolated[node] = {other for other, other_index in seen.items()
                          if other_index != group_index}
    return isolated


@dataclass(slots=True)
class Outcome:
    """What one invocation did, line by line, and whether every step worked."""

    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def ok(self, line: str) -> None:
        self.done.append(line)

    def fail(self, line: str) -> None:
        self.failed.append(line)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "chaos", help="inject faults: kill, pause, isolate or partition nodes, then heal",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    helps = {
        "kill": "SIGKILL the containers (they stay down until `start`)",
        "stop": "stop the containers cleanly (SIGTERM)",
        "start": "start stopped or killed containers",
        "pause": "freeze every process of the containers",
        "unpause": "thaw paused containers",
        "restart": "stop and start the containers",
        "isolate": "disconnect the containers from every network (until `heal`)",
    }
    for name, help_text in helps.items():
        action = actions.add_parser(name, help=help_text, description=help_text)
        action.add_argument("targets", nargs="+", metavar="TARGET",
                            help="node id or compose service name (node1, coordinator, ...)")
        _common_arguments(action)
    partition = actions.add_parser(
        "partition", help="cut groups of nodes off from each other (Admin.SetFault)",
        description="Each GROUP is a comma-separated list of node ids; every node of a group "
        "drops Raft traffic to and from the nodes of the other groups. Replaces any earlier "
        "partition.")
    partition.add_argument("groups", nargs="+", metavar="GROUP")
    _common_arguments(partition)
    txn_fault = actions.add_parser(
        "txn-fault", help="arm a node with transaction faults (Admin.SetFault)",
        description="Replace the transaction faults NODE is armed with: a crash at a moment "
        "of the commit protocol, or a no vote. With no FAULT the node is disarmed. A crashed "
        "node stays down until `start` (or a restart of its process).",
        epilog=f"Faults: {', '.join(TXN_FAULTS)}.")
    txn_fault.add_argument("node", metavar="NODE", help="node id (or nodeN)")
    txn_fault.add_argument("faults", nargs="*", metavar="FAULT")
    _common_arguments(txn_fault)
    heal = actions.add_parser("heal", help="reconnect isolated containers and clear partitions")
    _common_arguments(heal)
    status = actions.add_parser("status", help="every node's role, term, leader and indexes")
    _common_arguments(status)
    demo = actions.add_parser(
        "demo", help="write, kill the leader's container, show that nothing was lost",
        description="Write keys in a loop, kill the container of group 0's leader, wait for "
        "every group to have a leader again, check that every acknowledged write reads back, "
        "then start the old leader again and wait for it to catch up in every group. Exit "
        "status 1 when a write was lost.")
    demo.add_argument("--writers", type=int, default=8, metavar="N",
                      help="concurrent writers (8)")
    demo.add_argument("--writes", type=int, default=200, metavar="N",
                      help="acknowledged writes before the kill, and again after it (200)")
    demo.add_argument("--timeout", type=float, default=60.0, metavar="S",
                      help="budget for each phase of the demo (60 s)")
    _common_arguments(demo)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=os.environ.get("COMPOSE_PROJECT_NAME"),
                        metavar="NAME", help="compose project (COMPOSE_PROJECT_NAME; inferred "
                        "when only one project runs the service)")
    add_cluster_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def cluster_addresses(args: argparse.Namespace) -> dict[NodeId, Address]:
    """--cluster, --cluster-file or $DISTLAB_CLUSTER when given, else the compose ports."""
    if args.cluster or args.cluster_file or os.environ.get("DISTLAB_CLUSTER"):
        return resolve_members(args.cluster, args.cluster_file)
    try:
        return docker.compose_node_addresses()
    except ConfigError as error:
        raise UsageError(str(error)) from error


def run(args: argparse.Namespace) -> int:
    cluster = cluster_addresses(args)
    containers = ComposeContainers(args.project, cluster)
    if args.action == "demo":
        if args.writers < 1 or args.writes < 1 or args.timeout <= 0:
            raise UsageError("--writers and --writes must be at least 1, --timeout positive")
        return run_demo(args, cluster, containers)
    outcome = Outcome()
    recovering: set[NodeId] = set()
    if args.action in docker.CONTAINER_OPERATIONS or args.action == "isolate":
        targets = [parse_target(text) for text in args.targets]
        loop.run(container_faults(args.action, targets, containers, outcome))
        if args.action in ("start", "restart", "unpause"):
            recovering = {t.node_id for t in targets if t.node_id is not None} & set(cluster)
    elif args.action == "partition":
        isolated = parse_partition(args.groups, sorted(cluster))
        loop.run(set_faults(cluster, isolated, outcome))
    elif args.action == "txn-fault":
        node, faults = parse_txn_faults(args.node, args.faults, sorted(cluster))
        loop.run(arm_txn_faults(cluster, node, faults, outcome))
    elif args.action == "heal":
        loop.run(heal(cluster, containers, outcome))
        recovering = set(cluster)
    reports = loop.run(wait_answering(cluster, recovering, RECOVERY_WAIT_SECONDS))
    report(args, outcome, reports)
    if args.action == "status":
        # As `distlab status` judges: every node up and a member, every group led.
        return EXIT_OK if assess(reports).healthy else EXIT_CHECK_FAILED
    return EXIT_CHECK_FAILED if outcome.failed else EXIT_OK


async def container_faults(action: str, targets: Sequence[Target],
                           containers: ComposeContainers, outcome: Outcome) -> None:
    for target in targets:
        try:
            if action == "isolate":
                outcome.ok(await containers.isolate(target.service))
            else:
                outcome.ok(await containers.operate(action, target.service))
        except FaultError as error:
            outcome.fail(str(error))


async def set_faults(cluster: Mapping[NodeId, Address], isolated: Mapping[NodeId, set[NodeId]],
                     outcome: Outcome) -> None:
    """Replace each node's isolated set through Admin.SetFault, all nodes at once."""
    injector = FaultInjector(cluster)
    try:
        done, failed = describe_all(await injector.isolate(
            isolated, deadline_seconds=SET_FAULT_DEADLINE_SECONDS))
    finally:
        await injector.close()
    outcome.done.extend(done)
    outcome.failed.extend(failed)


def parse_txn_faults(node_text: str, faults: Sequence[str], members: Sequence[NodeId]
                     ) -> tuple[NodeId, frozenset[str]]:
    target = parse_target(node_text)
    if target.node_id is None:
        raise UsageError(f"txn-fault arms a node; {node_text!r} is not a node")
    if target.node_id not in members:
        raise UsageError(f"node {target.node_id} is not in the cluster "
                         f"({', '.join(str(m) for m in members)})")
    unknown = [name for name in faults if name not in TXN_FAULTS]
    if unknown:
        raise UsageError(f"unknown transaction fault {unknown[0]!r} (expected "
                         f"{', '.join(TXN_FAULTS)})")
    return target.node_id, frozenset(faults)


async def arm_txn_faults(cluster: Mapping[NodeId, Address], node: NodeId,
                         faults: frozenset[str], outcome: Outcome) -> None:
    injector = FaultInjector(cluster)
    try:
        armed = await injector.arm_txn_faults(node, faults,
                                              deadline_seconds=SET_FAULT_DEADLINE_SECONDS)
    except FaultError as error:
        outcome.fail(str(error))
        return
    finally:
        await injector.close()
    outcome.ok(f"node {node} armed with {', '.join(armed)}" if armed else
               f"node {node} has no transaction fault armed")


async def heal(cluster: Mapping[NodeId, Address], containers: ComposeContainers,
               outcome: Outcome) -> None:
    """Reconnect the compose project's containers, then clear every node's partition."""
    try:
        outcome.ok(await containers.reconnect_all())
    except FaultError as error:
        outcome.fail(str(error))
    await set_faults(cluster, {node: set() for node in cluster}, outcome)


def report(args: argparse.Namespace, outcome: Outcome, reports: list[NodeReport]) -> None:
    if args.json:
        print(json.dumps({"done": outcome.done, "failed": outcome.failed,
                          "nodes": [row.as_json() for row in reports]}, indent=2))
        return
    for line in outcome.done:
        print(line)
    for line in outcome.failed:
        print(f"FAILED: {line}", file=sys.stderr)
    if outcome.done or outcome.failed:
        print()
    print(status_table(reports))
    # As `distlab status` does: the table says a node is down, this line says why.
    for row in reports:
        if row.error:
            print(f"node {row.id or row.address} is down: {row.error}")


def run_demo(args: argparse.Namespace, cluster: dict[NodeId, Address],
             containers: ComposeContainers) -> int:
    try:
        lost = loop.run(kill_leader_demo(cluster, containers, args.writers, args.writes,
                                         args.timeout, print))
    except DemoFailed as error:
        print(f"distlab chaos demo: {error}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    print()
    print(status_table(loop.run(collect_status(cluster))))
    return EXIT_CHECK_FAILED if lost else EXIT_OK
