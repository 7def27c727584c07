"""Transaction histories: one transaction per operation (DESIGN §9).

    {"process": 1, "type": "invoke", "f": "txn", "value": [["r", "x", null], ["w", "y", 2]],
     "time": 100}
    {"process": 1, "type": "ok", "f": "txn", "value": [["r", "x", 1], ["w", "y", 2]],
     "time": 250, "ts": 180}

Micro-operations are `[op, key, arg]`: `r` reads (the ok record carries the value read), `w`
writes `arg` (null deletes), `add` adds the integer `arg` (a missing key counts as 0). The ok
record of a committed transaction carries `ts`, its commit timestamp in nanoseconds; that of a
read-only transaction (only `r`) its read timestamp; a history of a protocol that assigns no
timestamps (2PC and 3PC over nodes, as the bank workload runs there) leaves `ts` out, and is
read with `timestamps=False`. A snapshot read at a timestamp the client
chose (`distlab txn exec --at TS`) says so on its invoke, `"at": TS`: it may read the past.
Invokes and completions pair up by the rules of every history (the one HistoryBuilder):
failed transactions are dropped, `info` ones (and those still open at the end) may or may
not have committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from distlab.check._history import HistoryBuilder, HistoryError, Key, Status, Value, freeze

TXN_FUNCTION = "txn"
MICRO_OPS = ("r", "w", "add")
MicroOp: TypeAlias = tuple[str, Key, Value]


@dataclass(frozen=True, slots=True)
class Transaction:
    """One transaction, invoke to completion. `ops` are the completion's micro-operations for
    an ok transaction (reads carry what they read), the invoke's otherwise; `ts` is None for
    an indeterminate one."""

    index: int
    process: int
    ops: tuple[MicroOp, ...]
    status: Status
    call: int
    ret: int | None
    call_line: int
    ret_line: int | None
    ts: int | None
    at: int | None = None  # a snapshot read's chosen timestamp

    @property
    def read_only(self) -> bool:
        return all(op == "r" for op, _, _ in self.ops)

    @property
    def writes(self) -> bool:
        return not self.read_only

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "process": self.process, "status": self.status,
            "read_only": self.read_only, "value": [list(op) for op in self.ops],
            "ts": self.ts, "invoke_time": self.call, "complete_time": self.ret,
            "invoke_line": self.call_line, "complete_line": self.ret_line,
        }

    def describe(self) -> str:
        """e.g. `process 3's read-write transaction [r x 1, w y 2] (invoked at 100, ok at 250,
        ts 180; lines 5-9)`."""
        kind = "read-only" if self.read_only else "read-write"
        ops = ", ".join(f"r {key}" if op == "r" and self.status != "ok"
                        else f"{op} {key} {json.dumps(arg)}" for op, key, arg in self.ops)
        if len(ops) > 120:
            ops = ops[:119] + "\u2026"
        if self.at is not None:
            kind = "snapshot-read"
        if self.status == "ok":
            when = f"invoked at {self.call}, ok at {self.ret}, ts {self.ts}"
            lines = f"lines {self.call_line}-{self.ret_line}"
        else:
            when = f"invoked at {self.call}, outcome unknown"
            lines = f"line {self.call_line}"
        return f"process {self.process}'s {kind} transaction [{ops}] ({when}; {lines})"


@dataclass(frozen=True, slots=True)
class TxnHistory:
    source: str
    transactions: tuple[Transaction, ...]
    failed: int = 0
    torn_tail_line: int | None = None


def read_txn_history(path: str | Path, *, timestamps: bool = True) -> TxnHistory:
    """`timestamps=False` reads a history of a protocol that assigns none (2PC, 3PC): an ok
    record may then leave out `ts`."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryError(source, None, f"cannot read: {error}") from error
    return parse_txn_history(text, source, timestamps=timestamps)


def is_txn_history(path: str | Path) -> bool:
    """Whether the first event of a JSON-lines file is a transaction (`"f": "txn"`)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                if line.strip():
                    event = json.loads(line)
                    return isinstance(event, dict) and event.get("f") == TXN_FUNCTION
    except (OSError, ValueError):
        return False
    return False


def parse_txn_history(text: str, source: str = "<history>", *,
                      timestamps: bool = True) -> TxnHistory:
    builder = HistoryBuilder(source)
    stamps: dict[int, int] = {}  # completion line -> ts
    chosen: dict[int, int] = {}  # invoke line -> a snapshot read's `at`
    lines = text.split("\n")
    torn_tail_line: int | None = None
    for index, raw in enumerate(lines):
        number = index + 1
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except json.JSONDecodeError as error:
            if index == len(lines) - 1:
                torn_tail_line = number
                break
            raise HistoryError(source, number, f"not valid JSON: {error.msg}") from None
        if not isinstance(event, dict):
            raise HistoryError(source, number, "expected a JSON object")
        _apply_event(builder, number, event, stamps, chosen, timestamps)
    history = builder.finish("jsonl")
    transactions = []
    for operation in history.operations:
        if operation.status == "ok":
            assert operation.ret_line is not None
            _check_same_shape(builder, operation.ret_line, operation.value, operation.result)
        ops = operation.result if operation.status == "ok" else operation.value
        assert isinstance(ops, tuple)
        ts = stamps.get(operation.ret_line) if operation.ret_line is not None else None
        at = chosen.get(operation.call_line)
        if at is not None and ts is not None and ts != at:
            raise HistoryError(source, operation.ret_line, f"a snapshot read asked for at {at} "
                               f"(line {operation.call_line}) reports ts {ts}")
        transactions.append(Transaction(
            index=operation.index, process=operation.process, ops=ops,  # type: ignore[arg-type]
            status=operation.status, call=operation.call, ret=operation.ret,
            call_line=operation.call_line, ret_line=operation.ret_line, ts=ts, at=at))
    return TxnHistory(source=source, transactions=tuple(transactions), failed=history.failed,
                      torn_tail_line=torn_tail_line)


def _apply_event(builder: HistoryBuilder, line: int, event: dict[str, Any],
                 stamps: dict[int, int], chosen: dict[int, int], timestamps: bool) -> None:
    process = event.get("process")
    if not isinstance(process, int) or isinstance(process, bool):
        raise builder.error(line, f"'process' must be an integer, not {process!r}")
    kind = event.get("type")
    if kind not in ("invoke", "ok", "fail", "info"):
        raise builder.error(line, f"'type' must be one of invoke, ok, fail, info, not {kind!r}")
    if event.get("f") != TXN_FUNCTION:
        raise builder.error(line, f"'f' must be {TXN_FUNCTION!r} in a transaction history, "
                            f"not {event.get('f')!r}")
    time = event.get("time")
    if not isinstance(time, int) or isinstance(time, bool):
        raise builder.error(line, f"'time' must be an integer (nanoseconds), not {time!r}")
    if kind in ("fail", "info"):
        builder.complete(line, process, kind, TXN_FUNCTION, None, None, time, check_key=False)
        return
    ops = _micro_ops(builder, line, event.get("value"))
    if kind == "invoke":
        builder.invoke(line, process, TXN_FUNCTION, None, ops, time)
        at = event.get("at")
        if at is not None:
            if not isinstance(at, int) or isinstance(at, bool):
                raise builder.error(line, f"'at' must be an integer (nanoseconds), not {at!r}")
            if any(op != "r" for op, _, _ in ops):
                raise builder.error(line, "only a read-only transaction reads 'at' a "
                                    "timestamp")
            chosen[line] = at
        return
    ts = event.get("ts")
    if ts is None and not timestamps:
        builder.complete(line, process, kind, TXN_FUNCTION, None, ops, time, check_key=False)
        return
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise builder.error(line, "an ok transaction needs 'ts', its commit (or read) "
                            f"timestamp in nanoseconds, not {ts!r}")
    builder.complete(line, process, kind, TXN_FUNCTION, None, ops, time, check_key=False)
    stamps[line] = ts


def _micro_ops(builder: HistoryBuilder, line: int, raw: object) -> tuple[MicroOp, ...]:
    if not isinstance(raw, list):
        raise builder.error(line, f"a transaction's 'value' is a list of [op, key, arg], not "
                            f"{raw!r}")
    ops: list[MicroOp] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 3 and item[0] in MICRO_OPS):
            raise builder.error(line, f"a micro-operation is [op, key, arg] with op r, w or "
                                f"add, not {item!r}")
        op, key, arg = item
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise builder.error(line, f"a micro-operation's key is a string or an integer, "
                                f"not {key!r}")
        if op == "add" and (not isinstance(arg, int) or isinstance(arg, bool)):
            raise builder.error(line, f"add needs an integer, not {arg!r}")
        try:
            value = freeze(arg)
        except TypeError:
            raise builder.error(line, f"unsupported value {arg!r}") from None
        ops.append((op, key, value))
    return tuple(ops)


def _check_same_shape(builder: HistoryBuilder, line: int, invoked: Value,
                      completed: Value) -> None:
    assert isinstance(invoked, tuple) and isinstance(completed, tuple)
    same = len(invoked) == len(completed) and all(
        isinstance(before, tuple) and isinstance(after, tuple)
        and before[0] == after[0] and before[1] == after[1]
        and (after[0] == "r" or before[2] == after[2])
        for before, after in zip(invoked, completed, strict=False))
    if not same:
        raise builder.error(line, "the ok record's micro-operations differ from the invoke's "
                            "(only the values of reads may be filled in)")
