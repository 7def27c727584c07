"""`distlab lincheck`: exit statuses, output, and one clear line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from distlab.cli.main import main
from tests.unit.check.lincheck_support import DATA

ETCD_BAD = DATA / "jepsen" / "etcd_000.log"
ETCD_OK = DATA / "jepsen" / "etcd_002.log"
KV_BAD = DATA / "kv" / "c10-bad.txt"


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    status = main(["lincheck", *map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_linearizable_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, ETCD_OK)
    assert status == 0
    assert "verdict     linearizable" in out
    assert "cas-register" in out


def test_not_linearizable_exits_1_and_says_where(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, KV_BAD, "--format", "edn", "--model", "kv")
    assert status == 1
    assert "not linearizable" in out
    assert "key         0" in out
    assert "breaks at   process" in out


def test_unknown_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, ETCD_OK, "--max-memory-mb", "0.01")
    assert status == 3
    assert "unknown: memory budget" in out
    status, out, _ = run(capsys, ETCD_OK, "--timeout", "0.000001")
    assert status == 3
    assert "unknown: time budget" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, ETCD_BAD, "--json")
    assert status == 1
    document = json.loads(out)
    assert document["verdict"] == "not linearizable"
    assert document["exit_status"] == 1
    assert document["format"] == "jepsen"
    violation = document["violation"]
    assert violation["key"] is None
    assert violation["operation"]["f"] == "get"
    assert len(violation["prefix"]) > 0
    assert all(step["status"] in ("ok", "info") for step in violation["prefix"])


def test_html_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "report.html"
    status, out, _ = run(capsys, KV_BAD, "--html", out_file)
    assert status == 1
    page = out_file.read_text()
    assert page.startswith("<!DOCTYPE html>") and "key 0" in page
    assert f"html        {out_file}" in out


def test_no_partition_gives_the_same_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, DATA / "kv" / "c01-bad.txt", "--no-partition")
    assert status == 1
    assert "1 partition" in out


def test_a_torn_last_line_is_ignored_with_a_warning(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"process": 1, "type": "invoke", "f": "put", "key": "k", "value": 1, '
                    '"time": 1}\n{"process": 1, "type": "ok", "f": "pu')
    status, out, err = run(capsys, path)
    assert status == 0
    assert f"{path}:2: ignored a torn last line" in err
    assert "1 indeterminate" in out


MALFORMED = [
    ("h.jsonl", '{"process": 1, "type": "invoke", "f": "get", "key": "k", "time": 1}\n'
                '{"process": 1, "type": "ok", "f": "get", "key": "k", "value": nul, "time": 2}\n'
                '{"process": 2, "type": "invoke", "f": "get", "key": "k", "time": 3}\n',
     2, "not valid JSON"),
    ("h.jsonl", '{"process": 1, "type": "invoke", "f": "get", "key": "k"}\n', 1,
     "missing field 'time'"),
    ("h.jsonl", '{"process": 1, "type": "invoke", "f": "get", "key": "k", "time": 1}\n'
                '{"process": 1, "type": "invoke", "f": "get", "key": "k", "time": 2}\n', 2,
     "still outstanding"),
    ("h.jsonl", '{"process": 1, "type": "invoke", "f": "put", "key": "k", "value": 1, '
                '"time": 1}\n{"process": 1, "type": "info", "f": "put", "key": "k", '
                '"time": 2}\n{"process": 1, "type": "invoke", "f": "get", "key": "k", '
                '"time": 3}\n', 3, "after its indeterminate"),
    ("h.jsonl", '{"process": 1, "type": "ok", "f": "get", "key": "k", "time": 1}\n', 1,
     "no operation outstanding"),
    ("h.jsonl", '{"process": 1, "type": "invoke", "f": "frob", "key": "k", "time": 1}\n', 1,
     "'f' must be one of"),
    ("h.jsonl", '{"process": 1, "type": "invoke", "f": "cas", "key": "k", "value": 3, '
                '"time": 1}\n', 1, "cas needs"),
    ("h.log", "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n"
              "INFO  jepsen.util - 0\t:ok\t:read\t[1 2\n", 2, "unreadable value"),
    ("h.log", "INFO  jepsen.util - 0\t:invoke\t:frob\t1\n", 1, "unknown operation"),
    ("h.edn", '{:process 0, :type :invoke, :f :get, :key "0", :value nil}\n'
              '{:process 0, :type :ok, :f :get, :key "0", :value "x"\n', 2,
     "not an EDN map: the line ends inside"),
    ("h.edn", '{:process 0, :type :begin, :f :get, :key "0", :value nil}\n', 1,
     ":type must be"),
]


@pytest.mark.parametrize(("name", "text", "line", "message"), MALFORMED,
                         ids=[f"{m[0]}:{m[3]}" for m in MALFORMED])
def test_malformed_input_is_one_line_naming_file_and_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, text: str, line: int,
        message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    status, out, err = run(capsys, path)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert f"{path}:{line}: " in err
    assert message in err
    assert "Traceback" not in err


def test_a_model_that_does_not_fit_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, DATA / "kv" / "c01-ok.txt", "--model", "register")
    assert status == 2
    assert err.count("\n") == 1 and "has no 'append'" in err and "c01-ok.txt:" in err


def test_a_missing_file_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, tmp_path / "nope.jsonl")
    assert status == 2
    assert err.count("\n") == 1 and "nope.jsonl" in err and "cannot read" in err


def test_bad_flags_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--model", "queue"], ["--timeout", "-1"], ["--format", "xml"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["lincheck", str(ETCD_OK), *argv])
        assert exit_info.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_the_installed_command_runs_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("{not json\n{}\n")
    process = subprocess.run([sys.executable, "-m", "distlab.cli.main", "lincheck", str(path)],
                             capture_output=True, text=True, timeout=60)
    assert process.returncode == 2
    assert process.stderr.strip() == f"distlab: error: {path}:1: not valid JSON: " \
                                     "Expecting property name enclosed in double quotes"
