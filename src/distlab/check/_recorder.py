"""Recording a history while a test runs: one JSON line per event, written as it happens.

Each event is a single `os.write` of one whole line on a file opened for appending, so
a crash of the recording process loses at most the line being written (the reader
ignores a torn last line). With `durable=True` each line is also fsynced, which guards
against a crash of the machine at the cost of one fsync per event.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from distlab.check._history import FUNCTIONS, Key
from distlab.check._txn_history import TXN_FUNCTION

JsonValue = str | int | float | bool | None | Sequence["JsonValue"]


class HistoryRecorder:
    """Appends invoke/ok/fail/info events to a JSON-lines history (DESIGN §9).

    It refuses what the format forbids: a second invoke while a process has an operation
    outstanding, and any invoke from a process whose last operation ended in `info`
    (such a process must take a new id). Times come from `clock`, monotonic nanoseconds
    by default, read under the lock so they never go back from one line to the next.
    """

    def __init__(self, path: str | Path, *, durable: bool = False,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.path = Path(path)
        self._durable = durable
        self._clock = clock
        self._lock = threading.Lock()
        self._outstanding: dict[int, tuple[str, Key, JsonValue]] = {}
        self._retired: set[int] = set()
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                       0o644)

    def invoke(self, process: int, f: str, key: Key = None, value: JsonValue = None, *,
               extra: Mapping[str, JsonValue] | None = None) -> int:
        """Record that `process` starts `f`; returns the event's time. `extra` adds fields
        to the event (a snapshot read's `at`)."""
        _check_extra(extra)
        if f not in FUNCTIONS and f != TXN_FUNCTION:
            raise ValueError(f"unknown function {f!r}: expected one of {', '.join(FUNCTIONS)} "
                             f"or {TXN_FUNCTION}")
        if f == "cas" and not (isinstance(value, Sequence) and not isinstance(value, str)
                               and len(value) == 2):
            raise ValueError(f"cas takes [expected, new], not {value!r}")
        with self._lock:
            if process in self._outstanding:
                raise ValueError(f"process {process} already has an operation outstanding")
            if process in self._retired:
                raise ValueError(f"process {process} ended with info and may not invoke "
                                 "again; use a new process id")
            self._outstanding[process] = (f, key, value)
            return self._write(process, "invoke", f, key, value, extra)

    def ok(self, process: int, value: JsonValue = None, *,
           extra: Mapping[str, JsonValue] | None = None) -> int:
        """It happened. For get, `value` is what it read (None for a missing key). `extra`
        adds fields to the event (a transaction's timestamp, `ts`)."""
        _check_extra(extra)
        return self._complete(process, "ok", value, extra)

    def fail(self, process: int, value: JsonValue = None) -> int:
        """It definitely did not happen."""
        return self._complete(process, "fail", value)

    def info(self, process: int, value: JsonValue = None) -> int:
        """Unknown whether it happened; the process must not invoke again."""
        return self._complete(process, "info", value)

    def _complete(self, process: int, kind: str, value: JsonValue,
                  extra: Mapping[str, JsonValue] | None = None) -> int:
        with self._lock:
            invoked = self._outstanding.pop(process, None)
            if invoked is None:
                raise ValueError(f"process {process} has no operation outstanding")
            f, key, argument = invoked
            if kind == "info":
                self._retired.add(process)
            recorded = value if f == "get" or value is not None else argument
            return self._write(process, kind, f, key, recorded, extra)

    def _write(self, process: int, kind: str, f: str, key: Key, value: JsonValue,
               extra: Mapping[str, JsonValue] | None = None) -> int:
        if self._fd is None:
            raise ValueError("the recorder is closed")
        now = self._clock()
        event: dict[str, JsonValue] = {"process": process, "type": kind, "f": f, "key": key,
                                       "value": value, "time": now}
        if extra:
            event.update(extra)
        line = (json.dumps(event, separators=(", ", ": ")) + "\n").encode("utf-8")
        written = os.write(self._fd, line)
        while written < len(line):
            written += os.write(self._fd, line[written:])
        if self._durable:
            os.fsync(self._fd)
        return now

    @property
    def outstanding(self) -> dict[int, str]:
        """Processes with an operation in flight, and its function."""
        with self._lock:
            return {process: f for process, (f, _, _) in self._outstanding.items()}

    def close(self) -> None:
        """Close the file. Operations still outstanding stay open in the history, which
        the reader takes as indeterminate."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> HistoryRecorder:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


EVENT_FIELDS = frozenset(("process", "type", "f", "key", "value", "time"))


def _check_extra(extra: Mapping[str, JsonValue] | None) -> None:
    reserved = sorted(EVENT_FIELDS & extra.keys()) if extra else []
    if reserved:
        raise ValueError(f"{reserved[0]!r} is a field every event has, not an extra one")
