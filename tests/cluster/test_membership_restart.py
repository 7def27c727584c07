"""Membership changes through the command line, then a restart of the whole cluster; and what
`distlab status` says of a cluster that has no leader."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from distlab.client import KVClient
from distlab.ops.local_cluster import free_loopback_ports, wait_serving
from distlab.ops.status import wait_for_leader
from tests.support import UpProcess, distlab_command, pid_alive, run_distlab, wait_for

# Snapshots early, so the restart reads them back, as a cluster that ran a while does.
SNAPSHOTS_EARLY = {"SNAPSHOT_ENTRIES": "20"}
WRITES_PER_STEP = 40


def addresses(cluster_file: Path) -> dict[int, str]:
    document = json.loads(cluster_file.read_text())
    return {node["id"]: node["address"] for node in document["nodes"]}


def status(*target: str) -> tuple[int, dict[str, Any]]:
    result = run_distlab("status", *target, "--json")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def cluster_command(*args: str) -> subprocess.CompletedProcess[str]:
    result = run_distlab("cluster", *args, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no leader answers" not in result.stdout + result.stderr
    return result


def write_batch(members: dict[int, str], prefix: str, acknowledged: dict[str, str]) -> None:
    """WRITES_PER_STEP writes, ten at a time; each acknowledged one is remembered."""
    async def write() -> None:
        async with KVClient(members, operation_timeout=20.0) as client:
            for start in range(0, WRITES_PER_STEP, 10):
                keys = [f"{prefix}-{i}" for i in range(start, start + 10)]
                await asyncio.gather(*(client.put(key, f"value of {key}") for key in keys))
                acknowledged.update({key: f"value of {key}" for key in keys})

    asyncio.run(write())


def every_group(report: dict[str, Any], node: int, test: Any) -> bool:
    rows = {row["id"]: row for row in report["nodes"]}
    return node in rows and bool(rows[node]["groups"]) and all(
        test(group) for group in rows[node]["groups"])


class Newcomer:
    """Node 4, started by hand with --join in the cluster's directory, as the README says."""

    def __init__(self, data_dir: Path, members: dict[int, str], groups: int) -> None:
        grpc_port, metrics_port = free_loopback_ports(2)
        self.address = f"127.0.0.1:{grpc_port}"
        cluster_nodes = ",".join(f"{n}={a}" for n, a in {**members, 4: self.address}.items())
        self.log = (data_dir / "node-4.log").open("ab")
        self.process = subprocess.Popen(
            distlab_command("node", "--node-id", "4", "--join", "--cluster-nodes", cluster_nodes,
                            "--listen", self.address, "--metrics", f"127.0.0.1:{metrics_port}",
                            "--data-dir", str(data_dir / "node-4"), "--groups", str(groups)),
            stdout=self.log, stderr=self.log, env={**os.environ, **SNAPSHOTS_EARLY})
        problem = asyncio.run(wait_serving(self.address, 30))
        assert problem is None, problem

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def running() -> Iterator[list[UpProcess | Newcomer]]:
    """Whatever a test starts; all of it stopped at the end."""
    started: list[UpProcess | Newcomer] = []
    try:
        yield started
    finally:
        for item in reversed(started):
            item.stop()
            if isinstance(item, UpProcess) and item.cluster_file.exists():
                for node in item.description()["nodes"]:
                    if node["pid"] and pid_alive(node["pid"]):
                        os.kill(node["pid"], signal.SIGKILL)


@pytest.mark.parametrize("groups", [1, 3])
def test_a_restart_after_membership_changes_runs_the_members_of_now(
        tmp_path: Path, running: list[UpProcess | Newcomer], groups: int) -> None:
    data_dir = tmp_path / "cluster"
    up = UpProcess(data_dir, nodes=3, extra_env=SNAPSHOTS_EARLY,
                   extra_args=["--groups", str(groups)])
    running.append(up)
    cluster_file = ["--cluster-file", str(up.cluster_file)]
    original = addresses(up.cluster_file)
    acknowledged: dict[str, str] = {}
    write_batch(original, "before", acknowledged)

    newcomer = Newcomer(data_dir, original, groups)
    running.append(newcomer)
    cluster_command("add", "4", newcomer.address, *cluster_file)
    wait_for(lambda: every_group(status(*cluster_file)[1], 4,
                                 lambda group: 4 in group["voters"] and not group["learners"]),
             timeout=60, what="node 4 to become a voter in every group")
    write_batch(addresses(up.cluster_file), "added", acknowledged)

    # Leadership moves to the new member, then on through a list that does not name it: the
    # command follows the hints to node 4 rather than giving up.
    cluster_command("transfer-leader", "4", *cluster_file)
    only_original = ",".join(f"{n}={a}" for n, a in original.items())
    cluster_command("transfer-leader", "3", "--cluster", only_original)
    cluster_command("remove", "2", *cluster_file)
    assert sorted(addresses(up.cluster_file)) == [1, 3, 4]
    write_batch(addresses(up.cluster_file), "removed", acknowledged)

    # Node 2 still runs, but it is no longer a member, and status says so.
    everyone = ",".join(f"{n}={a}" for n, a in {**original, 4: newcomer.address}.items())

    def node_2_removed() -> bool:
        code, report = status("--cluster", everyone)
        rows = {row["id"]: row for row in report["nodes"]}
        return code == 1 and rows[2]["health"] == "removed"

    wait_for(node_2_removed, timeout=30, what="status to report node 2 removed")
    assert status(*cluster_file)[0] == 0

    assert up.stop() == 0
    newcomer.stop()

    restarted = UpProcess(data_dir, nodes=None, extra_env=SNAPSHOTS_EARLY)
    running.append(restarted)
    serving_at = time.monotonic()
    members = addresses(restarted.cluster_file)
    assert sorted(members) == [1, 3, 4]
    assert members == {n: a for n, a in {**original, 4: newcomer.address}.items() if n != 2}
    leaders = asyncio.run(wait_for_leader(members, timeout=5.0))
    assert sorted(leaders) == list(range(groups)), time.monotonic() - serving_at

    async def read_back() -> None:
        async with KVClient(members, operation_timeout=20.0) as client:
            for key, value in acknowledged.items():
                assert await client.get(key) == value, key

    asyncio.run(read_back())
    # Balancing may be moving a group's leadership right now: wait for a settled answer.
    report = wait_for(lambda: (lambda answer: answer[1] if answer[0] == 0 else None)(
        status(*cluster_file)), timeout=30, what="status to find the cluster healthy")
    assert [row["id"] for row in report["nodes"]] == [1, 3, 4]
    for node in (1, 3, 4):
        assert every_group(report, node, lambda group: group["voters"] == [1, 3, 4]
                           and group["learners"] == [])
    assert [group["voters"] for group in report["groups"]] == [[1, 3, 4]] * groups


def test_status_fails_a_node_that_campaigns_alone(tmp_path: Path) -> None:
    """A fresh node of a three-node cluster whose peers never started: it answers, and has
    no leader to agree on."""
    grpc_port, metrics_port, other, another = free_loopback_ports(4)
    address = f"127.0.0.1:{grpc_port}"
    log = (tmp_path / "node-1.log").open("ab")
    process = subprocess.Popen(
        distlab_command("node", "--node-id", "1", "--cluster-nodes",
                        f"1={address},2=127.0.0.1:{other},3=127.0.0.1:{another}",
                        "--listen", address, "--metrics", f"127.0.0.1:{metrics_port}",
                        "--data-dir", str(tmp_path / "node-1")),
        stdout=log, stderr=log)
    try:
        assert asyncio.run(wait_serving(address, 30)) is None

        def campaigning() -> bool:
            return status("--cluster", f"1={address}")[1]["nodes"][0]["role"] == "pre-candidate"

        wait_for(campaigning, timeout=30, what="node 1 to campaign")
        code, report = status("--cluster", f"1={address}")
        assert code == 1
        assert report["healthy"] is False
        assert report["nodes"][0]["health"] == "up"
        assert report["problems"][0].startswith(
            "group 0 has no leader that a majority of its voters agree on")
        table = run_distlab("status", "--cluster", f"1={address}")
        assert table.returncode == 1
        assert "group 0 has no leader" in table.stdout
        assert "1,2,3" in table.stdout  # the voters column
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def test_status_fails_once_two_of_three_nodes_are_killed(
        tmp_path: Path, running: list[UpProcess | Newcomer]) -> None:
    up = UpProcess(tmp_path / "cluster", nodes=3)
    running.append(up)
    nodes = up.description()["nodes"]
    wait_for(lambda: status("--cluster-file", str(up.cluster_file))[0] == 0, timeout=30,
             what="a healthy cluster")
    for node in nodes[1:]:
        os.kill(node["pid"], signal.SIGKILL)
    survivor = f"1={nodes[0]['address']}"

    def leaderless() -> dict[str, Any] | None:
        code, report = status("--cluster", survivor)
        return report if code == 1 and report["problems"] else None

    # Whether the survivor still says it leads or has stepped down, no majority agrees.
    report = wait_for(leaderless, timeout=30, what="status to find no leader")
    assert report["groups"] == [{"group": 0, "leader": None, "term": None, "voters": [],
                                 "learners": []}]
    code, report = status("--cluster-file", str(up.cluster_file))
    assert code == 1
    assert [row["health"] for row in report["nodes"]] == ["up", "down", "down"]
