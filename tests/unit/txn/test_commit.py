"""The cores in the common cases, over a synchronous network."""

from distlab.core.ids import NodeId
from distlab.protocols.txn import (
    CoordinatorState,
    Decision,
    ParticipantState,
    PlantedBugs,
    Prepare,
    RecordKind,
    decode,
)
from tests.unit.txn.cluster import Cluster


def keys_on_distinct_nodes(cluster: Cluster, count: int) -> list[str]:
    keys, owners = [], set()
    index = 0
    while len(keys) < count:
        key = f"a{index}"
        index += 1
        if cluster.owner(key) not in owners:
            owners.add(cluster.owner(key))
            keys.append(key)
    return keys


def test_a_transfer_commits_everywhere_and_returns_its_reads() -> None:
    cluster = Cluster(3, initial={})
    a, b = keys_on_distinct_nodes(cluster, 2)
    cluster.begin(1, "t1", [f"put:{a}=10", f"add:{b}=5", f"get:{a}"])
    cluster.deliver()
    outcome = cluster.outcomes["t1"]
    assert outcome.committed and dict(outcome.reads) == {a: "10"}
    assert cluster.store(int(cluster.owner(a)))[a] == "10"
    assert cluster.store(int(cluster.owner(b)))[b] == "5"
    # Every participant forgot it; the coordinator logged COMMIT then END.
    assert not cluster.node(1).in_doubt()
    kinds = [decode(kind, body).kind for kind, body in cluster.logs[NodeId(1)]]
    assert kinds.index(RecordKind.COORDINATOR_COMMIT) < kinds.index(RecordKind.COORDINATOR_END)


def test_require_that_fails_aborts_and_changes_nothing() -> None:
    cluster = Cluster(3)
    a, b = keys_on_distinct_nodes(cluster, 2)
    cluster.begin(2, "t1", [f"require:{a}>=1", f"add:{a}=-1", f"add:{b}=1"])
    cluster.deliver()
    outcome = cluster.outcomes["t1"]
    assert not outcome.committed and "require" in outcome.reason
    assert a not in cluster.store(int(cluster.owner(a)))
    assert b not in cluster.store(int(cluster.owner(b)))
    # Presumed abort: the coordinator logged nothing.
    assert cluster.logs[NodeId(2)] == [] or all(
        decode(k, body).kind not in (RecordKind.COORDINATOR_COMMIT,)
        for k, body in cluster.logs[NodeId(2)])


def test_three_phase_commit_goes_through_precommit() -> None:
    cluster = Cluster(3)
    a, b, c = keys_on_distinct_nodes(cluster, 3)
    cluster.begin(1, "t1", [f"add:{a}=1", f"add:{b}=2", f"add:{c}=3"], protocol="3pc")
    cluster.deliver()
    assert cluster.outcomes["t1"].committed
    assert [cluster.store(int(cluster.owner(k)))[k] for k in (a, b, c)] == ["1", "2", "3"]
    kinds = {type(message).__name__ for message in cluster.sent}
    assert {"PreDecide", "PreDecideAck", "Decision", "DecisionAck"} <= kinds


def test_wait_die_younger_dies_older_waits() -> None:
    cluster = Cluster(1)
    # The older transaction (priority 1) holds k; a younger one (priority 5) dies.
    cluster.begin(1, "old", ["add:k=1"], priority=1)
    prepare_old = [m for m in cluster.queue if isinstance(m, Prepare)]
    cluster.queue.clear()
    cluster.node(1).step(prepare_old[0])
    cluster.drain_node(NodeId(1))
    cluster.queue.clear()  # hold the vote back: "old" keeps its lock
    cluster.begin(1, "young", ["add:k=1"], priority=5)
    cluster.deliver()
    young = cluster.outcomes["young"]
    assert not young.committed and young.reason.startswith("wait-die")
    # An even older transaction waits instead, and commits once "old" is decided.
    cluster.begin(1, "older", ["add:k=10"], priority=0)
    cluster.deliver()
    assert "older" not in cluster.outcomes
    assert cluster.node(1).participant.txns["older"].state is ParticipantState.LOCKING
    # The coordinator sends PREPARE again, gets the vote, commits "old"; "older" follows.
    cluster.tick(cluster.node(1).config.timeouts.resend)
    assert cluster.outcomes["old"].committed
    assert cluster.outcomes["older"].committed
    assert cluster.store(1)["k"] == "11"


def test_two_phase_participant_in_doubt_keeps_locks_until_coordinator_returns() -> None:
    cluster = Cluster(3)
    a, b = keys_on_distinct_nodes(cluster, 2)
    coordinator = next(n for n in (1, 2, 3) if NodeId(n) not in {cluster.owner(a),
                                                                  cluster.owner(b)})
    cluster.begin(coordinator, "t1", [f"add:{a}=-3", f"add:{b}=3"])
    # Votes arrive, COMMIT is logged, then the coordinator dies before any COMMIT leaves.
    cluster.deliver(drop=lambda m: isinstance(m, Decision))
    assert cluster.node(coordinator).coordinator.txns["t1"].state is CoordinatorState.COMMITTING
    cluster.crash(NodeId(coordinator))
    cluster.tick(200)
    for key in (a, b):
        participant = cluster.node(int(cluster.owner(key))).participant
        assert participant.txns["t1"].state is ParticipantState.PREPARED
        assert participant.locks.holders(key) == {"t1": participant.txns["t1"].locks[key]}
    # A conflicting younger transaction dies on the held lock.
    cluster.begin(int(cluster.owner(a)), "t2", [f"get:{a}"], priority=9)
    cluster.deliver()
    assert not cluster.outcomes["t2"].committed
    cluster.start(NodeId(coordinator))
    cluster.deliver()
    assert cluster.store(int(cluster.owner(a)))[a] == "-3"
    assert cluster.store(int(cluster.owner(b)))[b] == "3"
    assert not cluster.node(coordinator).in_doubt()


def test_presumed_abort_after_coordinator_restart_without_decision() -> None:
    cluster = Cluster(3)
    a, b = keys_on_distinct_nodes(cluster, 2)
    coordinator = next(n for n in (1, 2, 3) if NodeId(n) not in {cluster.owner(a),
                                                                  cluster.owner(b)})
    cluster.begin(coordinator, "t1", [f"add:{a}=-3", f"add:{b}=3"])
    cluster.crash(NodeId(coordinator))
    cluster.deliver()  # the participants prepare; their votes find no coordinator
    cluster.start(NodeId(coordinator))
    cluster.tick(cluster.node(1).config.timeouts.in_doubt + 2)
    for key in (a, b):
        assert key not in cluster.store(int(cluster.owner(key)))
        assert not cluster.node(int(cluster.owner(key))).in_doubt()


def test_three_phase_participants_terminate_without_the_coordinator() -> None:
    cluster = Cluster(4)
    a, b, c = keys_on_distinct_nodes(cluster, 3)
    coordinator = next(n for n in (1, 2, 3, 4) if NodeId(n) not in {
        cluster.owner(a), cluster.owner(b), cluster.owner(c)})
    cluster.begin(coordinator, "t1", [f"add:{a}=1", f"add:{b}=1", f"add:{c}=1"],
                  protocol="3pc")
    # Only the first PRE-COMMIT gets out before the coordinator dies.
    delivered = []

    def drop(message) -> bool:
        if type(message).__name__ == "PreDecide" and message.round == (0, 0):
            delivered.append(message)
            return len(delivered) > 1
        return False

    cluster.deliver(drop=drop)
    cluster.crash(NodeId(coordinator))
    cluster.deliver()
    cluster.tick(200)
    values = [cluster.store(int(cluster.owner(k))).get(k) for k in (a, b, c)]
    assert values == ["1", "1", "1"]  # one had accepted commit: the terminator commits


def test_forget_locks_bug_leaves_a_prepared_transaction_unlocked() -> None:
    for bugs, expect_locked in ((PlantedBugs(), True),
                                (PlantedBugs(forget_locks_on_restart=True), False)):
        cluster = Cluster(2, bugs=bugs)
        a, b = keys_on_distinct_nodes(cluster, 2)
        cluster.begin(1, "t1", [f"add:{a}=1", f"add:{b}=1"])
        cluster.deliver(drop=lambda m: isinstance(m, Decision))
        owner = cluster.owner(a)
        cluster.crash(owner)
        cluster.start(owner)
        held = cluster.node(int(owner)).participant.locks.holders(a)
        assert ("t1" in held) is expect_locked
