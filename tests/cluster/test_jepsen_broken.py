"""`distlab test` can fail: a store whose reads skip the read barrier and are served by any
member (DISTLAB_UNSAFE_STALE_READS) is caught as not linearizable once a partition cuts
the leader off while reads keep reaching it. The same run against the correct store,
reads still sent to any member, is linearizable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.test_jepsen_run import run_test_command

# Two keys and many reads: while the old leader is cut off, the new one takes writes on
# both keys and about a third of the reads still go to the old leader's frozen state.
STALE_READ_RUN = ("--nodes", "3", "--read-from-any", "--nemesis", "partition-isolate-leader",
                  "--nemesis-interval", "4", "--time-limit", "16", "--keys", "2",
                  "--rate", "40", "--mix", "get=0.5,put=0.5", "--quiet", "1", "--seed", "3")


@pytest.mark.parametrize(("stale_reads", "verdict", "status"), [
    ("1", "not linearizable", 1),
    ("0", "linearizable", 0),
])
def test_stale_reads_are_caught_and_correct_reads_pass(
        tmp_path: Path, stale_reads: str, verdict: str, status: int) -> None:
    report = tmp_path / "report"
    completed = run_test_command(report, *STALE_READ_RUN,
                                 env={"DISTLAB_UNSAFE_STALE_READS": stale_reads})
    output = completed.stdout + completed.stderr[-4000:]
    assert completed.returncode == status, output
    assert completed.stdout.strip().splitlines()[-1].startswith(f"distlab test: {verdict}: ")
    result = json.loads((report / "result.json").read_text())
    assert result["verdict"] == verdict
    assert result["settings"]["read_from_any"] is True
    assert result["settings"]["unsafe_stale_reads"] is (stale_reads == "1")
    (fault, *_) = result["faults"]
    assert fault["description"].startswith("partition isolate-leader")
    assert result["totals"]["ok"] > 0
    if status == 1:
        assert result["checker"]["violation_key"] in ("k0", "k1")
        assert "not linearizable" in (report / "index.html").read_text()
        assert "not linearizable" in (report / "timeline.html").read_text()
