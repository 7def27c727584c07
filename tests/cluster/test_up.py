"""What `distlab up` says about its nodes: one that dies, a data directory already in use."""

from __future__ import annotations

import os
import signal
import threading
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
