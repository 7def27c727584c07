"""Building small histories by hand for the checker's tests."""

from __future__ import annotations

from pathlib import Path

from distlab.check import History, Operation, Value

DATA = Path(__file__).resolve().parents[2] / "data" / "porcupine"


def op(process: int, f: str, value: Value = None, result: Value = None, *, call: int,
       ret: int | None, key: str | None = "k", index: int = 0) -> Operation:
    """An operation from `call` to `ret` (None: indeterminate, i.e. info)."""
    return Operation(index=index, process=process, f=f, key=key, value=value, result=result,
                     status="ok" if ret is not None else "info", call=call, ret=ret,
                     call_line=call, ret_line=ret)


def history(*operations: Operation, absent: Value = None) -> History:
    numbered = tuple(
        Operation(index=i, process=o.process, f=o.f, key=o.key, value=o.value, result=o.result,
                  status=o.status, call=o.call, ret=o.ret, call_line=o.call_line,
                  ret_line=o.ret_line)
        for i, o in enumerate(sorted(operations, key=lambda o: o.call)))
    return History(source="<test>", format="jsonl", operations=numbered, absent=absent)
