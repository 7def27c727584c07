"""The Multi-Paxos checker fails on each property it states (it is not a checker that always
passes), and accepts what a correct group does."""

from __future__ import annotations

from random import Random

import pytest

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos import (
    Accepted,
    AcceptedReply,
    Ballot,
    Config,
    Decision,
    Entry,
    MemoryStorage,
    MultiPaxos,
    Promise,
    Ready,
    Value,
)
from distlab.sim.paxos.invariants import InvariantViolation, PaxosInvariants

N1, N2, N3 = NodeId(1), NodeId(2), NodeId(3)
VOTERS = frozenset({N1, N2, N3})
B1, B2 = Ballot(1, N1), Ballot(2, N2)
X, Y = Value(b"x", B1), Value(b"y", B2)


def ready(**parts: object) -> Ready:
    fields: dict[str, object] = {"promised": None, "accepted": (), "decided": (),
                                 "snapshot": None, "messages": (), "committed_entries": (),
                                 "read_states": ()}
    fields.update(parts)
    return Ready(**fields)  # type: ignore[arg-type]


def checker_with_members() -> tuple[PaxosInvariants, dict[NodeId, MultiPaxos]]:
    checker = PaxosInvariants(0, VOTERS)
    cores = {node: MultiPaxos(Config(node, VOTERS), MemoryStorage(), Random(1))
             for node in VOTERS}
    for node, core in cores.items():
        checker.node_started(node, core)
    checker.proposed_commands([b"x"], B1)
    checker.proposed_commands([b"y"], B2)
    return checker, cores


def accept(checker: PaxosInvariants, cores: dict[NodeId, MultiPaxos], node: NodeId,
           slot: int, ballot: Ballot, value: Value) -> None:
    checker.after_ready(node, cores[node], ready(accepted=(Accepted(slot, ballot, value),)))


def test_a_correct_history_passes() -> None:
    checker, cores = checker_with_members()
    accept(checker, cores, N1, 1, B1, X)
    accept(checker, cores, N2, 1, B1, X)
    accept(checker, cores, N3, 1, B2, X)  # a later ballot re-proposing the chosen value
    checker.after_ready(N1, cores[N1], ready(decided=(Decision(1, X),),
                                             committed_entries=(Entry(1, B1.as_int(), b"x"),)))
    assert checker.chosen == {1: X}


def test_two_values_chosen_in_one_slot_fail() -> None:
    checker, cores = checker_with_members()
    accept(checker, cores, N1, 1, B1, X)
    accept(checker, cores, N2, 1, B1, X)
    accept(checker, cores, N2, 1, B2, Y)
    with pytest.raises(InvariantViolation, match="two values chosen in slot 1"):
        accept(checker, cores, N3, 1, B2, Y)


def test_a_value_nobody_proposed_fails() -> None:
    checker, cores = checker_with_members()
    forged = Value(b"forged", B1)
    accept(checker, cores, N1, 1, B1, forged)
    with pytest.raises(InvariantViolation, match="no leader proposed"):
        accept(checker, cores, N2, 1, B1, forged)


def test_a_decision_without_a_majority_fails() -> None:
    checker, cores = checker_with_members()
    accept(checker, cores, N1, 1, B1, X)
    with pytest.raises(InvariantViolation, match="which no majority accepted"):
        checker.after_ready(N1, cores[N1], ready(decided=(Decision(1, X),)))


def test_replicas_applying_different_commands_fail() -> None:
    checker, cores = checker_with_members()
    accept(checker, cores, N1, 1, B1, X)
    accept(checker, cores, N2, 1, B1, X)
    checker.after_ready(N1, cores[N1], ready(committed_entries=(Entry(1, B1.as_int(), b"x"),)))
    with pytest.raises(InvariantViolation, match="replicas disagree"):
        checker.after_ready(N2, cores[N2],
                            ready(committed_entries=(Entry(1, B2.as_int(), b"y"),)))


def test_a_promise_forgotten_by_a_restart_fails() -> None:
    checker, _ = checker_with_members()
    checker.message_sent(N3, Promise(N3, N2, B2, ok=True, promised=B2))
    checker.node_stopped(N3)
    with pytest.raises(InvariantViolation, match="restarted with promise"):
        checker.node_started(N3, MultiPaxos(Config(N3, VOTERS), MemoryStorage(), Random(1)))


def test_an_acknowledged_acceptance_forgotten_by_a_restart_fails() -> None:
    checker, _ = checker_with_members()
    checker.message_sent(N3, AcceptedReply(N3, N1, B1, ok=True, promised=B1, slots=(4,),
                                           applied=0, commit_index=0))
    storage = MemoryStorage()
    storage.persist(ready(promised=B1))
    with pytest.raises(InvariantViolation, match="acknowledged slot 4"):
        checker.node_started(N3, MultiPaxos(Config(N3, VOTERS), storage, Random(1)))
