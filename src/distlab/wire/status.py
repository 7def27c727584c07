"""Reading a node's Admin.Status the same way everywhere, whether or not it knows of groups."""

from __future__ import annotations

from distlab.proto import admin_pb2


def group_count(status: admin_pb2.NodeStatus) -> int:
    """How many groups the node hosts: a node that predates groups reports 0 and hosts one."""
    return status.group_count or 1


def group_statuses(status: admin_pb2.NodeStatus) -> list[admin_pb2.GroupStatus]:
    """Every group the node hosts, in order; from a node that lists none, group 0 as its
    top-level fields describe it."""
    if status.groups:
        return sorted(status.groups, key=lambda group: group.group)
    return [admin_pb2.GroupStatus(
        group=0, role=status.role, term=status.term, leader_id=status.leader_id,
        commit_index=status.commit_index, applied_index=status.applied_index,
        voters=status.voters, learners=status.learners)]
