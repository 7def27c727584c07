"""A latency-over-time plot as one self-contained SVG, in the manner of Jepsen's.

One mark per operation: across, when it was invoked; up, how long it took (log scale),
so a fault shows as a column of slow or failed operations. Colour says the outcome (ok,
fail, info), shape says the function; fault windows are shaded bands, labelled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 1100
HEIGHT = 560
LEFT = 78
RIGHT = 24
TOP = 46
BOTTOM = 118

OUTCOME_COLOURS = {"ok": "#1f77b4", "fail": "#d62728", "info": "#ff9f1a"}
FAULT_COLOURS = {"kill": "#f4c7c3", "pause": "#fce8b2", "partition": "#d9d2f0",
                 "txn": "#c9e4de"}
DEFAULT_FAULT_COLOUR = "#dddddd"
SHAPES = ("get", "put", "append", "cas", "delete")
MARK_SIZE = 3.2
# Roughly the width of one character of an 11-pixel label, to keep labels inside bands.
LABEL_CHAR_WIDTH = 6.2
# Latencies are drawn from this floor up, so an instant answer still has a place.
MIN_LATENCY_SECONDS = 1e-4


@dataclass(frozen=True, slots=True)
class LatencyPoint:
    """One operation: invoked `start` seconds into the run, completed `latency` later."""

    start: float
    latency: float
    outcome: str
    f: str


@dataclass(frozen=True, slots=True)
class ShadedWindow:
    """A fault window, in seconds from the start of the run; `kind` picks the shade."""

    start: float
    end: float
    kind: str
    label: str


def nice_step(span: float, target_ticks: int = 10) -> float:
    """A round tick spacing (1, 2 or 5 times a power of ten) giving about `target_ticks`."""
    if span <= 0:
        return 1.0
    raw = span / target_ticks
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if raw <= multiple * power:
            return multiple * power
    return 10 * power


def fit_label(label: str, width: float, char_width: float | None = None) -> str:
    """`label`, shortened with an ellipsis to fit `width` pixels; empty when even a few
    characters would not fit."""
    room = int(width / (char_width or LABEL_CHAR_WIDTH))
    if len(label) <= room:
        return label
    if room < 4:
        return ""
    return label[:room - 1] + "\u2026"


def format_latency(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:g} ms"
    return f"{seconds * 1e6:g} \u00b5s"


def _mark(f: str, x: float, y: float, colour: str) -> str:
    size = MARK_SIZE
    fill = f'fill="{colour}"'
    if f == "put":
        return (f'<rect x="{x - size:.1f}" y="{y - size:.1f}" width="{2 * size:.1f}" '
                f'height="{2 * size:.1f}" {fill}/>')
    if f == "append":
        return (f'<polygon points="{x:.1f},{y - size * 1.2:.1f} {x - size * 1.1:.1f},'
                f'{y + size:.1f} {x + size * 1.1:.1f},{y + size:.1f}" {fill}/>')
    if f == "cas":
        return (f'<polygon points="{x:.1f},{y - size * 1.3:.1f} {x + size * 1.3:.1f},'
                f'{y:.1f} {x:.1f},{y + size * 1.3:.1f} {x - size * 1.3:.1f},{y:.1f}" {fill}/>')
    if f == "delete":
        return (f'<path d="M{x - size:.1f},{y - size:.1f}L{x + size:.1f},{y + size:.1f}'
                f'M{x - size:.1f},{y + size:.1f}L{x + size:.1f},{y - size:.1f}" '
                f'stroke="{colour}" stroke-width="1.6"/>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size:.1f}" {fill}/>'


def render_latency_svg(points: Sequence[LatencyPoint], windows: Sequence[ShadedWindow],
                       *, duration: float | None = None, title: str = "Latency") -> str:
    """The whole SVG document as a string."""
    end = max([duration or 0.0, *(p.start + p.latency for p in points),
               *(w.end for w in windows)])
    end = end if end > 0 else 1.0
    latencies = [max(p.latency, MIN_LATENCY_SECONDS) for p in points]
    low_exp = math.floor(math.log10(min(latencies))) if latencies else -3
    high_exp = math.ceil(math.log10(max(latencies))) if latencies else 1
    if high_exp <= low_exp:
        high_exp = low_exp + 1
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM

    def x_of(seconds: float) -> float:
        return LEFT + plot_width * min(max(seconds / end, 0.0), 1.0)

    def y_of(latency: float) -> float:
        exponent = math.log10(max(latency, MIN_LATENCY_SECONDS))
        fraction = (exponent - low_exp) / (high_exp - low_exp)
        return TOP + plot_height * (1 - min(max(fraction, 0.0), 1.0))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" '
        f'font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{WIDTH / 2:.0f}" y="24" text-anchor="middle" font-size="16" '
        f'font-weight="bold">{escape(title)}</text>',
    ]
    # Fault windows first, so marks are drawn over them.
    ordered = sorted(windows, key=lambda w: w.start)
    for index, window in enumerate(ordered):
        x1, x2 = x_of(window.start), x_of(window.end)
        colour = FAULT_COLOURS.get(window.kind, DEFAULT_FAULT_COLOUR)
        parts.append(f'<rect x="{x1:.1f}" y="{TOP}" width="{max(x2 - x1, 1):.1f}" '
                     f'height="{plot_height}" fill="{colour}" fill-opacity="0.75">'
                     f"<title>{escape(window.label)}</title></rect>")
        # The label may run on over the healthy stretch after its band, but stops short
        # of the next band (the whole of it is the band's tooltip).
        room_end = x_of(ordered[index + 1].start) if index + 1 < len(ordered) \
            else WIDTH - RIGHT
        label = fit_label(window.label, max(room_end, x2) - x1 - 6)
        if label:
            parts.append(f'<text x="{x1 + 3:.1f}" y="{TOP + 13}" font-size="11" '
                         f'fill="#444">{escape(label)}</text>')
    # Grid and axes.
    for exponent in range(low_exp, high_exp + 1):
        y = y_of(10.0 ** exponent)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                     'stroke="#cccccc" stroke-width="0.6"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{escape(format_latency(10.0 ** exponent))}</text>")
    step = nice_step(end)
    tick = 0.0
    while tick <= end + 1e-9:
        x = x_of(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP + plot_height}" x2="{x:.1f}" '
                     f'y2="{TOP + plot_height + 5}" stroke="#333"/>')
        parts.append(f'<text x="{x:.1f}" y="{TOP + plot_height + 18}" '
                     f'text-anchor="middle">{tick:g}</text>')
        tick += step
    parts += [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_height}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{TOP + plot_height}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_height}" stroke="#333"/>',
        f'<text x="{LEFT + plot_width / 2:.0f}" y="{TOP + plot_height + 36}" '
        'text-anchor="middle">time since the start of the run (s)</text>',
        f'<text transform="translate(18 {TOP + plot_height / 2:.0f}) rotate(-90)" '
        'text-anchor="middle">latency (log scale)</text>',
    ]
    if not points:
        parts.append(f'<text x="{LEFT + plot_width / 2:.0f}" y="{TOP + plot_height / 2:.0f}" '
                     'text-anchor="middle" fill="#888">no operations</text>')
    # ok first, then fail and info on top: the rare outcomes must stay visible.
    order = {"ok": 0, "fail": 1, "info": 2}
    parts.append('<g fill-opacity="0.7">')
    for point in sorted(points, key=lambda p: order.get(p.outcome, 3)):
        colour = OUTCOME_COLOURS.get(point.outcome, "#777777")
        parts.append(_mark(point.f, x_of(point.start), y_of(point.latency), colour))
    parts.append("</g>")
    parts.extend(_legend(points, windows))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _legend(points: Sequence[LatencyPoint], windows: Sequence[ShadedWindow]) -> list[str]:
    y = HEIGHT - BOTTOM + 62
    x = float(LEFT)
    parts = [f'<text x="{x:.0f}" y="{y + 4}" font-weight="bold">outcome</text>']
    x += 62
    counts = {outcome: sum(p.outcome == outcome for p in points) for outcome in OUTCOME_COLOURS}
    for outcome, colour in OUTCOME_COLOURS.items():
        parts.append(f'<circle cx="{x:.1f}" cy="{y}" r="5" fill="{colour}"/>')
        parts.append(f'<text x="{x + 9:.1f}" y="{y + 4}">{outcome} ({counts[outcome]})</text>')
        x += 92
    x += 20
    parts.append(f'<text x="{x:.0f}" y="{y + 4}" font-weight="bold">function</text>')
    x += 64
    for f in SHAPES:
        parts.append(_mark(f, x, y, "#555555"))
        parts.append(f'<text x="{x + 9:.1f}" y="{y + 4}">{f}</text>')
        x += 22 + 7 * len(f)
    y += 24
    x = float(LEFT)
    parts.append(f'<text x="{x:.0f}" y="{y + 4}" font-weight="bold">fault</text>')
    x += 62
    # Only the kinds that ran: a legend entry with no band to match would suggest a fault
    # that never happened.
    ran = {w.kind for w in windows}
    kinds = [kind for kind in FAULT_COLOURS if kind in ran]
    kinds += sorted(ran - set(kinds))
    if not kinds:
        parts.append(f'<text x="{x:.0f}" y="{y + 4}">none injected</text>')
    for kind in kinds:
        colour = FAULT_COLOURS.get(kind, DEFAULT_FAULT_COLOUR)
        parts.append(f'<rect x="{x - 5:.1f}" y="{y - 6}" width="14" height="12" '
                     f'fill="{colour}" stroke="#999" stroke-width="0.5"/>')
        parts.append(f'<text x="{x + 13:.1f}" y="{y + 4}">{escape(kind)} window</text>')
        x += 40 + 7 * (len(kind) + 7)
    return parts
