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

The EDN itself is read by the edn_format package.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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


# -- EDN, read by edn_format ----------------------------------------------------------------
#
# edn_format reads every Jepsen and Knossos log of the test data (tests/unit/check reads them
# all). It builds a parser for each call, about half a millisecond, so a log's values are read
# in one call with a marker between lines, by which each value is matched to its line: a
# value that runs over its line (an unclosed string, a trailing `#_`) or a line with two
# values breaks the alternation of values and markers. Only then are the lines read one at a
# time, to name the line at fault. The package is imported when a log is read, not with the
# checker, which most commands use without ever reading EDN.

_LINE_END = "distlab/line-end"


class EdnError(ValueError):
    pass


def read_edn_values(lines: Sequence[tuple[int, str]], source: str, what: str) -> list[object]:
    """The one EDN value on each of `lines` (line number, text), in order; a HistoryError
    names the first line that does not hold exactly one readable value, as `what: why`."""
    import edn_format

    if not lines:
        return []
    marker = edn_format.Keyword(_LINE_END)
    try:
        read = list(edn_format.loads_all(f"\n:{_LINE_END}\n".join(text for _, text in lines),
                                         write_ply_tables=False))
    except Exception:  # whatever it was, the line-by-line reading below names it
        read = []
    values, markers = read[0::2], read[1::2]
    if (len(read) == 2 * len(lines) - 1 and all(m == marker for m in markers)
            and not any(value == marker for value in values)):
        return values
    values = []
    for number, text in lines:
        try:
            found = list(edn_format.loads_all(text, write_ply_tables=False))
        # EDNDecodeError mostly, but an unknown tag raises NotImplementedError, and the
        # library documents no complete list: any failure here is the line's.
        except Exception as error:
            reason = str(error)
            if reason == "EOF Reached":
                reason = "the line ends inside a [...], {...} or (...)"
            raise HistoryError(source, number, f"{what}: {reason}") from None
        if len(found) != 1:
            raise HistoryError(source, number, f"{what}: the line holds {len(found)} EDN "
                               "values, not one")
        values.append(found[0])
    return values


def keyword_name(value: object) -> str | None:
    """`ok` for the EDN keyword `:ok`; None for anything else."""
    from edn_format import Keyword

    return value.name if isinstance(value, Keyword) else None


def _history_value(value: object) -> Value:
    """An EDN value as the history carries it: vectors and lists become tuples, integers and
    decimals (`3N`, `1.5M`) plain numbers."""
    from decimal import Decimal

    from edn_format import ImmutableList

    if isinstance(value, ImmutableList | list | tuple):
        return tuple(_history_value(item) for item in value)
    if isinstance(value, Decimal):
        return float(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise EdnError(f"unsupported value {_edn_text(value)}")


def _edn_text(value: object) -> str:
    import edn_format

    try:
        return str(edn_format.dumps(value))
    except Exception:  # a value the writer has no form for: Python's is still telling
        return repr(value)


# -- Jepsen etcd logs ---------------------------------------------------------------------


def read_jepsen_log(path: str | Path) -> History:
    return parse_jepsen_log(_read_text(path), str(path))


def parse_jepsen_log(text: str, source: str = "<jepsen log>") -> History:
    builder = HistoryBuilder(source)
    events: list[tuple[int, int, str, str, str, bool]] = []
    values: list[tuple[int, str]] = []
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
        events.append((number, process, kind, name, rest, len(fields) > 1))
        if len(fields) > 1:
            values.append((number, fields[1]))
    read = iter(read_edn_values(values, source, "unreadable value"))
    for number, process, kind, name, rest, has_value in events:
        f = _JEPSEN_FUNCTIONS[name]
        raw_value = next(read) if has_value else None
        # `:timed-out` (a keyword where a value goes) says the client never heard back.
        timed_out = keyword_name(raw_value) is not None
        try:
            value = None if timed_out else _history_value(raw_value)
        except EdnError as error:
            raise HistoryError(source, number, f"unreadable value: {error}") from None
        if kind == "invoke":
            if timed_out:
                raise builder.error(number, f"an invoke of {name} cannot carry "
                                    f"{rest.split()[-1]}")
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
    from edn_format import ImmutableDict

    builder = HistoryBuilder(source)
    lines = [(number, raw) for number, raw in enumerate(text.splitlines(), start=1)
             if raw.strip() and not raw.lstrip().startswith(";")]
    for (number, _), event in zip(lines, read_edn_values(lines, source, "not an EDN map"),
                               strict=True):
        if not isinstance(event, ImmutableDict | dict):
            raise HistoryError(source, number, "expected an EDN map {...}")
        fields = {name: value for key, value in event.items()
                  if (name := keyword_name(key)) is not None}
        process = fields.get("process")
        kind = keyword_name(fields.get("type"))
        f = keyword_name(fields.get("f"))
        if not isinstance(process, int) or isinstance(process, bool):
            raise builder.error(number, f":process must be an integer, not "
                                f"{_edn_text(process)}")
        if kind not in ("invoke", "ok", "fail", "info"):
            raise builder.error(number, f":type must be :invoke, :ok, :fail or :info, "
                                f"not {_edn_text(fields.get('type'))}")
        if f not in FUNCTIONS:
            raise builder.error(number, f":f must be one of :{', :'.join(FUNCTIONS)}, "
                                f"not {_edn_text(fields.get('f'))}")
        key = fields.get("key")
        if not (key is None or isinstance(key, str | int)) or isinstance(key, bool):
            raise builder.error(number, f":key must be a string or an integer, not "
                                f"{_edn_text(key)}")
        try:
            value = _history_value(fields.get("value"))
        except EdnError as error:
            raise builder.error(number, str(error)) from None
        if kind == "invoke":
            builder.invoke(number, process, f, key,
                           _invoke_argument(builder, number, f, value), number)
        else:
            result: Value = value if f == "get" else (True if f == "cas" else None)
            builder.complete(number, process, kind, f, key, result, number)
    return builder.finish("edn", absent="", default_model="kv")
