"""`distlab lincheck HISTORY`: is a recorded history linearizable? With `--model external`
(the default for a history of transactions), is a history of timestamped transactions
externally consistent?

Exit status 0 linearizable (externally consistent), 1 not, 2 bad usage or input, 3 unknown
(the time or memory budget ran out before a verdict).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from distlab.check import (
    EXTERNAL_MODEL,
    MODELS,
    READERS,
    CheckResult,
    Consistency,
    ExternalResult,
    HistoryError,
    Operation,
    Verdict,
    check,
    check_external,
    is_txn_history,
    load_history,
    read_txn_history,
    render_html,
)
from distlab.cli import common

DEFAULT_MAX_MEMORY_MB = 2048
_EXIT = {Verdict.LINEARIZABLE: common.EXIT_OK,
         Verdict.NOT_LINEARIZABLE: common.EXIT_CHECK_FAILED,
         Verdict.UNKNOWN: common.EXIT_UNKNOWN}
_EXTERNAL_EXIT = {Consistency.CONSISTENT: common.EXIT_OK,
                  Consistency.VIOLATED: common.EXIT_CHECK_FAILED,
                  Consistency.UNKNOWN: common.EXIT_UNKNOWN}
# Violations printed in full before the rest are only counted (--json lists them all).
SHOWN_VIOLATIONS = 10


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lincheck", help="check a history for linearizability",
        description="Check a history for linearizability (Wing-Gong-Lowe search with "
                    "memoization, one partition per key), or a history of timestamped "
                    "transactions for external consistency (--model external). Exit "
                    "status: 0 linearizable (externally consistent), 1 not, 2 bad input, "
                    "3 unknown (a budget ran out).")
    parser.add_argument("history", metavar="HISTORY", help="the history file")
    parser.add_argument("--model", choices=sorted([*MODELS, EXTERNAL_MODEL]),
                        help="sequential model (default: kv; cas-register for Jepsen logs; "
                             f"{EXTERNAL_MODEL} for transactions: real-time order of commit "
                             "timestamps, and every read the state at its timestamp)")
    parser.add_argument("--format", dest="fmt", choices=sorted(READERS),
                        help="file format (default: detected from the first line)")
    parser.add_argument("--html", metavar="OUT", help="write a self-contained HTML report")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--timeout", metavar="S", type=_positive_float,
                        help="give up with verdict unknown after S seconds")
    parser.add_argument("--max-memory-mb", metavar="MB", type=_positive_float,
                        default=DEFAULT_MAX_MEMORY_MB,
                        help="give up with verdict unknown when the search would need "
                             f"more memory than this (default {DEFAULT_MAX_MEMORY_MB})")
    parser.add_argument("--no-partition", action="store_true",
                        help="check all keys as one object instead of key by key "
                             "(same verdict, slower; for cross-checking)")
    parser.set_defaults(handler=run)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def run(args: argparse.Namespace) -> int:
    if args.model == EXTERNAL_MODEL or (
            args.model is None and args.fmt in (None, "jsonl") and is_txn_history(args.history)):
        return run_external(args)
    try:
        history = load_history(args.history, args.fmt)
        if history.torn_tail_line is not None:
            print(f"distlab lincheck: warning: {history.source}:{history.torn_tail_line}: "
                  "ignored a torn last line", file=sys.stderr)
        result = check(history, args.model, partition=not args.no_partition,
                       timeout=args.timeout,
                       max_memory_bytes=int(args.max_memory_mb * 2**20))
    except HistoryError as error:
        hint = (f" (a history of transactions is checked with --model {EXTERNAL_MODEL})"
                if is_txn_history(args.history) else "")
        raise common.UsageError(f"{error}{hint}") from None
    if args.html:
        try:
            Path(args.html).write_text(render_html(result), encoding="utf-8")
        except OSError as error:
            raise common.UsageError(f"cannot write {args.html}: {error.strerror}") from None
    if args.json:
        print(json.dumps(result_json(result), indent=2))
    else:
        print(result_text(result, args.html))
    return _EXIT[result.verdict]


def operation_json(operation: Operation) -> dict[str, Any]:
    return {
        "index": operation.index, "process": operation.process, "f": operation.f,
        "key": operation.key, "value": operation.value, "result": operation.result,
        "status": operation.status, "invoke_line": operation.call_line,
        "complete_line": operation.ret_line,
    }


def result_json(result: CheckResult) -> dict[str, Any]:
    history = result.history
    document: dict[str, Any] = {
        "history": history.source,
        "format": history.format,
        "model": result.model,
        "verdict": result.verdict.value,
        "exit_status": _EXIT[result.verdict],
        "reason": result.reason or None,
        "elapsed_seconds": round(result.elapsed, 6),
        "peak_memory_estimate_bytes": result.peak_memory_estimate,
        "operations": len(history.operations),
        "indeterminate": sum(op.status == "info" for op in history.operations),
        "failed_dropped": history.failed,
        "partitions": [
            {"key": p.key, "verdict": p.verdict.value, "operations": len(p.operations),
             "steps": p.steps}
            for p in result.partitions],
        "violation": None,
    }
    violation = result.violation
    if violation is not None and violation.outcome is not None:
        outcome = violation.outcome
        document["violation"] = {
            "key": violation.key,
            "operation": operation_json(outcome.stuck[0]),
            "also_stuck": [operation_json(op) for op in outcome.stuck[1:]],
            "state_after_prefix": outcome.states[-1] if outcome.states else history.absent,
            "prefix": [operation_json(op) for op in outcome.linearization],
        }
    return document


def result_text(result: CheckResult, html: str | None = None) -> str:
    history = result.history
    rows: list[tuple[str, str]] = [
        ("history", f"{history.source} ({history.format})"),
        ("operations", history.describe_count()),
        ("model", f"{result.model}, {len(result.partitions)} partition"
                  + ("s" if len(result.partitions) != 1 else "")),
        ("verdict", result.verdict.value + (f": {result.reason}" if result.reason else "")),
        ("time", f"{result.elapsed:.2f} s"),
    ]
    violation = result.violation
    if violation is not None and violation.outcome is not None:
        outcome = violation.outcome
        breaking = outcome.stuck[0]
        state = outcome.states[-1] if outcome.states else history.absent
        rows += [
            ("key", violation.label),
            ("breaks at", _operation_text(breaking)),
            ("prefix", f"{len(outcome.linearization)} of {len(violation.operations)} "
                       f"operations linearize, leaving state {_short(state)}"),
        ]
        rows += [("also stuck", _operation_text(op)) for op in outcome.stuck[1:]]
    unknown = [p.label for p in result.partitions if p.verdict is Verdict.UNKNOWN]
    if result.verdict is Verdict.UNKNOWN and unknown:
        rows.append(("unfinished", ", ".join(unknown)))
    if html:
        rows.append(("html", html))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _operation_text(operation: Operation) -> str:
    end = "open" if operation.ret_line is None else str(operation.ret_line)
    return (f"process {operation.process}: {_short_text(operation.describe())} "
            f"(lines {operation.call_line}-{end})")


def _short(value: object) -> str:
    return _short_text(repr(value))


def _short_text(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else f"{text[:limit - 1]}\u2026 ({len(text)} chars)"


# ---- external consistency ----


def run_external(args: argparse.Namespace) -> int:
    for given, flag in ((args.fmt not in (None, "jsonl"), "--format " + str(args.fmt)),
                        (args.html, "--html"), (args.no_partition, "--no-partition")):
        if given:
            raise common.UsageError(f"{flag} does not apply to --model {EXTERNAL_MODEL}, "
                                    "which reads JSON-lines transaction histories")
    try:
        history = read_txn_history(args.history)
    except HistoryError as error:
        raise common.UsageError(str(error)) from None
    if history.torn_tail_line is not None:
        print(f"distlab lincheck: warning: {history.source}:{history.torn_tail_line}: "
              "ignored a torn last line", file=sys.stderr)
    result = check_external(history, timeout=args.timeout)
    if args.json:
        print(json.dumps(external_json(result), indent=2))
    else:
        print(external_text(result))
    return _EXTERNAL_EXIT[result.verdict]


def _counts(result: ExternalResult) -> dict[str, int]:
    transactions = result.history.transactions
    return {
        "transactions": len(transactions) + result.history.failed,
        "committed": sum(t.status == "ok" and t.writes for t in transactions),
        "read_only": sum(t.status == "ok" and t.read_only for t in transactions),
        "indeterminate": sum(t.status == "info" for t in transactions),
        "failed_dropped": result.history.failed,
        "reads_checked": result.reads_checked,
        "reads_unchecked": result.reads_unchecked,
    }


def external_json(result: ExternalResult) -> dict[str, Any]:
    return {
        "history": result.history.source,
        "format": "jsonl",
        "model": EXTERNAL_MODEL,
        "verdict": result.verdict.value,
        "exit_status": _EXTERNAL_EXIT[result.verdict],
        "reason": result.reason or None,
        "elapsed_seconds": round(result.elapsed, 6),
        **_counts(result),
        "violations": [violation.as_dict() for violation in result.violations],
    }


def external_text(result: ExternalResult) -> str:
    counts = _counts(result)
    rows: list[tuple[str, str]] = [
        ("history", f"{result.history.source} (jsonl)"),
        ("transactions", f"{counts['transactions']}: {counts['committed']} read-write "
                         f"committed, {counts['read_only']} read-only, "
                         f"{counts['indeterminate']} indeterminate, "
                         f"{counts['failed_dropped']} failed and left out"),
        ("reads", f"{counts['reads_checked']} checked"
                  + (f", {counts['reads_unchecked']} unchecked (too many possible states "
                     "under the indeterminate transactions)" if counts["reads_unchecked"]
                     else "")),
        ("model", EXTERNAL_MODEL),
        ("verdict", result.verdict.value + (f": {result.reason}" if result.reason else "")),
        ("time", f"{result.elapsed:.2f} s"),
    ]
    for violation in result.violations[:SHOWN_VIOLATIONS]:
        rows.append((f"{violation.kind} violation", violation.message))
    hidden = len(result.violations) - SHOWN_VIOLATIONS
    if hidden > 0:
        rows.append(("more", f"{hidden} more violations (--json lists them all)"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
