"""`distlab chaos`: break a running cluster on purpose, then look at what it did.

    distlab chaos kill|stop|start|pause|unpause|restart TARGET...   one container per target
    distlab chaos isolate TARGET...       disconnect the containers from their networks
    distlab chaos partition GROUP GROUP...   e.g. `partition 1,2 3`: cut {1,2} off from {3}
    distlab chaos heal                    undo isolate and partition
    distlab chaos status                  every node's role, term, leader and indexes
    distlab chaos demo                    write, kill the leader's container, check nothing
                                          was lost

A TARGET is a node id (`2`) or a compose service name (`node2`, `coordinator`, `worker1`).
Container faults go through the `docker` command on the compose project's containers.
Partitions go through each node's Admin.SetFault RPC, which replaces the set of peers the node
drops Raft traffic to and from; a node no group names is cut from nobody. Every action prints
what it did and then the cluster's status, read from the nodes' published addresses
(127.0.0.1:7001-7003 by default, or $DISTLAB_PUBLISH_HOST:7001-7003; --cluster, --cluster-file
or $DISTLAB_CLUSTER for other clusters).

Exit status: 0 every fault applied, 1 some could not be (the output says which), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from distlab.cli.common import EXIT_CHECK_FAILED, EXIT_OK, UsageError, format_table
from distlab.cli.status import COLUMNS, collect_status
from distlab.cli.targets import add_cluster_arguments, resolve_cluster
from distlab.client import KVClient, KVError
from distlab.core.ids import NodeId
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.runtime import docker, loop
from distlab.runtime.config import Address, ConfigError, parse_cluster_nodes
from distlab.wire.channels import open_channel

# Where docker-compose.yml publishes node N's gRPC port: PUBLISH_HOST:700N.
PUBLISH_HOST_VARIABLE = "DISTLAB_PUBLISH_HOST"
COMPOSE_NODES = 3
SET_FAULT_DEADLINE_SECONDS = 5.0
STATUS_DEADLINE_SECONDS = 1.0
# After start, restart, unpause or heal, how long to wait for the nodes to answer again
# before printing the status (the status is printed either way).
RECOVERY_WAIT_SECONDS = 15.0
POLL_INTERVAL_SECONDS = 0.2

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
    heal = actions.add_parser("heal", help="reconnect isolated containers and clear partitions")
    _common_arguments(heal)
    status = actions.add_parser("status", help="every node's role, term, leader and indexes")
    _common_arguments(status)
    demo = actions.add_parser(
        "demo", help="write, kill the leader's container, show that nothing was lost",
        description="Write keys in a loop, kill the leader's container, wait for a new leader, "
        "check that every acknowledged write reads back, then start the old leader again and "
        "wait for it to catch up. Exit status 1 when a write was lost.")
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
        return resolve_cluster(args.cluster, args.cluster_file)
    return compose_cluster()


def compose_cluster() -> dict[NodeId, Address]:
    """The nodes of docker-compose.yml at their published gRPC ports."""
    host = os.environ.get(PUBLISH_HOST_VARIABLE) or "127.0.0.1"
    try:
        return parse_cluster_nodes(",".join(f"{n}={host}:{7000 + n}"
                                            for n in range(1, COMPOSE_NODES + 1)))
    except ConfigError as error:
        raise UsageError(f"{PUBLISH_HOST_VARIABLE}: {error}") from error


def run(args: argparse.Namespace) -> int:
    cluster = cluster_addresses(args)
    if args.action == "demo":
        if args.writers < 1 or args.writes < 1 or args.timeout <= 0:
            raise UsageError("--writers and --writes must be at least 1, --timeout positive")
        return loop.run(demo(args, cluster))
    outcome = Outcome()
    recovering: set[NodeId] = set()
    if args.action in docker.CONTAINER_OPERATIONS or args.action == "isolate":
        targets = [parse_target(text) for text in args.targets]
        container_faults(args.action, targets, args.project, outcome)
        if args.action in ("start", "restart", "unpause"):
            recovering = {t.node_id for t in targets if t.node_id is not None} & set(cluster)
    elif args.action == "partition":
        isolated = parse_partition(args.groups, sorted(cluster))
        loop.run(set_faults(cluster, isolated, outcome))
    elif args.action == "heal":
        heal_networks(args.project, outcome)
        loop.run(set_faults(cluster, {node: set() for node in cluster}, outcome))
        recovering = set(cluster)
    rows = loop.run(status_after(cluster, recovering))
    report(args, outcome, rows)
    if args.action == "status":
        return EXIT_OK if all(row["health"] == "up" for row in rows) else EXIT_CHECK_FAILED
    return EXIT_CHECK_FAILED if outcome.failed else EXIT_OK


def container_faults(action: str, targets: Sequence[Target], project: str | None,
                     outcome: Outcome) -> None:
    for target in targets:
        try:
            container = docker.find_service(target.service, project)
        except LookupError as error:
            outcome.fail(str(error))
            continue
        except docker.DockerError as error:
            outcome.fail(f"{target.service}: {error}")
            continue
        try:
            if action == "isolate":
                networks = docker.isolate(container)
                outcome.ok(f"isolated {target.service} ({container.name}) from "
                           f"{', '.join(networks) or 'no network'}")
            else:
                docker.container_operation(action, container)
                outcome.ok(f"{_past(action)} {target.service} ({container.name})")
        except docker.DockerError as error:
            outcome.fail(f"{action} {target.service}: {error}")


def _past(action: str) -> str:
    return {"kill": "killed", "stop": "stopped", "start": "started", "pause": "paused",
            "unpause": "unpaused", "restart": "restarted"}[action]


def heal_networks(project: str | None, outcome: Outcome) -> None:
    """Reconnect every container of the compose project to the project's networks."""
    try:
        containers = docker.compose_containers(project)
    except docker.DockerError as error:
        outcome.ok(f"no containers to reconnect ({error})")
        return
    projects = sorted({c.project for c in containers})
    if not projects:
        outcome.ok("no compose containers to reconnect")
        return
    if len(projects) > 1:
        outcome.fail(f"several compose projects run ({', '.join(projects)}): choose one with "
                     "--project to reconnect its containers")
        return
    try:
        networks = docker.project_networks(projects[0])
        reconnected = []
        for container in containers:
            if docker.reconnect(container, networks):
                reconnected.append(container.service)
    except docker.DockerError as error:
        outcome.fail(f"reconnecting containers: {error}")
        return
    outcome.ok(f"reconnected {', '.join(sorted(reconnected))}" if reconnected
               else "no container was disconnected")


async def set_faults(cluster: Mapping[NodeId, Address], isolated: Mapping[NodeId, set[NodeId]],
                     outcome: Outcome) -> None:
    """Replace each node's isolated set through Admin.SetFault, all nodes at once."""
    async def one(node: NodeId, peers: set[NodeId]) -> tuple[bool, str]:
        async with open_channel(cluster[node]) as channel:
            try:
                reply = await admin_pb2_grpc.AdminStub(channel).SetFault(
                    admin_pb2.FaultRequest(isolate_from=sorted(peers)),
                    timeout=SET_FAULT_DEADLINE_SECONDS)
            except grpc.aio.AioRpcError as error:
                return False, (f"node {node}: SetFault failed: {error.code().name}: "
                               f"{error.details()}")
        now = sorted(reply.isolated_from)
        return True, (f"node {node} now drops traffic to and from {now}" if now
                      else f"node {node} reaches every peer")

    results = await asyncio.gather(*(one(node, peers) for node, peers in sorted(isolated.items())))
    for applied, line in results:
        (outcome.ok if applied else outcome.fail)(line)


async def status_after(cluster: Mapping[NodeId, Address], recovering: set[NodeId]
                       ) -> list[dict[str, Any]]:
    """The cluster's status; first waits (bounded) for `recovering` nodes to answer again."""
    deadline = time.monotonic() + RECOVERY_WAIT_SECONDS
    while True:
        rows = await collect_status(dict(cluster), STATUS_DEADLINE_SECONDS)
        down = {row["id"] for row in rows if row["health"] != "up"}
        if not down & recovering or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(POLL_INTERVAL_SECONDS)


def report(args: argparse.Namespace, outcome: Outcome, rows: list[dict[str, Any]]) -> None:
    if args.json:
        print(json.dumps({"done": outcome.done, "failed": outcome.failed, "nodes": rows},
                         indent=2))
        return
    for line in outcome.done:
        print(line)
    for line in outcome.failed:
        print(f"FAILED: {line}", file=sys.stderr)
    if outcome.done or outcome.failed:
        print()
    print(format_table(COLUMNS, [[row[column] for column in COLUMNS] for row in rows]))


# ---- the demo


class DemoFailed(Exception):
    """A phase of the demo did not finish within its budget."""


@dataclass(slots=True)
class Writers:
    """Concurrent writers of distinct keys; remembers exactly which writes were acknowledged."""

    client: KVClient
    prefix: str
    acknowledged: dict[str, str] = field(default_factory=dict)
    failed: int = 0
    _next: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, count: int) -> None:
        self._tasks = [asyncio.create_task(self._write()) for _ in range(count)]

    async def _write(self) -> None:
        while not self._stop.is_set():
            index, self._next = self._next, self._next + 1
            key, value = f"{self.prefix}-{index:06d}", f"value-{index}"
            try:
                await self.client.put(key, value, budget=10.0)
            except KVError:
                self.failed += 1  # not acknowledged: it may or may not have happened
            else:
                self.acknowledged[key] = value

    async def wait_for(self, count: int, budget: float) -> None:
        deadline = time.monotonic() + budget
        while len(self.acknowledged) < count:
            if time.monotonic() > deadline:
                raise DemoFailed(f"writes stalled at {len(self.acknowledged)} acknowledged")
            await asyncio.sleep(POLL_INTERVAL_SECONDS)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def wait_for_leader(cluster: Mapping[NodeId, Address], budget: float,
                          other_than: NodeId | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + budget
    while True:
        rows = await collect_status(dict(cluster), STATUS_DEADLINE_SECONDS)
        leaders = [row for row in rows if row["role"] == "leader" and row["id"] != other_than]
        if leaders:
            return max(leaders, key=lambda row: row["term"])
        if time.monotonic() > deadline:
            raise DemoFailed(f"no leader{' but ' + str(other_than) if other_than else ''} "
                             f"within {budget:g} s")
        await asyncio.sleep(POLL_INTERVAL_SECONDS)


async def wait_caught_up(cluster: Mapping[NodeId, Address], node: NodeId, target_index: int,
                         budget: float) -> int:
    deadline = time.monotonic() + budget
    while True:
        rows = {row["id"]: row for row in await collect_status(dict(cluster), 1.0)}
        applied = rows[int(node)]["applied"]
        if applied is not None and applied >= target_index:
            return int(applied)
        if time.monotonic() > deadline:
            raise DemoFailed(f"node {node} applied {applied}, not {target_index}, "
                             f"within {budget:g} s")
        await asyncio.sleep(POLL_INTERVAL_SECONDS)


async def demo(args: argparse.Namespace, cluster: dict[NodeId, Address]) -> int:
    say = print
    try:
        leader = await wait_for_leader(cluster, args.timeout)
        say(f"leader: node {leader['id']} (term {leader['term']})")
        async with KVClient(cluster, call_timeout=1.0, operation_timeout=30.0) as client:
            writers = Writers(client, f"demo-{int(time.time())}")
            writers.start(args.writers)
            try:
                await writers.wait_for(args.writes, args.timeout)
                leader = await wait_for_leader(cluster, args.timeout)
                old = NodeId(leader["id"])
                outcome = Outcome()
                container_faults("kill", [Target(f"node{old}", old)], args.project, outcome)
                killed_at = time.monotonic()
                if outcome.failed:
                    raise DemoFailed("; ".join(outcome.failed))
                say(f"{outcome.done[0]} after {len(writers.acknowledged)} acknowledged writes")
                new = await wait_for_leader(cluster, args.timeout, other_than=old)
                say(f"new leader: node {new['id']} (term {new['term']}), "
                    f"{time.monotonic() - killed_at:.1f} s after the kill")
                await writers.wait_for(len(writers.acknowledged) + args.writes, args.timeout)
            finally:
                await writers.stop()
            say(f"{len(writers.acknowledged)} writes acknowledged, {writers.failed} without "
                "an answer in time; reading every acknowledged key back")
            lost = [key for key, value in sorted(writers.acknowledged.items())
                    if await client.get(key) != value]
        if lost:
            say(f"LOST {len(lost)} acknowledged writes, e.g. {lost[:5]}")
        else:
            say("every acknowledged write reads back: nothing was lost")
        outcome = Outcome()
        container_faults("start", [Target(f"node{old}", old)], args.project, outcome)
        if outcome.failed:
            raise DemoFailed("; ".join(outcome.failed))
        commit = (await wait_for_leader(cluster, args.timeout))["commit"]
        applied = await wait_caught_up(cluster, old, int(commit), args.timeout)
        say(f"{outcome.done[0]}; it caught up to index {applied}")
    except DemoFailed as error:
        print(f"distlab chaos demo: {error}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    rows = await collect_status(cluster, STATUS_DEADLINE_SECONDS)
    say("")
    say(format_table(COLUMNS, [[row[column] for column in COLUMNS] for row in rows]))
    return EXIT_CHECK_FAILED if lost else EXIT_OK
