"""cluster.json after membership changes, and the cluster `distlab up` starts again from it."""

from __future__ import annotations

import json
from pathlib import Path

from distlab.core.ids import NodeId
from distlab.ops.local_cluster import LocalCluster, forget_member, record_member
from tests.support import run_distlab


def planned(tmp_path: Path) -> LocalCluster:
    cluster = LocalCluster.plan(3, tmp_path / "data", groups=3)
    cluster.data_dir.mkdir(parents=True)
    cluster.write_description()
    return cluster


def test_a_cluster_without_state_is_planned_anew(tmp_path: Path) -> None:
    assert LocalCluster.restart(tmp_path / "data") is None
    planned(tmp_path)
    assert LocalCluster.restart(tmp_path / "data") is None  # no node ran yet


def test_a_restart_runs_the_members_the_file_lists_now(tmp_path: Path) -> None:
    cluster = planned(tmp_path)
    path = cluster.data_dir / "cluster.json"
    record_member(path, NodeId(4), "127.0.0.1:7104")
    forget_member(path, NodeId(2))
    for node in (1, 3, 4):
        (cluster.data_dir / f"node-{node}").mkdir()
        (cluster.data_dir / f"node-{node}" / "wal").mkdir()
    (cluster.data_dir / "node-2").mkdir()  # the removed member's state stays, unused

    again = LocalCluster.restart(cluster.data_dir)
    assert again is not None and again.groups == 3 and not again.absent
    assert sorted(again.nodes) == [1, 3, 4]
    for node in (1, 3):
        assert again.nodes[NodeId(node)].address == cluster.nodes[NodeId(node)].address
        assert again.nodes[NodeId(node)].join is False
    added = again.nodes[NodeId(4)]
    assert str(added.address) == "127.0.0.1:7104" and added.join
    assert added.data_dir == cluster.data_dir / "node-4"
    assert again.cluster_nodes == ",".join(
        f"{node}={again.nodes[NodeId(node)].address}" for node in (1, 3, 4))


def test_a_member_without_its_state_is_not_started(tmp_path: Path) -> None:
    cluster = planned(tmp_path)
    (cluster.data_dir / "node-1" / "wal").mkdir(parents=True)
    again = LocalCluster.restart(cluster.data_dir)
    assert again is not None
    assert sorted(again.nodes) == [1] and sorted(again.absent) == [2, 3]
    # The others still reach it, and the file still lists it.
    assert str(cluster.nodes[NodeId(3)].address) in again.cluster_nodes
    written = json.loads(again.write_description().read_text())
    assert [node["id"] for node in written["nodes"]] == [1, 2, 3]


def test_up_refuses_to_restart_a_cluster_as_another(tmp_path: Path) -> None:
    cluster = planned(tmp_path)
    (cluster.data_dir / "node-1" / "wal").mkdir(parents=True)
    result = run_distlab("up", "--nodes", "5", "--groups", "3", "--data-dir",
                         str(cluster.data_dir))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "holds a cluster already" in line and "--nodes 5 (it has 3)" in line
