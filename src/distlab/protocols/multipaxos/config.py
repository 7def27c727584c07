"""Tuning knobs of one Multi-Paxos member, and the randomness it is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos.bugs import unknown_bugs


class RandomSource(Protocol):
    """The part of `random.Random` the core uses; the caller injects a seeded instance."""

    def randrange(self, start: int, stop: int, /) -> int: ...


@dataclass(frozen=True, slots=True)
class Config:
    """How one member behaves. Times are in ticks; the caller decides how long a tick is.

    A member that hears no leader for `election_ticks` (randomized up to twice that) tries
    to lead (with `pre_prepare`, only once a majority answered a probe that it could); a
    preempted leader waits 1..`backoff_ticks` ticks (drawn) before it tries a higher
    ballot. A leader keeps at most `max_inflight_slots` undecided slots out at once and
    sends at most `max_entries_per_message` slots in one Accept. With `check_quorum` a
    leader that heard from no majority for an election timeout steps down.

    `planted_bugs` names mistakes from `bugs.CATALOGUE` to plant, for the simulator to find;
    a real node plants none.
    """

    node_id: NodeId
    voters: frozenset[NodeId] = field(default_factory=frozenset)
    election_ticks: int = 10
    heartbeat_ticks: int = 2
    backoff_ticks: int = 10
    max_inflight_slots: int = 64
    max_entries_per_message: int = 64
    max_committed_per_ready: int = 1024
    max_pending_reads: int = 1024
    pre_prepare: bool = True
    check_quorum: bool = True
    planted_bugs: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.node_id <= 0:
            raise ValueError(f"node ids are positive, not {self.node_id}")
        if self.node_id not in self.voters:
            raise ValueError(f"n{self.node_id} is not one of the voters {sorted(self.voters)}")
        if self.heartbeat_ticks < 1:
            raise ValueError("heartbeat_ticks must be at least 1")
        if self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("election_ticks must be greater than heartbeat_ticks")
        for name in ("backoff_ticks", "max_inflight_slots", "max_entries_per_message",
                     "max_committed_per_ready", "max_pending_reads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        unknown = unknown_bugs(self.planted_bugs)
        if unknown:
            raise ValueError(f"unknown planted bugs: {', '.join(unknown)}")
