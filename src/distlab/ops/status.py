"""Looking at a cluster from outside: every node's status, each group's leader, and waiting
for the cluster to reach a state (every group led, a node caught up, nodes answering).

Each node is asked directly (Admin.Status, with a deadline), so what is reported is what every
node says of itself rather than what one node believes of the others. A cluster is given as
node id -> address, or as a plain list of addresses whose ids the nodes tell.

A group has a leader only when a majority of its voters agree: the node says it leads the
group, and enough of the voters it names say, in the same term, that it does. One node's
claim alone proves nothing (a deposed leader cut off from the others still claims), and a
cluster whose nodes all campaign has no leader at all, however many nodes answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import grpc

from distlab.core.ids import NodeId
from distlab.core.quorum import majority
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

    @property
    def members(self) -> frozenset[int]:
        return frozenset(self.voters) | frozenset(self.learners)

    def as_json(self) -> dict[str, Any]:
        return {"group": self.group, "role": self.role, "term": self.term,
                "leader": self.leader, "commit": self.commit, "applied": self.applied,
                "voters": list(self.voters), "learners": list(self.learners)}


@dataclass(frozen=True, slots=True)
class NodeReport:
    """One node's answer to Admin.Status, or why it gave none.

    `health` is "up", "down" (no answer; `error` says why) or "wrong-node" (another node
    answers at the address); `assess` also marks a node that answers but that the cluster
    does not count as a member: "removed", or "joining" (started to join, not added yet).
    """

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
    """Who leads each group, as a majority of its voters among the answering nodes agree."""

    group_count: int
    leaders: dict[int, NodeId] = field(default_factory=dict)
    terms: dict[int, int] = field(default_factory=dict)
    # Each led group's membership as its leader reports it: voters, then learners.
    voters: dict[int, frozenset[int]] = field(default_factory=dict)
    learners: dict[int, frozenset[int]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.leaders) == self.group_count

    def missing(self) -> list[int]:
        return [group for group in range(self.group_count) if group not in self.leaders]


def leadership(reports: Sequence[NodeReport], exclude: Collection[NodeId] = ()) -> Leadership:
    """Each group's leader: a node that says it leads the group, in the highest such term,
    and that a majority of the voters it names (itself included) agree on, each saying in
    that term that it leads. A node that reports no voters (one that predates membership in
    Status) is taken at its word."""
    answering = [report for report in reports if report.up and report.id not in exclude]
    count = max((len(report.groups) for report in answering), default=1)
    result = Leadership(count)
    for report in answering:
        assert report.id is not None
        for group in report.groups:
            if group.role != "leader" or group.term < result.terms.get(group.group, -1):
                continue
            if group.voters and not _agreed(report.id, group, answering):
                continue
            result.leaders[group.group] = report.id
            result.terms[group.group] = group.term
            result.voters[group.group] = frozenset(group.voters)
            result.learners[group.group] = frozenset(group.learners)
    return result


def _agreed(leader: NodeId, claim: GroupReport, answering: Sequence[NodeReport]) -> bool:
    followers = {report.id for report in answering
                 if (group := report.group(claim.group)) is not None
                 and group.leader == leader and group.term == claim.term}
    return len(followers & set(claim.voters)) >= majority(len(claim.voters))


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    """What `assess` found: every report (with the membership verdict in `health`), each
    group's agreed leader, and one line for each thing wrong, none when the cluster is
    healthy; `notes` are worth telling but wrong nothing."""

    reports: tuple[NodeReport, ...]
    leadership: Leadership
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return not self.problems

    def groups_json(self) -> list[dict[str, Any]]:
        current = self.leadership
        return [{"group": group, "leader": current.leaders.get(group),
                 "term": current.terms.get(group),
                 "voters": sorted(current.voters.get(group, ())),
                 "learners": sorted(current.learners.get(group, ()))}
                for group in range(current.group_count)]


def assess(reports: Sequence[NodeReport]) -> ClusterHealth:
    """Whether the cluster is healthy: every node answers as itself and is a member, and
    every group has a leader a majority of its voters agree on.

    A node's membership is judged, group by group, by the agreed leader's view, or by the
    node's own where the group has no leader; a node that is a member of no group is
    "removed" (a problem: it still runs, but counts for nothing), or "joining" when it knows
    of no membership at all (started with --join and not added yet: a note).
    """
    current = leadership(reports)
    problems: list[str] = []
    notes: list[str] = []
    judged: list[NodeReport] = []
    for report in reports:
        if not report.up:
            problems.append(f"node {report.id or report.address} is {report.health}: "
                            f"{report.error}")
            judged.append(report)
            continue
        assert report.id is not None
        verdict = _membership_verdict(report, current)
        if verdict == "removed":
            problems.append(f"node {report.id} answers but is not a member of any group "
                            "(removed); stop it, or add it again with `distlab cluster add`")
        elif verdict == "joining":
            notes.append(f"node {report.id} waits to be added (`distlab cluster add "
                         f"{report.id} {report.address}`)")
        judged.append(report if verdict is None else replace(report, health=verdict))
    listed = {report.id for report in reports}
    for group in current.missing():
        problems.append(f"group {group} has no leader that a majority of its voters agree "
                        f"on: {_claims(group, reports)}")
    for group, voters in sorted(current.voters.items()):
        unlisted = sorted(voters - listed)
        if unlisted:
            notes.append(f"group {group}: voter(s) {', '.join(map(str, unlisted))} not in the "
                         "cluster list, so not asked")
    return ClusterHealth(tuple(judged), current, tuple(problems), tuple(notes))


def _membership_verdict(report: NodeReport, current: Leadership) -> str | None:
    """None for a member of some group; else "removed" or "joining"."""
    assert report.id is not None
    for group in report.groups:
        if group.group in current.leaders:
            members = current.voters[group.group] | current.learners[group.group]
            # A leader that names no members predates membership in Status: no verdict.
            if report.id in members or not members:
                return None
        elif report.id in group.members:
            return None
    return "removed" if any(group.members for group in report.groups) else "joining"


def _claims(group: int, reports: Sequence[NodeReport]) -> str:
    """What the answering nodes say of `group`, briefly: `node 1 pre-candidate (term 3)`."""
    said = []
    for report in reports:
        state = report.group(group) if report.up else None
        if state is None:
            continue
        leader = f", follows {state.leader}" if state.leader and state.role != "leader" else ""
        said.append(f"node {report.id} {state.role} (term {state.term}{leader})")
    return "; ".join(said) or "no node answers"


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
