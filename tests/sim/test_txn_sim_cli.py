"""`distlab sim txn`: the bug catalogue, one seed's trace, and usage errors."""

from __future__ import annotations

import pytest

from distlab.cli.main import main
from distlab.protocols.txn import BUG_CATALOGUE


def test_list_bugs_names_every_bug(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "txn", "--list-bugs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == sorted(BUG_CATALOGUE)


def test_one_seed_prints_its_trace_and_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "txn", "--protocol", "3pc", "--faults", "crash", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "Prepare" in out and "Vote" in out
    assert "seed 3 (3 nodes" in out and "bank and atomicity hold" in out


def test_a_planted_bug_fails_with_its_seed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "txn", "--seeds", "50", "--bug", "forget-locks-on-restart"]) == 1
    out = capsys.readouterr().out
    assert "first failing seed:" in out
    assert "replay: distlab sim txn --seed" in out


def test_txn_options_elsewhere_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "raft", "--protocol", "3pc", "--seed", "1"]) == 2
    assert "apply to txn only" in capsys.readouterr().err
