"""Importers for Jepsen's own history logs.

Two formats, both with one event per line and the line number standing in for time:

* `jepsen`: the log lines of Jepsen 0.0.x etcd tests, e.g.
  `INFO  jepsen.util - 3	:invoke	:cas	[1 2]`. A single register (no keys) of integers.
  etcd answers a cas whose compare failed with an error, which Jepsen logs as `:fail`;
  the cas did run and saw another value, so it is kept as an observation (result False)
  rather than dropped. A `:fail :read :timed-out` returned nothing and constrains nothing,
  so it is dropped. `:info ... :timed-out` is indeterminate. Other log lines are ignored.
* `edn`: EDN maps, one per line, as the MIT 6.824 key/value tests record them, e.g.
  `{:process 0, :type :ok, :f :get, :key "5", :value ""}`. There a get of a key never
  written returns "" (not nil), so such histories carry `absent=""`.
"""

from __future__ import annotations

import re
from pathlib import Path

from distlab.check._history import FUNCTIONS, History, HistoryBuilder, HistoryError, Value

_JEPSEN_LINE = re.compile(
    r"^\S+\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+(.*?)\s*$")
_JEPSEN_FUNCTIONS = {"read": "get", "write": "put", "cas": "cas"}


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryError(str(path), None, f"cannot read: {error}") from error


# -- a small EDN reader: enough for Jepsen's maps, vectors, strings, keywords, numbers ----


class Keyword(str):
    """An EDN keyword (`:ok`), kept apart from strings so `:ok` never equals `"ok"`."""

    __slots__ = ()


class EdnError(ValueError):
    pass


_TOKEN = re.compile(r"""
    (?P<space>[\s,]+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<open>[\[{(])
  | (?P<close>[\]})])
  | (?P<atom>[^\s,\[\]{}()"]+)
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_CLOSERS = {"[": "]", "(": ")", "{": "}"}


def parse_edn(text: str) -> object:
    """Parse one EDN value (maps become dicts with Keyword or value keys)."""
    tokens: list[tuple[str | None, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise EdnError(f"unreadable text at column {position + 1}")
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
        position = match.end()
    value, used = _parse_value(tokens, 0)
    if used != len(tokens):
        raise EdnError("trailing text after the value")
    return value


def _parse_value(tokens: list[tuple[str | None, str]], position: int) -> tuple[object, int]:
    if position >= len(tokens):
        raise EdnError("unexpected end of line")
    kind, text = tokens[position]
    if kind == "string":
        return _unescape(text[1:-1]), position + 1
    if kind == "atom":
        return _atom(text), position + 1
    if kind == "open":
        items: list[object] = []
        position += 1
        closer = _CLOSERS[text]
        while True:
            if position >= len(tokens):
                raise EdnError(f"missing {closer!r}")
            if tokens[position] == ("close", closer):
                position += 1
                break
            item, position = _parse_value(tokens, position)
            items.append(item)
        if text != "{":
            return items, position
        if len(items) % 2:
            raise EdnError("a map needs an even number of forms")
        try:
            return dict(zip(items[::2], items[1::2], strict=True)), position
        except TypeError:
            raise EdnError("unhashable map key") from None
    raise EdnError(f"unexpected {text!r}")


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _atom(text: str) -> object:
    if text == "nil":
        return None
    if text in ("true", "false"):
        return text == "true"
    if text.startswith(":") and len(text) > 1:
        return Keyword(text[1:])
    if re.fullmatch(r"[+-]?\d+N?", text):
        return int(text.rstrip("N"))
    if re.fullmatch(r"[+-]?\d+\.\d*(?:[eE][+-]?\d+)?M?", text):
        return float(text.rstrip("M"))
    raise EdnError(f"unknown symbol {text!r}")


def _history_value(value: object) -> Value:
    if isinstance(value, list):
        return tuple(_history_value(item) for item in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise EdnError(f"unsupported value {value!r}")


# -- Jepsen etcd logs ---------------------------------------------------------------------


def read_jepsen_log(path: str | Path) -> History:
    return parse_jepsen_log(_read_text(path), str(path))


def parse_jepsen_log(text: str, source: str = "<jepsen log>") -> History:
    builder = HistoryBuilder(source)
    for number, raw in enumerate(text.splitlines(), start=1):
        match = _JEPSEN_LINE.match(raw)
        if match is None:
            continue
        process, kind, rest = int(match.group(1)), match.group(2), match.group(3)
        fields = rest.split(None, 1)
        name = fields[0][1:] if fields and fields[0].startswith(":") else None
        if name not in _JEPSEN_FUNCTIONS:
            raise HistoryError(source, number, f"unknown operation {rest!r}: expected "
                               ":read, :write or :cas")
        f = _JEPSEN_FUNCTIONS[name]
        try:
            value = _history_value(parse_edn(fields[1])) if len(fields) > 1 else None
        except EdnError as error:
            raise HistoryError(source, number, f"unreadable value: {error}") from None
        timed_out = isinstance(value, Keyword)
        if kind == "invoke":
            builder.invoke(number, process, f, None, _invoke_argument(builder, number, f, value),
                           number)
        elif kind == "ok":
            if timed_out:
                raise builder.error(number, f"an ok {name} cannot carry {rest.split()[-1]}")
            result: Value = value if f == "get" else (True if f == "cas" else None)
            builder.complete(number, process, "ok", f, None, result, number)
        elif kind == "fail" and f == "cas" and not timed_out:
            # etcd ran the compare and found another value: an observation, not a no-op.
            builder.complete(number, process, "ok", f, None, False, number)
        else:
            builder.complete(number, process, kind, f, None, None, number)
    return builder.finish("jepsen", default_model="cas-register")


def _invoke_argument(builder: HistoryBuilder, line: int, f: str, value: Value) -> Value:
    if f in ("get", "delete"):
        return None
    if f == "cas" and not (isinstance(value, tuple) and len(value) == 2):
        raise builder.error(line, f"cas needs [expected new], not {value!r}")
    if f in ("put", "append") and value is None:
        raise builder.error(line, f"{f} needs a value")
    if f == "append" and not isinstance(value, str):
        raise builder.error(line, f"append needs a string value, not {value!r}")
    return value


# -- EDN key/value logs ------------------------------------------------------------------


def read_edn_log(path: str | Path) -> History:
    return parse_edn_log(_read_text(path), str(path))


def parse_edn_log(text: str, source: str = "<edn log>") -> History:
    builder = HistoryBuilder(source)
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith(";"):
            continue
        try:
            event = parse_edn(raw)
        except EdnError as error:
            raise HistoryError(source, number, f"not an EDN map: {error}") from None
        if not isinstance(event, dict):
            raise HistoryError(source, number, "expected an EDN map {...}")
        fields = {str(k): v for k, v in event.items() if isinstance(k, Keyword)}
        process = fields.get("process")
        kind = fields.get("type")
        f = fields.get("f")
        if not isinstance(process, int) or isinstance(process, bool):
            raise builder.error(number, f":process must be an integer, not {process!r}")
        if not (isinstance(kind, Keyword) and kind in ("invoke", "ok", "fail", "info")):
            raise builder.error(number, f":type must be :invoke, :ok, :fail or :info, "
                                f"not {kind!r}")
        if not (isinstance(f, Keyword) and f in FUNCTIONS):
            raise builder.error(number, f":f must be one of :{', :'.join(FUNCTIONS)}, "
                                f"not {f!r}")
        key = fields.get("key")
        if not (key is None or isinstance(key, str | int)) or isinstance(key, bool):
            raise builder.error(number, f":key must be a string or an integer, not {key!r}")
        try:
            value = _history_value(fields.get("value"))
        except EdnError as error:
            raise builder.error(number, str(error)) from None
        name = str(f)
        if kind == "invoke":
            builder.invoke(number, process, name, key,
                           _invoke_argument(builder, number, name, value), number)
        else:
            result: Value = value if name == "get" else (True if name == "cas" else None)
            builder.complete(number, process, str(kind), name, key, result, number)
    return builder.finish("edn", absent="", default_model="kv")
