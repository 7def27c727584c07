"""The bank run's report, from a hand-made history: counts per kind of transaction, each
violation and blocked transaction one line in index.html, blocked intervals shaded on the
timeline."""

from __future__ import annotations

import json
from pathlib import Path

from distlab.check import (
    BankVerdict,
    Consistency,
    check_bank,
    check_external,
    read_txn_history,
)
from distlab.check.tester.bank_report import bank_counts, bank_document, write_bank_report
from distlab.check.tester.report import FaultRecord, summarize_history

NS = 1_000_000_000


def event(process: int, kind: str, value: object, time: int) -> str:
    return json.dumps({"process": process, "type": kind, "f": "txn", "key": None,
                       "value": value, "time": time})


def test_the_report_shows_the_violations_and_the_blocked_transactions(tmp_path: Path) -> None:
    opening = [["w", "a", 10], ["w", "b", 10]]
    transfer = [["add", "a", -3], ["add", "b", 3]]
    lines = [event(0, "invoke", opening, 0), event(0, "ok", opening, NS),
             event(1, "invoke", transfer, 2 * NS), event(1, "ok", transfer, 3 * NS),
             event(2, "invoke", transfer, 4 * NS), event(2, "info", None, 5 * NS),
             event(3, "invoke", [["r", "a", None], ["r", "b", None]], 6 * NS),
             event(3, "fail", None, 7 * NS)]
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert bank_counts(lines) == {"open": {"ok": 1, "fail": 0, "info": 0},
                                  "read": {"ok": 0, "fail": 1, "info": 0},
                                  "transfer": {"ok": 1, "fail": 0, "info": 1}}
    unfinished = [{"node": 2, "id": "t9.0", "state": "prepared", "coordinator": "1",
                   "age_seconds": 6.0, "locks": ["a:X"]}]
    # a applied three times: not explained by one committed and one unknown transfer
    bank = check_bank(read_txn_history(path, timestamps=False), ["a", "b"],
                      {"a": 1, "b": 19}, unfinished, since_heal_seconds=2.0)
    assert len(bank.violations) == 1 and len(bank.blocked) == 1
    faults = [FaultRecord("kill", "kill", "kill node 3", (3,), 2 * NS, 4 * NS)]
    summary = summarize_history(lines)
    document = bank_document(bank=bank, summary=summary, counts=bank_counts(lines),
                             faults=faults, origin_ns=0, finish_ns=10 * NS, settings={},
                             exit_status=1, elapsed=0.01)
    write_bank_report(tmp_path, document, summary, faults, [(4 * NS, 10 * NS, "t9.0")])
    assert document["verdict"] == "invalid" and document["checker"]["reason"] == "1 violation"
    index = (tmp_path / "index.html").read_text()
    assert f"<li>{bank.violations[0]}</li>" in index.replace("&#x27;", "'")
    assert ("transaction t9.0 prepared for 6.0 s on node 2 after the final heal "
            "(coordinator 1; locks a:X)") in index
    assert "verdict bad" in index
    timeline = (tmp_path / "timeline.html").read_text()
    assert timeline.count("<title>blocked: t9.0</title>") == 1
    assert "<title>kill node 3</title>" in timeline
    assert json.loads((tmp_path / "result.json").read_text())["bank"]["valid"] is False


def test_an_external_consistency_report_names_both_transactions_of_a_violation(
        tmp_path: Path) -> None:
    opening = [["w", "a", 10], ["w", "b", 10]]
    transfer = [["add", "a", -3], ["add", "b", 3]]
    reads = [["r", "a", None], ["r", "b", None]]
    stale = [["r", "a", 10], ["r", "b", 10]]  # the state below the transfer's timestamp

    def stamped(process: int, kind: str, value: object, time: int, **fields: int) -> str:
        record = json.loads(event(process, kind, value, time))
        return json.dumps({**record, **fields})

    lines = [stamped(0, "invoke", opening, 0), stamped(0, "ok", opening, NS, ts=100),
             stamped(1, "invoke", transfer, 2 * NS), stamped(1, "ok", transfer, 3 * NS, ts=300),
             # invoked after the transfer completed, yet read below its timestamp
             stamped(1, "invoke", reads, 4 * NS), stamped(1, "ok", stale, 5 * NS, ts=250),
             stamped(2, "invoke", reads, 6 * NS, at=200), stamped(2, "ok", stale, 7 * NS, ts=200)]
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert bank_counts(lines)["snapshot read"] == {"ok": 1, "fail": 0, "info": 0}
    history = read_txn_history(path)
    bank = check_bank(history, ["a", "b"], {"a": 7, "b": 13})
    external = check_external(history)
    assert bank.verdict is BankVerdict.VALID  # every read sums to the total
    assert external.verdict is Consistency.VIOLATED
    summary = summarize_history(lines)
    document = bank_document(bank=bank, summary=summary, counts=bank_counts(lines), faults=[],
                             origin_ns=0, finish_ns=8 * NS,
                             settings={"workload": "external-consistency"}, exit_status=1,
                             elapsed=0.01, verdict=BankVerdict.INVALID, external=external,
                             extra={"pairs": {"read": 1, "transfer": 0,
                                              "faster_to_slower": 1}})
    write_bank_report(tmp_path, document, summary, [], [])
    assert document["verdict"] == "invalid" and document["checker"]["reason"] == "1 violation"
    (violation,) = document["external"]["violations"]
    assert violation["kind"] == "real-time"
    assert [(t["invoke_line"], t["ts"]) for t in violation["transactions"]] == [(5, 250),
                                                                               (3, 300)]
    index = (tmp_path / "index.html").read_text()
    assert "<h2>External consistency</h2>" in index and "lines 5-6, 3-4" in index
    assert "process 1&#x27;s read-only transaction" in index
    assert "1 with a read-only T2" in index
    assert "distlab test (external-consistency): invalid" in (tmp_path / "timeline.html"
                                                             ).read_text()
