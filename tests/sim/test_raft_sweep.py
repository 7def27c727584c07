"""Seed sweeps: thousands of random fault schedules with every invariant checked each step."""

from __future__ import annotations

import pytest

from distlab.core.ids import NO_NODE
from distlab.protocols.raft import Raft, RequestVote, RequestVoteReply
from distlab.runtime.sim.swarm import run_seed, sweep

SWEEP_SEEDS = 2000


@pytest.mark.slow
def test_seed_sweep_has_no_invariant_violations() -> None:
    results = sweep(range(1, SWEEP_SEEDS + 1))
    assert len(results) == SWEEP_SEEDS
    sizes = {result.nodes for result in results}
    assert sizes == {3, 5, 7}
    failures = [result for result in results if not result.ok]
    report = "\n".join(f"seed {failure.seed}: {failure.failure}" for failure in failures[:20])
    assert not failures, f"{len(failures)} failing seeds:\n{report}"
    # the runs did real work: clients saw commands commit through the faults
    assert sum(result.commands_committed for result in results) > 5 * SWEEP_SEEDS


def test_same_seed_gives_the_same_trace_byte_for_byte() -> None:
    first, first_cluster = run_seed(4242, trace=True)
    second, second_cluster = run_seed(4242, trace=True)
    assert first_cluster is not None and second_cluster is not None
    trace = first_cluster.trace_text()
    assert first.ok, first.failure
    assert "becomes leader" in trace and "dropped" in trace
    assert trace.encode() == second_cluster.trace_text().encode()
    assert first == second
    _, other_cluster = run_seed(4243, trace=True)
    assert other_cluster is not None
    assert other_cluster.trace_text() != trace, "different seeds should differ"


class GrantsVotesToStaleLogs(Raft):
    """A broken core: it votes without Raft's election restriction (the log check), so a
    candidate missing committed entries can win and overwrite them."""

    def _handle_vote_request(self, message: RequestVote) -> None:
        can_vote = (
            self.vote == message.sender
            or (self.vote == NO_NODE and self.leader_id == NO_NODE)
            or (message.pre_vote and message.term > self.term)
        )
        reply_term = message.term if can_vote else self.term
        self._send(
            RequestVoteReply(
                reply_term, self.id, message.sender, granted=can_vote, pre_vote=message.pre_vote
            )
        )
        if can_vote and not message.pre_vote:
            self._election_elapsed = 0
            self.vote = message.sender


def test_sweep_catches_a_broken_core() -> None:
    results = sweep(range(1, 401), raft_class=GrantsVotesToStaleLogs, stop_after_failures=1)
    failures = [result for result in results if not result.ok]
    assert failures, "the sweep let a core without the election restriction pass"
    message = failures[0].failure or ""
    assert f"seed={failures[0].seed}" in message
    assert "invariant violated" in message
    # and the failing seed replays to the same failure
    replay, _ = run_seed(failures[0].seed, raft_class=GrantsVotesToStaleLogs)
    assert replay.failure == failures[0].failure
