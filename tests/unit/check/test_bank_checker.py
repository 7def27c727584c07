"""The bank checker on hand-made histories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distlab.check import (
    HistoryError,
    HistoryRecorder,
    check_bank,
    parse_txn_history,
    read_txn_history,
)

ACCOUNTS = ["a", "b", "c"]


class History:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.time = 0
        self.process = 0

    def _event(self, process: int, kind: str, value: object) -> None:
        self.time += 10
        self.lines.append(json.dumps({"process": process, "type": kind, "f": "txn",
                                      "value": value, "time": self.time}))

    def txn(self, ops: list[list[object]], outcome: str = "ok",
            completed: list[list[object]] | None = None) -> None:
        self.process += 1
        self._event(self.process, "invoke", ops)
        if outcome != "open":
            self._event(self.process, outcome, completed if completed is not None else ops)

    def open_with(self, balances: dict[str, int]) -> None:
        self.txn([["w", key, value] for key, value in balances.items()])

    def transfer(self, source: str, target: str, amount: int, outcome: str = "ok") -> None:
        self.txn([["add", source, -amount], ["add", target, amount]], outcome)

    def read_all(self, balances: dict[str, int | None]) -> None:
        self.txn([["r", key, None] for key in balances],
                 completed=[["r", key, value] for key, value in balances.items()])

    def parsed(self):  # type: ignore[no-untyped-def]
        return parse_txn_history("\n".join(self.lines) + "\n", timestamps=False)


def opened() -> History:
    history = History()
    history.open_with({"a": 10, "b": 10, "c": 10})
    return history


def test_a_clean_history_passes() -> None:
    history = opened()
    history.transfer("a", "b", 3)
    history.read_all({"a": 7, "b": 13, "c": 10})
    history.transfer("b", "c", 5)
    history.transfer("c", "a", 40, outcome="fail")  # aborted: not enough money
    result = check_bank(history.parsed(), ACCOUNTS, {"a": "7", "b": "8", "c": "15"})
    assert result.valid, result.violations
    assert result.total == 30
    assert result.transfers == {"committed": 2, "unknown": 0, "aborted": 1}
    assert result.reads == {"ok": 1}


def test_a_read_whose_total_is_not_conserved_is_a_violation() -> None:
    history = opened()
    history.transfer("a", "b", 3)
    history.read_all({"a": 7, "b": 10, "c": 10})
    result = check_bank(history.parsed(), ACCOUNTS, {"a": 7, "b": 13, "c": 10})
    assert not result.valid
    assert len(result.violations) == 1
    assert result.violations[0].startswith("total not conserved:")
    assert "sums to 27, not 30" in result.violations[0]


def test_a_transfer_applied_in_part_is_a_violation() -> None:
    history = opened()
    history.transfer("a", "b", 3)
    result = check_bank(history.parsed(), ACCOUNTS, {"a": 7, "b": 10, "c": 10})
    assert not result.valid
    assert any(v.startswith("total not conserved: the final read") for v in result.violations)
    explained = [v for v in result.violations if v.startswith("final balances not explained")]
    assert explained and "applied in part (add a -3)" in explained[0], result.violations


def test_a_transfer_applied_twice_is_a_violation_though_the_total_holds() -> None:
    history = opened()
    history.transfer("a", "b", 3)
    history.transfer("b", "c", 1)
    result = check_bank(history.parsed(), ACCOUNTS, {"a": 4, "b": 15, "c": 11})
    assert result.violations == [result.violations[0]]
    assert result.violations[0].startswith("final balances not explained")
    assert "a -3, b +3" in result.violations[0]
    assert "[add a -3, add b 3]" in result.violations[0] and "applied twice" in \
        result.violations[0]


def test_an_aborted_transfer_that_applied_is_a_violation() -> None:
    history = opened()
    history.transfer("a", "c", 2, outcome="fail")
    result = check_bank(history.parsed(), ACCOUNTS, {"a": 8, "b": 10, "c": 12})
    assert not result.valid


def test_unknown_transfers_may_or_may_not_have_applied() -> None:
    history = opened()
    history.transfer("a", "b", 3, outcome="info")
    history.transfer("b", "c", 2, outcome="info")
    history.transfer("c", "a", 1, outcome="open")
    history.transfer("a", "c", 4)
    parsed = history.parsed()
    # only the second unknown one applied
    assert check_bank(parsed, ACCOUNTS, {"a": 6, "b": 8, "c": 16}).valid
    # none applied, and all applied
    assert check_bank(parsed, ACCOUNTS, {"a": 6, "b": 10, "c": 14}).valid
    assert check_bank(parsed, ACCOUNTS, {"a": 4, "b": 11, "c": 15}).valid
    # but not one of them twice
    twice = check_bank(parsed, ACCOUNTS, {"a": 0, "b": 16, "c": 14})
    assert not twice.valid and "applied twice" in twice.violations[0]


def test_blocked_transactions_are_those_in_doubt_since_before_the_heal() -> None:
    history = opened()
    unfinished = [
        {"node": 2, "id": "t1.0", "state": "prepared", "coordinator": "1",
         "age_seconds": 12.0, "locks": ["a:X"]},
        {"node": 3, "id": "t1.0", "state": "prepared", "coordinator": "1",
         "age_seconds": 11.5, "locks": ["b:X"]},
        {"node": 2, "id": "t2.0", "state": "locking", "coordinator": "2",
         "age_seconds": 0.2, "locks": []},
    ]
    result = check_bank(history.parsed(), ACCOUNTS, {"a": 10, "b": 10, "c": 10},
                        unfinished, since_heal_seconds=4.0)
    assert result.valid
    assert [(b.txn_id, b.participants, b.locks) for b in result.blocked] == [
        ("t1.0", (2, 3), ("a:X", "b:X"))]
    assert ("prepared for 12.0 s on nodes 2, 3 after the final heal (coordinator 1"
            in result.blocked[0].describe())


def test_a_history_without_its_opening_balances_is_not_checked_as_valid() -> None:
    history = History()
    history.transfer("a", "b", 1)
    result = check_bank(history.parsed(), ACCOUNTS, {"a": 9, "b": 11, "c": 0})
    assert not result.valid


def test_without_a_final_read_the_verdict_is_unknown_not_valid() -> None:
    history = opened()
    history.transfer("a", "b", 3)
    result = check_bank(history.parsed(), ACCOUNTS, None)
    assert result.violations == [] and result.verdict.value == "unknown"
    assert result.notes == ["no final read after the heal: the final balances are unchecked"]
    assert check_bank(history.parsed(), ACCOUNTS, {"a": 7, "b": 13, "c": 10}
                      ).verdict.value == "valid"


def test_only_a_history_read_without_timestamps_may_leave_ts_out() -> None:
    history = opened()
    text = "\n".join(history.lines) + "\n"
    with pytest.raises(HistoryError, match="an ok transaction needs 'ts'"):
        parse_txn_history(text)
    assert parse_txn_history(text, timestamps=False).transactions[0].ts is None


def test_the_recorder_writes_transactions(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    with HistoryRecorder(path) as recorder:
        recorder.invoke(0, "txn", None, [["w", "a", 1], ["w", "b", 2], ["w", "c", 3]])
        recorder.ok(0, [["w", "a", 1], ["w", "b", 2], ["w", "c", 3]])
        recorder.invoke(1, "txn", None, [["add", "a", -1], ["add", "b", 1]])
        recorder.info(1)
    result = check_bank(read_txn_history(path, timestamps=False), ACCOUNTS,
                        {"a": 0, "b": 3, "c": 3})
    assert result.verdict.value == "valid" and result.transfers["unknown"] == 1
