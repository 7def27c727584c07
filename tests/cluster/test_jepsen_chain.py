"""`distlab test --system chain` against a three-node cluster it starts: kills, pauses and
partitions, in both read modes, end linearizable, with writes and reads completing around
every fault (the chain mends, and a killed or paused node comes back as its tail)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.test_jepsen_run import (
    assert_ok_around_every_fault,
    linearizable_result_with_faults,
    run_test_command,
)


@pytest.mark.parametrize("read_mode", ["cr", "craq"])
def test_the_chain_under_kills_pauses_and_partitions_is_linearizable(read_mode: str,
                                                                      tmp_path: Path) -> None:
    report = tmp_path / "report"
    completed = run_test_command(
        report, "--system", "chain", "--read-mode", read_mode, "--nodes", "3",
        "--nemesis", "kill,pause,partition", "--time-limit", "30", "--nemesis-interval", "4",
        "--rate", "20", "--keys", "5", "--seed", "7")
    assert completed.returncode == 0, completed.stdout + completed.stderr[-6000:]
    summary = completed.stdout.strip().splitlines()[-1]
    assert summary.startswith("distlab test: linearizable: "), summary
    result = linearizable_result_with_faults(report, ["kill", "pause", "partition"])
    counts = result["counts"]
    assert counts["get"]["ok"] > 0 and counts["put"]["ok"] > 0, counts
    assert_ok_around_every_fault(report, result)
