"""Seed sweeps of Raft under the real driver: a correct core survives hundreds of fault
schedules (network, disk and clock faults, several groups), and every bug of the catalogue
is caught within a few hundred seeds, its failing seed replaying byte for byte. The longer
sweep is a command: `distlab sim raft --seeds 2000 --jobs 2`."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from distlab.protocols.raft import BUG_CATALOGUE
from distlab.sim import harness
from distlab.sim.faults import FaultMix
from distlab.sim.shrink import failure_kind, shrink

SWEEP_SEEDS = 300
# A sweep that plants a bug must fail within this many seeds.
BUG_SEEDS = 500
RAFT = harness.protocol("raft")


@pytest.mark.slow
def test_a_sweep_over_three_five_and_seven_nodes_finds_nothing() -> None:
    started = time.monotonic()
    report = harness.sweep(RAFT, range(1, SWEEP_SEEDS + 1), jobs=2)
    wall_seconds = time.monotonic() - started
    results = report.results
    assert len(results) == SWEEP_SEEDS
    assert {result.nodes for result in results} == {3, 5, 7}
    assert {result.groups for result in results} >= {1, 2, 3}
    failures = report.failures
    summary = "\n".join(f"seed {failure.seed}: {failure.failure}" for failure in failures[:20])
    assert not failures, f"{len(failures)} failing seeds:\n{summary}"
    assert not report.unknown, f"checker verdicts unknown: {[r.seed for r in report.unknown]}"
    # The runs did real work under real faults: clients saw operations happen, each run had
    # its faults, and disks rotted and failed in some of them (found, not trusted).
    assert sum(result.operations["ok"] for result in results) > 20 * SWEEP_SEEDS
    assert all(result.faults > 0 for result in results)
    detected = [fault for result in results for fault in result.detected_faults]
    assert any("checksum" in fault for fault in detected)
    assert any("fsync failed" in fault for fault in detected)
    print(f"{SWEEP_SEEDS} seeds in {wall_seconds:.1f} s "
          f"({SWEEP_SEEDS / wall_seconds:.1f} seeds/s, 2 processes)")


@pytest.mark.parametrize("bug", sorted(BUG_CATALOGUE))
def test_each_planted_bug_is_caught_and_its_seed_replays(bug: str) -> None:
    report = harness.sweep(RAFT, range(1, BUG_SEEDS + 1), bugs=frozenset({bug}),
                           stop_after_failures=1)
    failures = report.failures
    assert failures, f"{bug} survived {BUG_SEEDS} seeds"
    first = failures[0]
    assert first.failure is not None and f"seed={first.seed} " in first.failure
    assert f"--bug {bug}" in first.failure  # the replay command is in the message
    replayed, world = harness.run_seed(RAFT, first.seed, bugs=frozenset({bug}), trace=True)
    again, world_again = harness.run_seed(RAFT, first.seed, bugs=frozenset({bug}), trace=True)
    assert replayed.failure == first.failure
    assert world.trace_text().encode() == world_again.trace_text().encode()
    assert replayed == again


def test_the_same_seed_without_the_bug_passes() -> None:
    """The failures above are the bugs', not the schedules': the first failing seed of a
    bug passes with a correct core."""
    for bug in sorted(BUG_CATALOGUE):
        failing = harness.sweep(RAFT, range(1, BUG_SEEDS + 1), bugs=frozenset({bug}),
                                stop_after_failures=1).failures[0]
        tuned = harness.plan_run(RAFT, failing.seed, bugs=frozenset({bug}))
        correct = harness.plan_run(RAFT, failing.seed)
        # With the bug's tuning but no bug planted (the plan minus the planted bug).
        result, _ = harness.execute(RAFT, _without_bugs(tuned))
        assert result.ok, f"{bug}: seed {failing.seed} fails without the bug: {result.failure}"
        plain, _ = harness.execute(RAFT, correct)
        assert plain.ok, plain.failure


def _without_bugs(plan: harness.RunPlan) -> harness.RunPlan:
    return replace(plan, bugs=frozenset(),
                   options=replace(plan.options, planted_bugs=frozenset()))


def test_ack_before_persist_shows_only_when_disks_lose_unsynced_writes() -> None:
    bug = frozenset({"ack-before-persist"})
    kept = harness.sweep(RAFT, range(1, 61), bugs=bug, mix=FaultMix(lose_unsynced=False))
    assert not kept.failures, (
        "with every write surviving a crash, an early acknowledgement is harmless: "
        f"{kept.failures[0].failure}")
    lost = harness.sweep(RAFT, range(1, BUG_SEEDS + 1), bugs=bug, stop_after_failures=1)
    assert lost.failures
    assert "acknowledged entry" in (lost.failures[0].failure or "")


def test_shrinking_a_planted_bug_leaves_a_short_schedule_that_still_fails() -> None:
    bug = frozenset({"stale-vote-count"})
    failing = harness.sweep(RAFT, range(1, BUG_SEEDS + 1), bugs=bug,
                            stop_after_failures=1).failures[0]
    plan = harness.plan_run(RAFT, failing.seed, bugs=bug)
    shrunk = shrink(RAFT, plan)
    assert len(shrunk.schedule) <= 20
    assert len(shrunk.schedule) < len(plan.schedule)
    assert not shrunk.result.ok and shrunk.result.failure is not None
    assert failure_kind(shrunk.result.failure) == failure_kind(failing.failure or "")
    # the schedule printed is the one that fails: replaying it fails the same way
    again, _ = harness.execute(RAFT, replace(plan, schedule=shrunk.schedule))
    assert again.failure == shrunk.result.failure
