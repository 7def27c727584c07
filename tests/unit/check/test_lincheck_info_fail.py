"""Indeterminate (info) operations may happen at any time after their invoke, or never;
failed ones did not happen at all."""

from __future__ import annotations

from distlab.check import Verdict, check, parse_history
from tests.unit.check.lincheck_support import history, op

OK = Verdict.LINEARIZABLE
BAD = Verdict.NOT_LINEARIZABLE


def test_an_info_write_may_take_effect_long_after_its_invoke() -> None:
    h = history(op(1, "put", "a", call=0, ret=1), op(2, "put", "b", call=2, ret=None),
                op(3, "get", result="a", call=10, ret=11),
                op(3, "get", result="b", call=20, ret=21))
    assert check(h, "register").verdict is OK


def test_an_info_write_may_never_take_effect() -> None:
    h = history(op(1, "put", "a", call=0, ret=1), op(2, "put", "b", call=2, ret=None),
                op(3, "get", result="a", call=100, ret=101))
    assert check(h, "register").verdict is OK


def test_an_info_write_cannot_take_effect_before_its_invoke() -> None:
    h = history(op(3, "get", result="b", call=0, ret=1), op(2, "put", "b", call=5, ret=None))
    assert check(h, "register").verdict is BAD


def test_an_info_write_takes_effect_at_most_once() -> None:
    h = history(op(2, "put", "b", call=0, ret=None), op(1, "put", "a", call=1, ret=2),
                op(3, "get", result="b", call=3, ret=4), op(3, "get", result="a", call=5, ret=6),
                op(3, "get", result="b", call=7, ret=8))
    assert check(h, "register").verdict is BAD


def test_an_info_cas_applies_only_if_it_matched() -> None:
    base = [op(1, "put", 1, call=0, ret=1), op(2, "cas", (1, 2), call=2, ret=None)]
    assert check(history(*base, op(3, "get", result=2, call=5, ret=6)),
                 "cas-register").verdict is OK
    assert check(history(*base, op(3, "get", result=1, call=5, ret=6)),
                 "cas-register").verdict is OK
    mismatch = [op(1, "put", 1, call=0, ret=1), op(2, "cas", (9, 2), call=2, ret=None)]
    assert check(history(*mismatch, op(3, "get", result=2, call=5, ret=6)),
                 "cas-register").verdict is BAD


def test_info_reads_constrain_nothing() -> None:
    h = history(op(1, "put", "a", call=0, ret=1), op(2, "get", result=None, call=2, ret=None))
    assert check(h, "register").verdict is OK


EVENTS = """\
{"process": 1, "type": "invoke", "f": "put", "key": "k", "value": "a", "time": 10}
{"process": 1, "type": "ok", "f": "put", "key": "k", "value": "a", "time": 20}
{"process": 2, "type": "invoke", "f": "put", "key": "k", "value": "b", "time": 30}
{"process": 2, "type": "fail", "f": "put", "key": "k", "value": "b", "time": 40}
{"process": 3, "type": "invoke", "f": "get", "key": "k", "value": null, "time": 50}
{"process": 3, "type": "ok", "f": "get", "key": "k", "value": "%s", "time": 60}
"""


def test_failed_operations_are_dropped() -> None:
    h = parse_history(EVENTS % "a")
    assert h.failed == 1
    assert [o.f for o in h.operations] == ["put", "get"]
    assert check(h, "register").verdict is OK
    # The failed write of "b" did not happen, so nobody may read it.
    assert check(parse_history(EVENTS % "b"), "register").verdict is BAD


def test_an_invoke_without_completion_is_indeterminate() -> None:
    text = ('{"process": 1, "type": "invoke", "f": "put", "key": "k", "value": "a", "time": 1}\n'
            '{"process": 2, "type": "invoke", "f": "get", "key": "k", "value": null, "time": 2}\n'
            '{"process": 2, "type": "ok", "f": "get", "key": "k", "value": "a", "time": 3}\n')
    h = parse_history(text)
    assert [(o.f, o.status) for o in h.operations] == [("put", "info"), ("get", "ok")]
    assert check(h, "register").verdict is OK
