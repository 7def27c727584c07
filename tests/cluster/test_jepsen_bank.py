"""`distlab test --workload bank` on three nodes it starts: 2PC transfers and reads of every
account while a node is killed and restarted, a valid verdict from the bank checker, and a
report with the bank section and the transaction timeline."""

from __future__ import annotations

import json
from pathlib import Path

from distlab.check import read_txn_history
from tests.support import run_distlab

RUN_TIMEOUT_SECONDS = 180


def test_bank_with_two_phase_commit_and_kills_is_valid(tmp_path: Path) -> None:
    report = tmp_path / "report"
    done = run_distlab("test", "--workload", "bank", "--protocol", "2pc", "--participants",
                       "nodes", "--accounts", "4", "--nemesis", "kill", "--time-limit", "15",
                       "--nemesis-interval", "5", "--quiet", "2", "--report", str(report),
                       timeout=RUN_TIMEOUT_SECONDS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("distlab test: valid:"), done.stdout
    result = json.loads((report / "result.json").read_text())
    bank = result["bank"]
    assert bank["verdict"] == "valid" and bank["violations"] == [] and bank["total"] == 400
    assert result["heal_errors"] == []  # healed, and every node answered Txn Status
    assert bank["transfers"]["committed"] > 0 and bank["reads"]["ok"] > 0
    assert [fault["kind"] for fault in result["faults"]] == ["kill"]
    final = result["final_reads"]
    assert sorted(final) == [f"acct{i}" for i in range(4)] and sum(final.values()) == 400
    assert result["settings"]["protocol"] == "2pc"
    assert set(result["counts"]) == {"open", "read", "transfer"}
    # The history is DESIGN §9's transaction format; every transfer is a pair of adds that
    # moves money, and no process invokes again after an unknown outcome.
    history = read_txn_history(report / "history.jsonl", timestamps=False)
    transfers = [t for t in history.transactions if t.ops[0][0] == "add"]
    assert transfers and all(len(t.ops) == 2 and t.ops[0][2] == -t.ops[1][2]  # type: ignore
                             and t.ops[0][1] != t.ops[1][1] for t in transfers)
    retired: set[int] = set()
    for line in (report / "history.jsonl").read_text().splitlines():
        event = json.loads(line)
        assert event["f"] == "txn"
        if event["type"] == "invoke":
            assert event["process"] not in retired
        elif event["type"] == "info":
            retired.add(event["process"])
    index = (report / "index.html").read_text()
    assert "<h2>Bank</h2>" in index and "Violations" in index
    assert "<svg" in (report / "timeline.html").read_text()


def test_bank_over_groups_with_kills_and_partitions_is_valid_and_unblocked(
        tmp_path: Path) -> None:
    report = tmp_path / "report"
    done = run_distlab("test", "--workload", "bank", "--participants", "groups",
                       "--accounts", "4", "--nemesis", "kill,partition", "--time-limit", "20",
                       "--nemesis-interval", "4", "--quiet", "2", "--seed", "7",
                       "--report", str(report), timeout=RUN_TIMEOUT_SECONDS)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((report / "result.json").read_text())
    bank = result["bank"]
    assert bank["verdict"] == "valid" and bank["violations"] == [], bank
    # Over groups no crash blocks a transaction: nothing is in doubt after the heal.
    assert bank["blocked"] == [], bank["blocked"]
    assert bank["transfers"]["committed"] > 0 and bank["reads"]["ok"] > 0
    assert result["settings"]["participants"] == "groups"
    assert result["settings"]["groups"] == 3
    assert {fault["kind"] for fault in result["faults"]} == {"kill", "partition"}
    assert sum(result["final_reads"].values()) == 400


def test_participants_is_for_the_bank_workload(tmp_path: Path) -> None:
    done = run_distlab("test", "--participants", "groups",
                       "--report", str(tmp_path / "report"))
    assert done.returncode == 2
    assert "--participants is for --workload bank" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "report").exists()
