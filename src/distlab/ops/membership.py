"""Membership changes and leadership transfers, group by group, each sent to the group's
leader (one server at a time, as Raft's single-server changes require), found as the KV
client finds it (`distlab.client.AdminClient`)."""

from __future__ import annotations

from dataclasses import dataclass

from distlab.client import AdminClient, AdminError
from distlab.core.ids import NodeId
from distlab.ops.status import Members, member_list

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
    listed = member_list(members)
    cluster = ({node: address for node, address in listed if node is not None}
               if all(node is not None for node, _ in listed)
               else [address for _, address in listed])
    async with AdminClient(cluster) as admin:
        try:
            count = await admin.group_count()
        except AdminError as error:
            return [GroupChange(group or 0, None, error=str(error))]
        if group is not None and not 0 <= group < count:
            return [GroupChange(group, None, error=f"there is no group {group}: the cluster "
                                f"has {count} group{'s' if count != 1 else ''}, numbered "
                                "from 0")]
        changes = []
        for number in [group] if group is not None else range(count):
            changes.append(await _change_one(admin, action, node_id, address, number))
    return changes


async def _change_one(admin: AdminClient, action: str, node_id: NodeId, address: str | None,
                      group: int) -> GroupChange:
    try:
        if action == "add":
            assert address is not None
            reply = await admin.add_member(group, node_id, address)
        elif action == "remove":
            reply = await admin.remove_member(group, node_id)
        else:
            reply = await admin.transfer_leader(group, node_id)
    except AdminError as error:
        return GroupChange(group, None, error=str(error))
    return GroupChange(group, admin.node_at(admin.leader_of(group)), NodeId(reply.leader_id),
                       tuple(reply.voters), tuple(reply.learners))
