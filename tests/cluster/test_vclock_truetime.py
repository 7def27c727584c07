"""VCLOCK_LOG and TrueTime settings on a real cluster: three `distlab node` processes append
every peer message they send and receive to one ShiViz log, and every receive comes after its
send; `distlab up --clock-skews` gives each node its skew, which its metrics show."""

from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path

from distlab.core.vclock_log import LoggedEvent, MalformedLog, parse_log, problems_of
from tests.support import UpProcess, pid_alive, wait_for

HOSTS = {"node-1", "node-2", "node-3"}


def every_node_has_received(log: Path) -> list[LoggedEvent] | None:
    if not log.exists():
        return None
    try:
        events = parse_log(log.read_text())
    except MalformedLog:
        return None  # read while a node was writing an event: look again
    receivers = {event.host for event in events if event.kind == "receive"}
    return events if receivers == HOSTS else None


def truetime_metrics(metrics_address: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {name: float(value) for name, _, value in
            (line.partition(" ") for line in text.splitlines())
            if name.startswith("distlab_truetime_") and not name.startswith("#")}


def test_a_three_node_cluster_logs_receives_after_their_sends(tmp_path: Path) -> None:
    log = tmp_path / "cluster.shiviz"
    up = UpProcess(tmp_path / "cluster", nodes=3,
                   extra_env={"VCLOCK_LOG": str(log), "TRUETIME_EPSILON_MS": "sawtooth"},
                   extra_args=["--clock-skews", "0,0.5,-1"])
    try:
        wait_for(lambda: every_node_has_received(log), 30, "every node to log a receive")
        nodes = up.description()["nodes"]
        skews = [truetime_metrics(node["metrics_address"])[
            "distlab_truetime_clock_skew_seconds"] for node in nodes]
        assert skews == [0.0, 0.0005, -0.001]
        epsilon = truetime_metrics(nodes[0]["metrics_address"])[
            "distlab_truetime_epsilon_seconds"]
        assert 0.001 <= epsilon <= 0.007
    finally:
        assert up.stop() == 0
        for node in up.description()["nodes"]:
            if pid_alive(node["pid"]):
                os.kill(node["pid"], signal.SIGKILL)
    events = parse_log(log.read_text())
    assert {event.host for event in events} == HOSTS
    receives = [event for event in events if event.kind == "receive"]
    assert receives and all(event.sent_as is not None for event in receives)
    assert any(event.description.startswith("send raft g0 to node-")
               and "RequestVote(" in event.description for event in events)
    assert problems_of(events) == []
