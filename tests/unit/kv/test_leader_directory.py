"""Where a client believes each group's leader is: statuses, hints, and the members in turn."""

from __future__ import annotations

from distlab.client import LeaderDirectory
from distlab.core.ids import NodeId
from distlab.proto import admin_pb2
from distlab.wire.not_leader import NotLeaderHint


def test_a_hint_to_a_member_not_given_is_followed_and_remembered() -> None:
    directory = LeaderDirectory({1: "h:1", 2: "h:2"})
    assert directory.leader_of(1) == "h:1"
    assert directory.follow(NotLeaderHint(1, NodeId(4), "h:4")) == "h:4"
    assert directory.leader_of(1) == "h:4" and directory.leader_of(0) == "h:1"
    assert directory.addresses == ["h:1", "h:2", "h:4"] and directory.members[4] == "h:4"
    # A known id is reached at the address the client was given, whatever the hint says
    # (inside Docker, a node's own address may not be reachable from here).
    assert directory.follow(NotLeaderHint(0, NodeId(2), "node2:7000")) == "h:2"
    assert directory.follow(NotLeaderHint(0, None, None)) is None


def test_statuses_name_the_leaders_the_client_can_reach() -> None:
    directory = LeaderDirectory(["h:1", "h:2"])
    status = admin_pb2.NodeStatus(node_id=2, group_count=2, groups=[
        admin_pb2.GroupStatus(group=0, role="leader", leader_id=2),
        admin_pb2.GroupStatus(group=1, role="follower", leader_id=1)])
    directory.learn_from("h:2", status)
    assert directory.leader_of(0) == "h:2"
    assert directory.leader_of(1) == "h:1"  # node 1's address is not known yet: the default
    directory.learn_from("h:1", admin_pb2.NodeStatus(node_id=1, group_count=2, groups=[
        admin_pb2.GroupStatus(group=0, role="follower", leader_id=2),
        admin_pb2.GroupStatus(group=1, role="leader", leader_id=1)]))
    assert directory.members == {2: "h:2", 1: "h:1"}
    assert directory.next_after("h:2") == "h:1" and directory.next_after("elsewhere") == "h:1"
