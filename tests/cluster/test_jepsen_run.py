"""`distlab test` against a three-node cluster it starts: kills, pauses and partitions,
a linearizable verdict, operations completing around every fault, and a report that
renders in a real browser."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import run_distlab

RUN_TIMEOUT_SECONDS = 300


def run_test_command(report: Path, *args: str, env: dict[str, str] | None = None,
                     ) -> subprocess.CompletedProcess[str]:
    return run_distlab("test", "--report", str(report), *args, env=env,
                       timeout=RUN_TIMEOUT_SECONDS)


def read_events(report: Path) -> list[dict[str, Any]]:
    lines = (report / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def operations(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(invoke, completion) pairs; every invoke of a finished run has its completion."""
    pending: dict[int, dict[str, Any]] = {}
    pairs = []
    for event in events:
        if event["type"] == "invoke":
            assert event["process"] not in pending, f"two invokes outstanding: {event}"
            pending[event["process"]] = event
        else:
            invoke = pending.pop(event["process"])
            assert (invoke["f"], invoke["key"]) == (event["f"], event["key"])
            pairs.append((invoke, event))
    assert not pending, f"operations never completed: {pending}"
    return pairs


def check_history_rules(events: list[dict[str, Any]]) -> None:
    """DESIGN §9 as the tester must write it: monotonic times, no invoke after info,
    unique written values, cas as [expected, new]."""
    times = [event["time"] for event in events]
    assert times == sorted(times)
    retired: set[int] = set()
    written: list[str] = []
    for event in events:
        assert event["f"] in ("get", "put", "append", "cas", "delete")
        if event["type"] == "invoke":
            assert event["process"] not in retired, f"invoke after info: {event}"
            if event["f"] in ("put", "append"):
                written.append(event["value"])
            elif event["f"] == "cas":
                assert isinstance(event["value"], list) and len(event["value"]) == 2
                written.append(event["value"][1])
            else:
                assert event["value"] is None
        elif event["type"] == "info":
            retired.add(event["process"])
    assert len(written) == len(set(written)), "a written value repeats"


def ok_completions_between(pairs: list[tuple[dict[str, Any], dict[str, Any]]],
                           start_ns: int, end_ns: int) -> int:
    return sum(1 for _, done in pairs
               if done["type"] == "ok" and start_ns <= done["time"] < end_ns)


def assert_ok_around_every_fault(report: Path, result: dict[str, Any]) -> None:
    """Counted from the history itself: operations complete ok in the healthy stretch
    before each fault window and in the one after it."""
    pairs = operations(read_events(report))
    faults = result["faults"]
    assert faults
    for index, fault in enumerate(faults):
        before = faults[index - 1]["end_ns"] if index else result["start_ns"]
        after = faults[index + 1]["start_ns"] if index + 1 < len(faults) else result["end_ns"]
        assert fault["start_ns"] < fault["end_ns"]
        context = json.dumps(faults, indent=1)
        assert ok_completions_between(pairs, before, fault["start_ns"]) > 0, context
        assert ok_completions_between(pairs, fault["end_ns"], after) > 0, context


def linearizable_result_with_faults(report: Path, kinds: list[str]) -> dict[str, Any]:
    """The run's result.json, once it says linearizable and that the faults of `kinds`, in
    that order, were each injected and healed without an error."""
    result: dict[str, Any] = json.loads((report / "result.json").read_text())
    assert result["verdict"] == "linearizable" and result["exit_status"] == 0
    context = json.dumps(result["faults"], indent=1)
    assert [fault["kind"] for fault in result["faults"]] == kinds, context
    assert all(not fault["errors"] for fault in result["faults"]), context
    return result


# ---- PNG reading, for screenshots (no imaging library needed) ----

def png_pixels(path: Path) -> tuple[int, int, set[bytes]]:
    """Width, height and the set of distinct RGB colours of an 8-bit RGB/RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, compressed, header = 8, bytearray(), None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
        position += 12 + length
    assert header is not None
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) \
                    & 255
        colours.update(bytes(line[i:i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, colours


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(page: Path, out: Path) -> tuple[int, int, set[bytes]]:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary found (install Debian's `chromium` package)")
    completed = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={out}",
         "--window-size=1280,900", "--hide-scrollbars", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert out.exists() and out.stat().st_size > 0, completed.stderr[-2000:]
    return png_pixels(out)


def rgb(hex_colour: str) -> bytes:
    return bytes.fromhex(hex_colour.lstrip("#"))


# ---- the run ----

@pytest.fixture(scope="module")
def three_node_run(tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[Path, subprocess.CompletedProcess[str]]]:
    report = tmp_path_factory.mktemp("jepsen") / "report"
    completed = run_test_command(
        report, "--nodes", "3", "--nemesis", "kill,pause,partition", "--time-limit", "30",
        "--nemesis-interval", "4", "--rate", "20", "--keys", "5", "--seed", "7")
    yield report, completed


def test_three_nodes_with_kills_pauses_and_partitions_are_linearizable(
        three_node_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    report, completed = three_node_run
    assert completed.returncode == 0, completed.stdout + completed.stderr[-6000:]
    summary = completed.stdout.strip().splitlines()[-1]
    assert summary.startswith("distlab test: linearizable: ")
    assert str(report / "index.html") in summary
    # Progress on stderr: counts as it goes, and each fault as it starts.
    assert "operations (ok " in completed.stderr
    for kind in ("kill", "pause", "partition"):
        assert f"fault: {kind}" in completed.stderr

    result = linearizable_result_with_faults(report, ["kill", "pause", "partition"])
    counts = result["counts"]
    assert set(counts) == {"get", "put", "append", "cas"}
    for f in ("get", "put", "append"):
        assert counts[f]["ok"] > 0, counts
    assert sum(row["ok"] for row in counts.values()) == result["totals"]["ok"]
    assert result["checker"]["model"] == "kv" and result["checker"]["elapsed_seconds"] >= 0
    assert_ok_around_every_fault(report, result)


def test_the_history_follows_the_format_and_ends_with_one_read_per_key(
        three_node_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    report, _ = three_node_run
    events = read_events(report)
    check_history_rules(events)
    pairs = operations(events)
    result = json.loads((report / "result.json").read_text())
    last_fault_end = result["faults"][-1]["end_ns"]
    final = [(invoke, done) for invoke, done in pairs[-5:]]
    assert sorted(invoke["key"] for invoke, _ in final) == ["k0", "k1", "k2", "k3", "k4"]
    assert all(invoke["f"] == "get" and done["type"] == "ok" for invoke, done in final)
    assert all(invoke["time"] > last_fault_end for invoke, _ in final)
    assert {invoke["key"]: done["value"] for invoke, done in final} == result["final_reads"]
    # The checker agrees when asked on its own.
    lincheck = run_distlab("lincheck", str(report / "history.jsonl"), timeout=120)
    assert lincheck.returncode == 0, lincheck.stdout + lincheck.stderr


@pytest.mark.parametrize(("page", "expected_colour"), [
    ("index.html", "#d5f5dc"),      # the verdict badge
    ("latency.svg", "#ffffff"),
    ("timeline.html", "#b7e4c0"),   # linearized operations
])
def test_the_report_renders_in_a_real_browser(
        three_node_run: tuple[Path, subprocess.CompletedProcess[str]], page: str,
        expected_colour: str, tmp_path: Path) -> None:
    report, _ = three_node_run
    width, height, colours = screenshot(report / page, tmp_path / f"{page}.png")
    assert (width, height) == (1280, 900)
    assert len(colours) > 20, f"{page} rendered almost blank ({len(colours)} colours)"
    assert rgb(expected_colour) in colours
    if page == "latency.svg":
        # Fault bands and marks show up as their own colours.
        bluish = [c for c in colours if c[2] > c[0] + 60]
        assert bluish, "no operation marks drawn"
        assert any(c[0] > c[2] + 15 and c[0] > 200 for c in colours), "no fault band drawn"
