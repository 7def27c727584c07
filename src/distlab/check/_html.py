"""A self-contained HTML page showing a check: one file, inline CSS and SVG, no scripts.

For each partition a timeline puts operations on one lane per process, from invoke to
completion (indeterminate ones run to the right edge). Operations in the linearization
found are green and numbered in order, with a blue line through their linearization
points; for a violation the operation that could not be linearized is red, the others
that could not come next are orange, and a red rule marks where the prefix breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from distlab.check._checker import CheckResult, PartitionReport, Verdict
from distlab.check._history import Operation, Value

_LANE_HEIGHT = 26
_BAR_HEIGHT = 18
_STEP_WIDTH = 18
_LEFT_MARGIN = 90
_TOP_MARGIN = 24
# Linearized operations shown before the break in the close-up timeline.
_FOCUS_CONTEXT = 6

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
h2 { font-size: 1.15em; margin: 1.2em 0 .4em; }
h3 { font-size: 1em; margin: .8em 0 .3em; }
.verdict { font-weight: 600; padding: .1em .5em; border-radius: 4px; }
.verdict.ok { background: #d5f5dc; } .verdict.bad { background: #fddcdc; }
.verdict.unknown { background: #fff1c2; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ddd; padding: .15em .5em; text-align: left; vertical-align: top;
         font-family: ui-monospace, monospace; font-size: 12px; }
th { background: #f4f4f4; font-family: system-ui, sans-serif; }
tr.break td { background: #fddcdc; }
.scroll { overflow-x: auto; border: 1px solid #eee; padding: 4px; }
svg text { font: 11px ui-monospace, monospace; }
.op rect { stroke: #555; stroke-width: .6; }
.op:hover rect { stroke: #000; stroke-width: 2; }
.linearized rect { fill: #b7e4c0; } .breaking rect { fill: #f28b82; }
.involved rect { fill: #fbc67b; } .other rect { fill: #e3e3e3; }
.info rect { stroke-dasharray: 4 2; fill-opacity: .55; }
.lane-label { fill: #666; }
.path { fill: none; stroke: #1a5fd0; stroke-width: 1.5; }
.point { fill: #1a5fd0; }
.break-rule { stroke: #d00; stroke-width: 2; stroke-dasharray: 5 3; }
details { margin: .6em 0; } summary { cursor: pointer; }
.legend span { display: inline-block; padding: 0 .5em; margin-right: .4em;
               border: 1px solid #999; font-size: 12px; }
"""


def render_html(result: CheckResult) -> str:
    """The whole page for `result` as a string."""
    history = result.history
    verdict_class = {Verdict.LINEARIZABLE: "ok", Verdict.NOT_LINEARIZABLE: "bad",
                     Verdict.UNKNOWN: "unknown"}[result.verdict]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>lincheck: {escape(history.source)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Linearizability check of {escape(history.source)}</h1>",
        "<p>Verdict: <span class='verdict " + verdict_class + "'>"
        + escape(result.verdict.value) + "</span>"
        + (f" ({escape(result.reason)})" if result.reason else "") + "</p>",
        "<table>",
        _row("model", result.model),
        _row("format", history.format),
        _row("operations", history.describe_count()),
        _row("partitions", str(len(result.partitions))),
        _row("check time", f"{result.elapsed:.3f} s"),
        "</table>",
        "<p class='legend'><span style='background:#b7e4c0'>linearized</span>"
        "<span style='background:#f28b82'>could not be linearized</span>"
        "<span style='background:#fbc67b'>could not come next either</span>"
        "<span style='background:#e3e3e3'>not reached</span>"
        "<span style='border-style:dashed'>indeterminate (info)</span></p>",
    ]
    violation = result.violation
    if violation is not None:
        parts.append(_violation_summary(violation, history.absent))
    ordered = sorted(result.partitions, key=lambda p: p is not violation)
    for partition in ordered:
        body = _partition_section(partition)
        title = (f"key {escape(partition.label)}: {escape(partition.verdict.value)}, "
                 f"{len(partition.operations)} operations")
        opened = " open" if partition is violation or len(ordered) == 1 else ""
        parts.append(f"<details{opened}><summary><b>{title}</b></summary>{body}</details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _row(name: str, value: str) -> str:
    return f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>"


def _short(value: Value, limit: int = 80) -> str:
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 1]}\u2026 ({len(text)} chars)"


def _describe(operation: Operation, limit: int = 80) -> str:
    text = operation.describe()
    if len(text) <= limit:
        return text
    return f"{text[:limit - 1]}\u2026"


def _lines(operation: Operation) -> str:
    end = "open" if operation.ret_line is None else str(operation.ret_line)
    return f"lines {operation.call_line}-{end}"


def _violation_summary(partition: PartitionReport, absent: Value) -> str:
    outcome = partition.outcome
    assert outcome is not None and outcome.stuck
    breaking = outcome.stuck[0]
    state = outcome.states[-1] if outcome.states else absent
    rows = [
        "<h2>Where it breaks</h2><table>",
        _row("key", partition.label),
        _row("longest linearizable prefix",
             f"{len(outcome.linearization)} of {len(partition.operations)} operations"),
        _row("state after the prefix", _short(state)),
        _row("operation that cannot be linearized",
             f"process {breaking.process}: {_describe(breaking, 200)} ({_lines(breaking)})"),
    ]
    for other in outcome.stuck[1:]:
        rows.append(_row("could not come next either",
                         f"process {other.process}: {_describe(other, 200)} "
                         f"({_lines(other)})"))
    rows.append("</table>")
    return "\n".join(rows)


def _partition_section(partition: PartitionReport) -> str:
    outcome = partition.outcome
    if outcome is None:
        note = "<p>The search did not finish for this key.</p>"
        return note + _timeline(partition.operations, (), (), None)
    stuck = outcome.stuck if not outcome.linearizable else ()
    focus = ""
    if stuck:
        nearby = _around_the_break(partition.operations, outcome.linearization, stuck)
        focus = ("<h3>Around the break</h3>"
                 + _timeline(nearby, outcome.linearization, stuck, stuck[0])
                 + "<h3>Whole history of this key</h3>")
    return (focus + _timeline(partition.operations, outcome.linearization, stuck,
                              stuck[0] if stuck else None)
            + _linearization_table(outcome.linearization, outcome.states, stuck))


def _around_the_break(operations: tuple[Operation, ...], order: tuple[Operation, ...],
                      stuck: tuple[Operation, ...]) -> tuple[Operation, ...]:
    """The operations overlapping the stretch from the last few linearized operations
    to the return of the one that could not be linearized."""
    breaking = stuck[0]
    assert breaking.ret is not None
    starts = [op.call for op in stuck] + [op.call for op in order[-_FOCUS_CONTEXT:]]
    start, end = min(starts), breaking.ret
    return tuple(op for op in operations
                 if op.call <= end and (op.ret is None or op.ret >= start))


def _linearization_table(order: tuple[Operation, ...], states: tuple[Value, ...],
                         stuck: tuple[Operation, ...]) -> str:
    rows = ["<details><summary>linearization, step by step</summary><table>",
            "<tr><th>#</th><th>process</th><th>operation</th><th>state after</th>"
            "<th>lines</th></tr>"]
    for number, (operation, state) in enumerate(zip(order, states, strict=True), start=1):
        rows.append(f"<tr><td>{number}</td><td>{operation.process}</td>"
                    f"<td>{escape(_describe(operation))}</td><td>{escape(_short(state))}</td>"
                    f"<td>{escape(_lines(operation))}</td></tr>")
    if stuck:
        breaking = stuck[0]
        rows.append(f"<tr class='break'><td>{len(order) + 1}</td><td>{breaking.process}</td>"
                    f"<td>{escape(_describe(breaking))}</td><td>cannot be linearized</td>"
                    f"<td>{escape(_lines(breaking))}</td></tr>")
    rows.append("</table></details>")
    # A violation's table is the point of the page: show it open.
    if stuck:
        rows[0] = rows[0].replace("<details>", "<details open>", 1)
    return "\n".join(rows)


def _timeline(operations: tuple[Operation, ...], order: tuple[Operation, ...],
              stuck: tuple[Operation, ...], breaking: Operation | None) -> str:
    times = sorted({op.call for op in operations}
                   | {op.ret for op in operations if op.ret is not None})
    rank = {time: index for index, time in enumerate(times)}
    processes = sorted({op.process for op in operations})
    lane = {process: index for index, process in enumerate(processes)}
    width = _LEFT_MARGIN + (len(times) + 2) * _STEP_WIDTH
    height = _TOP_MARGIN + len(processes) * _LANE_HEIGHT + 10
    right_edge = width - _STEP_WIDTH / 2

    def x_of(time: int) -> float:
        return _LEFT_MARGIN + (rank[time] + 0.5) * _STEP_WIDTH

    def y_of(operation: Operation) -> float:
        return _TOP_MARGIN + lane[operation.process] * _LANE_HEIGHT

    position = {op.index: number for number, op in enumerate(order, start=1)}
    stuck_ids = {op.index for op in stuck}
    svg = [f'<svg width="{width:.0f}" height="{height}" role="img">']
    for process, index in lane.items():
        y = _TOP_MARGIN + index * _LANE_HEIGHT + _BAR_HEIGHT * 0.75
        svg.append(f'<text class="lane-label" x="4" y="{y:.1f}">process {process}</text>')
    for operation in operations:
        start = x_of(operation.call)
        end = right_edge if operation.ret is None else x_of(operation.ret)
        end = max(end, start + 4)
        if breaking is not None and operation.index == breaking.index:
            kind = "breaking"
        elif operation.index in stuck_ids:
            kind = "involved"
        elif operation.index in position:
            kind = "linearized"
        else:
            kind = "other"
        classes = f"op {kind}" + (" info" if operation.status == "info" else "")
        label = _describe(operation)
        if operation.index in position:
            label = f"#{position[operation.index]} {label}"
        title = f"process {operation.process}: {_describe(operation, 400)}; {_lines(operation)}"
        if operation.index in position:
            title += f"; linearized as #{position[operation.index]}"
        if kind == "breaking":
            title += "; cannot be linearized after the prefix"
        y = y_of(operation)
        svg.append(f'<g class="{classes}"><title>{escape(title)}</title>'
                   f'<rect x="{start:.1f}" y="{y:.1f}" width="{end - start:.1f}" '
                   f'height="{_BAR_HEIGHT}" rx="3"/>')
        characters = int((end - start - 6) / 6.7)
        if characters >= 3:
            shown = label if len(label) <= characters else label[:characters - 1] + "\u2026"
            svg.append(f'<text x="{start + 3:.1f}" y="{y + _BAR_HEIGHT * 0.72:.1f}">'
                       f"{escape(shown)}</text>")
        svg.append("</g>")
    present = {op.index for op in operations}
    svg.extend(_linearization_path(tuple(op for op in order if op.index in present), x_of,
                                   y_of, right_edge))
    if breaking is not None and breaking.ret is not None:
        x = x_of(breaking.ret)
        svg.append(f'<line class="break-rule" x1="{x:.1f}" y1="4" x2="{x:.1f}" '
                   f'y2="{height - 4}"><title>the prefix breaks here: '
                   f"{escape(_describe(breaking))} returned</title></line>")
    svg.append("</svg>")
    return '<div class="scroll">' + "".join(svg) + "</div>"


def _linearization_path(order: tuple[Operation, ...], x_of: Callable[[int], float],
                        y_of: Callable[[Operation], float], right_edge: float) -> list[str]:
    """Linearization points: each as early as its invoke allows, never before the one
    before it, so the blue line reads left to right in linearization order."""
    points: list[tuple[float, float]] = []
    previous = 0.0
    for operation in order:
        start = x_of(operation.call)
        end = right_edge if operation.ret is None else x_of(operation.ret)
        x = min(max(start + 3, previous + 2), end)
        previous = x
        points.append((x, y_of(operation) + _BAR_HEIGHT / 2))
    if not points:
        return []
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    elements = [f'<polyline class="path" points="{path}"/>']
    elements.extend(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>'
                    for x, y in points)
    return elements
