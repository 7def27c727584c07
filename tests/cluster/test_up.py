"""What `distlab up` says about its nodes: one that dies, a data directory already in use,
the engine it was asked for."""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.request
from pathlib import Path

from tests.support import UpProcess, pid_alive, run_distlab, wait_for


class StderrLines:
    """The lines a running process writes to its stderr pipe, collected as they come."""

    def __init__(self, up: UpProcess) -> None:
        self.lines: list[str] = []
        stream = up.process.stderr
        assert stream is not None
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

    def matching(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]


def test_up_reports_a_node_that_died(tmp_path: Path) -> None:
    up = UpProcess(tmp_path / "cluster", nodes=2)
    try:
        stderr = StderrLines(up)
        victim = up.description()["nodes"][1]
        os.kill(victim["pid"], signal.SIGKILL)
        [line] = wait_for(lambda: stderr.matching("was killed"), timeout=15,
                          what="distlab up to report the killed node")
        assert line.startswith(f"distlab up: node 2 (pid {victim['pid']}) was killed by SIGKILL; "
                               "last log line: ")
        last_logged = Path(victim["log"]).read_text().strip().splitlines()[-1]
        assert line.endswith(last_logged)
        assert up.process.poll() is None, "distlab up keeps the other nodes running"
    finally:
        assert up.stop() == 0


def test_a_second_up_on_a_data_directory_in_use_names_the_cause(tmp_path: Path) -> None:
    data_dir = tmp_path / "cluster"
    up = UpProcess(data_dir, nodes=2)
    try:
        before = up.description()
        second = run_distlab("up", "--nodes", "2", "--data-dir", str(data_dir))
        assert second.returncode == 1
        # The restart plan may be announced first; the error, one line, comes last.
        assert second.stderr.splitlines()[-1] == (
            f"distlab up: error: node 1 cannot start: write-ahead log {data_dir / 'node-1'}"
            "/wal is already open elsewhere")
        assert up.description() == before
        assert all(pid_alive(node["pid"]) for node in before["nodes"])
    finally:
        assert up.stop() == 0


def test_up_with_the_paxos_engine_records_it_and_serves_the_kv_store(tmp_path: Path) -> None:
    up = UpProcess(tmp_path / "cluster", nodes=3, extra_args=["--engine", "paxos"])
    try:
        assert up.description()["engine"] == "paxos"
        cluster = ["--cluster-file", str(up.cluster_file)]
        put = run_distlab("kv", "put", "k", "v", *cluster)
        assert put.returncode == 0, put.stderr
        get = run_distlab("kv", "get", "k", *cluster)
        assert (get.returncode, get.stdout.strip()) == (0, "v"), get.stderr

        def one_leader() -> list[dict[str, object]] | None:
            status = run_distlab("status", "--json", *cluster)
            rows = json.loads(status.stdout)["nodes"]
            leaders = [row for row in rows if row["role"] == "leader"]
            return rows if len(leaders) == 1 else None

        rows = wait_for(one_leader, timeout=15, what="one Paxos leader in the status")
        assert {row["engine"] for row in rows} == {"paxos"}
        [leader] = [row for row in rows if row["role"] == "leader"]
        # The ballot's round shows as the term, its node as the leader, the same everywhere.
        assert {row["leader"] for row in rows} == {leader["id"]}
        assert isinstance(leader["term"], int) and leader["term"] >= 1
        assert isinstance(leader["commit"], int) and leader["commit"] >= 1  # the put
        node = next(n for n in up.description()["nodes"] if n["id"] == leader["id"])
        with urllib.request.urlopen(f"http://{node['metrics_address']}/metrics",
                                    timeout=5) as response:
            metrics = response.read().decode()
        for line in ('distlab_paxos_has_leader{group="0"} 1.0',
                     'distlab_paxos_is_leader{group="0"} 1.0',
                     f'distlab_paxos_term{{group="0"}} {float(leader["term"])}'):
            assert line in metrics, line
        assert "distlab_paxos_proposals_committed_total" in metrics
    finally:
        assert up.stop() == 0
