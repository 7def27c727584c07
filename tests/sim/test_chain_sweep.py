"""Seed sweeps of chain replication: the master on group 0's Raft, one replica per node under
the real chain driver, network, disk and clock faults. A correct chain survives them in both
read modes; every bug of the catalogue is caught, and its failing seed replays exactly."""

from __future__ import annotations

import pytest

from distlab.cli.main import main
from distlab.protocols.chain import BUG_CATALOGUE
from distlab.sim import harness

BUG_SEEDS = 500
CHAIN = harness.protocol("chain")


@pytest.mark.parametrize("mode", ["cr", "craq"])
def test_a_small_sweep_finds_nothing_in_either_read_mode(mode: str) -> None:
    report = harness.sweep(CHAIN, range(1, 10), variants={"read-mode": mode})
    results = report.results
    assert {result.nodes for result in results} == {3, 5, 7}
    failures = report.failures
    assert not failures, "\n".join(f"seed {f.seed}: {f.failure}" for f in failures)
    assert not report.unknown
    assert all(result.faults > 0 for result in results)
    assert sum(result.operations["ok"] for result in results) > 5 * len(results)


@pytest.mark.parametrize("bug", sorted(BUG_CATALOGUE))
def test_each_planted_bug_is_caught_and_its_seed_replays(bug: str) -> None:
    bugs = frozenset({bug})
    report = harness.sweep(CHAIN, range(1, BUG_SEEDS + 1), bugs=bugs, stop_after_failures=1)
    failures = report.failures
    assert failures, f"{bug} survived {BUG_SEEDS} seeds"
    first = failures[0]
    assert first.failure is not None and f"seed={first.seed} " in first.failure
    assert f"--bug {bug}" in first.failure
    if bug == "skip-resend":
        # The successor never receives the update after the gap: the chain stops.
        assert "no progress" in first.failure or "behind" in first.failure
    else:
        assert "invariant violated" in first.failure or "not linearizable" in first.failure
    replayed, _ = harness.run_seed(CHAIN, first.seed, bugs=bugs)
    assert replayed == first
    clean, _ = harness.run_seed(CHAIN, first.seed)
    assert clean.ok, clean.failure


def test_the_command_lists_bugs_runs_a_seed_and_checks_its_options(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "chain", "--list-bugs"]) == 0
    names = [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert names == sorted(BUG_CATALOGUE)
    assert main(["sim", "chain", "--seed", "3", "--nodes", "3", "--read-mode", "craq"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(" chain: head in epoch 1 " in line for line in lines)
    assert any("Forward(e1, " in line for line in lines)
    assert lines[-1].startswith("seed 3 (3 nodes, 1 groups): ok, linearizable")
    assert main(["sim", "raft", "--seed", "3", "--read-mode", "craq"]) == 2
    assert "--read-mode is for chain" in capsys.readouterr().err
