"""Looking at a cluster from outside: every node's status, each group's leader, and waiting
for the cluster to reach a state (every group led, a node caught up, nodes answering).

Each node is asked directly (Admin.Status, with a deadline), so what is reported is what every
node says of itself rather than what one node believes of the others. A cluster is given as
node id -> address, or as a plain list of addresses whose ids the nodes tell.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from distlab.core.ids import NodeId
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.wire.addresses import Address
from distlab.wire.channels import open_channel
from distlab.wire.status import group_statuses

Members = Mapping[NodeId, Address | str] | Sequence[Address | str]
"""A cluster: node id -> address, or addresses alone (each node then tells its id)."""

STATUS_DEADLINE_SECONDS = 1.0
POLL_INTERVAL_SECONDS = 0.1


class ClusterTimeout(TimeoutError):
    """The cluster did not reach the awaited state in time; the message says what it lacked."""


@dataclass(frozen=True, slots=True)
class GroupReport:
    """One group as one node reports it."""

    group: int
    role: str
    term: int
    leader: NodeId | None
    commit: int
    applied: int
    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"group": self.group, "role": self.role, "term": self.term,
                "leader": self.leader, "commit": self.commit, "applied": self.applied}


@dataclass(frozen=True, slots=True)
class NodeReport:
    """One node's answer to Admin.Status, or why it gave none (`health` is then "down")."""

    id: NodeId | None
    address: str
    health: str
    pid: int | None = None
    engine: str | None = None
    groups: tuple[GroupReport, ...] = ()
    error: str | None = None

    @property
    def up(self) -> bool:
        return self.health == "up"

    def group(self, number: int) -> GroupReport | None:
        return next((group for group in self.groups if group.group == number), None)

    def as_json(self) -> dict[str, Any]:
        """DESIGN §8's row: the top-level fields are group 0's, then every group."""
        first = self.group(0)
        return {
            "id": self.id, "address": self.address, "health": self.health, "pid": self.pid,
            "engine": self.engine,
            "role": first.role if first else None, "term": first.term if first else None,
            "leader": first.leader if first else None,
            "commit": first.commit if first else None,
            "applied": first.applied if first else None,
            "groups": [group.as_json() for group in self.groups],
            "error": self.error,
        }


def member_list(members: Members) -> list[tuple[NodeId | None, str]]:
    if isinstance(members, Mapping):
        return [(NodeId(node), str(address)) for node, address in sorted(members.items())]
    return [(None, str(address)) for address in members]


async def fetch_status(address: Address | str,
                       deadline_seconds: float = STATUS_DEADLINE_SECONDS
                       ) -> admin_pb2.NodeStatus | None:
    """The node's Admin.Status, or None when it does not answer within the deadline."""
    async with open_channel(address) as channel:
        try:
            status: admin_pb2.NodeStatus = await admin_pb2_grpc.AdminStub(channel).Status(
                admin_pb2.StatusRequest(), timeout=deadline_seconds)
        except grpc.aio.AioRpcError:
            return None
    return status


def report_of(node_id: NodeId | None, address: str, status: admin_pb2.NodeStatus) -> NodeReport:
    groups = tuple(
        GroupReport(group.group, group.role, group.term,
                    NodeId(group.leader_id) if group.leader_id else None,
                    group.commit_index, group.applied_index,
                    tuple(group.voters), tuple(group.learners))
        for group in group_statuses(status))
    told = NodeId(status.node_id)
    if node_id is not None and told != node_id:
        return NodeReport(node_id, address, "wrong-node", status.pid, status.engine or None,
                          groups, f"{address} answers as node {told}, not {node_id}")
    return NodeReport(told, address, "up", status.pid, status.engine or None, groups)


async def node_report(node_id: NodeId | None, address: str, deadline_seconds: float
                      ) -> NodeReport:
    async with open_channel(address) as channel:
        try:
            status = await admin_pb2_grpc.AdminStub(channel).Status(
                admin_pb2.StatusRequest(), timeout=deadline_seconds)
        except grpc.aio.AioRpcError as error:
            return NodeReport(node_id, address, "down",
                              error=f"{error.code().name}: {error.details()}")
    return report_of(node_id, address, status)


async def collect_status(members: Members, deadline_seconds: float = STATUS_DEADLINE_SECONDS
                         ) -> list[NodeReport]:
    """Every node's report, all asked at once, in order of node id (unknown ids last)."""
    reports = await asyncio.gather(*(node_report(node_id, address, deadline_seconds)
                                     for node_id, address in member_list(members)))
    return sorted(reports, key=lambda report: (report.id is None, report.id or 0))


async def identify(addresses: Sequence[Address | str],
                   deadline_seconds: float = STATUS_DEADLINE_SECONDS) -> dict[NodeId, str]:
    """Node id -> address for addresses given without ids, each node telling its own.

    Raises LookupError naming the addresses that did not answer, or two that claim one id.
    """
    reports = await collect_status(list(addresses), deadline_seconds)
    silent = [report.address for report in reports if report.id is None]
    if silent:
        raise LookupError(f"cannot learn the node id of {', '.join(silent)}: no answer; name "
                          "the ids instead (1=host:port,...)")
    members: dict[NodeId, str] = {}
    for report in reports:
        assert report.id is not None
        if report.id in members:
            raise LookupError(f"{members[report.id]} and {report.address} both answer as "
                              f"node {report.id}")
        members[report.id] = report.address
    return members


@dataclass(slots=True)
class Leadership:
    """Who leads each group, as the answering nodes report it."""

    group_count: int
    leaders: dict[int, NodeId] = field(default_factory=dict)
    terms: dict[int, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.leaders) == self.group_count

    def missing(self) -> list[int]:
        return [group for group in range(self.group_count) if group not in self.leaders]


def leadership(reports: Sequence[NodeReport], exclude: Collection[NodeId] = ()) -> Leadership:
    """Each group's leader: the node that says it leads the group in the highest term."""
    answering = [report for report in reports if report.up and report.id not in exclude]
    count = max((len(report.groups) for report in answering), default=1)
    result = Leadership(count)
    for report in answering:
        assert report.id is not None
        for group in report.groups:
            if group.role == "leader" and group.term >= result.terms.get(group.group, -1):
                result.leaders[group.group] = report.id
                result.terms[group.group] = group.term
    return result


async def wait_for_leader(members: Members, timeout: float, *,
                          exclude: NodeId | Collection[NodeId] | None = None,
                          deadline_seconds: float = STATUS_DEADLINE_SECONDS
                          ) -> dict[int, NodeId]:
    """Group -> its leader, once every group has one (other than `exclude`).

    Polls every node until `timeout`; raises ClusterTimeout naming the groups still without
    a leader.
    """
    excluded: Collection[NodeId] = (
        () if exclude is None else {exclude} if isinstance(exclude, int) else exclude)
    deadline = time.monotonic() + timeout
    while True:
        current = leadership(await collect_status(members, deadline_seconds), excluded)
        if current.complete:
            return dict(current.leaders)
        if time.monotonic() > deadline:
            other = f" other than {sorted(excluded)}" if excluded else ""
            raise ClusterTimeout(f"no leader{other} within {timeout:g} s in group(s) "
                                 f"{', '.join(str(g) for g in current.missing())}")
        await asyncio.sleep(POLL_INTERVAL_SECONDS)


async def wait_caught_up(members: Members, node: NodeId, timeout: float) -> dict[int, int]:
    """Until `node` has applied, in every group, everything the group's leader had committed
    when first asked; returns group -> the node's applied index."""
    deadline = time.monotonic() + timeout
    leaders = await wait_for_leader(members, timeout)
    reports = {report.id: report for report in await collect_status(members)}
    targets: dict[int, int] = {}
    for group, leader in leaders.items():
        leader_group = reports[leader].group(group) if leader in reports else None
        targets[group] = leader_group.commit if leader_group is not None else 0
    while True:
        report = next((r for r in await collect_status(members) if r.id == node), None)
        applied = {group.group: group.applied for group in report.groups} if report else {}
        if all(applied.get(group, -1) >= target for group, target in targets.items()):
            return applied
        if time.monotonic() > deadline:
            raise ClusterTimeout(f"node {node} applied {applied}, short of the leaders' "
                                 f"commit indexes {targets} after {timeout:g} s")
        await asyncio.sleep(POLL_INTERVAL_SECONDS)


async def wait_answering(members: Members, nodes: Collection[NodeId], timeout: float
                         ) -> list[NodeReport]:
    """Every node's report, once each of `nodes` answers again (or `timeout` has passed:
    the reports are returned either way)."""
    deadline = time.monotonic() + timeout
    while True:
        reports = await collect_status(members)
        down = {report.id for report in reports if not report.up}
        if not down & set(nodes) or time.monotonic() > deadline:
            return reports
        await asyncio.sleep(POLL_INTERVAL_SECONDS)
