"""A transaction's operations (DESIGN §16) and their evaluation at one participant.

`get:K` reads K, `put:K=V` writes V, `add:K=N` adds the integer N (a missing key counts as
0), `require:K>=N` aborts the transaction unless K holds an integer of at least N. A
participant evaluates its share of a transaction once it holds every lock the share needs,
against its store and the transaction's own earlier writes, and votes on the result.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


class OpKind(enum.Enum):
    GET = "get"
    PUT = "put"
    ADD = "add"
    REQUIRE = "require"


class LockMode(enum.Enum):
    SHARED = "S"
    EXCLUSIVE = "X"


@dataclass(frozen=True, slots=True)
class Op:
    kind: OpKind
    key: str
    # put: the value; add: the amount; require: the bound (both as decimal text).
    argument: str = ""

    @property
    def writes(self) -> bool:
        return self.kind in (OpKind.PUT, OpKind.ADD)

    def text(self) -> str:
        if self.kind is OpKind.GET:
            return f"get:{self.key}"
        if self.kind is OpKind.REQUIRE:
            return f"require:{self.key}>={self.argument}"
        return f"{self.kind.value}:{self.key}={self.argument}"


def parse_op(text: str) -> Op:
    """One operation from its command-line form; ValueError with a one-line reason."""
    kind_text, colon, rest = text.partition(":")
    if not colon:
        raise ValueError(f"operation {text!r}: expected get:K, put:K=V, add:K=N or require:K>=N")
    try:
        kind = OpKind(kind_text)
    except ValueError:
        raise ValueError(f"operation {text!r}: unknown kind {kind_text!r} "
                         "(get, put, add, require)") from None
    if kind is OpKind.GET:
        key, argument = rest, ""
    elif kind is OpKind.REQUIRE:
        key, separator, argument = rest.partition(">=")
        if not separator:
            raise ValueError(f"operation {text!r}: expected require:K>=N")
    else:
        key, separator, argument = rest.partition("=")
        if not separator:
            raise ValueError(f"operation {text!r}: expected {kind.value}:K=...")
    if not key:
        raise ValueError(f"operation {text!r}: the key is empty")
    if kind in (OpKind.ADD, OpKind.REQUIRE) and _integer(argument) is None:
        raise ValueError(f"operation {text!r}: {argument!r} is not an integer")
    return Op(kind, key, argument)


def _integer(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def lock_modes(ops: Iterable[Op]) -> dict[str, LockMode]:
    """The lock each key needs: exclusive if any operation writes it, shared otherwise."""
    modes: dict[str, LockMode] = {}
    for op in ops:
        if op.writes:
            modes[op.key] = LockMode.EXCLUSIVE
        else:
            modes.setdefault(op.key, LockMode.SHARED)
    return modes


@dataclass(frozen=True, slots=True)
class Evaluation:
    ok: bool
    reason: str
    reads: tuple[tuple[str, str | None], ...]
    writes: tuple[tuple[str, str], ...]


def evaluate(ops: Iterable[Op], read: Callable[[str], str | None]) -> Evaluation:
    """Run `ops` in order over `read` (the store, under the transaction's locks)."""
    view: dict[str, str | None] = {}
    reads: dict[str, str | None] = {}
    written: dict[str, str] = {}

    def current(key: str) -> str | None:
        return view[key] if key in view else read(key)

    for op in ops:
        value = current(op.key)
        if op.kind is OpKind.GET:
            reads[op.key] = value
        elif op.kind is OpKind.PUT:
            view[op.key] = written[op.key] = op.argument
        elif op.kind is OpKind.ADD:
            number = 0 if value is None else _integer(value)
            if number is None:
                return Evaluation(False, f"add:{op.key}: {value!r} is not an integer", (), ())
            view[op.key] = written[op.key] = str(number + int(op.argument))
        else:
            number = 0 if value is None else _integer(value)
            if number is None or number < int(op.argument):
                return Evaluation(False, f"require {op.key}>={op.argument} does not hold "
                                  f"({op.key}={value})", (), ())
    return Evaluation(True, "", tuple(sorted(reads.items())), tuple(sorted(written.items())))


def group_by_owner(ops: Iterable[Op], owner: Callable[[str], int]) -> Mapping[int, tuple[Op, ...]]:
    """Each participant's share of a transaction, in the transaction's order."""
    shares: dict[int, list[Op]] = {}
    for op in ops:
        shares.setdefault(owner(op.key), []).append(op)
    return {node: tuple(share) for node, share in sorted(shares.items())}
