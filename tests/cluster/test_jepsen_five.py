"""`distlab test` on a five-node cluster: a short run with every kind of fault."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cluster.test_jepsen_run import assert_ok_around_every_fault, run_test_command


def test_five_nodes_with_faults_are_linearizable(tmp_path: Path) -> None:
    report = tmp_path / "report"
    # Windows of 3 s after 3 s healthy: 3-6, 9-12, 15-18, and a fourth could start no earlier
    # than 21 and end no earlier than 24, past the limit. The kill goes last, so however long
    # its restart takes, exactly these three windows happen.
    completed = run_test_command(
        report, "--nodes", "5", "--nemesis", "partition,pause,kill", "--time-limit", "23",
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
