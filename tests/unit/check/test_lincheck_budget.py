"""Budgets: when time or memory runs out first, the verdict is unknown, never a guess;
and partitions take turns, so a hard key cannot hide a violation in another."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from distlab.check import History, Operation, Verdict, check, read_jepsen_log
from tests.unit.check.lincheck_support import DATA, history, op

# etcd_002 is linearizable but needs a few hundred thousand search steps; etcd_000 is not.
HARD = DATA / "jepsen" / "etcd_002.log"
BAD = DATA / "jepsen" / "etcd_000.log"


def ticking_clock(step: float) -> Callable[[], float]:
    """A fake clock that moves on by `step` seconds each time it is read."""
    ticks: Iterator[int] = iter(range(1_000_000))
    return lambda: next(ticks) * step


def test_time_budget_gives_unknown() -> None:
    result = check(read_jepsen_log(HARD), slice_steps=1000, timeout=5,
                   clock=ticking_clock(1.0))
    assert result.verdict is Verdict.UNKNOWN
    assert "time budget of 5 s ran out" in result.reason
    assert result.partitions[0].verdict is Verdict.UNKNOWN


def test_time_budget_never_turns_a_violation_into_a_guess() -> None:
    result = check(read_jepsen_log(BAD), slice_steps=1, timeout=2, clock=ticking_clock(1.0))
    assert result.verdict is Verdict.UNKNOWN


def test_enough_time_gives_the_verdict() -> None:
    result = check(read_jepsen_log(HARD), timeout=10_000, clock=ticking_clock(1.0))
    assert result.verdict is Verdict.LINEARIZABLE


def test_memory_budget_gives_unknown() -> None:
    result = check(read_jepsen_log(HARD), slice_steps=1000, max_memory_bytes=64 * 1024)
    assert result.verdict is Verdict.UNKNOWN
    assert "memory budget" in result.reason
    assert result.peak_memory_estimate > 64 * 1024


def test_memory_estimate_grows_with_the_search() -> None:
    small = check(read_jepsen_log(DATA / "jepsen" / "etcd_040.log"))
    large = check(read_jepsen_log(HARD))
    assert 0 < small.peak_memory_estimate < large.peak_memory_estimate


def relabel(source: History, key: str) -> list[Operation]:
    return [dataclasses.replace(o, key=key) for o in source.operations]


def test_a_hard_key_does_not_hide_a_violation_in_another() -> None:
    hard = relabel(read_jepsen_log(HARD), "hard")
    offset = max(o.ret or o.call for o in hard) + 10
    broken = [op(900, "put", 1, call=offset, ret=offset + 1, key="easy"),
              op(901, "get", result=2, call=offset + 2, ret=offset + 3, key="easy")]
    # The hard key comes first and alone would need hundreds of turns; the clock allows
    # a few. Turn-taking still reaches the easy key and its violation.
    result = check(history(*hard, *broken), "cas-register", slice_steps=1000, timeout=3,
                   clock=ticking_clock(1.0))
    assert result.partitions[0].label == "hard"
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    assert result.violation is not None and result.violation.key == "easy"
    assert result.partitions[0].verdict is Verdict.UNKNOWN
