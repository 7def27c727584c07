"""Reading Jepsen etcd logs and EDN key/value logs with the semantics Porcupine gives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from distlab.check import (
    HistoryError,
    detect_format,
    load_history,
    parse_edn_log,
    parse_jepsen_log,
)
from tests.unit.check.lincheck_support import DATA

JEPSEN = """\
INFO  jepsen.util - 0\t:invoke\t:write\t4
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:write\t4
INFO  jepsen.util - 1\t:ok\t:read\tnil
some other log line that is not an operation
INFO  jepsen.util - 2   :invoke :cas    [4 3]
INFO  jepsen.util - 2   :fail   :cas    [4 3]
INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]
INFO  jepsen.util - 3\t:info\t:cas\t:timed-out
INFO  jepsen.util - 4\t:invoke\t:read\tnil
INFO  jepsen.util - 4\t:fail\t:read\t:timed-out
INFO  jepsen.util - 5\t:invoke\t:write\t1
"""


def test_jepsen_log_operations() -> None:
    history = parse_jepsen_log(JEPSEN)
    assert history.default_model == "cas-register"
    summary = [(o.process, o.f, o.value, o.result, o.status, o.call_line, o.ret_line)
               for o in history.operations]
    assert summary == [
        (0, "put", 4, None, "ok", 1, 3),
        (1, "get", None, None, "ok", 2, 4),
        # etcd ran the compare and it failed: kept as an observation, not dropped.
        (2, "cas", (4, 3), False, "ok", 6, 7),
        (3, "cas", (1, 2), None, "info", 8, None),
        # Still pending when the log ends: indeterminate.
        (5, "put", 1, None, "info", 12, None),
    ]
    # The read that timed out returned nothing and is dropped.
    assert history.failed == 1


def test_edn_log_operations() -> None:
    history = parse_edn_log(
        '{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}\n'
        '{:process 1, :type :invoke, :f :get, :key "0", :value nil}\n'
        '{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}\n'
        '{:process 1, :type :ok, :f :get, :key "0", :value ""}\n'
        '{:process 2, :type :invoke, :f :put, :key "1", :value "a \\"q\\""}\n')
    assert history.absent == "" and history.default_model == "kv"
    summary = [(o.process, o.f, o.key, o.value, o.result, o.status) for o in history.operations]
    assert summary == [(0, "append", "0", "x 0 0 y", None, "ok"),
                       (1, "get", "0", None, "", "ok"),
                       (2, "put", "1", 'a "q"', None, "info")]


def test_the_data_files_are_read_whole() -> None:
    etcd = load_history(DATA / "jepsen" / "etcd_000.log")
    assert etcd.format == "jepsen"
    assert len(etcd.operations) == 85
    assert sum(o.status == "info" for o in etcd.operations) == 16
    kv = load_history(DATA / "kv" / "c50-bad.txt")
    assert kv.format == "edn"
    assert len(kv.operations) == 2024 and len(kv.keys) == 10


@pytest.mark.parametrize(("first_line", "expected"), [
    ('{"process": 1}', "jsonl"), ("{:process 1}", "edn"),
    ("INFO  jepsen.util - 0\t:invoke\t:read\tnil", "jepsen")])
def test_format_detection(tmp_path: Path, first_line: str, expected: str) -> None:
    path = tmp_path / "history"
    path.write_text("\n" + first_line + "\n")
    assert detect_format(path) == expected


def test_an_ok_with_timed_out_payload_is_refused() -> None:
    with pytest.raises(HistoryError, match="<log>:2: an ok read cannot carry :timed-out"):
        parse_jepsen_log("INFO  jepsen.util - 0\t:invoke\t:read\tnil\n"
                         "INFO  jepsen.util - 0\t:ok\t:read\t:timed-out\n", "<log>")


def test_edn_completion_of_another_function_is_refused() -> None:
    with pytest.raises(HistoryError, match=r"x\.edn:2: process 0 completes .put. but invoked"):
        parse_edn_log('{:process 0, :type :invoke, :f :get, :key "0", :value nil}\n'
                      '{:process 0, :type :ok, :f :put, :key "0", :value "a"}\n', "x.edn")


def test_every_log_of_the_test_data_is_read_whole() -> None:
    """Each log's EDN is read in one go and matched back to its lines: every invoke line is
    one operation, on its own line, in every Jepsen and Knossos log."""
    logs = sorted((DATA / "jepsen").glob("*.log")) + sorted((DATA / "kv").glob("*.txt"))
    assert len(logs) == 109
    for path in logs:
        history = load_history(path)
        lines = path.read_text().splitlines()
        invokes = [number for number, line in enumerate(lines, start=1)
                   if ":invoke" in line]
        assert len(history.operations) + history.failed == len(invokes), path.name
        assert {op.call_line for op in history.operations} <= set(invokes), path.name


def test_a_bad_line_in_the_middle_is_named() -> None:
    good = '{:process 0, :type :invoke, :f :get, :key "0", :value nil}\n'
    with pytest.raises(HistoryError, match=r"x\.edn:3: not an EDN map: the line holds 2"):
        parse_edn_log(good + '{:process 0, :type :ok, :f :get, :key "0", :value nil}\n'
                      + good.strip() + " " + good, "x.edn")
    with pytest.raises(HistoryError, match=r"x\.edn:2: not an EDN map: "):
        parse_edn_log(good + '{:process 0, :type :ok, :f :get, :key "0", :value #frob 1}\n',
                      "x.edn")


def test_a_value_that_runs_over_its_line_is_named_not_matched_to_the_next_line() -> None:
    good = '{:process 0, :type :invoke, :f :get, :key "0", :value nil}'
    # Line 2 holds two maps and line 3's string runs on into line 4: as many values as lines
    # once read together, so only the lines themselves can tell.
    text = "\n".join([good, good + " " + good, '{:process 1, :type :invoke, :f :put, :key "a',
                      'b", :value "v"}']) + "\n"
    with pytest.raises(HistoryError, match=r"x\.edn:2: not an EDN map: the line holds 2"):
        parse_edn_log(text, "x.edn")
