"""`distlab up` and `distlab status` over real node processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.support import UpProcess, pid_alive, run_distlab, wait_for


def status(up: UpProcess) -> tuple[int, dict[str, Any]]:
    result = run_distlab("status", "--cluster-file", str(up.cluster_file), "--json")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_up_status_and_a_killed_node(up_three: UpProcess) -> None:
    nodes = up_three.description()["nodes"]
    assert [node["id"] for node in nodes] == [1, 2, 3]
    assert all(pid_alive(node["pid"]) for node in nodes)

    def healthy() -> dict[str, Any] | None:
        # Status passes once every group has a leader its voters agree on: right after
        # start-up the nodes may still be electing one.
        code, report = status(up_three)
        return report if code == 0 else None

    report = wait_for(healthy, timeout=15, what="status to pass once a leader is elected")
    rows = {row["id"]: row for row in report["nodes"]}
    for node in nodes:
        row = rows[node["id"]]
        assert row["health"] == "up"
        assert row["pid"] == node["pid"]
        assert row["address"] == node["address"]

    victim = nodes[1]
    os.kill(victim["pid"], signal.SIGKILL)

    def victim_down() -> dict[str, Any] | None:
        code, report = status(up_three)
        rows = {row["id"]: row for row in report["nodes"]}
        return rows if code == 1 and rows[victim["id"]]["health"] == "down" else None

    rows = wait_for(victim_down, timeout=15, what="status to report the killed node down")
    assert rows[victim["id"]]["error"]
    assert rows[1]["health"] == rows[3]["health"] == "up"

    # The table form reports the same, naming the node that is down.
    table = run_distlab("status", "--cluster-file", str(up_three.cluster_file))
    assert table.returncode == 1
    assert "node 2 is down" in table.stdout

    assert up_three.stop() == 0
    assert not any(pid_alive(node["pid"]) for node in nodes)


def test_status_of_a_cluster_nobody_runs(tmp_path: Any) -> None:
    result = run_distlab("status", "--cluster", "1=127.0.0.1:1,2=127.0.0.1:2", "--json",
                         "--timeout", "0.3")
    assert result.returncode == 1
    rows = json.loads(result.stdout)["nodes"]
    assert [row["health"] for row in rows] == ["down", "down"]


def test_status_rejects_bad_cluster_arguments(tmp_path: Any) -> None:
    result = run_distlab("status", "--cluster", "1=nowhere")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "distlab: error: --cluster entry '1=nowhere': expected host:port, got 'nowhere'"
    ]
    bad_file = tmp_path / "cluster.json"
    bad_file.write_text("{not json")
    result = run_distlab("status", "--cluster-file", str(bad_file))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "is not a cluster file" in result.stderr


def test_a_plain_address_list_names_the_same_nodes(up_three: UpProcess) -> None:
    nodes = up_three.description()["nodes"]
    plain = ",".join(node["address"] for node in reversed(nodes))

    def healthy() -> subprocess.CompletedProcess[str] | None:
        result = run_distlab("status", "--cluster", plain, "--json")
        return result if result.returncode == 0 else None

    result = wait_for(healthy, timeout=15, what="status over a plain list to pass")
    rows = json.loads(result.stdout)["nodes"]
    # The ids come from the nodes themselves, and the rows are in id order.
    assert [(row["id"], row["address"]) for row in rows] == [
        (node["id"], node["address"]) for node in nodes]
    put = run_distlab("kv", "put", "plain", "yes", env={"DISTLAB_CLUSTER": plain})
    assert put.returncode == 0, put.stderr
    get = run_distlab("kv", "get", "plain", "--cluster", plain)
    assert (get.returncode, get.stdout) == (0, "yes\n")


def test_up_passes_the_group_count_to_every_node(tmp_path: Any) -> None:
    up = UpProcess(tmp_path / "cluster", nodes=1, extra_args=["--groups", "3"])
    try:
        description = up.description()
        assert description["groups"] == 3
        [node] = description["nodes"]
        environment = Path(f"/proc/{node['pid']}/environ").read_bytes().split(b"\0")
        assert b"GROUPS=3" in environment
    finally:
        assert up.stop() == 0
