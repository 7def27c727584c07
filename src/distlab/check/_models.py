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


def has_effect_or_constraint(operation: Operation) -> bool:
    """False for operations the checker can drop: an indeterminate get reads nothing
    and changes nothing, so it can always be placed anywhere."""
    return not (operation.status == "info" and operation.f == "get")
