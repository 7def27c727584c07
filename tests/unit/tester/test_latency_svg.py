"""The latency-over-time SVG of `distlab test`: valid, self-contained, and drawing what it
is given where it belongs."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from distlab.check.tester.latency import (
    OUTCOME_COLOURS,
    LatencyPoint,
    ShadedWindow,
    fit_label,
    nice_step,
    render_latency_svg,
)

SVG = "{http://www.w3.org/2000/svg}"
MARK_TAGS = {f"{SVG}circle", f"{SVG}rect", f"{SVG}polygon", f"{SVG}path"}

POINTS = [
    LatencyPoint(start=1.0, latency=0.002, outcome="ok", f="get"),
    LatencyPoint(start=2.0, latency=0.020, outcome="ok", f="put"),
    LatencyPoint(start=3.0, latency=0.200, outcome="fail", f="cas"),
    LatencyPoint(start=4.0, latency=2.0, outcome="info", f="append"),
    LatencyPoint(start=5.0, latency=0.010, outcome="ok", f="delete"),
]
WINDOWS = [ShadedWindow(2.5, 4.5, "kill", "kill leader node 2"),
           ShadedWindow(6.0, 8.0, "partition", "partition halves: 1 | 2 3")]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def marks(root: ET.Element) -> list[ET.Element]:
    group = next(g for g in root.iter(f"{SVG}g") if g.get("fill-opacity") == "0.7")
    return [element for element in group if element.tag in MARK_TAGS]


def centre(element: ET.Element) -> tuple[float, float]:
    if element.tag == f"{SVG}circle":
        return float(element.get("cx", "nan")), float(element.get("cy", "nan"))
    if element.tag == f"{SVG}rect":
        return (float(element.get("x", "nan")) + float(element.get("width", "nan")) / 2,
                float(element.get("y", "nan")) + float(element.get("height", "nan")) / 2)
    if element.tag == f"{SVG}polygon":
        pairs = [tuple(map(float, p.split(","))) for p in element.get("points", "").split()]
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    d = element.get("d", "").replace("M", " ").replace("L", " ").split()
    coords = [tuple(map(float, p.split(","))) for p in d]
    return sum(c[0] for c in coords) / len(coords), sum(c[1] for c in coords) / len(coords)


def test_one_mark_per_operation_coloured_by_outcome() -> None:
    root = parse(render_latency_svg(POINTS, WINDOWS, duration=10))
    drawn = marks(root)
    assert len(drawn) == len(POINTS)
    colours = [element.get("fill") or element.get("stroke") for element in drawn]
    # ok marks are drawn first, fail and info on top of them.
    assert colours == [OUTCOME_COLOURS["ok"]] * 3 + [OUTCOME_COLOURS["fail"],
                                                     OUTCOME_COLOURS["info"]]
    shapes = [element.tag.removeprefix(SVG) for element in drawn]
    assert shapes == ["circle", "rect", "path", "polygon", "polygon"]


def test_marks_sit_at_their_time_and_on_a_log_latency_scale() -> None:
    root = parse(render_latency_svg(POINTS, [], duration=10))
    by_start = sorted((centre(element) for element in marks(root)), key=lambda c: c[0])
    xs = [x for x, _ in by_start]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    # Evenly spaced starts (1..5 s) are evenly spaced across.
    gaps = [b - a for a, b in itertools.pairwise(xs)]
    assert max(gaps) - min(gaps) < 0.5
    y_2ms, y_20ms, y_200ms, y_2s = (by_start[i][1] for i in range(4))
    # Higher latency is higher up (smaller y); each factor of ten is the same distance.
    assert y_2s < y_200ms < y_20ms < y_2ms
    assert (y_2ms - y_20ms) == pytest.approx(y_20ms - y_200ms, abs=0.5)
    assert (y_20ms - y_200ms) == pytest.approx(y_200ms - y_2s, abs=0.5)


def test_fault_windows_are_shaded_bands_in_the_right_place_and_labelled() -> None:
    svg = render_latency_svg(POINTS, WINDOWS, duration=10)
    root = parse(svg)
    bands = [rect for rect in root.iter(f"{SVG}rect")
             if rect.find(f"{SVG}title") is not None]
    assert [band.findtext(f"{SVG}title") for band in bands] == [w.label for w in WINDOWS]
    kill, partition = bands
    assert kill.get("fill") != partition.get("fill")
    kill_x, kill_width = float(kill.get("x", "0")), float(kill.get("width", "0"))
    part_x = float(partition.get("x", "0"))
    # 2.5-4.5 s and 6-8 s of 10 s: the second band starts to the right of the first's end,
    # and both bands are as wide as their two seconds.
    assert kill_x + kill_width < part_x
    assert kill_width == pytest.approx(float(partition.get("width", "0")))
    # The mark invoked at 3 s falls inside the kill band.
    inside = [centre(e) for e in marks(root) if kill_x <= centre(e)[0] <= kill_x + kill_width]
    assert len(inside) == 2  # invoked at 3 s and 4 s
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "kill leader node 2" in texts


def test_axes_ticks_and_legend_are_there() -> None:
    root = parse(render_latency_svg(POINTS, WINDOWS, duration=10, title="run 7"))
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    for label in ("1 ms", "10 ms", "100 ms", "1 s", "10 s"):
        assert label in texts
    for tick in ("0", "2", "4", "6", "8", "10"):
        assert tick in texts
    assert "ok (3)" in texts and "fail (1)" in texts and "info (1)" in texts
    assert "kill window" in texts and "partition window" in texts
    assert "run 7" in texts
    assert root.findtext(f"{SVG}title") == "run 7"
    assert "time since the start of the run (s)" in texts


def test_the_legend_lists_only_the_faults_that_ran() -> None:
    kill_only = [window for window in WINDOWS if window.kind == "kill"]
    texts = [t.text or "" for t in
             parse(render_latency_svg(POINTS, kill_only, duration=10)).iter(f"{SVG}text")]
    assert "kill window" in texts
    assert "partition window" not in texts and "pause window" not in texts
    texts = [t.text or "" for t in
             parse(render_latency_svg(POINTS, [], duration=10)).iter(f"{SVG}text")]
    assert not any(text.endswith(" window") for text in texts)
    assert "none injected" in texts


def test_an_empty_run_still_draws_valid_axes() -> None:
    root = parse(render_latency_svg([], [], duration=0))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "no operations" in texts
    assert marks(root) == []


def test_text_is_escaped() -> None:
    window = ShadedWindow(1, 2, "partition", "a <b> & \"c\"")
    root = parse(render_latency_svg(POINTS, [window], title="x < y"))
    assert root.findtext(f"{SVG}title") == "x < y"


@pytest.mark.parametrize(("span", "step"), [(10, 1), (40, 5), (120, 20), (0.5, 0.05),
                                            (7, 1), (250, 50)])
def test_nice_step(span: float, step: float) -> None:
    assert nice_step(span) == pytest.approx(step)


def test_long_labels_are_shortened_to_stop_before_the_next_band() -> None:
    assert fit_label("kill node 1", 200) == "kill node 1"
    assert fit_label("partition majorities-ring: bridge", 62) == "partition\u2026"
    assert fit_label("partition", 10) == ""
    first = ShadedWindow(10.0, 25.0, "partition", "partition majorities-ring: ring 1-2-3-4-5")
    second = ShadedWindow(30.0, 45.0, "kill", "kill leader node 2")
    root = parse(render_latency_svg(POINTS, [first, second], duration=100))
    bands = {rect.findtext(f"{SVG}title"): rect for rect in root.iter(f"{SVG}rect")
             if rect.find(f"{SVG}title") is not None}
    texts = {t.text or "": t for t in root.iter(f"{SVG}text")}
    assert first.label not in texts
    (shortened,) = [t for t in texts if t.endswith("\u2026")]
    assert first.label.startswith(shortened[:-1])
    label_end = float(texts[shortened].get("x", "0")) + len(shortened) * 6.2
    assert label_end <= float(bands[second.label].get("x", "0"))
    # A short label is shown whole, even where it runs on past its narrow band.
    assert second.label in texts
