"""Spanner's timestamps in the transaction cores: commit timestamps above every prepare
timestamp and TrueTime's latest, snapshot reads that wait out what is prepared below them and
promise their timestamp, and timestamps that only move forward across restarts."""

from __future__ import annotations

from distlab.core.ids import NodeId
from distlab.protocols.txn import (
    Decision,
    PlantedBugs,
    RecordKind,
    SnapshotReadReply,
    Vote,
    decode,
)
from tests.unit.txn.cluster import Cluster

MS = 1_000_000


def keys_on(cluster: Cluster, nodes: list[int]) -> list[str]:
    found: dict[int, str] = {}
    index = 0
    while len(found) < len(nodes):
        key = f"k{index}"
        owner = int(cluster.owner(key))
        if owner in nodes:
            found.setdefault(owner, key)
        index += 1
    return [found[node] for node in nodes]


def timestamped(bugs: PlantedBugs | None = None) -> Cluster:
    cluster = Cluster(3, bugs=bugs or PlantedBugs(), timestamps=True)
    for node in (1, 2, 3):
        cluster.set_time(node, 1000 * MS, 1008 * MS)
    return cluster


def records(cluster: Cluster, node: int, kind: RecordKind) -> list:
    return [record for record in (decode(k, body) for k, body in cluster.logs[NodeId(node)])
            if record.kind is kind]


def test_the_commit_timestamp_is_above_every_prepare_timestamp() -> None:
    cluster = timestamped()
    # Participant 3's clock runs ahead: its prepare timestamp is above the coordinator's now.
    cluster.set_time(3, 1500 * MS, 1508 * MS)
    a, b = keys_on(cluster, [2, 3])
    cluster.begin(1, "t1", [f"put:{a}=1", f"put:{b}=2"])
    cluster.deliver()
    outcome = cluster.outcomes["t1"]
    votes = {m.sender: m.ts for m in cluster.sent if isinstance(m, Vote)}
    assert votes[NodeId(3)] == 1508 * MS and votes[NodeId(2)] == 1008 * MS
    assert outcome.committed and outcome.commit_wait
    assert outcome.ts is not None and outcome.ts >= 1508 * MS
    decisions = {m.ts for m in cluster.sent if isinstance(m, Decision)}
    assert decisions == {outcome.ts}
    # Both participants log and keep the version at the commit timestamp.
    for node, key, value in ((2, a, "1"), (3, b, "2")):
        assert [r.ts for r in records(cluster, node, RecordKind.COMMITTED)] == [outcome.ts]
        assert cluster.versions[NodeId(node)].read_at(key, outcome.ts) == value
        assert cluster.versions[NodeId(node)].read_at(key, outcome.ts - 1) is None


def test_a_planted_bug_commits_below_a_prepare_timestamp() -> None:
    cluster = timestamped(PlantedBugs(ts_below_prepare=True))
    cluster.set_time(3, 1500 * MS, 1508 * MS)
    a, b = keys_on(cluster, [2, 3])
    cluster.begin(1, "t1", [f"put:{a}=1", f"put:{b}=2"])
    cluster.deliver()
    outcome = cluster.outcomes["t1"]
    assert outcome.ts is not None and outcome.ts < 1508 * MS


def test_a_snapshot_read_waits_for_what_is_prepared_below_it() -> None:
    cluster = timestamped()
    a, b = keys_on(cluster, [2, 3])
    cluster.begin(1, "setup", [f"put:{a}=old", f"put:{b}=old"])
    cluster.deliver()
    # t1 prepares at 2 and 3, but its COMMIT is held back.
    cluster.begin(1, "t1", [f"put:{a}=new", f"put:{b}=new"])
    cluster.deliver(drop=lambda m: isinstance(m, Decision) and m.txn == "t1")
    prepared = [m.ts for m in cluster.sent if isinstance(m, Vote) and m.txn == "t1"]
    read_ts = max(p for p in prepared if p is not None) + 10 * MS
    cluster.node(1).begin_read("r1", (a, b), read_ts)
    cluster.drain_node(NodeId(1))
    cluster.deliver(drop=lambda m: isinstance(m, Decision) and m.txn == "t1")
    assert "r1" not in cluster.outcomes  # both participants wait for t1
    # Each promised the read's timestamp, durably, before answering anything.
    for node in (2, 3):
        assert read_ts in [r.ts for r in records(cluster, node, RecordKind.SAFE_TIME)]
    cluster.tick(cluster.node(1).config.timeouts.resend)  # the coordinator resends COMMIT
    outcome = cluster.outcomes["r1"]
    assert outcome.committed and outcome.ts == read_ts and not outcome.commit_wait
    assert dict(outcome.reads) == {a: "new", b: "new"}
    # A transaction prepared after the read gets a timestamp above it.
    cluster.begin(1, "t2", [f"put:{a}=later"])
    cluster.deliver()
    later = [m.ts for m in cluster.sent if isinstance(m, Vote) and m.txn == "t2"]
    assert later and all(ts is not None and ts > read_ts for ts in later)


def test_a_planted_bug_answers_a_read_below_a_prepared_transaction() -> None:
    cluster = timestamped(PlantedBugs(read_below_safe_time=True))
    a, b = keys_on(cluster, [2, 3])
    cluster.begin(1, "setup", [f"put:{a}=old", f"put:{b}=old"])
    cluster.deliver()
    cluster.begin(1, "t1", [f"put:{a}=new", f"put:{b}=new"])
    cluster.deliver(drop=lambda m: isinstance(m, Decision) and m.txn == "t1")
    cluster.node(1).begin_read("r1", (a, b), 2000 * MS)
    cluster.drain_node(NodeId(1))
    cluster.deliver(drop=lambda m: isinstance(m, Decision) and m.txn == "t1")
    assert dict(cluster.outcomes["r1"].reads) == {a: "old", b: "old"}


def test_timestamps_move_forward_across_a_restart() -> None:
    cluster = timestamped()
    (a,) = keys_on(cluster, [2])
    cluster.node(1).begin_read("r1", (a,), 5000 * MS)
    cluster.drain_node(NodeId(1))
    cluster.deliver()
    assert cluster.outcomes["r1"].committed
    cluster.crash(NodeId(2))
    cluster.start(NodeId(2))
    assert cluster.node(2).stamps.assigned == 5000 * MS
    cluster.begin(1, "t1", [f"put:{a}=1"])
    cluster.deliver()
    assert cluster.outcomes["t1"].ts is not None and cluster.outcomes["t1"].ts > 5000 * MS


def test_without_timestamps_reads_at_a_timestamp_are_refused() -> None:
    cluster = Cluster(2)
    cluster.node(1).begin_read("r1", ("a",), 1)
    cluster.drain_node(NodeId(1))
    outcome = cluster.outcomes["r1"]
    assert not outcome.committed and "timestamps" in outcome.reason
    assert not [m for m in cluster.sent if isinstance(m, SnapshotReadReply)]
