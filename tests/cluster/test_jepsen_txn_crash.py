"""`distlab test --workload bank --protocol 2pc --nemesis txn-crash-commit-logged`: a node is
armed to crash as coordinator with COMMIT on its disk but not sent, stays down for the rest of
the fault window, and is restarted at the heal. The money is conserved (the restarted
coordinator finishes the commit), and the participant that voted yes is reported blocked: it
held the transaction in doubt, with its lock, for as long as its coordinator was down.
With `--protocol 3pc --nemesis txn-partition` a participant that cuts itself off right after
its yes vote terminates alone and aborts while the others commit: 3PC disagrees with itself
under a partition, and the report says that it is 3PC's known weakness."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support import run_distlab

RUN_TIMEOUT_SECONDS = 60


def run_bank(report: Path, protocol: str, nemesis: str, interval: int
             ) -> subprocess.CompletedProcess[str]:
    """A 12 s bank run over four accounts on node participants, seed 1."""
    return run_distlab("test", "--workload", "bank", "--protocol", protocol, "--participants",
                       "nodes", "--accounts", "4", "--nemesis", nemesis, "--time-limit", "12",
                       "--nemesis-interval", str(interval), "--quiet", "1", "--seed", "1",
                       "--report", str(report), timeout=RUN_TIMEOUT_SECONDS)


def test_two_phase_commit_blocks_while_a_crashed_coordinator_is_down(tmp_path: Path) -> None:
    report = tmp_path / "report"
    done = run_bank(report, "2pc", "txn-crash-commit-logged", interval=5)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("distlab test: valid:"), done.stdout
    result = json.loads((report / "result.json").read_text())
    bank = result["bank"]
    assert bank["verdict"] == "valid" and bank["violations"] == [] and bank["total"] == 400
    assert result["heal_errors"] == []
    [fault] = result["faults"]
    assert fault["kind"] == "txn-crash" and "crashed; down" in fault["description"], fault
    crashed = fault["targets"][0]
    assert bank["blocked"], result
    assert all(f"while its coordinator, node {crashed}, was down" in line
               and "prepared" in line for line in bank["blocked"]), bank["blocked"]


def test_three_phase_commit_disagrees_when_a_participant_is_cut_off_after_its_yes(
        tmp_path: Path) -> None:
    report = tmp_path / "report"
    done = run_bank(report, "3pc", "txn-partition", interval=4)
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads((report / "result.json").read_text())
    bank = result["bank"]
    assert bank["verdict"] == "invalid"
    # The cut-off participant terminated alone and aborted; the other side committed.
    assert any("applied in part" in line for line in bank["violations"]), bank["violations"]
    assert any("3PC is not safe when the network partitions" in note
               for note in bank["notes"]), bank["notes"]
    [fault] = result["faults"]
    assert fault["kind"] == "txn-partition" and fault["errors"] == []
    assert "3PC is not safe" in (report / "index.html").read_text()
