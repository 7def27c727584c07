"""Tuning knobs of one Raft member, and the randomness it is given."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from distlab.core.ids import NodeId
from distlab.protocols.raft.bugs import unknown_bugs


class RandomSource(Protocol):
    """The part of `random.Random` the core uses; the caller injects a seeded instance."""

    def randrange(self, start: int, stop: int, /) -> int: ...


@dataclass(frozen=True, slots=True)
class Config:
    """How one member behaves. Times are in ticks; the caller decides how long a tick is.

    `voters` bootstraps a brand-new cluster: it is used only when storage holds neither a
    snapshot nor a configuration entry. A node joining an existing cluster starts with no
    voters and learns the membership from the leader.

    `planted_bugs` names mistakes from `bugs.CATALOGUE` to plant, for the simulator to find;
    a real node plants none.
    """

    node_id: NodeId
    voters: frozenset[NodeId] = field(default_factory=frozenset)
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    max_inflight_appends: int = 8
    max_entries_per_message: int = 64
    max_bytes_per_message: int = 1 << 20
    max_committed_per_ready: int = 1024
    max_pending_reads: int = 1024
    check_quorum: bool = True
    pre_vote: bool = True
    planted_bugs: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.node_id <= 0:
            raise ValueError(f"node ids are positive, not {self.node_id}")
        if self.heartbeat_ticks < 1:
            raise ValueError("heartbeat_ticks must be at least 1")
        if self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("election_ticks must be greater than heartbeat_ticks")
        for name in (
            "max_inflight_appends",
            "max_entries_per_message",
            "max_bytes_per_message",
            "max_committed_per_ready",
            "max_pending_reads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        unknown = unknown_bugs(self.planted_bugs)
        if unknown:
            raise ValueError(f"unknown planted bugs: {', '.join(unknown)}")

    @staticmethod
    def bootstrap_voters(ids: Iterable[int]) -> frozenset[NodeId]:
        return frozenset(NodeId(i) for i in ids)
