"""`distlab test --compose`: the Jepsen-style run against the compose cluster, with kills and
pauses of its containers and partitions through the nodes' Admin service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from distlab.ops.status import wait_for_leader
from tests.docker.conftest import ComposeProject
from tests.support import run_distlab


def test_jepsen_run_against_compose_is_linearizable(
    make_project: Callable[..., ComposeProject], tmp_path: Path
) -> None:
    project = make_project("jepsen")
    project.up("node1", "node2", "node3")
    assert asyncio.run(wait_for_leader(project.nodes, timeout=60)) is not None
    report = tmp_path / "report"
    result = run_distlab(
        "test", "--compose", "--project", project.name, "--nemesis", "kill,pause,partition",
        "--time-limit", "40", "--nemesis-interval", "5", "--report", str(report),
        "--seed", "7", "--quiet", "5",
        env={"DISTLAB_PUBLISH_HOST": project.host}, timeout=400,
    )
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    assert "linearizable" in result.stdout.splitlines()[-1]
    summary = json.loads((report / "result.json").read_text())
    kinds = {fault["kind"] for fault in summary["faults"]}
    assert kinds == {"kill", "pause", "partition"}, summary["faults"]
    assert not [fault for fault in summary["faults"] if fault["errors"]], summary["faults"]
