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
    assert main(["sim", "raft", "--participants", "groups", "--seed", "1"]) == 2
    assert "apply to txn only" in capsys.readouterr().err


def test_one_seed_over_groups_prints_its_trace_and_outcome(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "txn", "--participants", "groups", "--seed", "15"]) == 0
    out = capsys.readouterr().out
    # Participants' messages between members, on the recipient group's channel.
    assert " g2000 Prepare" in out or " g2001 Prepare" in out or " g2002 Prepare" in out
    assert "transaction participant runs here" in out
    assert "seed 15 (3 nodes, 3 groups)" in out and "bank and atomicity hold" in out


def test_a_planted_bug_over_groups_fails_with_its_replay(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "txn", "--participants", "groups", "--nodes", "3", "--seeds", "20",
                 "--bug", "forget-locks-on-restart"]) == 1
    out = capsys.readouterr().out
    assert "first failing seed:" in out
    assert ("replay: distlab sim txn --protocol 2pc --participants groups --faults all --seed"
            in out)


def test_the_engine_is_an_option_of_groups_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "txn", "--engine", "paxos", "--seed", "1"]) == 2
    assert "--engine is for txn --participants groups" in capsys.readouterr().err
    assert main(["sim", "txn", "--participants", "groups", "--engine", "paxos", "--seed", "3",
                 "--no-trace"]) == 0
    assert "seed 3 (3 nodes" in capsys.readouterr().out
