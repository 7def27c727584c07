"""Reading nodes' Admin.Status into reports: every group, group 0 on top, leaders per group."""

from __future__ import annotations

from distlab.core.ids import NodeId
from distlab.ops.status import leadership, report_of
from distlab.proto import admin_pb2


def grouped_status(node_id: int, roles: list[str], terms: list[int], leaders: list[int]
                   ) -> admin_pb2.NodeStatus:
    groups = [admin_pb2.GroupStatus(group=g, role=role, term=term, leader_id=leader,
                                    commit_index=10 + g, applied_index=9 + g)
              for g, (role, term, leader) in enumerate(zip(roles, terms, leaders, strict=True))]
    first = groups[0]
    return admin_pb2.NodeStatus(node_id=node_id, pid=100 + node_id, engine="raft",
                                role=first.role, term=first.term, leader_id=first.leader_id,
                                commit_index=first.commit_index,
                                applied_index=first.applied_index,
                                group_count=len(groups), groups=groups)


def test_a_row_carries_every_group_and_group_0_on_top() -> None:
    status = grouped_status(2, ["follower", "leader", "follower"], [3, 4, 3], [1, 2, 3])
    row = report_of(NodeId(2), "h:2", status).as_json()
    assert row["engine"] == "raft"
    assert (row["role"], row["term"], row["leader"], row["commit"], row["applied"]) == (
        "follower", 3, 1, 10, 9)
    assert [group["group"] for group in row["groups"]] == [0, 1, 2]
    assert row["groups"][1] == {"group": 1, "role": "leader", "term": 4, "leader": 2,
                                "commit": 11, "applied": 10}


def test_a_node_without_groups_reports_one_group_from_its_top_level_fields() -> None:
    status = admin_pb2.NodeStatus(node_id=1, role="leader", term=2, leader_id=1,
                                  commit_index=5, applied_index=5)
    row = report_of(None, "h:1", status).as_json()
    assert row["id"] == 1  # learned from the node
    assert row["groups"] == [{"group": 0, "role": "leader", "term": 2, "leader": 1,
                              "commit": 5, "applied": 5}]


def test_a_node_answering_with_another_id_is_flagged() -> None:
    status = admin_pb2.NodeStatus(node_id=3, role="follower")
    report = report_of(NodeId(1), "h:1", status)
    assert report.health == "wrong-node" and "answers as node 3" in (report.error or "")


def test_each_groups_leader_is_the_highest_term_claim() -> None:
    reports = [
        report_of(None, "h:1", grouped_status(1, ["leader", "follower"], [2, 5], [1, 2])),
        report_of(None, "h:2", grouped_status(2, ["leader", "leader"], [3, 5], [2, 2])),
        report_of(None, "h:3", grouped_status(3, ["follower", "follower"], [3, 5], [2, 2])),
    ]
    current = leadership(reports)
    assert current.complete and current.leaders == {0: 2, 1: 2}
    without_two = leadership(reports, exclude={NodeId(2)})
    assert without_two.leaders == {0: 1} and without_two.missing() == [1]
