"""Histories and the linearizability checker.

    history = load_history("run.jsonl")            # or read_history / read_jepsen_log / ...
    result = check(history, "kv", timeout=60)
    result.verdict                                 # Verdict.LINEARIZABLE, ...
    Path("report.html").write_text(render_html(result))

A test records its history with HistoryRecorder, one JSON line per event.
"""

from distlab.check._checker import (
    ALL_KEYS,
    CheckResult,
    PartitionReport,
    Verdict,
    check,
)
from distlab.check._edn import parse_edn_log, parse_jepsen_log, read_edn_log, read_jepsen_log
from distlab.check._formats import READERS, detect_format, load_history
from distlab.check._history import (
    History,
    HistoryError,
    Operation,
    Value,
    describe_operation_count,
)
from distlab.check._html import render_html
from distlab.check._jsonl import parse_history, read_history
from distlab.check._models import MODELS, Model
from distlab.check._recorder import HistoryRecorder
from distlab.check._search import Outcome

__all__ = [
    "ALL_KEYS",
    "MODELS",
    "READERS",
    "CheckResult",
    "History",
    "HistoryError",
    "HistoryRecorder",
    "Model",
    "Operation",
    "Outcome",
    "PartitionReport",
    "Value",
    "Verdict",
    "check",
    "describe_operation_count",
    "detect_format",
    "load_history",
    "parse_edn_log",
    "parse_history",
    "parse_jepsen_log",
    "read_edn_log",
    "read_history",
    "read_jepsen_log",
    "render_html",
]
