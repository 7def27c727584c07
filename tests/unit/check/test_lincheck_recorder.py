"""Recording histories as JSON lines and reading them back with validation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from distlab.check import (
    HistoryError,
    HistoryRecorder,
    Verdict,
    check,
    read_history,
    read_txn_history,
)


def counter() -> Callable[[], int]:
    ticks = iter(range(100, 10_000, 10))
    return lambda: next(ticks)


def test_events_are_written_as_they_happen(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    recorder = HistoryRecorder(path, clock=counter())
    recorder.invoke(1, "put", "k1", "v7")
    # Each event is on disk before the next call returns: nothing sits in a buffer.
    assert path.read_text().count("\n") == 1
    recorder.ok(1)
    recorder.invoke(2, "get", "k1")
    recorder.ok(2, "v7")
    recorder.invoke(3, "cas", "k1", ["v7", "v8"])
    recorder.fail(3)
    recorder.invoke(4, "append", "k1", "x")
    recorder.info(4)
    recorder.close()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert events[0] == {"process": 1, "type": "invoke", "f": "put", "key": "k1",
                         "value": "v7", "time": 100}
    assert events[1] == {"process": 1, "type": "ok", "f": "put", "key": "k1", "value": "v7",
                         "time": 110}
    assert [e["type"] for e in events] == ["invoke", "ok", "invoke", "ok", "invoke", "fail",
                                           "invoke", "info"]
    assert events[3]["value"] == "v7"
    assert events[5]["value"] == ["v7", "v8"]
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    history = read_history(path)
    assert [(o.f, o.status) for o in history.operations] == [
        ("put", "ok"), ("get", "ok"), ("append", "info")]
    assert history.failed == 1
    assert check(history, "kv").verdict is Verdict.LINEARIZABLE


def test_default_clock_is_monotonic_nanoseconds(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryRecorder(path, durable=True) as recorder:
        first = recorder.invoke(1, "get", "k")
        second = recorder.ok(1, None)
    assert second >= first > 0
    assert read_history(path).operations[0].result is None


def test_recorder_refuses_what_the_format_forbids(tmp_path: Path) -> None:
    with HistoryRecorder(tmp_path / "h.jsonl") as recorder:
        recorder.invoke(1, "put", "k", 1)
        with pytest.raises(ValueError, match="already has an operation outstanding"):
            recorder.invoke(1, "get", "k")
        recorder.info(1)
        with pytest.raises(ValueError, match="may not invoke again"):
            recorder.invoke(1, "get", "k")
        with pytest.raises(ValueError, match="no operation outstanding"):
            recorder.ok(2)
        with pytest.raises(ValueError, match="unknown function"):
            recorder.invoke(3, "frob", "k")
        with pytest.raises(ValueError, match="cas takes"):
            recorder.invoke(3, "cas", "k", 5)
        recorder.invoke(4, "get", "k")
        assert recorder.outstanding == {4: "get"}
    with pytest.raises(ValueError, match="closed"):
        recorder.invoke(5, "get", "k")


def test_appending_to_an_existing_history(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryRecorder(path) as recorder:
        recorder.invoke(1, "put", "k", 1)
        recorder.ok(1)
    with HistoryRecorder(path) as recorder:
        recorder.invoke(2, "get", "k")
        recorder.ok(2, 1)
    assert len(read_history(path).operations) == 2


def test_a_crash_loses_at_most_the_last_line(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryRecorder(path) as recorder:
        recorder.invoke(1, "put", "k", 1)
        recorder.ok(1)
        recorder.invoke(2, "put", "k", 2)
        recorder.ok(2)
    whole = path.read_bytes()
    path.write_bytes(whole[:-15])  # the crash cut the last line short
    history = read_history(path)
    assert history.torn_tail_line == 4
    assert [(o.value, o.status) for o in history.operations] == [(1, "ok"), (2, "info")]


def test_reader_rejects_a_completion_before_its_invoke(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"process": 1, "type": "invoke", "f": "get", "key": "k", "time": 50}\n'
                    '{"process": 1, "type": "ok", "f": "get", "key": "k", "value": null, '
                    '"time": 40}\n')
    with pytest.raises(HistoryError, match=r"h.jsonl:2: completion time 40 is before"):
        read_history(path)


def test_reader_rejects_a_completion_for_another_key(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"process": 1, "type": "invoke", "f": "get", "key": "a", "time": 1}\n'
                    '{"process": 1, "type": "ok", "f": "get", "key": "b", "time": 2}\n')
    with pytest.raises(HistoryError, match=r"h.jsonl:2: process 1 completes key 'b'"):
        read_history(path)


def test_a_bad_line_in_the_middle_is_an_error_not_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"process": 1, "type": "invoke", "f": "get", "key": "a", "time": 1}\n'
                    '{"process": 1, "type": \n'
                    '{"process": 1, "type": "ok", "f": "get", "key": "a", "time": 2}\n')
    with pytest.raises(HistoryError, match=r"h.jsonl:2: not valid JSON"):
        read_history(path)


def test_transactions_are_recorded_with_their_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "txns.jsonl"
    with HistoryRecorder(path, clock=counter()) as recorder:
        recorder.invoke(1, "txn", None, [["w", "x", 1]])
        recorder.ok(1, [["w", "x", 1]], extra={"ts": 105})
        recorder.invoke(2, "txn", None, [["r", "x", None]], extra={"at": 105})
        recorder.ok(2, [["r", "x", 1]], extra={"ts": 105})
        with pytest.raises(ValueError, match="'time' is a field every event has"):
            recorder.invoke(3, "txn", None, [["r", "x", None]], extra={"time": 1})
        # The refused event left nothing behind: process 3 may still invoke.
        recorder.invoke(3, "txn", None, [["r", "x", None]])
        recorder.fail(3)
    history = read_txn_history(path)
    write, snapshot = history.transactions
    assert (write.ts, write.at, write.read_only) == (105, None, False)
    assert (snapshot.ts, snapshot.at, snapshot.ops) == (105, 105, (("r", "x", 1),))
    assert history.failed == 1
