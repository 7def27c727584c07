"""The external-consistency checker: each kind of violation, clean histories, indeterminate
transactions, bad input, the command; and properties on histories of serial executions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from distlab.check import (
    Consistency,
    HistoryError,
    TxnHistory,
    check_external,
    parse_txn_history,
)
from distlab.cli.main import main

Op = tuple[str, str, object]


@dataclass(frozen=True)
class Txn:
    """One transaction of a hand-made history: `ops` as the ok record gives them (reads with
    the value read). `status` ok, info (a completion of type info at `ret`, or none when
    `ret` is None) or fail."""

    process: int
    ops: tuple[Op, ...]
    call: int
    ret: int | None
    ts: int | None = None
    status: str = "ok"
    at: int | None = None


def lines(*txns: Txn) -> str:
    events: list[tuple[int, int, dict[str, object]]] = []
    for order, txn in enumerate(txns):
        invoked = [[op, key, None if op == "r" else arg] for op, key, arg in txn.ops]
        invoke: dict[str, object] = {"process": txn.process, "type": "invoke", "f": "txn",
                                     "value": invoked, "time": txn.call}
        if txn.at is not None:
            invoke["at"] = txn.at
        events.append((txn.call, order, invoke))
        if txn.ret is None:
            continue
        completion: dict[str, object] = {
            "process": txn.process, "type": txn.status, "f": "txn",
            "value": [list(op) for op in txn.ops] if txn.status == "ok" else invoked,
            "time": txn.ret}
        if txn.status == "ok":
            completion["ts"] = txn.ts
        events.append((txn.ret, order, completion))
    events.sort(key=lambda event: (event[0], event[1]))
    return "".join(json.dumps(event) + "\n" for _, _, event in events)


def history(*txns: Txn) -> TxnHistory:
    return parse_txn_history(lines(*txns), "test.jsonl")


def verdict(*txns: Txn) -> Consistency:
    return check_external(history(*txns)).verdict


def w(key: str, value: object) -> Op:
    return ("w", key, value)


def r(key: str, value: object) -> Op:
    return ("r", key, value)


def add(key: str, amount: int) -> Op:
    return ("add", key, amount)


# ---- clean histories ----


def test_a_serial_history_with_real_time_timestamps_is_consistent() -> None:
    result = check_external(history(
        Txn(1, (w("x", 1), w("y", 1)), 100, 200, ts=150),
        Txn(2, (r("x", 1), w("x", 2)), 300, 400, ts=350),
        Txn(3, (r("x", 2), r("y", 1)), 500, 600, ts=550),
        Txn(4, (r("x", 1),), 500, 600, ts=349, at=349),  # a snapshot read of the past
        Txn(5, (r("x", None),), 500, 600, ts=10, at=10),
    ))
    assert result.verdict is Consistency.CONSISTENT, result.violations
    assert (result.reads_checked, result.reads_unchecked) == (5, 0)


def test_concurrent_transactions_may_take_either_order() -> None:
    assert verdict(
        Txn(1, (w("x", 1),), 100, 400, ts=300),
        Txn(2, (w("x", 2),), 150, 350, ts=200),  # overlaps 1: no real-time order
        Txn(3, (r("x", 2),), 160, 500, ts=250),
    ) is Consistency.CONSISTENT


def test_adds_sum_from_zero_and_a_transaction_reads_its_own_writes() -> None:
    assert verdict(
        Txn(1, (add("a", 5), r("a", 5), add("a", 2)), 100, 200, ts=150),
        Txn(2, (r("a", 7), add("a", -3), r("a", 4), w("b", "s"), r("b", "s")), 300, 400,
            ts=350),
        Txn(3, (r("a", 4), r("b", "s")), 500, 600, ts=550),
    ) is Consistency.CONSISTENT


def test_a_delete_reads_back_as_null() -> None:
    assert verdict(
        Txn(1, (w("x", 1),), 100, 200, ts=150),
        Txn(2, (w("x", None),), 300, 400, ts=350),
        Txn(3, (r("x", None),), 500, 600, ts=550),
    ) is Consistency.CONSISTENT


def test_a_read_only_transaction_before_a_write_bounds_nothing_without_shared_data() -> None:
    # Spanner does not promise s2 > t1 when the transactions touch different groups.
    assert verdict(
        Txn(1, (r("x", None),), 100, 200, ts=500),
        Txn(2, (w("y", 1),), 300, 400, ts=350),
    ) is Consistency.CONSISTENT


def test_failed_transactions_are_left_out() -> None:
    assert verdict(
        Txn(1, (w("x", 1),), 100, 200, status="fail"),
        Txn(2, (r("x", None),), 300, 400, ts=350),
    ) is Consistency.CONSISTENT


# ---- violations ----


def test_a_read_write_transaction_committed_below_an_earlier_one_is_caught() -> None:
    result = check_external(history(
        Txn(1, (w("x", 1),), 100, 200, ts=500),
        Txn(2, (w("y", 1),), 300, 400, ts=450),
    ))
    assert result.verdict is Consistency.VIOLATED
    (violation,) = result.violations
    assert violation.kind == "real-time"
    assert [t.process for t in violation.transactions] == [2, 1]
    assert violation.message == (
        "process 1's read-write transaction [w x 1] (invoked at 100, ok at 200, ts 500; "
        "lines 1-2) completed before process 2's read-write transaction [w y 1] "
        "(invoked at 300, ok at 400, ts 450; lines 3-4) was invoked, but its commit "
        "timestamp 500 is not below 450")


def test_equal_commit_timestamps_in_real_time_order_are_caught() -> None:
    assert verdict(
        Txn(1, (w("x", 1),), 100, 200, ts=300),
        Txn(2, (w("y", 1),), 300, 400, ts=300),
    ) is Consistency.VIOLATED


def test_a_snapshot_read_must_report_the_timestamp_it_asked_for() -> None:
    with pytest.raises(HistoryError, match=r"test\.jsonl:2: a snapshot read asked for at 5 "):
        history(Txn(1, (r("x", None),), 100, 200, ts=6, at=5))


def test_a_read_only_transaction_below_a_completed_write_is_caught() -> None:
    result = check_external(history(
        Txn(1, (w("x", 1),), 100, 200, ts=150),
        Txn(2, (r("y", None),), 300, 400, ts=140),
    ))
    (violation,) = result.violations
    assert violation.kind == "real-time"
    assert "reads at 140, below that commit timestamp 150" in violation.message


def test_a_stale_read_names_the_write_it_missed() -> None:
    result = check_external(history(
        Txn(1, (w("x", 1),), 100, 200, ts=150),
        Txn(2, (w("x", 2),), 300, 400, ts=350),
        Txn(3, (r("x", 1),), 500, 600, ts=550),
    ))
    (violation,) = result.violations
    assert violation.kind == "read"
    assert [t.process for t in violation.transactions] == [3, 2]
    assert "read 'x' = 1, but the state of 'x' at or below 550 is 2" in violation.message
    assert "latest committed write there is by process 2's" in violation.message
    assert "the value read was written by process 1's" in violation.message
    assert "since overwritten" in violation.message


def test_a_read_of_a_write_above_the_read_timestamp_is_caught() -> None:
    result = check_external(history(
        Txn(1, (w("x", 1),), 100, 400, ts=350),
        Txn(2, (r("x", 1),), 100, 400, ts=300),
    ))
    (violation,) = result.violations
    assert violation.kind == "read"
    assert "at or below 300 is None" in violation.message
    assert "above the read's timestamp" in violation.message


def test_a_read_write_transaction_reads_below_its_commit_timestamp() -> None:
    assert verdict(
        Txn(1, (w("x", 1),), 100, 200, ts=150),
        Txn(2, (r("x", None), w("x", 2)), 100, 400, ts=151),
    ) is Consistency.VIOLATED


def test_a_wrong_sum_is_caught() -> None:
    assert verdict(
        Txn(1, (add("a", 5),), 100, 200, ts=150),
        Txn(2, (add("a", 5),), 300, 400, ts=350),
        Txn(3, (r("a", 5),), 500, 600, ts=550),
    ) is Consistency.VIOLATED


def test_an_add_to_a_string_leaves_nothing_to_read_until_the_next_write() -> None:
    txns = [Txn(1, (w("x", "s"),), 100, 200, ts=150),
            Txn(2, (add("x", 1),), 300, 400, ts=350)]
    assert verdict(*txns, Txn(3, (r("x", "s"),), 500, 600, ts=550)) is Consistency.VIOLATED
    assert verdict(*txns, Txn(3, (w("x", 2),), 500, 600, ts=550),
                   Txn(4, (r("x", 2),), 700, 800, ts=750)) is Consistency.CONSISTENT


def test_two_writes_of_a_key_at_one_timestamp_are_caught() -> None:
    result = check_external(history(
        Txn(1, (w("x", 1),), 100, 400, ts=300),
        Txn(2, (w("x", 2),), 100, 400, ts=300),
    ))
    (violation,) = result.violations
    assert violation.kind == "same-timestamp"
    assert "both wrote 'x' at timestamp 300" in violation.message


def test_a_read_write_transaction_may_see_a_write_at_its_own_timestamp() -> None:
    # Timestamps do not order the two; either order is a serial one.
    assert verdict(
        Txn(1, (w("x", 1),), 100, 400, ts=300),
        Txn(2, (r("x", 1), w("y", 1)), 100, 400, ts=300),
    ) is Consistency.CONSISTENT


# ---- indeterminate transactions ----


def test_a_read_may_see_an_indeterminate_write_or_not() -> None:
    for seen in (None, 1):
        assert verdict(
            Txn(1, (w("x", 1),), 100, None, status="info"),
            Txn(2, (r("x", seen),), 300, 400, ts=350),
        ) is Consistency.CONSISTENT
        assert verdict(
            Txn(1, (w("x", 1),), 100, 150, status="info"),
            Txn(2, (r("x", seen),), 300, 400, ts=350),
        ) is Consistency.CONSISTENT


def test_indeterminate_adds_may_each_have_committed() -> None:
    txns = [Txn(1, (add("a", 10),), 100, 200, ts=150),
            Txn(2, (add("a", 1),), 250, None, status="info"),
            Txn(3, (add("a", 2),), 250, None, status="info")]
    for total in (10, 11, 12, 13):
        assert verdict(*txns, Txn(4, (r("a", total),), 300, 400, ts=350)) is \
            Consistency.CONSISTENT
    assert verdict(*txns, Txn(4, (r("a", 14),), 300, 400, ts=350)) is Consistency.VIOLATED


def test_an_indeterminate_write_may_land_between_committed_ones() -> None:
    assert verdict(
        Txn(1, (w("x", 1),), 100, 200, ts=150),
        Txn(2, (w("x", 5),), 250, None, status="info"),
        Txn(3, (add("x", 1),), 300, 400, ts=350),
        Txn(4, (r("x", 6),), 500, 600, ts=550),
    ) is Consistency.CONSISTENT


def test_an_indeterminate_write_cannot_land_below_a_write_completed_before_it() -> None:
    # Transaction 3 was invoked after transaction 1 (ts 500) completed, so if it committed
    # it did above 500: the read at 300 cannot see it.
    result = check_external(history(
        Txn(1, (w("y", 1),), 100, 200, ts=500),
        Txn(2, (r("x", 7),), 150, 600, ts=300),
        Txn(3, (w("x", 7),), 250, None, status="info"),
    ))
    assert result.verdict is Consistency.VIOLATED
    assert result.violations[0].kind == "read"


def test_reads_of_indeterminate_transactions_are_not_checked() -> None:
    assert verdict(
        Txn(1, (w("x", 1),), 100, 200, ts=150),
        Txn(2, (r("x", None), w("y", 2)), 300, None, status="info"),
    ) is Consistency.CONSISTENT


def test_too_many_possible_states_leave_a_read_unchecked_not_guessed() -> None:
    unknown = [Txn(10 + n, (add("a", 2**n),), 100, None, status="info") for n in range(14)]
    result = check_external(history(*unknown, Txn(1, (r("a", -1),), 300, 400, ts=350)))
    assert result.verdict is Consistency.CONSISTENT
    assert (result.reads_checked, result.reads_unchecked) == (0, 1)


def test_a_timeout_gives_unknown_never_a_guess() -> None:
    ticks = iter(range(0, 10_000, 10))
    result = check_external(history(Txn(1, (w("x", 1),), 100, 200, ts=150),
                                    Txn(2, (r("x", 1),), 300, 400, ts=350)),
                            timeout=5, clock=lambda: float(next(ticks)))
    assert result.verdict is Consistency.UNKNOWN
    assert result.reason == "gave up after 5 s"


# ---- bad input ----


@pytest.mark.parametrize(("text", "message"), [
    ('{"process": 1, "type": "invoke", "f": "txn", "value": [["w", "x", 1]], "time": 1}\n'
     '{"process": 1, "type": "ok", "f": "txn", "value": [["w", "x", 1]], "time": 2}\n',
     "test.jsonl:2: an ok transaction needs 'ts'"),
    ('{"process": 1, "type": "invoke", "f": "txn", "value": [["w", "x", 1]], "time": 1}\n'
     '{"process": 1, "type": "ok", "f": "txn", "value": [["w", "x", 2]], "time": 2, "ts": 1}\n',
     "test.jsonl:2: the ok record's micro-operations differ from the invoke's"),
    ('{"process": 1, "type": "invoke", "f": "txn", "value": [["add", "x", "1"]], "time": 1}\n',
     "test.jsonl:1: add needs an integer"),
    ('{"process": 1, "type": "invoke", "f": "txn", "value": [["cas", "x", 1]], "time": 1}\n',
     "test.jsonl:1: a micro-operation is [op, key, arg]"),
    ('{"process": 1, "type": "invoke", "f": "put", "key": "x", "value": 1, "time": 1}\n',
     "test.jsonl:1: 'f' must be 'txn' in a transaction history"),
])
def test_bad_input_names_the_line(text: str, message: str) -> None:
    with pytest.raises(HistoryError) as caught:
        parse_txn_history(text, "test.jsonl")
    assert str(caught.value).startswith(message)


# ---- the command ----


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    status = main(["lincheck", *map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_command_exit_statuses_text_and_json(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(lines(Txn(1, (w("x", 1),), 100, 200, ts=150),
                          Txn(2, (r("x", 1),), 300, 400, ts=350)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines(Txn(1, (w("x", 1),), 100, 200, ts=150),
                         Txn(2, (r("x", None),), 300, 400, ts=350)))
    status, out, _ = run_cli(capsys, good)  # detected from the first event
    assert status == 0
    assert "verdict       externally consistent" in out
    status, out, _ = run_cli(capsys, bad, "--model", "external")
    assert status == 1
    assert "read violation  process 2's read-only transaction" in out
    status, out, _ = run_cli(capsys, bad, "--model", "external", "--json")
    assert status == 1
    document = json.loads(out)
    assert document["verdict"] == "not externally consistent"
    assert document["exit_status"] == 1
    (violation,) = document["violations"]
    assert violation["kind"] == "read"
    assert [t["process"] for t in violation["transactions"]] == [2, 1]
    assert violation["transactions"][1]["ts"] == 150


def test_command_bad_input_is_one_line_and_exit_2(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"process": 1, "type": "invoke", "f": "txn", "value": 3, "time": 1}\n'
                      '{"process": 1}\n')
    status, _, err = run_cli(capsys, broken, "--model", "external")
    assert status == 2
    assert err.strip().endswith("broken.jsonl:1: a transaction's 'value' is a list of "
                                "[op, key, arg], not 3")
    assert len(err.strip().splitlines()) == 1
    status, _, err = run_cli(capsys, broken, "--model", "external", "--html", "x.html")
    assert status == 2
    assert "--html does not apply to --model external" in err
    status, _, err = run_cli(capsys, broken, "--model", "kv")
    assert status == 2
    assert "(a history of transactions is checked with --model external)" in err


# ---- properties: histories of serial executions ----

KEYS = ("x", "y", "z")


@st.composite
def serial_histories(draw: st.DrawFn) -> list[Txn]:
    """Transactions executed one at a time in timestamp order, each interval around its
    timestamp (TrueTime with no error), so real time never contradicts the timestamps.
    Some outcomes are lost (info), some transactions fail; the state follows only those
    that took effect. Some read-only transactions are snapshot reads of the past (`at`)."""
    state: dict[str, int] = {}
    past: list[tuple[int, dict[str, int]]] = [(0, {})]  # (ts, the state from then on)
    txns: list[Txn] = []
    count = draw(st.integers(1, 14))
    next_value = 1000
    for number in range(count):
        ts = 100 * (number + 1)
        read_only = draw(st.booleans())
        at = None
        ops: list[Op] = []
        local = dict(state)
        if read_only and draw(st.integers(0, 3)) == 0:  # a snapshot read of the past
            at = draw(st.integers(0, ts))
            local = dict(next(s for t, s in reversed(past) if t <= at))
        for _ in range(draw(st.integers(1, 4))):
            key = draw(st.sampled_from(KEYS))
            kind = "r" if read_only else draw(st.sampled_from(("r", "w", "add")))
            if kind == "r":
                ops.append(r(key, local.get(key)))
            elif kind == "w":
                next_value += 1
                local[key] = next_value
                ops.append(w(key, next_value))
            else:
                amount = draw(st.integers(-5, 5))
                local[key] = local.get(key, 0) + amount
                ops.append(add(key, amount))
        call = ts - draw(st.integers(1, 150))
        ret = ts + draw(st.integers(1, 150))
        outcome = "ok" if read_only else draw(st.sampled_from(("ok", "ok", "ok", "info",
                                                                "fail")))
        took_effect = outcome == "ok" or (outcome == "info" and draw(st.booleans()))
        if took_effect and not read_only:
            state = local
            past.append((ts, dict(state)))
        txns.append(Txn(number + 1, tuple(ops), call,
                        None if outcome == "info" else ret,
                        ts=(at if at is not None else ts) if outcome == "ok" else None,
                        status=outcome, at=at))
    return txns


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(serial_histories())
def test_histories_of_serial_executions_always_pass(txns: list[Txn]) -> None:
    result = check_external(history(*txns))
    assert result.verdict is Consistency.CONSISTENT, [v.message for v in result.violations]


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(serial_histories(), st.data())
def test_swapping_timestamps_of_real_time_ordered_writers_is_caught(
        txns: list[Txn], data: st.DataObject) -> None:
    writers = [n for n, t in enumerate(txns)
               if t.status == "ok" and any(op != "r" for op, _, _ in t.ops)]
    pairs = [(a, b) for a in writers for b in writers
             if txns[a].ret is not None and txns[a].ret < txns[b].call]
    assume(pairs)
    a, b = data.draw(st.sampled_from(pairs))
    swapped = list(txns)
    swapped[a] = Txn(**{**txns[a].__dict__, "ts": txns[b].ts})
    swapped[b] = Txn(**{**txns[b].__dict__, "ts": txns[a].ts})
    assert check_external(history(*swapped)).verdict is Consistency.VIOLATED


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(serial_histories(), st.data())
def test_a_read_of_a_value_never_written_is_caught(txns: list[Txn],
                                                   data: st.DataObject) -> None:
    reads = [(n, i) for n, t in enumerate(txns) if t.status == "ok"
             for i, (op, _, _) in enumerate(t.ops) if op == "r"]
    assume(reads)
    n, i = data.draw(st.sampled_from(reads))
    ops = list(txns[n].ops)
    ops[i] = r(ops[i][1], "never written")
    changed = list(txns)
    changed[n] = Txn(**{**txns[n].__dict__, "ops": tuple(ops)})
    assert check_external(history(*changed)).verdict is Consistency.VIOLATED


def test_the_example_histories(capsys: pytest.CaptureFixture[str]) -> None:
    data = Path(__file__).resolve().parents[2] / "data" / "external"
    status, out, _ = run_cli(capsys, data / "transfers.jsonl")
    assert status == 0, out
    status, out, _ = run_cli(capsys, data / "transfers-stale.jsonl", "--json")
    assert status == 1
    assert [v["kind"] for v in json.loads(out)["violations"]] == ["real-time", "read"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(serial_histories(), st.integers(-2, 2))
def test_unknown_adds_taken_as_commuting_give_the_general_replays_answer(
        txns: list[Txn], shift: int) -> None:
    from distlab.check._external import _Checker

    reads = [(n, i) for n, t in enumerate(txns) if t.status == "ok"
             for i, (op, _, _) in enumerate(t.ops) if op == "r"]
    if reads and shift:
        n, i = reads[len(reads) // 2]
        ops = list(txns[n].ops)
        seen = ops[i][2]
        ops[i] = r(ops[i][1], (seen if isinstance(seen, int) else 0) + shift)
        txns = [*txns[:n], Txn(**{**txns[n].__dict__, "ops": tuple(ops)}), *txns[n + 1:]]
    answers = []
    for commutative in (True, False):
        checker = _Checker(history(*txns), None, lambda: 0.0)
        checker.commutative_adds = commutative
        checker.run()
        answers.append(([v.message for v in checker.violations], checker.reads_checked))
    assert answers[0] == answers[1]
