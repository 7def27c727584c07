"""Membership changes and leadership transfers, group by group, each sent to the group's
leader (one server at a time, as Raft's single-server changes require)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from distlab.core.ids import NodeId
from distlab.ops.status import Members, collect_status, leadership, member_list
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.wire.channels import open_channel

CHANGE_DEADLINE_SECONDS = 15.0
ACTIONS = ("add", "remove", "transfer-leader")


@dataclass(frozen=True, slots=True)
class GroupChange:
    """What one group's leader answered: the membership after the change, or the error."""

    group: int
    asked: NodeId | None
    leader: NodeId | None = None
    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        return {"group": self.group, "asked": self.asked, "leader": self.leader,
                "voters": list(self.voters), "learners": list(self.learners),
                "error": self.error}


async def change_membership(members: Members, action: str, node_id: NodeId,
                            address: str | None = None, group: int | None = None
                            ) -> list[GroupChange]:
    """`action` ("add", "remove" or "transfer-leader") of `node_id` in `group`, or in every
    group when it is None; one answer per group, in order."""
    assert action in ACTIONS, action
    assert action != "add" or address, "adding a member needs its address"
    reports = await collect_status(members)
    current = leadership(reports)
    addresses = {report.id: report.address for report in reports if report.id is not None}
    addresses.update({node: address for node, address in member_list(members) if node})
    if group is not None and not 0 <= group < current.group_count:
        count = current.group_count
        return [GroupChange(group, None, error=f"there is no group {group}: the cluster has "
                            f"{count} group{'s' if count != 1 else ''}, numbered from 0")]
    changes = []
    for number in [group] if group is not None else range(current.group_count):
        leader = current.leaders.get(number)
        if leader is None:
            changes.append(GroupChange(number, None, error="no leader answers; try again "
                                       "once one is elected"))
            continue
        changes.append(await _change_one(addresses[leader], leader, action, node_id, address,
                                         number))
    return changes


async def _change_one(leader_address: str, leader: NodeId, action: str, node_id: NodeId,
                      address: str | None, group: int) -> GroupChange:
    async with open_channel(leader_address) as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        try:
            if action == "add":
                reply = await admin.AddMember(admin_pb2.AddMemberRequest(
                    node_id=node_id, address=address, group=group),
                    timeout=CHANGE_DEADLINE_SECONDS)
            elif action == "remove":
                reply = await admin.RemoveMember(admin_pb2.RemoveMemberRequest(
                    node_id=node_id, group=group), timeout=CHANGE_DEADLINE_SECONDS)
            else:
                reply = await admin.TransferLeader(admin_pb2.TransferLeaderRequest(
                    node_id=node_id, group=group), timeout=CHANGE_DEADLINE_SECONDS)
        except grpc.aio.AioRpcError as error:
            return GroupChange(group, leader,
                               error=f"{error.code().name}: {error.details()}")
    return GroupChange(group, leader, NodeId(reply.leader_id), tuple(reply.voters),
                       tuple(reply.learners))
