"""`distlab test` on a five-node cluster: a short run with every kind of fault."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cluster.test_jepsen_run import assert_ok_around_every_fault, run_test_command


def test_five_nodes_with_faults_are_linearizable(tmp_path: Path) -> None:
    report = tmp_path / "report"
    # The kill goes last: however long the restart takes, the three windows fit.
    completed = run_test_command(
        report, "--nodes", "5", "--nemesis", "partition,pause,kill", "--time-limit", "25",
        "--nemesis-interval", "3", "--rate", "20", "--seed", "11")
    output = completed.stdout + completed.stderr[-6000:]
    assert completed.returncode == 0, output
    assert completed.stdout.strip().splitlines()[-1].startswith(
        "distlab test: linearizable: "), output
    result = json.loads((report / "result.json").read_text())
    context = json.dumps(result["faults"], indent=1)
    assert result["verdict"] == "linearizable"
    assert result["settings"]["nodes"] == 5
    assert [fault["kind"] for fault in result["faults"]] == ["partition", "pause", "kill"], \
        context
    assert all(not fault["errors"] for fault in result["faults"]), context
    assert_ok_around_every_fault(report, result)
    for page in ("index.html", "timeline.html", "latency.svg", "history.jsonl"):
        assert (report / page).stat().st_size > 0
