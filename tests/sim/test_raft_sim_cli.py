"""`distlab sim PROTOCOL`: one seed with its trace, sweeps, planted bugs, shrinking."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from distlab.cli.main import main
from distlab.protocols.raft import BUG_CATALOGUE
from tests.support import run_on_terminal


def test_single_seed_prints_a_readable_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "raft", "--seed", "7", "--nodes", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "start seed=7 nodes=3" in lines[0]
    assert any(re.search(r" n\d g\d is leader in term \d+$", line) for line in lines)
    assert any("->n" in line and "AppendEntries(term=" in line for line in lines)
    assert any(" fault: " in line for line in lines)
    assert any(" client p" in line and " ok " in line for line in lines)
    assert re.match(r"seed 7 \(3 nodes, \d groups\): ok, linearizable, ", lines[-1])


def test_sweep_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "raft", "--seeds", "6", "--start", "10", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["runs"] == 6
    assert body["first_seed"] == 10 and body["last_seed"] == 15
    assert body["failed"] == 0 and body["failures"] == []
    assert body["seeds_per_second"] > 0


def test_list_bugs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "raft", "--list-bugs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == sorted(BUG_CATALOGUE)
    assert all(": " in line and len(line.split(": ", 1)[1]) > 20 for line in lines)


def test_a_planted_bug_fails_the_sweep_and_names_the_seed(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "raft", "--seeds", "500", "--bug", "vote-not-persisted"]) == 1
    out = capsys.readouterr().out
    seed = int(re.search(r"first failing seed: (\d+)", out).group(1))  # type: ignore[union-attr]
    assert "invariant violated" in out and "durability" in out
    replay = f"distlab sim raft --seed {seed} --nodes "
    assert replay in out
    # the printed replay fails the same way
    command = re.search(r"^replay: (distlab sim raft .*)$", out, re.MULTILINE)
    assert command is not None
    assert main([*command.group(1).split()[1:], "--no-trace"]) == 1
    assert "durability" in capsys.readouterr().out


def test_shrink_prints_a_short_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "raft", "--seeds", "500", "--bug", "read-without-confirm",
                 "--shrink"]) == 1
    out = capsys.readouterr().out
    shrunk = re.search(r"(\d+) fault events shrunk to (\d+) in \d+ runs", out)
    assert shrunk is not None
    assert int(shrunk.group(2)) <= 20 and int(shrunk.group(2)) < int(shrunk.group(1))
    events = [line for line in out.splitlines() if re.match(r"^ +[\d.]+ ms  ", line)]
    assert len(events) == int(shrunk.group(2))
    assert "failure: " in out and "not linearizable" in out


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "raft", "--seeds", "0"]) == 2
    assert main(["sim", "raft"]) == 2
    assert main(["sim", "raft", "--seeds", "3", "--bug", "no-such-bug"]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["sim", "raft", "--seed", "1", "--nodes", "4"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(["sim", "paxos-that-is-not", "--seed", "1"])
    assert exited.value.code == 2


def test_a_sweep_shows_a_progress_bar_on_a_terminal_and_plain_lines_otherwise() -> None:
    command = [sys.executable, "-m", "distlab", "sim", "raft", "--seeds", "60"]
    code, screen = run_on_terminal(command, timeout=300)
    assert code == 0, screen
    assert "distlab sim raft" in screen and "100%" in screen, screen[-2000:]
    assert "\x1b[" in screen  # drawn live, with the terminal's control sequences
    piped = subprocess.run([*command[:-1], "20"], capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr
    for text in (piped.stdout, piped.stderr):
        assert "\x1b" not in text and "\r" not in text
    assert "20 runs" in piped.stdout
