"""`distlab test --workload external-consistency` on three nodes and three groups it starts,
with skewed clocks, kills and partitions: valid with commit wait; with the same seed and
DISTLAB_UNSAFE_NO_COMMIT_WAIT on the nodes, a transaction invoked after another completed
is caught below its timestamp, and the report names the two.

The clocks are set 8 ms apart on either side (TRUETIME_EPSILON_MS=8, the skews the nodes
accept at that epsilon): without commit wait a pair's T2 falls below T1 when less than the
16 ms between the outer clocks passes between T1's timestamp and T2's start, which most of
the workload's back-to-back pairs manage on a busy machine; with -3/0/+3 and the default
epsilon only a few in a hundred do, too few for a short run to be sure of one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distlab.check import read_txn_history
from tests.cluster.test_jepsen_run import run_test_command

RUN = ("--workload", "external-consistency", "--nodes", "3", "--groups", "3",
       "--clock-skews=-8,0,8", "--nemesis", "kill,partition", "--nemesis-interval", "3",
       "--time-limit", "17", "--quiet", "1", "--seed", "11")
EPSILON = {"TRUETIME_EPSILON_MS": "8"}


@pytest.mark.parametrize(("no_commit_wait", "verdict", "status"), [
    ("0", "valid", 0),
    ("1", "invalid", 1),
])
def test_commit_wait_keeps_transactions_externally_consistent(
        tmp_path: Path, no_commit_wait: str, verdict: str, status: int) -> None:
    report = tmp_path / "report"
    completed = run_test_command(
        report, *RUN, env={**EPSILON, "DISTLAB_UNSAFE_NO_COMMIT_WAIT": no_commit_wait})
    output = completed.stdout + completed.stderr[-4000:]
    assert completed.returncode == status, output
    assert completed.stdout.strip().splitlines()[-1].startswith(f"distlab test: {verdict}")
    result = json.loads((report / "result.json").read_text())
    settings = result["settings"]
    assert settings["workload"] == "external-consistency"
    assert settings["clock_skews_ms"] == [-8, 0, 8]
    assert settings["unsafe_no_commit_wait"] is (no_commit_wait == "1")
    assert result["checker"]["model"] == "bank+external"
    # Transfers, read-only transactions and snapshot reads all committed, and the pairs ran
    # from the group of the fastest clock to the slowest's.
    counts = result["counts"]
    assert all(counts[kind]["ok"] > 0 for kind in ("transfer", "read", "snapshot read"))
    assert result["pairs"]["faster_to_slower"] > 0
    assert {fault["kind"] for fault in result["faults"]} == {"kill", "partition"}
    # Money is conserved either way: missing commit wait breaks only the order.
    assert result["bank"]["violations"] == [], result["bank"]["violations"]
    history = read_txn_history(report / "history.jsonl")
    assert any(t.at is not None and t.status == "ok" for t in history.transactions)
    external = result["external"]
    if status == 0:
        assert external["verdict"] == "externally consistent" and external["violations"] == []
        assert external["reads_checked"] > 0
        return
    violations = external["violations"]
    assert violations and {v["kind"] for v in violations} == {"real-time"}
    later, earlier = violations[0]["transactions"]
    # The pair: the earlier one committed before the later one was invoked, yet has the
    # higher timestamp; both are named with their history lines.
    assert earlier["complete_time"] < later["invoke_time"] and earlier["ts"] > later["ts"]
    assert not earlier["read_only"]
    index = (report / "index.html").read_text()
    assert "<h2>External consistency</h2>" in index
    assert f"lines {later['invoke_line']}-{later['complete_line']}, " \
           f"{earlier['invoke_line']}-{earlier['complete_line']}" in index
    assert "violation (real-time)" in completed.stdout + completed.stderr
