"""The report of `distlab test`, built from a saved history without a cluster."""

from __future__ import annotations

import json
from pathlib import Path

from distlab.check import check, parse_history
from distlab.check.tester.report import (
    INDEX_FILE,
    LATENCY_FILE,
    RESULT_FILE,
    TIMELINE_FILE,
    FaultRecord,
    summarize_history,
    write_report,
)

MS = 1_000_000


def event(process: int, kind: str, f: str, key: str, value: object, time_ms: int) -> str:
    return json.dumps({"process": process, "type": kind, "f": f, "key": key, "value": value,
                       "time": time_ms * MS})


# put and a read of it before the fault, a failed cas and an indeterminate append in it,
# a read after it that sees the append, and a get left open at the end.
LINES = [
    event(0, "invoke", "put", "k", "p0-1", 0),
    event(0, "ok", "put", "k", "p0-1", 10),
    event(1, "invoke", "get", "k", None, 20),
    event(1, "ok", "get", "k", "p0-1", 30),
    event(0, "invoke", "cas", "k", ["x", "p0-2"], 110),
    event(0, "fail", "cas", "k", ["x", "p0-2"], 120),
    event(1, "invoke", "append", "k", "p1-1", 130),
    event(1, "info", "append", "k", "p1-1", 180),
    event(2, "invoke", "get", "k", None, 250),
    event(2, "ok", "get", "k", "p0-1p1-1", 260),
    event(3, "invoke", "get", "k", None, 270),
    '{"process": 3, "type": "ok", "f": "g',  # a torn last line
]
FAULT = FaultRecord("kill", "kill", "kill node 2", (2,), 100 * MS, 200 * MS)


def test_summary_pairs_invokes_with_outcomes_and_counts_open_ones_as_info() -> None:
    summary = summarize_history(LINES)
    assert summary.counts() == {
        "append": {"ok": 0, "fail": 0, "info": 1},
        "cas": {"ok": 0, "fail": 1, "info": 0},
        "get": {"ok": 2, "fail": 0, "info": 1},
        "put": {"ok": 1, "fail": 0, "info": 0},
    }
    assert summary.totals() == {"ok": 3, "fail": 1, "info": 2}
    assert summary.ok_between(0, 100 * MS) == 2
    assert summary.ok_between(100 * MS, 200 * MS) == 0
    assert summary.ok_between(200 * MS, 300 * MS) == 1


def test_write_report_writes_every_file_with_the_verdict_and_fault_windows(
        tmp_path: Path) -> None:
    history_text = "\n".join(LINES)  # no newline after the torn line, as a crash leaves it
    (tmp_path / "history.jsonl").write_text(history_text)
    result = check(parse_history(history_text, "history.jsonl"), "kv")
    summary = summarize_history(LINES)
    document = write_report(tmp_path, result=result, summary=summary, faults=[FAULT],
                            origin_ns=0, finish_ns=300 * MS, settings={"nodes": 3, "seed": 9},
                            exit_status=0, extra={"final_reads": {"k": "p0-1p1-1"}})
    assert document["verdict"] == "linearizable"
    saved = json.loads((tmp_path / RESULT_FILE).read_text())
    assert saved == document
    assert saved["totals"] == {"ok": 3, "fail": 1, "info": 2}
    assert saved["counts"]["cas"] == {"ok": 0, "fail": 1, "info": 0}
    (fault,) = saved["faults"]
    assert (fault["start_seconds"], fault["end_seconds"]) == (0.1, 0.2)
    assert (fault["ok_before"], fault["ok_during"], fault["ok_after"]) == (2, 0, 1)
    assert fault["targets"] == [2]
    assert saved["settings"] == {"nodes": 3, "seed": 9}
    assert saved["final_reads"] == {"k": "p0-1p1-1"}
    index = (tmp_path / INDEX_FILE).read_text()
    for link in (TIMELINE_FILE, LATENCY_FILE, "history.jsonl", RESULT_FILE):
        assert f"href='{link}'" in index
    assert "linearizable" in index and "kill node 2" in index
    assert (tmp_path / LATENCY_FILE).read_text().startswith("<svg")
    assert "Linearizability check" in (tmp_path / TIMELINE_FILE).read_text()


def test_a_stale_read_makes_the_report_say_not_linearizable(tmp_path: Path) -> None:
    lines = [
        *LINES[:4],
        event(0, "invoke", "put", "k", "p0-2", 40),
        event(0, "ok", "put", "k", "p0-2", 50),
        event(1, "invoke", "get", "k", None, 60),
        event(1, "ok", "get", "k", "p0-1", 70),
    ]
    text = "\n".join(lines) + "\n"
    result = check(parse_history(text, "stale.jsonl"), "kv")
    document = write_report(tmp_path, result=result, summary=summarize_history(lines),
                            faults=[], origin_ns=0, finish_ns=100 * MS, settings={},
                            exit_status=1)
    assert document["verdict"] == "not linearizable"
    assert document["checker"]["violation_key"] == "k"
    assert "not linearizable" in (tmp_path / INDEX_FILE).read_text()
    assert "No faults were injected" in (tmp_path / INDEX_FILE).read_text()


def test_the_index_and_the_timeline_count_the_operations_the_same_way(
        tmp_path: Path) -> None:
    history_text = "\n".join(LINES)
    result = check(parse_history(history_text, "history.jsonl"), "kv")
    document = write_report(tmp_path, result=result, summary=summarize_history(LINES),
                            faults=[FAULT], origin_ns=0, finish_ns=300 * MS, settings={},
                            exit_status=0)
    # Six invokes: the failed cas did not happen, so the checker leaves it out; the append
    # that ended info and the get left open are the indeterminate ones.
    assert document["operations"] == 6
    said = "6 operations: 5 checked (2 indeterminate), 1 failed and left out of the check"
    assert said in (tmp_path / INDEX_FILE).read_text()
    assert said in (tmp_path / TIMELINE_FILE).read_text()


def test_the_index_names_the_faults_that_never_got_a_window(tmp_path: Path) -> None:
    result = check(parse_history("\n".join(LINES), "history.jsonl"), "kv")
    write_report(tmp_path, result=result, summary=summarize_history(LINES), faults=[FAULT],
                 origin_ns=0, finish_ns=300 * MS, settings={}, exit_status=0,
                 extra={"faults_not_run": ["pause", "partition"]})
    index = (tmp_path / INDEX_FILE).read_text()
    assert "Named but never run (no time was left for their window): pause, partition." \
        in index
