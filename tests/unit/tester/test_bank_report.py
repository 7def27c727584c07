"""The bank run's report, from a hand-made history: counts per kind of transaction, each
violation and blocked transaction one line in index.html, blocked intervals shaded on the
timeline."""

from __future__ import annotations

import json
from pathlib import Path

from distlab.check import check_bank, read_txn_history
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
