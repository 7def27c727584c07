"""Operations and histories: the checker's input, whatever file format it came from.

A history is a sequence of events (DESIGN §9): a process invokes an operation, then it
completes as `ok` (it happened), `fail` (it did not) or `info` (unknown: it may have
happened at any time after its invoke). The checker works on operations, one per
invoke/completion pair: failed ones are dropped, indeterminate ones keep an open end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

# A value as the history carries it: JSON scalars, with lists frozen into tuples so that
# values can be compared, hashed and used as model states.
Value: TypeAlias = "str | int | float | bool | tuple[Value, ...] | None"
Key: TypeAlias = "str | int | None"

FUNCTIONS = ("get", "put", "append", "delete", "cas")
Status = Literal["ok", "info"]


class HistoryError(Exception):
    """A history file that cannot be read: names the file and, where known, the line."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Operation:
    """One invoke and its completion, as the checker sees it.

    `value` is the invoke's argument (the value to put or append, `(expected, new)` for
    cas, None for get and delete). `result` is what the completion reported: the value a
    get read, and for cas whether it swapped (True) or found another value (False, only
    from formats that record a failed compare as an observation). For `info` operations
    `result` is None and `ret` is None: the operation may take effect at any time after
    `call`, or never.
    """

    index: int
    process: int
    f: str
    key: Key
    value: Value
    result: Value
    status: Status
    call: int
    ret: int | None
    call_line: int
    ret_line: int | None

    def describe(self) -> str:
        """A short human form, e.g. `put('v7')`, `get() -> 'v7'`, `cas(1, 2) -> False`."""
        if self.f == "cas" and isinstance(self.value, tuple) and len(self.value) == 2:
            text = f"cas({self.value[0]!r}, {self.value[1]!r})"
            if self.status == "ok" and self.result is False:
                text += " -> False"
        elif self.f in ("get", "delete"):
            text = f"{self.f}()"
            if self.f == "get" and self.status == "ok":
                text += f" -> {self.result!r}"
        else:
            text = f"{self.f}({self.value!r})"
        if self.status == "info":
            text += " ?"
        return text


@dataclass(frozen=True, slots=True)
class History:
    """Operations of one history file, in invoke order.

    `absent` is what a get of a key that was never written (or was deleted) returns:
    None in distlab's own histories, "" in logs of the MIT 6.824 key/value service.
    """

    source: str
    format: str
    operations: tuple[Operation, ...]
    failed: int = 0
    absent: Value = None
    default_model: str = "kv"
    torn_tail_line: int | None = None

    def describe_count(self) -> str:
        """How many operations, in the words of `describe_operation_count`."""
        indeterminate = sum(operation.status == "info" for operation in self.operations)
        return describe_operation_count(len(self.operations) + self.failed, self.failed,
                                        indeterminate)

    @property
    def keys(self) -> list[Key]:
        seen: dict[Key, None] = {}
        for operation in self.operations:
            seen.setdefault(operation.key, None)
        return list(seen)


def describe_operation_count(total: int, failed: int, indeterminate: int) -> str:
    """A history's operation count as every page and summary gives it: each invoke is one
    operation, failed ones included, and the checker leaves the failed ones out because a
    failed operation did not happen."""
    return (f"{total} operations: {total - failed} checked ({indeterminate} indeterminate), "
            f"{failed} failed and left out of the check")


def freeze(value: object) -> Value:
    """A JSON value as a hashable Value (lists become tuples)."""
    if isinstance(value, list):
        return tuple(freeze(item) for item in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"unsupported value {value!r}")


@dataclass(slots=True)
class _Pending:
    process: int
    f: str
    key: Key
    value: Value
    call: int
    call_line: int


class HistoryBuilder:
    """Pairs invokes with completions and enforces the rules of DESIGN §9.

    A process has at most one operation outstanding and never invokes again after an
    `info`. Operations still outstanding at the end become `info`: whoever recorded the
    history stopped before learning their outcome.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._pending: dict[int, _Pending] = {}
        self._crashed: dict[int, int] = {}
        self._operations: list[tuple[int, Operation]] = []
        self._failed = 0

    def error(self, line: int, message: str) -> HistoryError:
        return HistoryError(self.source, line, message)

    def invoke(self, line: int, process: int, f: str, key: Key, value: Value, time: int) -> None:
        if process in self._pending:
            earlier = self._pending[process].call_line
            raise self.error(
                line, f"process {process} invokes while its operation of line {earlier} "
                "is still outstanding")
        if process in self._crashed:
            raise self.error(
                line, f"process {process} invokes after its indeterminate (info) completion "
                f"on line {self._crashed[process]}")
        self._pending[process] = _Pending(process, f, key, value, time, line)

    def complete(self, line: int, process: int, kind: str, f: str, key: Key,
                 result: Value, time: int, *, check_key: bool = True) -> None:
        pending = self._pending.pop(process, None)
        if pending is None:
            raise self.error(line, f"process {process} completes ({kind}) with no operation "
                             "outstanding")
        if pending.f != f:
            raise self.error(line, f"process {process} completes {f!r} but invoked "
                             f"{pending.f!r} on line {pending.call_line}")
        if check_key and pending.key != key:
            raise self.error(line, f"process {process} completes key {key!r} but invoked key "
                             f"{pending.key!r} on line {pending.call_line}")
        if time < pending.call:
            raise self.error(line, f"completion time {time} is before its invoke time "
                             f"{pending.call} (line {pending.call_line})")
        if kind == "fail":
            self._failed += 1
            return
        if kind == "info":
            self._crashed[process] = line
            self._add(pending, "info", None, None, None)
            return
        self._add(pending, "ok", result, time, line)

    def _add(self, pending: _Pending, status: Status, result: Value, ret: int | None,
             ret_line: int | None) -> None:
        operation = Operation(
            index=0, process=pending.process, f=pending.f, key=pending.key,
            value=pending.value, result=result, status=status, call=pending.call, ret=ret,
            call_line=pending.call_line, ret_line=ret_line)
        self._operations.append((pending.call_line, operation))

    def finish(self, fmt: str, *, absent: Value = None, default_model: str = "kv",
               torn_tail_line: int | None = None) -> History:
        for pending in list(self._pending.values()):
            self._add(pending, "info", None, None, None)
        self._pending.clear()
        ordered = sorted(self._operations, key=lambda item: (item[1].call, item[0]))
        operations = tuple(
            Operation(index=i, process=op.process, f=op.f, key=op.key, value=op.value,
                      result=op.result, status=op.status, call=op.call, ret=op.ret,
                      call_line=op.call_line, ret_line=op.ret_line)
            for i, (_, op) in enumerate(ordered))
        return History(source=self.source, format=fmt, operations=operations,
                       failed=self._failed, absent=absent, default_model=default_model,
                       torn_tail_line=torn_tail_line)
