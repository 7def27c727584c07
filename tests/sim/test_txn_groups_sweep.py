"""Seed sweeps of 2PC and 3PC over consensus groups: 2PC keeps atomicity and the bank's
total under every fault, 3PC when processes only crash; each planted bug is caught within a
few seeds of three-node clusters and its failing seed replays exactly. Longer sweeps are
commands (`distlab sim txn --participants groups --seeds 2000`)."""

from __future__ import annotations

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.txn import BUG_CATALOGUE, LogRecord, Protocol, RecordKind, Vote
from distlab.sim import harness
from distlab.sim.txn import variant
from distlab.sim.txn.groups import group_label, spread_accounts
from distlab.sim.txn.invariants import InvariantViolation, TxnInvariants
from distlab.wire.sharding import group_of

# Few seeds: the test suite's budget.
CLEAN_SEEDS = 30
BUG_SEEDS = 30
# Three-node clusters run fastest, and a leader change there is as likely as anywhere.
SMALL = 3
G0, G1 = NodeId(1), NodeId(2)


def _summary(report: harness.SweepReport) -> str:
    return "\n".join(f"seed {failure.seed}: {failure.failure}" for failure in report.failures)


def test_two_phase_commit_over_groups_keeps_atomicity_and_the_total_under_every_fault() -> None:
    spec = variant(Protocol.TWO_PHASE, "all", "groups")
    seeds = range(1, CLEAN_SEEDS + 1)
    report = harness.sweep(spec, seeds)
    assert not report.failures, _summary(report)
    results = report.results
    assert {result.groups for result in results} == {1, 2, 3}
    assert {harness.plan_run(spec, seed).options.engine for seed in seeds} == {"raft", "paxos"}
    assert sum(result.operations["ok"] for result in results) > 5 * CLEAN_SEEDS


def test_three_phase_commit_over_groups_keeps_atomicity_when_processes_only_crash() -> None:
    report = harness.sweep(variant(Protocol.THREE_PHASE, "crash", "groups"),
                           range(1, CLEAN_SEEDS // 2 + 1), SMALL)
    assert not report.failures, _summary(report)


@pytest.mark.parametrize("bug", sorted(BUG_CATALOGUE))
def test_each_planted_bug_is_caught_over_groups(bug: str) -> None:
    spec = variant(Protocol.TWO_PHASE, "all", "groups")
    report = harness.sweep(spec, range(1, BUG_SEEDS + 1), SMALL, bugs=frozenset({bug}),
                           stop_after_failures=1)
    assert report.failures, f"{bug} survived {BUG_SEEDS} seeds over groups"
    failure = report.failures[0]
    assert failure.failure is not None and "invariant violated" in failure.failure
    assert "--participants groups" in failure.failure
    plan = harness.plan_run(spec, failure.seed, SMALL, bugs=frozenset({bug}))
    again, _ = harness.execute(spec, plan)
    assert again.failure == failure.failure


def test_accounts_are_dealt_over_every_group() -> None:
    for groups in (1, 2, 3):
        accounts = spread_accounts(4, groups)
        assert len(set(accounts)) == 4
        assert {group_of(account, groups) for account in accounts} == set(range(groups))


def _prepared(txn: str) -> LogRecord:
    return LogRecord(RecordKind.PREPARED, txn, coordinator=G0, participants=(G0, G1))


def _voted_yes(invariants: TxnInvariants, txn: str) -> None:
    for group in (G0, G1):
        invariants.message_sent(group, Vote(group, G0, txn, Protocol.TWO_PHASE, True))


def test_groups_that_apply_different_outcomes_break_atomicity() -> None:
    invariants = TxnInvariants(label=group_label)
    for group in (G0, G1):
        invariants.record_applied(group, _prepared("t1"))
    _voted_yes(invariants, "t1")
    invariants.record_applied(G0, LogRecord(RecordKind.COMMITTED, "t1"))
    invariants.record_applied(G0, LogRecord(RecordKind.COMMITTED, "t1"))  # a replica's replay
    with pytest.raises(InvariantViolation, match="atomicity: transaction t1 committed at "
                                                 "group 0 but aborted at group 1"):
        invariants.record_applied(G1, LogRecord(RecordKind.ABORTED, "t1"))


def test_a_commit_applied_before_every_prepared_is_a_violation() -> None:
    invariants = TxnInvariants(label=group_label)
    invariants.record_applied(G0, _prepared("t1"))
    with pytest.raises(InvariantViolation, match="coordinator group 0 applied a commit before "
                                                 "group 1 applied its PREPARED"):
        invariants.record_applied(G0, LogRecord(RecordKind.COORDINATOR_COMMIT, "t1",
                                                participants=(G0, G1)))
    invariants.record_applied(G1, _prepared("t1"))
    _voted_yes(invariants, "t1")
    invariants.record_applied(G0, LogRecord(RecordKind.COORDINATOR_COMMIT, "t1",
                                            participants=(G0, G1)))
    assert invariants.committed == {"t1"}
