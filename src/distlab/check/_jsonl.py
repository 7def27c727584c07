"""Reading distlab's own history files: one JSON object per line (DESIGN §9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distlab.check._history import FUNCTIONS, History, HistoryBuilder, HistoryError, Key, freeze

EVENT_TYPES = ("invoke", "ok", "fail", "info")
# Jepsen's register vocabulary, accepted as synonyms.
ALIASES = {"read": "get", "write": "put"}


def read_history(path: str | Path) -> History:
    """Read and validate a JSON-lines history.

    A process may have one operation outstanding and never invokes after an `info`; a
    completion names the same function and key as its invoke and is not earlier. A last
    line cut short without its newline is what a crash of the recorder leaves: it is
    ignored and reported as `torn_tail_line`. Anything else malformed raises HistoryError
    naming the file and line.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryError(source, None, f"cannot read: {error}") from error
    return parse_history(text, source)


def parse_history(text: str, source: str = "<history>") -> History:
    builder = HistoryBuilder(source)
    lines = text.split("\n")
    torn_tail_line: int | None = None
    last_index = len(lines) - 1
    for index, raw in enumerate(lines):
        number = index + 1
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except json.JSONDecodeError as error:
            if index == last_index:
                torn_tail_line = number
                break
            raise HistoryError(source, number, f"not valid JSON: {error.msg}") from None
        if not isinstance(event, dict):
            raise HistoryError(source, number, "expected a JSON object")
        _apply_event(builder, number, event)
    return builder.finish("jsonl", torn_tail_line=torn_tail_line)


def _field(builder: HistoryBuilder, line: int, event: dict[str, Any], name: str) -> Any:
    if name not in event:
        raise builder.error(line, f"missing field {name!r}")
    return event[name]


def _apply_event(builder: HistoryBuilder, line: int, event: dict[str, Any]) -> None:
    process = _field(builder, line, event, "process")
    if not isinstance(process, int) or isinstance(process, bool):
        raise builder.error(line, f"'process' must be an integer, not {process!r}")
    kind = _field(builder, line, event, "type")
    if kind not in EVENT_TYPES:
        raise builder.error(line, f"'type' must be one of {', '.join(EVENT_TYPES)}, "
                            f"not {kind!r}")
    f = _field(builder, line, event, "f")
    f = ALIASES.get(f, f) if isinstance(f, str) else f
    if f not in FUNCTIONS:
        raise builder.error(line, f"'f' must be one of {', '.join(FUNCTIONS)}, not {f!r}")
    time = _field(builder, line, event, "time")
    if not isinstance(time, int) or isinstance(time, bool):
        raise builder.error(line, f"'time' must be an integer (nanoseconds), not {time!r}")
    key = event.get("key")
    if not (key is None or isinstance(key, str | int)) or isinstance(key, bool):
        raise builder.error(line, f"'key' must be a string, an integer or null, not {key!r}")
    raw_value = event.get("value")
    try:
        value = freeze(raw_value)
    except TypeError:
        raise builder.error(line, f"unsupported value {raw_value!r}") from None
    typed_key: Key = key
    if kind == "invoke":
        builder.invoke(line, process, f, typed_key, _invoke_argument(builder, line, f, value),
                       time)
        return
    result = value if f == "get" else (True if f == "cas" else None)
    builder.complete(line, process, kind, f, typed_key, result, time)


def _invoke_argument(builder: HistoryBuilder, line: int, f: str, value: Any) -> Any:
    if f in ("get", "delete"):
        return None
    if f == "cas":
        if not (isinstance(value, tuple) and len(value) == 2):
            raise builder.error(line, f"cas needs 'value': [expected, new], not {value!r}")
        return value
    if value is None:
        raise builder.error(line, f"{f} needs a 'value'")
    if f == "append" and not isinstance(value, str):
        raise builder.error(line, f"append needs a string 'value', not {value!r}")
    return value
