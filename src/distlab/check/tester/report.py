"""What a test run leaves behind: counts, fault windows, the verdict, and the report files.

The report directory holds `history.jsonl` (written while the run goes), `result.json`,
`timeline.html` (the checker's view), `latency.svg`, and `index.html` linking them.
Everything here works from files and plain data, so a report can be rebuilt from a saved
history without a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from distlab.check import CheckResult, Verdict, describe_operation_count, render_html
from distlab.check.tester.latency import LatencyPoint, ShadedWindow, render_latency_svg

HISTORY_FILE = "history.jsonl"
RESULT_FILE = "result.json"
TIMELINE_FILE = "timeline.html"
LATENCY_FILE = "latency.svg"
INDEX_FILE = "index.html"

OUTCOMES = ("ok", "fail", "info")
NANOS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A fault as it happened: from when it was applied until it was healed (monotonic ns)."""

    fault: str
    kind: str
    description: str
    targets: tuple[int, ...]
    start_ns: int
    end_ns: int
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Completed:
    """An invoke and what became of it; `end_ns` is None while it is still open."""

    process: int
    f: str
    key: object
    outcome: str
    start_ns: int
    end_ns: int | None


@dataclass(slots=True)
class HistorySummary:
    operations: list[Completed] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per function, how many operations ended ok, fail and info (open ones as info:
        the checker reads them the same way)."""
        table: dict[str, dict[str, int]] = {}
        for operation in self.operations:
            row = table.setdefault(operation.f, dict.fromkeys(OUTCOMES, 0))
            row[operation.outcome] += 1
        return dict(sorted(table.items()))

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(OUTCOMES, 0)
        for row in self.counts().values():
            for outcome, number in row.items():
                totals[outcome] += number
        return totals

    def ok_between(self, start_ns: int, end_ns: int) -> int:
        """Operations that completed ok within [start_ns, end_ns)."""
        return sum(1 for op in self.operations if op.outcome == "ok" and op.end_ns is not None
                   and start_ns <= op.end_ns < end_ns)


def summarize_history(lines: Iterable[str]) -> HistorySummary:
    """Pair invokes with completions, per process, from history JSON lines (a torn or
    blank line is skipped: the checker reports those itself)."""
    summary = HistorySummary()
    pending: dict[int, dict[str, Any]] = {}
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(event, dict):
            continue
        process = event.get("process")
        kind = event.get("type")
        if not isinstance(process, int):
            continue
        if kind == "invoke":
            pending[process] = event
        elif kind in OUTCOMES and process in pending:
            invoke = pending.pop(process)
            summary.operations.append(Completed(process, str(invoke["f"]), invoke.get("key"),
                                                str(kind), int(invoke["time"]),
                                                int(event["time"])))
    for process, invoke in pending.items():
        summary.operations.append(Completed(process, str(invoke["f"]), invoke.get("key"),
                                            "info", int(invoke["time"]), None))
    summary.operations.sort(key=lambda op: op.start_ns)
    return summary


def fault_family(fault: str) -> str:
    return fault.split("-", 1)[0]


def latency_plot(summary: HistorySummary, faults: Sequence[FaultRecord], origin_ns: int,
                 finish_ns: int, title: str) -> str:
    """The latency SVG; an operation still open at the end is drawn at the end of the run."""
    points = [
        LatencyPoint(start=(op.start_ns - origin_ns) / NANOS,
                     latency=((op.end_ns if op.end_ns is not None else finish_ns)
                              - op.start_ns) / NANOS,
                     outcome=op.outcome, f=op.f)
        for op in summary.operations]
    windows = [ShadedWindow((fault.start_ns - origin_ns) / NANOS,
                            (fault.end_ns - origin_ns) / NANOS,
                            fault_family(fault.fault), fault.description)
               for fault in faults]
    return render_latency_svg(points, windows, duration=(finish_ns - origin_ns) / NANOS,
                              title=title)


def fault_document(fault: FaultRecord, origin_ns: int, summary: HistorySummary,
                   before_ns: int, after_ns: int) -> dict[str, Any]:
    """One fault for result.json, with the ok operations in the healthy stretch before it
    (from `before_ns`), during it, and in the stretch after it (up to `after_ns`)."""
    return {
        "fault": fault.fault,
        "kind": fault.kind,
        "description": fault.description,
        "targets": list(fault.targets),
        "start_ns": fault.start_ns,
        "end_ns": fault.end_ns,
        "start_seconds": round((fault.start_ns - origin_ns) / NANOS, 3),
        "end_seconds": round((fault.end_ns - origin_ns) / NANOS, 3),
        "ok_before": summary.ok_between(before_ns, fault.start_ns),
        "ok_during": summary.ok_between(fault.start_ns, fault.end_ns),
        "ok_after": summary.ok_between(fault.end_ns, after_ns),
        "errors": list(fault.errors),
    }


def result_document(*, result: CheckResult, summary: HistorySummary,
                    faults: Sequence[FaultRecord], origin_ns: int, finish_ns: int,
                    settings: Mapping[str, Any], exit_status: int,
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    fault_documents = []
    for index, fault in enumerate(faults):
        before = faults[index - 1].end_ns if index > 0 else origin_ns
        after = faults[index + 1].start_ns if index + 1 < len(faults) else finish_ns
        fault_documents.append(fault_document(fault, origin_ns, summary, before, after))
    violation = result.violation
    return {
        "verdict": result.verdict.value,
        "exit_status": exit_status,
        "operations": len(summary.operations),
        "totals": summary.totals(),
        "counts": summary.counts(),
        "faults": fault_documents,
        "checker": {
            "model": result.model,
            "elapsed_seconds": round(result.elapsed, 3),
            "reason": result.reason or None,
            "violation_key": None if violation is None else violation.key,
            "partitions": len(result.partitions),
        },
        "start_ns": origin_ns,
        "end_ns": finish_ns,
        "duration_seconds": round((finish_ns - origin_ns) / NANOS, 3),
        "settings": dict(settings),
        "files": {"history": HISTORY_FILE, "timeline": TIMELINE_FILE,
                  "latency": LATENCY_FILE, "index": INDEX_FILE},
        **(extra or {}),
    }


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em 2em; color: #1d1d1f; }
h1 { font-size: 1.5em; margin: 0 0 .4em; } h2 { font-size: 1.15em; margin: 1.3em 0 .4em; }
.verdict { font-weight: 600; padding: .15em .6em; border-radius: 4px; }
.verdict.ok { background: #d5f5dc; } .verdict.bad { background: #fddcdc; }
.verdict.unknown { background: #fff1c2; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: .2em .6em;
text-align: left; } th { background: #f4f4f4; } td.n { text-align: right; }
nav a { margin-right: 1.2em; } img { max-width: 100%; border: 1px solid #eee; }
"""


def operation_count(document: Mapping[str, Any]) -> str:
    """The run's operation count, said as the checker's timeline says it."""
    totals = document["totals"]
    return describe_operation_count(document["operations"], totals["fail"], totals["info"])


def render_index(document: Mapping[str, Any], section: str = "") -> str:
    """index.html: the verdict, the settings, counts, faults, and links to the rest;
    `section` is a workload's own part (HTML), after the links."""
    verdict = str(document["verdict"])
    css = {Verdict.LINEARIZABLE.value: "ok", Verdict.NOT_LINEARIZABLE.value: "bad",
           "valid": "ok", "invalid": "bad"}.get(verdict, "unknown")
    checker = document["checker"]
    reason = f" ({escape(checker['reason'])})" if checker.get("reason") else ""
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>distlab test: {escape(verdict)}</title>", f"<style>{_STYLE}</style>",
        "</head><body>",
        "<h1>distlab test</h1>",
        f"<p>Verdict: <span class='verdict {css}'>{escape(verdict)}</span>{reason}; "
        f"{escape(operation_count(document))}; the run took "
        f"{document['duration_seconds']:g} s, the check {checker['elapsed_seconds']:g} s.</p>",
        f"<nav><a href='{TIMELINE_FILE}'>checker timeline</a>"
        f"<a href='{LATENCY_FILE}'>latency plot</a>"
        f"<a href='{HISTORY_FILE}'>history (JSON lines)</a>"
        f"<a href='{RESULT_FILE}'>result.json</a></nav>",
        section,
        "<h2>Latency</h2>",
        f"<a href='{LATENCY_FILE}'><img src='{LATENCY_FILE}' alt='latency over time'></a>",
        "<h2>Operations</h2>",
        "<table><tr><th>function</th>" + "".join(f"<th>{o}</th>" for o in OUTCOMES) + "</tr>",
    ]
    counts: Mapping[str, Mapping[str, int]] = document["counts"]
    for f, row in counts.items():
        parts.append(f"<tr><td>{escape(f)}</td>"
                     + "".join(f"<td class='n'>{row[o]}</td>" for o in OUTCOMES) + "</tr>")
    totals = document["totals"]
    parts.append("<tr><th>all</th>" + "".join(f"<th class='n'>{totals[o]}</th>"
                                              for o in OUTCOMES) + "</tr></table>")
    parts += ["<h2>Faults</h2>"]
    faults = document["faults"]
    if faults:
        parts.append("<table><tr><th>fault</th><th>what</th><th>from (s)</th><th>to (s)</th>"
                     "<th>ok before</th><th>ok during</th><th>ok after</th>"
                     "<th>errors</th></tr>")
        for fault in faults:
            parts.append(
                f"<tr><td>{escape(fault['fault'])}</td><td>{escape(fault['description'])}</td>"
                f"<td class='n'>{fault['start_seconds']:.2f}</td>"
                f"<td class='n'>{fault['end_seconds']:.2f}</td>"
                f"<td class='n'>{fault['ok_before']}</td><td class='n'>{fault['ok_during']}"
                f"</td><td class='n'>{fault['ok_after']}</td>"
                f"<td>{escape('; '.join(fault['errors']))}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No faults were injected.</p>")
    not_run = document.get("faults_not_run") or []
    if not_run:
        parts.append(f"<p>Named but never run (no time was left for their window): "
                     f"{escape(', '.join(not_run))}.</p>")
    parts.append("<h2>Settings</h2><table>")
    for name, value in document["settings"].items():
        parts.append(f"<tr><th>{escape(str(name))}</th><td>{escape(str(value))}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


def write_report(directory: Path, *, result: CheckResult, summary: HistorySummary,
                 faults: Sequence[FaultRecord], origin_ns: int, finish_ns: int,
                 settings: Mapping[str, Any], exit_status: int,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write result.json, timeline.html, latency.svg and index.html next to the history;
    returns the result document."""
    document = result_document(result=result, summary=summary, faults=faults,
                               origin_ns=origin_ns, finish_ns=finish_ns, settings=settings,
                               exit_status=exit_status, extra=extra)
    title = f"distlab test: {result.verdict.value}, {len(summary.operations)} operations"
    (directory / TIMELINE_FILE).write_text(render_html(result), encoding="utf-8")
    (directory / LATENCY_FILE).write_text(
        latency_plot(summary, faults, origin_ns, finish_ns, title), encoding="utf-8")
    (directory / RESULT_FILE).write_text(json.dumps(document, indent=2) + "\n",
                                         encoding="utf-8")
    (directory / INDEX_FILE).write_text(render_index(document), encoding="utf-8")
    return document
