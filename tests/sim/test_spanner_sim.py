"""`distlab sim spanner`: 2PC over groups with TrueTime's timestamps keeps external
consistency with every clock skewed within its epsilon, and each planted timestamp bug is
caught within a few seeds, its failing seed replaying exactly. Longer sweeps are commands
(`distlab sim spanner --seeds 2000 --jobs 2`)."""

from __future__ import annotations

import pytest

from distlab.cli.main import main
from distlab.protocols.txn import TIMESTAMP_BUG_CATALOGUE
from distlab.sim import harness
from distlab.sim.txn.spanner import NAME, SKEW_SHARE

CLEAN_SEEDS = 12
# Each was caught by seed 2 of the default sizes: margin for the suite's budget.
BUG_SEEDS = 10


def _summary(report: harness.SweepReport) -> str:
    return "\n".join(f"seed {failure.seed}: {failure.failure}" for failure in report.failures)


def test_clocks_are_skewed_within_their_epsilon_and_runs_span_two_groups_or_more() -> None:
    spec = harness.protocol(NAME)
    skews = []
    for seed in range(1, CLEAN_SEEDS + 1):
        plan = harness.plan_run(spec, seed)
        assert plan.groups >= 2 and plan.options.timestamps
        for settings in plan.node_settings:
            assert abs(settings.wall_skew_ms) <= SKEW_SHARE * settings.epsilon.low_ms
            assert abs(settings.clock_rate - 1.0) <= 1e-5
            skews.append(settings.wall_skew_ms)
    assert min(skews) < -1.0 and max(skews) > 1.0


def test_a_clean_sweep_is_externally_consistent() -> None:
    report = harness.sweep(harness.protocol(NAME), range(1, CLEAN_SEEDS + 1))
    assert not report.failures, _summary(report)
    assert sum(result.operations["ok"] for result in report.results) > 10 * CLEAN_SEEDS


@pytest.mark.parametrize("bug", sorted(TIMESTAMP_BUG_CATALOGUE))
def test_each_timestamp_bug_is_caught(bug: str) -> None:
    spec = harness.protocol(NAME)
    report = harness.sweep(spec, range(1, BUG_SEEDS + 1), bugs=frozenset({bug}),
                           stop_after_failures=1)
    assert report.failures, f"{bug} survived {BUG_SEEDS} seeds"
    failure = report.failures[0]
    assert failure.failure is not None
    expected = "refused a record" if bug == "ts-below-prepare" else "not externally consistent"
    assert expected in failure.failure, failure.failure
    assert f"--seed {failure.seed}" in failure.failure
    again, _ = harness.run_seed(spec, failure.seed, bugs=frozenset({bug}))
    assert again.failure == failure.failure


def test_list_bugs_names_the_timestamp_bugs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "spanner", "--list-bugs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == sorted(TIMESTAMP_BUG_CATALOGUE)


def test_a_bug_of_another_catalogue_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "spanner", "--seeds", "3", "--bug", "commit-before-log"]) == 2
    assert "unknown bug 'commit-before-log'" in capsys.readouterr().err


def test_a_planted_bug_prints_its_failing_seed_and_replay(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "spanner", "--seeds", str(BUG_SEEDS), "--bug", "no-commit-wait"]) == 1
    out = capsys.readouterr().out
    assert "first failing seed:" in out
    assert "replay: distlab sim spanner --seed" in out and "--bug no-commit-wait" in out
