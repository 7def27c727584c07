"""The metrics every driver keeps, named by engine (`distlab_raft_*`, `distlab_paxos_*`) and
labelled by group, so one dashboard shows every group of every node."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

PROPOSAL_BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0,
                    2.0)


@dataclass(frozen=True, slots=True)
class _EngineFamilies:
    leader_changes: Counter
    committed: Counter
    applied: Counter
    pending: Gauge
    proposal_seconds: Histogram
    failed: Counter


_families: dict[str, _EngineFamilies] = {}


def _engine_families(engine: str) -> _EngineFamilies:
    """The metric families of one engine, registered once per process."""
    families = _families.get(engine)
    if families is None:
        prefix = f"distlab_{engine}"
        families = _families[engine] = _EngineFamilies(
            leader_changes=Counter(f"{prefix}_leader_changes_seen_total",
                                   "Leader changes seen by this node.", ["group"]),
            committed=Counter(f"{prefix}_proposals_committed_total",
                              "Entries this node has seen committed.", ["group"]),
            applied=Counter(f"{prefix}_proposals_applied_total",
                            "Entries applied to the state machine.", ["group"]),
            pending=Gauge(f"{prefix}_proposals_pending",
                          "Proposals accepted here and waiting to be applied.", ["group"]),
            proposal_seconds=Histogram(
                f"{prefix}_proposal_duration_seconds",
                "From a proposal's arrival at the leader to its result (applied, or failed).",
                ["group"], buckets=PROPOSAL_BUCKETS),
            failed=Counter(f"{prefix}_proposals_failed_total",
                           "Proposals that failed, by reason.", ["group", "reason"]),
        )
    return families


class DriverMetrics:
    """One group's children of its engine's families, looked up once (labels() locks)."""

    def __init__(self, engine: str, group: int) -> None:
        families = _engine_families(engine)
        label = str(group)
        self.engine = engine
        self.leader_changes = families.leader_changes.labels(label)
        self.committed = families.committed.labels(label)
        self.applied = families.applied.labels(label)
        self.pending = families.pending.labels(label)
        self.proposal_seconds = families.proposal_seconds.labels(label)
        self.failed_not_leader = families.failed.labels(label, "not_leader")
        self.failed_overwritten = families.failed.labels(label, "overwritten")
        self.failed_leadership_lost = families.failed.labels(label, "leadership_lost")
        self.failed_timed_out = families.failed.labels(label, "timed_out")
