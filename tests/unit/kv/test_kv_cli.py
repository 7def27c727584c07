"""`distlab kv` and `distlab bench kv` against a real single-member KV server."""

from __future__ import annotations

import io
import json
from array import array
from pathlib import Path

import pytest

from distlab.apps.kv import KVStateMachine
from distlab.cli.main import main
from distlab.ops.load import LoadResult, measure_load, percentile, summarize
from distlab.ops.local_cluster import free_loopback_ports
from tests.unit.kv.kv_harness import FollowerLog, kv_server_thread


def kv(capsys: pytest.CaptureFixture[str], address: str, *args: str) -> tuple[int, str, str]:
    operation, *rest = args
    status = main(["kv", operation, "--cluster", f"1={address}", *rest])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_kv_commands_and_their_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    machine = KVStateMachine()
    with kv_server_thread(machine) as address:
        assert kv(capsys, address, "put", "k", "hello") == (0, "ok\n", "")
        assert kv(capsys, address, "append", "k", " world")[0] == 0
        assert kv(capsys, address, "get", "k") == (0, "hello world\n", "")
        status, out, _ = kv(capsys, address, "cas", "k", "nope", "x")
        assert status == 1 and "cas failed" in out
        assert kv(capsys, address, "cas", "k", "hello world", "x") == (0, "ok\n", "")
        status, out, _ = kv(capsys, address, "get", "k", "--json")
        assert status == 0
        assert json.loads(out) == {"op": "get", "key": "k", "found": True, "value": "x"}
        assert kv(capsys, address, "delete", "k") == (0, "deleted\n", "")
        status, out, err = kv(capsys, address, "get", "k")
        assert (status, out) == (0, "") and "not found" in err
    assert machine.get(b"k") is None


def test_kv_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as missing_key:
        main(["kv", "put", "--cluster", "1=127.0.0.1:1"])
    assert missing_key.value.code == 2
    capsys.readouterr()
    cluster = ["--cluster", "1=127.0.0.1:1"]
    for argv, message in [
        (["put", "k"], "put needs VALUE, - (standard input) or --value-file FILE"),
        (["put", "k", "v", "--value-file", "f"], "give VALUE or --value-file, not both"),
        (["cas", "k", "-", "-"], "only one value can come from standard input (-)"),
        (["get", ""], "KEY must not be empty"),
        (["get", "zz", "--hex"], "KEY is not hexadecimal: 'zz'"),
        (["put", "aw==", "!", "--base64"], "VALUE is not base64: '!'"),
        (["put", "k", "--value-file", "/nonexistent/v"],
         "cannot read --value-file /nonexistent/v: No such file or directory"),
    ]:
        assert main(["kv", *argv, *cluster]) == 2, argv
        assert capsys.readouterr().err == f"distlab: error: {message}\n"
    assert main(["kv", "get", "k", "--cluster", "1=bad"]) == 2
    assert "distlab: error" in capsys.readouterr().err


def test_every_member_refusing_is_one_line_at_once_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ports = free_loopback_ports(2)
    cluster = ",".join(f"{n}=127.0.0.1:{port}" for n, port in enumerate(ports, 1))
    # The budget is far longer than the test may take: the answer must not wait for it.
    for operation in (["get", "k"], ["put", "k", "v"]):
        assert main(["kv", *operation, "--cluster", cluster, "--timeout", "600"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "cannot connect to any member" in err and "Connection refused" in err
        assert all(f"127.0.0.1:{port}" in err for port in ports)
    assert "the put did not happen" in err


def test_a_command_that_waits_says_so_every_few_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with kv_server_thread(log=FollowerLog(None, None)) as address:
        status = main(["kv", "get", "k", "--cluster", f"1={address}", "--timeout", "2.5"])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert status == 3
    # One line after a second (the next is due after four), however many attempts were made.
    [waiting] = [line for line in lines if line.startswith("distlab kv: no answer after ")]
    assert "of 2.5 s" in waiting and "not the leader" in waiting
    assert "\r" not in err
    assert lines[-1].startswith("distlab kv: error: get 'k': no outcome within 2.5 s")


def test_bytes_in_every_form_and_values_from_files(
    capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine = KVStateMachine()
    value_file = tmp_path / "value"
    value_file.write_bytes(b"\x00\xff" * 1000)
    with kv_server_thread(machine) as address:

        def kv(*args: str) -> tuple[int, bytes, bytes]:
            operation, *rest = args
            status = main(["kv", operation, "--cluster", f"1={address}", *rest])
            captured = capsysbinary.readouterr()
            return status, captured.out, captured.err

        # What Python makes of the argument bytes ff and fe: lone surrogates.
        assert kv("put", "\udcff", "\udcfe") == (0, b"ok\n", b"")
        assert machine.get(b"\xff") == b"\xfe"
        assert kv("get", "\udcff") == (0, b"\xfe\n", b"")
        assert kv("get", "ff", "--hex") == (0, b"fe\n", b"")
        assert kv("get", "/w==", "--base64") == (0, b"/g==\n", b"")
        status, out, _ = kv("get", "ff", "--hex", "--json")
        assert json.loads(out) == {"op": "get", "key": "ff", "found": True, "value": "fe"}
        status, out, _ = kv("get", "\udcff", "--json")
        assert json.loads(out)["value"] == "\udcfe"  # the str form, as json reads it back
        assert kv("cas", "ff", "fe", "c328", "--hex")[0] == 0
        assert machine.get(b"\xff") == b"\xc3\x28"
        status, out, _ = kv("cas", "ff", "00", "01", "--hex")
        assert status == 1 and out == b"cas failed: the value of b'\\xff' is not '\\x00'; " \
            b"nothing changed\n"

        assert kv("put", "file", "--value-file", str(value_file))[0] == 0
        assert machine.get(b"file") == value_file.read_bytes()
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\x01\x02")))
        assert kv("append", "file", "-")[0] == 0
        assert machine.get(b"file") == value_file.read_bytes() + b"\x01\x02"
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\x01\x02")))
        assert kv("cas", "file", "-", "--value-file", str(value_file))[0] == 1


def test_bench_kv_reports_throughput_and_latency(capsys: pytest.CaptureFixture[str]) -> None:
    machine = KVStateMachine()
    with kv_server_thread(machine) as address:
        status = main(["bench", "kv", "--cluster", f"1={address}", "--clients", "3",
                       "--duration", "0.3", "--value-size", "10", "--keys", "5",
                       "--reads", "0.5", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert report["clients"] == 3 and report["ops"] > 0
    assert report["ops_per_second"] > 0
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert report["definite_failures"] == report["indefinite_failures"] == 0
    assert machine.get(b"bench-warmup-0") == b"v" * 10


def test_bench_kv_usage_errors_exit_2() -> None:
    assert main(["bench", "kv", "--cluster", "1=127.0.0.1:1", "--clients", "0"]) == 2
    assert main(["bench", "kv", "--cluster", "1=127.0.0.1:1", "--reads", "2"]) == 2
    assert main(["bench", "kv", "--cluster", "1=127.0.0.1:1", "--clients", "2",
                 "--processes", "3"]) == 2


async def test_measure_load_counts_failures_by_kind() -> None:
    calls = {"n": 0}

    async def operation(number: int) -> None:
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise ValueError("definite")
        if calls["n"] % 3 == 1:
            raise RuntimeError("indefinite")

    result = await measure_load(2, 0.05, operation,
                                is_definite=lambda error: isinstance(error, ValueError))
    assert result.definite_failures > 0 and result.indefinite_failures > 0
    assert len(result.latencies) + result.definite_failures + result.indefinite_failures \
        == calls["n"]
    assert result.first_error is not None


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) == 0.0
    summary = summarize(LoadResult(latencies=array("d", [0.001, 0.003]), elapsed_seconds=2.0))
    assert summary["ops_per_second"] == 1.0
    assert summary["latency_ms"]["max"] == 3.0
