"""Each planted bug changes the one rule it names, and nothing else."""

from __future__ import annotations

from random import Random

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos import (
    Accept,
    Accepted,
    AcceptedReply,
    Ballot,
    Config,
    Decision,
    MemoryStorage,
    MultiPaxos,
    Prepare,
    Promise,
    Role,
    Value,
)

from .paxos_harness import Cluster

N1, N2, N3 = NodeId(1), NodeId(2), NodeId(3)
VOTERS = frozenset({N1, N2, N3})


def member(*bugs: str) -> MultiPaxos:
    return MultiPaxos(Config(N1, VOTERS, planted_bugs=frozenset(bugs)), MemoryStorage(),
                      Random(1))


def promise_then_accept_lower(core: MultiPaxos) -> tuple[Accepted, ...]:
    core.step(Prepare(N3, N1, Ballot(5, N3), 1))
    core.ready()
    core.advance()
    core.step(Accept(N2, N1, Ballot(4, N2), (Decision(1, Value(b"x", Ballot(4, N2))),), 0, 1,
                     0))
    ready = core.ready()
    core.advance()
    return ready.accepted


def test_accept_lower_ballot() -> None:
    assert promise_then_accept_lower(member()) == ()
    planted = member("accept-lower-ballot")
    (triple,) = promise_then_accept_lower(planted)
    assert triple.ballot == Ballot(4, N2) and planted.promised == Ballot(5, N3)


def test_promise_not_persisted() -> None:
    for bugs, durable in (((), True), (("promise-not-persisted",), False)):
        core = member(*bugs)
        core.step(Prepare(N2, N1, Ballot(3, N2), 1))
        ready = core.ready()
        assert isinstance(ready.messages[0], Promise) and ready.messages[0].ok
        assert (ready.promised == Ballot(3, N2)) is durable


def lead_after_a_reported_value(*bugs: str) -> Value:
    core = member(*bugs)
    core.step(Prepare(N2, N1, Ballot(1, N2), 1))  # n2's earlier ballot, under which...
    core.ready()
    core.advance()
    core.campaign()
    core.ready()
    core.advance()  # our own promise counts once durable
    # ...a majority (n2 and n3) accepted a value that n2 now reports.
    reported = Accepted(1, Ballot(1, N2), Value(b"chosen", Ballot(1, N2)))
    core.step(Promise(N2, N1, core.ballot, ok=True, promised=core.ballot,
                      accepted=(reported,)))
    assert core.role is Role.LEADER
    core.propose_batch([b"mine"])
    ready = core.ready()
    return next(t.value for t in ready.accepted if t.slot == 1)


def test_ignore_accepted_value() -> None:
    assert lead_after_a_reported_value().command == b"chosen"
    assert lead_after_a_reported_value("ignore-accepted-value").command == b"mine"


def decided_with_one_acceptance(*bugs: str) -> bool:
    cluster = Cluster(3, planted_bugs=frozenset(bugs))
    leader = cluster.elect(N1)
    cluster.isolate(N1)
    leader.propose_batch([b"alone"])
    cluster.settle()
    return leader.commit_index == 1


def test_decide_without_majority() -> None:
    assert not decided_with_one_acceptance()
    assert decided_with_one_acceptance("decide-without-majority")


def test_a_refused_acceptance_counts_for_nothing() -> None:
    cluster = Cluster(3, planted_bugs=frozenset({"decide-without-majority"}))
    leader = cluster.elect(N1)
    leader.step(AcceptedReply(N2, N1, leader.ballot, ok=False, promised=leader.ballot,
                              slots=(1,), applied=0, commit_index=0))
    assert leader.commit_index == 0


def test_read_without_confirm() -> None:
    for bugs, served in (((), False), (("read-without-confirm",), True)):
        cluster = Cluster(3, planted_bugs=frozenset(bugs))
        leader = cluster.elect(N1)
        cluster.isolate(N1)
        assert leader.read_index(b"r")
        cluster.settle()
        states = [s for r in cluster.members[N1].readys for s in r.read_states]
        assert bool(states) is served
