"""Reading nodes' Admin.Status into reports: every group, group 0 on top, leaders per group."""

from __future__ import annotations

from distlab.core.ids import NodeId
from distlab.ops.status import GroupReport, NodeReport, assess, leadership, report_of
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
                                "commit": 11, "applied": 10, "voters": [], "learners": []}


def test_a_node_without_groups_reports_one_group_from_its_top_level_fields() -> None:
    status = admin_pb2.NodeStatus(node_id=1, role="leader", term=2, leader_id=1,
                                  commit_index=5, applied_index=5)
    row = report_of(None, "h:1", status).as_json()
    assert row["id"] == 1  # learned from the node
    assert row["groups"] == [{"group": 0, "role": "leader", "term": 2, "leader": 1,
                              "commit": 5, "applied": 5, "voters": [], "learners": []}]


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


def member(node_id: int, role: str, term: int, leader: int, voters: tuple[int, ...] = (1, 2, 3),
           learners: tuple[int, ...] = (), groups: int = 1) -> NodeReport:
    """Node `node_id`'s report: the same role, term, leader and membership in every group."""
    group_list = tuple(GroupReport(g, role, term, NodeId(leader) if leader else None, 7, 7,
                                   voters, learners) for g in range(groups))
    return NodeReport(NodeId(node_id), f"h:{node_id}", "up", 100 + node_id, "raft", group_list)


def down(node_id: int) -> NodeReport:
    return NodeReport(NodeId(node_id), f"h:{node_id}", "down", error="UNAVAILABLE: refused")


def test_a_leader_counts_once_a_majority_of_its_voters_agree() -> None:
    alone = [member(1, "leader", 4, 1), member(2, "follower", 5, 0), down(3)]
    assert leadership(alone).leaders == {}
    agreed = [member(1, "leader", 4, 1), member(2, "follower", 4, 1), down(3)]
    assert leadership(agreed).leaders == {0: 1}
    # A deposed leader still claiming an older term is not the one the others follow.
    deposed = [member(1, "leader", 4, 1), member(2, "leader", 5, 2), member(3, "follower", 5, 2)]
    assert leadership(deposed).leaders == {0: 2}


def test_a_cluster_of_pre_candidates_is_unhealthy() -> None:
    reports = [member(n, "pre-candidate", 3, 0, groups=3) for n in (1, 2, 3)]
    health = assess(reports)
    assert not health.healthy
    assert [line.split(":")[0] for line in health.problems] == [
        f"group {g} has no leader that a majority of its voters agree on" for g in range(3)]
    assert "node 1 pre-candidate (term 3)" in health.problems[0]


def test_two_nodes_down_leave_no_leader() -> None:
    health = assess([member(1, "leader", 2, 1), down(2), down(3)])
    assert not health.healthy
    assert health.problems[0].startswith("node 2 is down: UNAVAILABLE")
    assert health.problems[-1].startswith("group 0 has no leader")


def test_a_removed_node_is_not_a_healthy_member() -> None:
    voters = (1, 3, 4)
    reports = [member(1, "follower", 6, 3, voters),
               # it missed its removal: it still counts itself and campaigns
               member(2, "pre-candidate", 5, 0, (1, 2, 3, 4)),
               member(3, "leader", 6, 3, voters), member(4, "follower", 6, 3, voters)]
    health = assess(reports)
    assert [report.health for report in health.reports] == ["up", "removed", "up", "up"]
    assert [line for line in health.problems if "node 2" in line]
    assert health.groups_json() == [{"group": 0, "leader": 3, "term": 6, "voters": [1, 3, 4],
                                     "learners": []}]


def test_a_node_waiting_to_join_is_a_note_and_a_learner_is_a_member() -> None:
    healthy = [member(1, "leader", 2, 1), member(2, "follower", 2, 1), member(3, "follower", 2, 1)]
    waiting = member(4, "follower", 0, 0, voters=())
    health = assess([*healthy, waiting])
    assert health.healthy and health.reports[-1].health == "joining"
    assert health.notes and "node 4 waits to be added" in health.notes[0]
    added = [member(n, role, 2, 1, learners=(4,)) for n, role in
             ((1, "leader"), (2, "follower"), (3, "follower"))]
    health = assess([*added, member(4, "follower", 2, 1, learners=(4,))])
    assert health.healthy and health.reports[-1].health == "up"


def test_a_voter_missing_from_the_list_is_noted() -> None:
    voters = (1, 3, 4)
    health = assess([member(1, "follower", 6, 4, voters), member(3, "follower", 6, 4, voters)])
    # The leader itself was not asked: its followers cannot vouch for it alone.
    assert not health.healthy
    health = assess([member(1, "follower", 6, 3, voters), member(3, "leader", 6, 3, voters)])
    assert health.healthy
    assert health.notes == ("group 0: voter(s) 4 not in the cluster list, so not asked",)
