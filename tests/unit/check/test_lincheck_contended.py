"""One key written and read by many processes at once: the shape that made the search
try orders of concurrent writes that no read could tell apart."""

from __future__ import annotations

from distlab.check import Verdict, check, parse_history
from distlab.check._simulated import contended_register, history_lines, stale_read


def test_a_contended_register_history_is_linearizable() -> None:
    simulated = contended_register(seed=7, operations=250, processes=16)
    history = parse_history("\n".join(history_lines(simulated)))
    assert len(history.operations) == 250
    # Most operations overlap many others: the search has real choices to make.
    overlaps = [sum(1 for b in simulated if b.call < a.ret and a.call < b.ret) - 1
                for a in simulated]
    assert sorted(overlaps)[len(overlaps) // 2] >= 10
    result = check(history, "kv")
    assert result.verdict is Verdict.LINEARIZABLE
    assert result.partitions[0].outcome is not None
    assert len(result.partitions[0].outcome.linearization) == 250
    # Trying orders of writes that no read tells apart took millions of steps here.
    assert result.partitions[0].steps < 10 * 250


def test_a_stale_read_in_a_contended_register_history_is_caught() -> None:
    simulated = contended_register(seed=7, operations=250, processes=16)
    corrupted = stale_read(simulated, seed=3)
    changed = [b for a, b in zip(simulated, corrupted, strict=True) if a != b]
    assert len(changed) == 1 and changed[0].f == "get"
    result = check(parse_history("\n".join(history_lines(corrupted))), "kv")
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    violation = result.violation
    assert violation is not None and violation.outcome is not None
    # The report breaks at the read made stale, as an exhaustive search's would: the
    # rules that cut the search short do not cut the reported prefix short.
    breaking = violation.outcome.stuck[0]
    assert (breaking.process, breaking.call, breaking.result) == (
        changed[0].process, changed[0].call, changed[0].result)
