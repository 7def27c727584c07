"""`distlab sim raft`: one seed with its trace, or a sweep with failing seeds listed."""

from __future__ import annotations

import json

import pytest

from distlab.cli.main import main


def test_single_seed_prints_a_readable_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "raft", "--seed", "7", "--nodes", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("t=0ms start seed=7 nodes=3")
    assert any(" becomes leader term=" in line for line in lines)
    assert any("->n" in line and "AppendEntries(term=" in line for line in lines)
    assert lines[-1].startswith("seed 7 (3 nodes): ok")


def test_sweep_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "raft", "--seeds", "6", "--start", "10", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["runs"] == 6
    assert body["first_seed"] == 10 and body["last_seed"] == 15
    assert body["failed"] == 0 and body["failures"] == []


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "raft", "--seeds", "0"]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["sim", "raft", "--seed", "1", "--nodes", "4"])
    assert exited.value.code == 2
