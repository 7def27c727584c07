"""Seed sweeps of 2PC and 3PC over nodes: 2PC keeps atomicity and the bank's total under
every fault (it may block, never disagree); 3PC keeps them when processes only crash, and
disagrees once the network partitions; each planted bug is caught within 500 seeds, at the
first failing seed of the sweep. Longer sweeps are commands (`distlab sim txn --seeds 2000`)."""

from __future__ import annotations

import pytest

from distlab.protocols.txn import BUG_CATALOGUE, Protocol
from distlab.sim import harness
from distlab.sim.txn import variant

# Few seeds: the test suite's budget; 2000-seed sweeps are commands.
CLEAN_SEEDS = 60
BUG_SEEDS = 500


def _summary(report: harness.SweepReport) -> str:
    return "\n".join(f"seed {failure.seed}: {failure.failure}" for failure in report.failures)


def test_two_phase_commit_keeps_atomicity_and_the_total_under_every_fault() -> None:
    spec = variant(Protocol.TWO_PHASE, "all")
    report = harness.sweep(spec, range(1, CLEAN_SEEDS + 1))
    assert not report.failures, _summary(report)
    results = report.results
    assert {result.nodes for result in results} == {3, 5, 7}
    assert sum(result.operations["ok"] for result in results) > 10 * CLEAN_SEEDS
    # Coordinators died or were cut off with participants prepared: 2PC blocked them.
    assert sum(int(result.verdict.split(", ")[2].split()[0]) for result in results) > 0


def test_three_phase_commit_keeps_atomicity_when_processes_only_crash() -> None:
    spec = variant(Protocol.THREE_PHASE, "crash")
    report = harness.sweep(spec, range(1, CLEAN_SEEDS + 1))
    assert not report.failures, _summary(report)
    # The termination protocol ran: participants decided without their coordinator.
    assert any("0 terminated" not in result.verdict for result in report.results)


def test_three_phase_commit_disagrees_under_partitions() -> None:
    spec = variant(Protocol.THREE_PHASE, "all")
    report = harness.sweep(spec, range(1, BUG_SEEDS + 1), stop_after_failures=1)
    failure = report.failures[0]
    assert failure.failure is not None and "atomicity" in failure.failure
    assert f"seed={failure.seed}" in failure.failure
    assert "--protocol 3pc --faults all" in failure.failure


@pytest.mark.parametrize("bug", sorted(BUG_CATALOGUE))
def test_each_planted_bug_is_caught(bug: str) -> None:
    spec = variant(Protocol.TWO_PHASE, "all")
    report = harness.sweep(spec, range(1, BUG_SEEDS + 1), bugs=frozenset({bug}),
                           stop_after_failures=1)
    assert report.failures, f"{bug} survived {BUG_SEEDS} seeds"
    failure = report.failures[0]
    assert failure.failure is not None and "invariant violated" in failure.failure
    # The failing seed replays exactly.
    plan = harness.plan_run(spec, failure.seed, bugs=frozenset({bug}))
    again, _ = harness.execute(spec, plan)
    assert again.failure == failure.failure
