"""Histories, the linearizability checker and the external-consistency checker.

    history = load_history("run.jsonl")            # or read_history / read_jepsen_log / ...
    result = check(history, "kv", timeout=60)
    result.verdict                                 # Verdict.LINEARIZABLE, ...
    Path("report.html").write_text(render_html(result))

    txns = read_txn_history("txns.jsonl")          # transactions with timestamps
    check_external(txns).verdict                   # Consistency.CONSISTENT, ...

A test records its history with HistoryRecorder, one JSON line per event.
"""

from distlab.check._bank import BankResult, BankVerdict, BlockedTxn, Outage, check_bank
from distlab.check._checker import (
    ALL_KEYS,
    CheckResult,
    PartitionReport,
    Verdict,
    check,
)
from distlab.check._edn import parse_edn_log, parse_jepsen_log, read_edn_log, read_jepsen_log
from distlab.check._external import (
    EXTERNAL_MODEL,
    Consistency,
    ExternalResult,
    Violation,
    check_external,
    check_external_file,
)
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
from distlab.check._txn_history import (
    Transaction,
    TxnHistory,
    is_txn_history,
    parse_txn_history,
    read_txn_history,
)

__all__ = [
    "ALL_KEYS",
    "EXTERNAL_MODEL",
    "MODELS",
    "READERS",
    "BankResult",
    "BankVerdict",
    "BlockedTxn",
    "CheckResult",
    "Consistency",
    "ExternalResult",
    "History",
    "HistoryError",
    "HistoryRecorder",
    "Model",
    "Operation",
    "Outage",
    "Outcome",
    "PartitionReport",
    "Transaction",
    "TxnHistory",
    "Value",
    "Verdict",
    "Violation",
    "check",
    "check_bank",
    "check_external",
    "check_external_file",
    "describe_operation_count",
    "detect_format",
    "is_txn_history",
    "load_history",
    "parse_edn_log",
    "parse_history",
    "parse_jepsen_log",
    "parse_txn_history",
    "read_edn_log",
    "read_history",
    "read_jepsen_log",
    "read_txn_history",
    "render_html",
]
