"""Sequential specifications the checker compares a history against.

All three models describe independent registers, one per key, so the checker may check
each key on its own (linearizability is local: a history is linearizable exactly when
each object's sub-history is). They differ in the operations they accept:

* `register`: get and put;
* `cas-register`: get, put and compare-and-set;
* `kv`: get, put, append, delete and compare-and-set.

The state of a key is its value, or the history's `absent` value while it has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from distlab.check._history import History, HistoryError, Operation, Value


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    functions: tuple[str, ...]

    def validate(self, history: History) -> None:
        """Raise HistoryError at the first operation this model does not know."""
        for operation in history.operations:
            if operation.f not in self.functions:
                raise HistoryError(
                    history.source, operation.call_line,
                    f"model {self.name!r} has no {operation.f!r} operation "
                    f"(it knows {', '.join(self.functions)}); try --model kv")


MODELS: dict[str, Model] = {
    "register": Model("register", ("get", "put")),
    "cas-register": Model("cas-register", ("get", "put", "cas")),
    "kv": Model("kv", ("get", "put", "append", "delete", "cas")),
}


def same(left: Value, right: Value) -> bool:
    """Equality that does not confuse 1 with True or 1 with 1.0."""
    if type(left) is not type(right):
        return False
    if isinstance(left, tuple) and isinstance(right, tuple):
        return len(left) == len(right) and all(
            same(a, b) for a, b in zip(left, right, strict=True))
    return left == right


def apply(operation: Operation, state: Value, absent: Value) -> tuple[bool, Value]:
    """Whether `operation` may take effect in `state`, and the state after it.

    An indeterminate cas is accepted in any state: if it found its expected value it
    swapped, otherwise it changed nothing.
    """
    f = operation.f
    if f == "get":
        return same(state, operation.result), state
    if f == "put":
        return True, operation.value
    if f == "append":
        base = "" if state is None else state
        if not isinstance(base, str) or not isinstance(operation.value, str):
            return False, state
        return True, base + operation.value
    if f == "delete":
        return True, absent
    if f == "cas":
        value = operation.value
        assert isinstance(value, tuple) and len(value) == 2, value
        expected, new = value
        matches = same(state, expected)
        if operation.status == "info":
            return True, (new if matches else state)
        if operation.result is False:
            return not matches, state
        return matches, new
    raise AssertionError(f"unknown function {f!r}")


class Footprint(NamedTuple):
    """How an operation's acceptance and effect depend on the state of its register.

    The search's pruning rules and its shortcuts around `apply` rest on these facts.
    Each field holds at most one value (a tuple, since None is a value):

    * `inspected`: the one value whose presence the operation tests; in every other state
      it behaves the same (a get tests its result, a cas its expected value). A put or
      a delete tests nothing; an append depends on the whole state (`inspects_all`).
    * `required`: the value it can only be accepted in (a get, a cas that swapped).
    * `written`: the value it may leave whatever the state it found (a put, a delete, a
      cas that swapped or may have); an append leaves a string that ends with what it
      appends (`suffix`).
    * `blind`: it accepts every state and leaves `written` (put, delete).
    * `read_only`: it never changes the state (a completed get, a cas that found
      another value); a read-only get is accepted exactly in its `required` state.
    * `volatile`: it is accepted in states it does not inspect, yet acts differently in
      the one it does (a cas that found another value, an indeterminate cas, an append).
    """

    inspected: tuple[Value, ...] = ()
    inspects_all: bool = False
    required: tuple[Value, ...] = ()
    written: tuple[Value, ...] = ()
    suffix: tuple[str, ...] = ()
    blind: bool = False
    read_only: bool = False
    volatile: bool = False


def footprint(operation: Operation, absent: Value) -> Footprint:
    """The operation's footprint under `apply`."""
    f = operation.f
    if f == "get":
        return Footprint(inspected=(operation.result,), required=(operation.result,),
                         read_only=operation.status == "ok")
    if f == "put":
        return Footprint(written=(operation.value,), blind=True)
    if f == "delete":
        return Footprint(written=(absent,), blind=True)
    if f == "append":
        appended = operation.value
        return Footprint(inspects_all=True, volatile=True,
                         suffix=(appended,) if isinstance(appended, str) else ())
    if f == "cas":
        value = operation.value
        assert isinstance(value, tuple) and len(value) == 2, value
        expected, new = value
        if operation.status == "info":
            return Footprint(inspected=(expected,), written=(new,), volatile=True)
        if operation.result is False:
            return Footprint(inspected=(expected,), read_only=True, volatile=True)
        return Footprint(inspected=(expected,), required=(expected,), written=(new,))
    raise AssertionError(f"unknown function {f!r}")


def identity(value: Value) -> object:
    """A key under which two values are equal exactly when `same` says so (as dict keys,
    1, 1.0 and True would be one). Strings and None are their own key, since no other
    value equals them; the others are paired with their types, which no value holds."""
    kind = type(value)
    if kind is str or value is None:
        return value
    if kind is tuple:
        assert isinstance(value, tuple)
        kinds = tuple(map(type, value))
        if tuple in kinds:
            return (tuple, tuple(identity(item) for item in value))
        return (value, kinds)
    return (kind, value)


def has_effect_or_constraint(operation: Operation) -> bool:
    """False for operations the checker can drop: an indeterminate get reads nothing
    and changes nothing, so it can always be placed anywhere."""
    return not (operation.status == "info" and operation.f == "get")
