"""Where each group's leader is: what every client of the cluster learns the same way.

A client starts from the members it is given (node id -> address, or addresses alone) and
learns, group by group, which member leads: from Admin.Status answers (a node that says it
leads, or names a leader whose address the client knows) and from NOT_LEADER refusals, which
name the leader's id and address. A leader at an address the client was not given (a member
added since) is reached through the hint and remembered. When nothing is known, the members
are tried in turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from distlab.core.ids import NodeId
from distlab.proto import admin_pb2
from distlab.wire.not_leader import NotLeaderHint
from distlab.wire.status import group_statuses


class LeaderDirectory:
    """The members a client knows and the leader it believes each group has.

    `members` maps node ids to addresses (the hint's id is resolved through it first, which
    works when the nodes' own addresses are not reachable from here, as with Docker);
    `addresses` is every member to try, in order; `leaders` maps a group to the member that
    last answered as its leader or was named so.
    """

    def __init__(self, cluster: Mapping[NodeId, object] | Mapping[int, object]
                 | Sequence[object]) -> None:
        if isinstance(cluster, Mapping):
            self.members = {int(node_id): str(address) for node_id, address in cluster.items()}
            self.addresses = [self.members[node_id] for node_id in sorted(self.members)]
        else:
            self.members = {}
            self.addresses = [str(address) for address in cluster]
        if not self.addresses:
            raise ValueError("a client needs at least one member address")
        self.leaders: dict[int, str] = {}

    def leader_of(self, group: int) -> str:
        """The member a call for `group` goes to first."""
        return self.leaders.get(group, self.addresses[0])

    def answered(self, group: int, address: str) -> None:
        """`address` served a call only the leader of `group` serves."""
        self.leaders[group] = address

    def learn_from(self, address: str, status: admin_pb2.NodeStatus) -> None:
        """Who `address` is, and the leaders it knows of, as far as the client can reach
        them."""
        if status.node_id and status.node_id not in self.members:
            self.members[status.node_id] = address
        for group in group_statuses(status):
            if group.role == "leader":
                self.leaders[group.group] = address
            elif group.leader_id in self.members:
                self.leaders[group.group] = self.members[group.leader_id]

    def follow(self, hint: NotLeaderHint) -> str | None:
        """The address a NOT_LEADER refusal points to (remembered as the group's leader), or
        None when it names no leader."""
        if hint.leader_id is not None and hint.leader_id in self.members:
            address: str | None = self.members[hint.leader_id]
        else:
            address = hint.leader_address
            if address and hint.leader_id is not None:
                self.members[hint.leader_id] = address
            if address and address not in self.addresses:
                self.addresses.append(address)
        if address:
            self.leaders[hint.group] = address
        return address or None

    def next_after(self, address: str) -> str:
        """The member to try after `address` failed."""
        try:
            position = self.addresses.index(address)
        except ValueError:
            return self.addresses[0]
        return self.addresses[(position + 1) % len(self.addresses)]
