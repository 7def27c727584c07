"""The three models, checked on small histories whose verdict is clear by hand."""

from __future__ import annotations

import pytest

from distlab.check import HistoryError, Value, Verdict, check
from tests.unit.check.lincheck_support import history, op

OK = Verdict.LINEARIZABLE
BAD = Verdict.NOT_LINEARIZABLE


def test_a_read_concurrent_with_a_write_may_see_either_value() -> None:
    for seen in (None, "a"):
        h = history(op(1, "put", "a", call=0, ret=10), op(2, "get", result=seen, call=1, ret=2))
        assert check(h, "register").verdict is OK


def test_a_read_after_a_write_returned_must_see_it() -> None:
    h = history(op(1, "put", "a", call=0, ret=1), op(2, "get", result=None, call=2, ret=3))
    result = check(h, "register")
    assert result.verdict is BAD
    violation = result.violation
    assert violation is not None and violation.outcome is not None
    assert violation.outcome.stuck[0].f == "get"
    assert [o.f for o in violation.outcome.linearization] == ["put"]


def test_two_reads_cannot_disagree_on_the_order_of_two_writes() -> None:
    h = history(
        op(1, "put", "a", call=0, ret=100), op(2, "put", "b", call=0, ret=100),
        op(3, "get", result="a", call=10, ret=11), op(3, "get", result="b", call=12, ret=13),
        op(4, "get", result="b", call=20, ret=21), op(4, "get", result="a", call=22, ret=23))
    assert check(h, "register").verdict is BAD


def test_compare_and_set_swaps_only_on_a_match() -> None:
    good = history(op(1, "put", 1, call=0, ret=1),
                   op(2, "cas", (1, 2), True, call=2, ret=3),
                   op(3, "get", result=2, call=4, ret=5))
    assert check(good, "cas-register").verdict is OK
    bad = history(op(1, "put", 1, call=0, ret=1),
                  op(2, "cas", (3, 2), True, call=2, ret=3))
    assert check(bad, "cas-register").verdict is BAD


def test_a_failed_compare_is_an_observation_of_another_value() -> None:
    # Jepsen's etcd logs keep a cas that found another value; it must not have matched.
    matching = history(op(1, "put", 1, call=0, ret=1), op(2, "cas", (1, 2), False, call=2, ret=3))
    assert check(matching, "cas-register").verdict is BAD
    other = history(op(1, "put", 1, call=0, ret=1), op(2, "cas", (5, 2), False, call=2, ret=3),
                    op(3, "get", result=1, call=4, ret=5))
    assert check(other, "cas-register").verdict is OK


def test_kv_append_concatenates_and_delete_removes() -> None:
    h = history(op(1, "append", "x", call=0, ret=1), op(1, "append", "y", call=2, ret=3),
                op(1, "get", result="xy", call=4, ret=5), op(1, "delete", call=6, ret=7),
                op(1, "get", result=None, call=8, ret=9), op(1, "append", "z", call=10, ret=11),
                op(1, "get", result="z", call=12, ret=13))
    assert check(h, "kv").verdict is OK
    wrong_order = history(op(1, "append", "x", call=0, ret=1),
                          op(1, "append", "y", call=2, ret=3),
                          op(1, "get", result="yx", call=4, ret=5))
    assert check(wrong_order, "kv").verdict is BAD


def test_a_missing_key_reads_as_the_histories_absent_value() -> None:
    h = history(op(1, "get", result="", call=0, ret=1))
    assert check(h, "kv").verdict is BAD
    assert check(history(op(1, "get", result="", call=0, ret=1), absent=""), "kv").verdict is OK


def test_values_of_different_types_are_different() -> None:
    h = history(op(1, "put", 1, call=0, ret=1), op(2, "get", result=True, call=2, ret=3))
    assert check(h, "register").verdict is BAD


def test_keys_are_independent() -> None:
    h = history(op(1, "put", "a", key="x", call=0, ret=1),
                op(2, "get", result=None, key="y", call=2, ret=3),
                op(2, "get", result="a", key="x", call=4, ret=5))
    result = check(h, "kv")
    assert result.verdict is OK
    assert sorted(p.label for p in result.partitions) == ["x", "y"]


def test_a_violation_in_one_key_is_reported_with_that_key() -> None:
    h = history(op(1, "put", "a", key="x", call=0, ret=1),
                op(2, "put", "b", key="y", call=0, ret=1),
                op(2, "get", result="a", key="y", call=4, ret=5))
    result = check(h, "kv")
    assert result.verdict is BAD
    assert result.violation is not None and result.violation.key == "y"


@pytest.mark.parametrize(("model", "f"), [("register", "cas"), ("register", "append"),
                                          ("cas-register", "delete")])
def test_a_model_rejects_operations_it_does_not_know(model: str, f: str) -> None:
    value = (1, 2) if f == "cas" else ("x" if f == "append" else None)
    h = history(op(1, f, value, True if f == "cas" else None, call=3, ret=4))
    with pytest.raises(HistoryError, match=f"model '{model}' has no '{f}'"):
        check(h, model)


def test_unknown_model_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        check(history(), "queue")


def test_many_equal_concurrent_writes_do_not_blow_up_the_search() -> None:
    # Forty identical writes and reads all overlapping: without treating equal operations
    # as interchangeable this is 40! orders; with it, a handful of steps.
    operations = [op(p, "put", 7, call=p, ret=1000 + p) for p in range(40)]
    operations += [op(100 + p, "get", result=7, call=50 + p, ret=900 + p) for p in range(40)]
    result = check(history(*operations), "register")
    assert result.verdict is OK
    assert result.partitions[0].steps < 10_000


def test_equal_looking_values_of_different_types_are_different_states() -> None:
    # 1 == True == 1.0 in Python; as states (and as effects) they must stay apart.
    for first, second in ((1, True), (True, 1), (1, 1.0), ((1,), (True,))):
        h = history(op(1, "put", first, call=0, ret=1), op(2, "put", second, call=2, ret=3),
                    op(3, "get", result=second, call=4, ret=5))
        assert check(h, "register").verdict is OK, (first, second)
        assert check(h, "register", partition=False).verdict is OK, (first, second)
        together = history(op(1, "put", first, call=0, ret=10),
                           op(2, "put", second, call=0, ret=10),
                           op(3, "get", result=first, call=11, ret=12))
        assert check(together, "register").verdict is OK, (first, second)


def test_an_append_can_bring_back_a_value_that_a_later_read_needs() -> None:
    h = history(op(1, "put", "a", call=0, ret=1), op(2, "get", result="a", call=0, ret=9),
                op(1, "put", "", call=2, ret=3), op(1, "append", "a", call=4, ret=5),
                op(1, "get", result="a", call=6, ret=7))
    assert check(h, "kv").verdict is OK
    # Without the append, the read of "a" must come before "" was put.
    h = history(op(1, "put", "a", call=0, ret=1), op(1, "put", "", call=2, ret=3),
                op(2, "get", result="a", call=4, ret=7))
    assert check(h, "kv").verdict is BAD


@pytest.mark.parametrize("marker", ["\x00unobserved", ("unobserved",), "\x00\x00unobserved"])
def test_a_value_like_the_searchs_stand_in_for_unseen_states_is_an_ordinary_value(
        marker: Value) -> None:
    # Writes whose values no read sees are remembered as one stand-in state; a read of
    # a value that happens to look like it must not be satisfied by it.
    h = history(op(1, "put", "x", call=0, ret=1), op(2, "get", result=marker, call=2, ret=3),
                op(1, "put", marker, call=4, ret=5))
    assert check(h, "kv").verdict is BAD
    h = history(op(1, "put", marker, call=0, ret=1), op(2, "get", result=marker, call=2, ret=3))
    assert check(h, "kv").verdict is OK


def test_equal_operations_on_two_keys_are_not_interchangeable_in_one_object() -> None:
    # Checked as one object, a get of None on one key and a get of None on the other
    # read different registers: ordering them as if they were one operation is wrong.
    h = history(op(0, "put", "z", key="a", call=0, ret=None),
                op(1, "get", result=None, key="a", call=2, ret=3),
                op(2, "get", result=None, key="a", call=0, ret=1),
                op(3, "get", result="z", key="b", call=0, ret=1),
                op(4, "put", "z", key="b", call=0, ret=None))
    assert check(h, "kv").verdict is OK
    assert check(h, "kv", partition=False).verdict is OK
