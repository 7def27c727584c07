"""The report of a bank run: the same files as a KV run's (index.html, result.json,
latency.svg, the history), with the bank checker's verdict and violations, and as
timeline.html a timeline of the transactions: one bar each from invoke to outcome (an
unknown outcome runs to the end), fault windows shaded grey, and each blocked
transaction's in-doubt interval shaded red. An external-consistency run (the bank with
timestamps) adds the external-consistency checker's verdict and violations, each naming
its two transactions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from distlab.check._bank import BankResult, BankVerdict
from distlab.check._external import ExternalResult
from distlab.check.tester.report import (
    HISTORY_FILE,
    INDEX_FILE,
    LATENCY_FILE,
    NANOS,
    OUTCOMES,
    RESULT_FILE,
    TIMELINE_FILE,
    FaultRecord,
    HistorySummary,
    fault_document,
    latency_plot,
    render_index,
)

WIDTH = 1000
LANE_HEIGHT = 7
LEFT = 50
COLOURS = {"ok": "#2f9e44", "fail": "#adb5bd", "info": "#f08c00"}


def transaction_kind(ops: object) -> str:
    """`read` (only reads), `open` (only writes: the opening balances) or `transfer`."""
    kinds = {op[0] for op in ops if isinstance(op, list) and op} if isinstance(ops, list) \
        else set()
    if kinds == {"r"}:
        return "read"
    return "open" if kinds == {"w"} else "transfer"


def bank_counts(lines: Iterable[str]) -> dict[str, dict[str, int]]:
    """Per kind of transaction (a read `at` a timestamp is a snapshot read), how many ended
    ok, fail and info (open ones as info)."""
    table: dict[str, dict[str, int]] = {}
    pending: dict[int, str] = {}
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(event, dict) or not isinstance(event.get("process"), int):
            continue
        process, kind = event["process"], event.get("type")
        if kind == "invoke":
            pending[process] = ("snapshot read" if event.get("at") is not None
                                else transaction_kind(event.get("value")))
        elif kind in OUTCOMES and process in pending:
            row = table.setdefault(pending.pop(process), dict.fromkeys(OUTCOMES, 0))
            row[str(kind)] += 1
    for what in pending.values():
        table.setdefault(what, dict.fromkeys(OUTCOMES, 0))["info"] += 1
    return dict(sorted(table.items()))


def bank_document(*, bank: BankResult, summary: HistorySummary,
                  counts: Mapping[str, Mapping[str, int]],
                  faults: Sequence[FaultRecord], origin_ns: int, finish_ns: int,
                  settings: Mapping[str, Any], exit_status: int, elapsed: float,
                  verdict: BankVerdict | None = None, external: ExternalResult | None = None,
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """result.json of a bank run; `verdict`, when given, is the run's (the bank's and the
    external-consistency checker's together), else the bank checker's."""
    fault_documents = []
    for index, fault in enumerate(faults):
        before = faults[index - 1].end_ns if index > 0 else origin_ns
        after = faults[index + 1].start_ns if index + 1 < len(faults) else finish_ns
        fault_documents.append(fault_document(fault, origin_ns, summary, before, after))
    violations = len(bank.violations) + (len(external.violations) if external else 0)
    reason = (f"{violations} violation{'s' if violations != 1 else ''}" if violations else
              f"external consistency: {external.reason}" if external and external.reason
              else None)
    return {
        "verdict": (verdict or bank.verdict).value,
        "exit_status": exit_status,
        "operations": len(summary.operations),
        "totals": summary.totals(),
        "counts": counts,
        "faults": fault_documents,
        "checker": {"model": "bank" if external is None else "bank+external",
                    "elapsed_seconds": round(elapsed, 3), "reason": reason},
        "bank": bank.as_dict(),
        **({} if external is None else {"external": external_document(external)}),
        "start_ns": origin_ns,
        "end_ns": finish_ns,
        "duration_seconds": round((finish_ns - origin_ns) / NANOS, 3),
        "settings": dict(settings),
        "files": {"history": HISTORY_FILE, "timeline": TIMELINE_FILE,
                  "latency": LATENCY_FILE, "index": INDEX_FILE},
        **(extra or {}),
    }


def bank_section(document: Mapping[str, Any]) -> str:
    """The bank checker's part of index.html: one line per violation, blocked transaction
    and note."""
    bank = document["bank"]
    parts = ["<h2>Bank</h2>",
             f"<p>{len(bank['accounts'])} accounts, total {bank['total']}; transfers "
             + ", ".join(f"{n} {k}" for k, n in bank["transfers"].items())
             + "; reads of every account " + (", ".join(f"{n} {k}" for k, n in
                                                 bank["reads"].items()) or "none") + ".</p>"]
    for title, items in (("Violations", bank["violations"]),
                         ("Blocked transactions", bank["blocked"]), ("Notes", bank["notes"])):
        parts.append(f"<h3>{title}</h3>")
        parts.append("<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"
                     if items else "<p>None.</p>")
    return "\n".join(parts)


def external_document(result: ExternalResult) -> dict[str, Any]:
    return {"verdict": result.verdict.value, "reason": result.reason or None,
            "reads_checked": result.reads_checked, "reads_unchecked": result.reads_unchecked,
            "elapsed_seconds": round(result.elapsed, 3),
            "violations": [violation.as_dict() for violation in result.violations]}


def external_section(document: Mapping[str, Any]) -> str:
    """The external-consistency checker's part of index.html: one item per violation, with
    its two transactions."""
    external = document["external"]
    parts = ["<h2>External consistency</h2>",
             f"<p>{escape(external['verdict'])}"
             + (f" ({escape(external['reason'])})" if external["reason"] else "")
             + f"; {external['reads_checked']} reads checked"
             + (f", {external['reads_unchecked']} unchecked" if external["reads_unchecked"]
                else "") + ".</p>"]
    pairs = document.get("pairs")
    if pairs:
        parts.append(f"<p>Back-to-back pairs (T2 invoked as T1 committed): {pairs['read']} "
                     f"with a read-only T2, {pairs['transfer']} with a transfer; "
                     f"{pairs['faster_to_slower']} from a faster clock's group to a slower "
                     "one's.</p>")
    parts.append("<h3>Violations</h3>")
    violations = external["violations"]
    parts.append("<ul>" + "".join(
        f"<li>{escape(v['kind'])}: {escape(v['message'])}<br>lines "
        + ", ".join(f"{t['invoke_line']}-{t['complete_line']}" for t in v["transactions"])
        + "</li>" for v in violations) + "</ul>" if violations else "<p>None.</p>")
    return "\n".join(parts)


def render_timeline(summary: HistorySummary, faults: Sequence[FaultRecord],
                    blocked_intervals: Sequence[tuple[int, int, str]], origin_ns: int,
                    finish_ns: int, title: str) -> str:
    """timeline.html: each transaction a bar in the first lane free at its invoke."""
    span = max(finish_ns - origin_ns, 1)

    def x_of(ns: int) -> float:
        return LEFT + (WIDTH - LEFT - 10) * min(max((ns - origin_ns) / span, 0.0), 1.0)

    lanes: list[int] = []  # each lane's end so far
    bars = []
    for op in summary.operations:
        end = op.end_ns if op.end_ns is not None and op.outcome != "info" else finish_ns
        lane = next((i for i, busy in enumerate(lanes) if busy <= op.start_ns), len(lanes))
        if lane == len(lanes):
            lanes.append(end)
        lanes[lane] = end
        bars.append((lane, op.start_ns, end, op.outcome))
    height = 40 + LANE_HEIGHT * max(len(lanes), 1) + 30
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'font-family="Helvetica, Arial, sans-serif" font-size="11">']
    for fault in faults:
        x0, x1 = x_of(fault.start_ns), x_of(fault.end_ns)
        svg.append(f'<rect x="{x0:.1f}" y="20" width="{max(x1 - x0, 1):.1f}" '
                   f'height="{height - 50}" fill="#e9ecef"><title>{escape(fault.description)}'
                   f'</title></rect>')
    for start, end, what in blocked_intervals:
        x0, x1 = x_of(start), x_of(end)
        svg.append(f'<rect x="{x0:.1f}" y="20" width="{max(x1 - x0, 1):.1f}" '
                   f'height="{height - 50}" fill="#fa5252" fill-opacity="0.25">'
                   f'<title>blocked: {escape(what)}</title></rect>')
    for lane, start, end, outcome in bars:
        x0, x1 = x_of(start), x_of(end)
        svg.append(f'<rect x="{x0:.1f}" y="{24 + lane * LANE_HEIGHT}" '
                   f'width="{max(x1 - x0, 1):.1f}" height="{LANE_HEIGHT - 2}" '
                   f'fill="{COLOURS.get(outcome, "#000")}"/>')
    seconds = span / NANOS
    for tick in range(0, int(seconds) + 1, max(1, int(seconds // 10) or 1)):
        x = x_of(origin_ns + tick * NANOS)
        svg.append(f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle">{tick} s</text>')
    svg.append("</svg>")
    legend = ("green committed, grey aborted, orange unknown outcome (drawn to the end of the "
              "run); grey background: a fault; red background: a blocked transaction in "
              "doubt")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>"
            f"<p>{legend}.</p>" + "\n".join(svg) + "</body></html>\n")


def write_bank_report(directory: Path, document: dict[str, Any], summary: HistorySummary,
                      faults: Sequence[FaultRecord],
                      blocked_intervals: Sequence[tuple[int, int, str]]) -> None:
    origin_ns, finish_ns = document["start_ns"], document["end_ns"]
    workload = document["settings"].get("workload", "bank")
    title = (f"distlab test ({workload}): {document['verdict']}, {document['operations']} "
             "transactions")
    (directory / TIMELINE_FILE).write_text(
        render_timeline(summary, faults, blocked_intervals, origin_ns, finish_ns, title),
        encoding="utf-8")
    (directory / LATENCY_FILE).write_text(
        latency_plot(summary, faults, origin_ns, finish_ns, title), encoding="utf-8")
    (directory / RESULT_FILE).write_text(json.dumps(document, indent=2) + "\n",
                                         encoding="utf-8")
    sections = [bank_section(document)]
    if "external" in document:
        sections.append(external_section(document))
    (directory / INDEX_FILE).write_text(render_index(document, "\n".join(sections)),
                                        encoding="utf-8")
