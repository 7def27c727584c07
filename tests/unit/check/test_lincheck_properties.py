"""Properties of the checker on generated histories.

* A history recorded from a sequential reference run, with each operation stretched
  into an interval around its moment of effect, is always linearizable.
* Making one read impossible (a value never written, or one overwritten before the read
  began) is always caught.
* On small random histories the checker agrees with brute force over every order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from distlab.check import (
    History,
    HistoryRecorder,
    Operation,
    Value,
    Verdict,
    check,
    read_history,
)
from distlab.check import _search as search_module
from distlab.check._models import apply, footprint, same
from tests.unit.check.lincheck_support import history, op

KEYS = ("a", "b", "c")


@dataclass(frozen=True)
class Step:
    """One operation of the reference run, with its recorded interval."""

    f: str
    key: str
    value: Value
    result: Value
    swapped: bool
    call: int
    ret: int
    indeterminate: bool


@st.composite
def reference_runs(draw: st.DrawFn, min_count: int = 1, keys: tuple[str, ...] = KEYS
                   ) -> list[Step]:
    """Operations applied one after another to a dict; operation i takes effect at
    time 100*i + 50 and is recorded from up to 250 before that to up to 250 after."""
    count = draw(st.integers(min_count, 24))
    state: dict[str, str] = {}
    steps = []
    for i in range(count):
        f = draw(st.sampled_from(("get", "get", "put", "append", "delete", "cas")))
        key = draw(st.sampled_from(keys))
        token = f"<{i}>"  # every written value is unique and never a concatenation
        current = state.get(key)
        value: Value = None
        result: Value = None
        swapped = True
        if f == "get":
            result = current
        elif f == "put":
            value = token
            state[key] = token
        elif f == "append":
            value = token
            state[key] = (current or "") + token
        elif f == "delete":
            state.pop(key, None)
        else:
            expected = current if draw(st.booleans()) else f"<none{i}>"
            value = (expected, token)
            swapped = expected == current
            if swapped:
                state[key] = token
        moment = 100 * i + 50
        steps.append(Step(f, key, value, result, swapped,
                          moment - draw(st.integers(0, 250)), moment + draw(st.integers(0, 250)),
                          indeterminate=f != "get" and draw(st.integers(0, 5)) == 0))
    return steps


def record(steps: list[Step], path: Path) -> History:
    """Write the run through the recorder, one process per concurrent slot, and read it
    back. A cas that did not swap is recorded as failed; some writes as indeterminate."""
    events: list[tuple[int, int, Callable[[HistoryRecorder], object]]] = []
    busy_until: dict[int, int] = {}
    retired: set[int] = set()
    for step in sorted(steps, key=lambda s: s.call):
        process = next(p for p in itertools.count() if p not in retired
                       and (p not in busy_until or busy_until[p] < step.call))
        busy_until[process] = step.ret

        def invoke(r: HistoryRecorder, p: int = process, s: Step = step) -> object:
            return r.invoke(p, s.f, s.key, list(s.value) if isinstance(s.value, tuple)
                            else s.value)

        events.append((step.call, 0, invoke))
        if step.indeterminate:
            retired.add(process)
            events.append((step.ret, 1, lambda r, p=process: r.info(p)))
        elif step.f == "cas" and not step.swapped:
            events.append((step.ret, 1, lambda r, p=process: r.fail(p)))
        else:
            events.append((step.ret, 1, lambda r, p=process, s=step: r.ok(p, s.result)))
    events.sort(key=lambda event: (event[0], event[1]))
    times = iter([time for time, _, _ in events])
    with HistoryRecorder(path, clock=lambda: next(times)) as recorder:
        for _, _, action in events:
            action(recorder)
    return read_history(path)


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much])


@SETTINGS
@given(reference_runs())
def test_a_sequential_run_stretched_into_intervals_is_linearizable(
        tmp_path_factory: pytest.TempPathFactory, steps: list[Step]) -> None:
    recorded = record(steps, tmp_path_factory.mktemp("run") / "history.jsonl")
    result = check(recorded, "kv")
    assert result.verdict is Verdict.LINEARIZABLE
    assert check(recorded, "kv", partition=False).verdict is Verdict.LINEARIZABLE


def as_operations(steps: list[Step]) -> list[Operation]:
    """The run as operations; a cas that did not swap is kept as an observation."""
    return [op(i, s.f, s.value, s.result if s.f == "get" else (s.swapped if s.f == "cas"
                                                                  else None),
               call=s.call, ret=None if s.indeterminate else s.ret, key=s.key)
            for i, s in enumerate(steps)]


@SETTINGS
@given(reference_runs(), st.data())
def test_a_read_of_a_value_never_written_is_caught(steps: list[Step], data: st.DataObject
                                                   ) -> None:
    operations = as_operations(steps)
    assert check(history(*operations), "kv").verdict is Verdict.LINEARIZABLE
    reads = [i for i, o in enumerate(operations) if o.f == "get" and o.status == "ok"]
    assume(reads)
    target = data.draw(st.sampled_from(reads))
    operations[target] = replace(operations[target], result="<never>")
    result = check(history(*operations), "kv")
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    assert result.violation is not None and result.violation.key == operations[target].key


@st.composite
def stale_reads(draw: st.DrawFn) -> tuple[list[Operation], int, str]:
    """A run and a read made stale: it returns a value put by an operation that was
    overwritten (by an operation that completed) before the read began."""
    operations = as_operations(draw(reference_runs(min_count=10, keys=KEYS[:2])))
    choices = []
    for g, read in enumerate(operations):
        if read.f != "get" or read.status != "ok":
            continue
        for overwrite in operations:
            if (overwrite.key != read.key or overwrite.f == "get" or overwrite.ret is None
                    or overwrite.ret >= read.call
                    or (overwrite.f == "cas" and overwrite.result is not True)):
                continue
            choices.extend(
                (g, put.value) for put in operations
                if put.f == "put" and put.key == read.key and put.ret is not None
                and put.ret < overwrite.call and put.value != read.result)
    assume(choices)
    g, value = draw(st.sampled_from(choices))
    assert isinstance(value, str)
    return operations, g, value


@SETTINGS
@given(stale_reads())
def test_a_stale_read_is_caught(case: tuple[list[Operation], int, str]) -> None:
    operations, target, stale = case
    operations = list(operations)
    operations[target] = replace(operations[target], result=stale)
    assert check(history(*operations), "kv").verdict is Verdict.NOT_LINEARIZABLE
    assert check(history(*operations), "kv", partition=False).verdict is \
        Verdict.NOT_LINEARIZABLE


# -- agreement with brute force -----------------------------------------------------------

VALUES = ("x", "y")


@st.composite
def small_histories(draw: st.DrawFn) -> list[Operation]:
    """Up to six operations on one key with colliding values and arbitrary results."""
    operations = []
    for process in range(draw(st.integers(1, 6))):
        f = draw(st.sampled_from(("get", "put", "append", "cas")))
        call = draw(st.integers(0, 8))
        ret = None if draw(st.integers(0, 4)) == 0 else call + draw(st.integers(0, 6))
        value: Value = None
        result: Value = None
        if f == "get":
            result = draw(st.sampled_from((None, "x", "y", "xy", "yx", "xx")))
            ret = call + 1 if ret is None else ret
        elif f in ("put", "append"):
            value = draw(st.sampled_from(VALUES))
        else:
            value = (draw(st.sampled_from((None, *VALUES))), draw(st.sampled_from(VALUES)))
            result = None if ret is None else draw(st.booleans())
        operations.append(op(process, f, value, result, call=call, ret=ret))
    return operations


def brute_force(operations: list[Operation]) -> bool:
    """Some order of all completed and any subset of indeterminate operations respects
    real time (an operation that returned before another was invoked comes first) and
    the model."""
    required = [o for o in operations if o.ret is not None]
    optional = [o for o in operations if o.ret is None]
    for size in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, size):
            for order in itertools.permutations(required + list(chosen)):
                if respects_real_time(order) and model_accepts(order):
                    return True
    return False


def respects_real_time(order: tuple[Operation, ...]) -> bool:
    return not any(later.ret is not None and later.ret < earlier.call
                   for i, earlier in enumerate(order) for later in order[i + 1:])


def model_accepts(order: tuple[Operation, ...]) -> bool:
    state: Value = None
    for operation in order:
        ok, state = apply(operation, state, None)
        if not ok:
            return False
    return True


@settings(max_examples=300, deadline=None)
@given(small_histories())
def test_the_search_agrees_with_brute_force(operations: list[Operation]) -> None:
    expected = Verdict.LINEARIZABLE if brute_force(operations) else Verdict.NOT_LINEARIZABLE
    assert check(history(*operations), "kv").verdict is expected


@settings(max_examples=200, deadline=None)
@given(small_histories())
def test_the_compact_memo_agrees_with_brute_force(operations: list[Operation]) -> None:
    # Long partitions remember configurations in a compact form; force it on small ones.
    expected = Verdict.LINEARIZABLE if brute_force(operations) else Verdict.NOT_LINEARIZABLE
    with mock.patch.object(search_module, "_COMPACT_ABOVE", 0):
        assert check(history(*operations), "kv").verdict is expected


# -- the register rules, against brute force ----------------------------------------------

REGISTER_VALUES = ("x", "y", "z")


@st.composite
def register_histories(draw: st.DrawFn) -> list[Operation]:
    """Up to six overlapping gets, puts, deletes and cas on one key, some indeterminate,
    with values that may be read, written twice or never read: the shapes that the
    register rules (forced reads and writes, unobserved and stranded states) act on."""
    operations = []
    for process in range(draw(st.integers(1, 6))):
        f = draw(st.sampled_from(("get", "get", "put", "put", "delete", "cas")))
        call = draw(st.integers(0, 8))
        ret = None if draw(st.integers(0, 4)) == 0 else call + draw(st.integers(0, 6))
        value: Value = None
        result: Value = None
        if f == "get":
            result = draw(st.sampled_from((None, *REGISTER_VALUES)))
            ret = call + 1 if ret is None else ret
        elif f == "put":
            value = draw(st.sampled_from(REGISTER_VALUES))
        elif f == "cas":
            value = (draw(st.sampled_from((None, *REGISTER_VALUES))),
                     draw(st.sampled_from(REGISTER_VALUES)))
            result = None if ret is None else draw(st.booleans())
        operations.append(op(process, f, value, result, call=call, ret=ret))
    return operations


@settings(max_examples=400, deadline=None)
@given(register_histories())
def test_the_register_rules_agree_with_brute_force(operations: list[Operation]) -> None:
    expected = Verdict.LINEARIZABLE if brute_force(operations) else Verdict.NOT_LINEARIZABLE
    result = check(history(*operations), "kv")
    assert result.verdict is expected
    if expected is Verdict.NOT_LINEARIZABLE:
        violation = result.violation
        assert violation is not None and violation.outcome is not None
        assert violation.outcome.stuck


@st.composite
def append_histories(draw: st.DrawFn) -> list[Operation]:
    """Up to six puts, appends, deletes and gets run one after another on one key, each
    stretched into an interval around its moment, some left indeterminate, and at times
    one read changed: values are prefixes of one another, so what appends make of a
    state matters to later reads, as the unobserved-string rule must respect."""
    operations = []
    state: Value = None
    for i in range(draw(st.integers(1, 6))):
        f = draw(st.sampled_from(("get", "get", "put", "append", "append", "delete")))
        value: Value = None
        result: Value = None
        if f == "get":
            result = state
        elif f == "put":
            value = state = draw(st.sampled_from(("", "x", "y")))
        elif f == "append":
            value = draw(st.sampled_from(("x", "y")))
            state = ("" if state is None else str(state)) + value
        else:
            state = None
        moment = 10 * i + 5
        call = moment - draw(st.integers(0, 12))
        ret = None if f != "get" and draw(st.integers(0, 5)) == 0 else (
            moment + draw(st.integers(0, 12)))
        operations.append(op(i, f, value, result, call=call, ret=ret))
    reads = [i for i, o in enumerate(operations) if o.f == "get"]
    if reads and draw(st.booleans()):
        target = draw(st.sampled_from(reads))
        operations[target] = replace(operations[target], result=draw(
            st.sampled_from((None, "", "x", "y", "xy", "yx", "xx", "xyx"))))
    return operations


@settings(max_examples=400, deadline=None)
@given(append_histories())
def test_the_rules_agree_with_brute_force_on_appends(operations: list[Operation]) -> None:
    expected = Verdict.LINEARIZABLE if brute_force(operations) else Verdict.NOT_LINEARIZABLE
    assert check(history(*operations), "kv").verdict is expected


@settings(max_examples=150, deadline=None)
@given(register_histories(), register_histories())
def test_one_object_for_all_keys_agrees_with_one_per_key(
        left: list[Operation], right: list[Operation]) -> None:
    # Linearizability is local: checking the keys together, with a compound state, must
    # give the verdict of checking each on its own.
    operations = left + [replace(o, key="other", process=o.process + 10) for o in right]
    separately = check(history(*operations), "kv").verdict
    assert check(history(*operations), "kv", partition=False).verdict is separately


# -- footprints say what apply does -------------------------------------------------------

STATES: tuple[Value, ...] = (None, "x", "y", "xy", 1, True, 1.0, ("x",))


@st.composite
def any_operations(draw: st.DrawFn) -> Operation:
    f = draw(st.sampled_from(("get", "put", "append", "delete", "cas")))
    status = draw(st.sampled_from(("ok", "info")))
    value: Value = None
    result: Value = None
    if f in ("put", "append"):
        value = draw(st.sampled_from(STATES if f == "put" else ("x", "y")))
    elif f == "cas":
        value = (draw(st.sampled_from(STATES)), draw(st.sampled_from(STATES)))
        result = draw(st.sampled_from((True, False, None))) if status == "ok" else None
    elif f == "get":
        result = draw(st.sampled_from(STATES))
    return op(1, f, value, result, call=0, ret=1 if status == "ok" else None)


@settings(max_examples=300, deadline=None)
@given(any_operations(), st.sampled_from((None, "")))
def test_a_footprint_describes_what_apply_does(operation: Operation, absent: Value) -> None:
    fp = footprint(operation, absent)
    for state in STATES:
        ok, after = apply(operation, state, absent)
        if fp.blind:
            assert ok and same(after, fp.written[0])
        if fp.read_only:
            assert not ok or after is state
        if fp.read_only and operation.f == "get":
            assert ok is same(state, fp.required[0])
        if fp.required and ok:
            assert same(state, fp.required[0])
        if ok and fp.suffix:
            assert isinstance(after, str) and after.endswith(fp.suffix[0])
        if ok and not fp.suffix:
            # It leaves the state it found or the value it writes.
            assert after is state or any(same(after, w) for w in fp.written)
        if fp.inspects_all:
            continue
        # Two states it does not inspect look alike to it.
        for other in STATES:
            if any(same(s, x) for s in (state, other) for x in fp.inspected):
                continue
            other_ok, other_after = apply(operation, other, absent)
            assert other_ok is ok
            if ok and not (after is state and other_after is other):
                assert same(after, other_after)
            if ok and not fp.volatile and not fp.blind and fp.inspected:
                raise AssertionError("accepted in a state it does not inspect")
