"""Seed sweeps of Multi-Paxos under the real driver: a correct core survives fault schedules
(network, disk and clock faults, several groups), and every bug of the catalogue is caught
within a few hundred seeds, its failing seed replaying byte for byte."""

from __future__ import annotations

import pytest

from distlab.cli.main import main
from distlab.protocols.multipaxos import BUG_CATALOGUE
from distlab.sim import harness

# A sweep that plants a bug must fail within this many seeds.
BUG_SEEDS = 500
PAXOS = harness.protocol("paxos")


def test_a_small_sweep_over_three_five_and_seven_nodes_finds_nothing() -> None:
    report = harness.sweep(PAXOS, range(1, 13))
    results = report.results
    assert {result.nodes for result in results} == {3, 5, 7}
    failures = report.failures
    assert not failures, "\n".join(f"seed {f.seed}: {f.failure}" for f in failures)
    assert not report.unknown
    # Real work under real faults: clients saw operations happen, each run had faults.
    assert sum(result.operations["ok"] for result in results) > 10 * len(results)
    assert all(result.faults > 0 for result in results)


@pytest.mark.parametrize("bug", sorted(BUG_CATALOGUE))
def test_each_planted_bug_is_caught_and_its_seed_replays(bug: str) -> None:
    report = harness.sweep(PAXOS, range(1, BUG_SEEDS + 1), bugs=frozenset({bug}),
                           stop_after_failures=1)
    failures = report.failures
    assert failures, f"{bug} survived {BUG_SEEDS} seeds"
    first = failures[0]
    assert first.failure is not None and f"seed={first.seed} " in first.failure
    assert "invariant violated" in first.failure or "not linearizable" in first.failure
    assert f"--bug {bug}" in first.failure  # the replay command is in the message
    replayed, world = harness.run_seed(PAXOS, first.seed, bugs=frozenset({bug}), trace=True)
    again, world_again = harness.run_seed(PAXOS, first.seed, bugs=frozenset({bug}),
                                          trace=True)
    assert replayed.failure == first.failure
    assert world.trace_text() == world_again.trace_text()
    assert replayed == again
    clean, _ = harness.run_seed(PAXOS, first.seed)
    assert clean.ok, clean.failure  # the same schedule without the bug is fine


def test_the_command_runs_paxos_through_the_shared_code_path(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "paxos", "--list-bugs"]) == 0
    names = [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert names == sorted(BUG_CATALOGUE)
    assert main(["sim", "paxos", "--seed", "3", "--nodes", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(" is leader at ballot " in line for line in lines)
    assert any("Accept(b=" in line for line in lines)
    assert lines[-1].startswith("seed 3 (3 nodes, ")
    assert main(["sim", "paxos", "--seed", "3", "--nodes", "3", "--no-trace",
                 "--bug", "decide-without-majority"]) == 1
    assert "which no majority accepted" in capsys.readouterr().out
