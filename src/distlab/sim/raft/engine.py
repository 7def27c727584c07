"""Raft under simulation: the real core, built from the simulated disk, watched by the checker.

`SimRaft` is `Raft` itself plus one observation: when the driver acknowledges a Ready with
`advance()`, the group's checker sees the Ready and the core's state. Nothing in the core's
behaviour changes; planted bugs come in through the core's own configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from distlab.core.ids import NodeId
from distlab.protocols.raft import (
    Config,
    InstallSnapshot,
    Raft,
    Ready,
    Role,
    describe,
    is_request,
)
from distlab.sim.disk import Record
from distlab.sim.network import AddressedMessageKinds
from distlab.sim.raft.invariants import InvariantViolation, RaftInvariants
from distlab.sim.raft.storage import RaftFormat, recover
from distlab.sim.world import Instance, World


@dataclass(frozen=True, slots=True)
class RaftOptions:
    """The core's tuning for a run (ticks are the driver's, `Timing.tick_seconds` long)."""

    election_ticks: int = 10
    heartbeat_ticks: int = 2
    max_inflight_appends: int = 8
    max_entries_per_message: int = 64
    pre_vote: bool = True
    check_quorum: bool = True
    # The driver snapshots once this many entries are applied beyond the last snapshot.
    snapshot_entries: int = 1 << 30
    planted_bugs: frozenset[str] = frozenset()

    def config(self, node: NodeId, voters: frozenset[NodeId]) -> Config:
        return Config(
            node_id=node, voters=voters, election_ticks=self.election_ticks,
            heartbeat_ticks=self.heartbeat_ticks,
            max_inflight_appends=self.max_inflight_appends,
            max_entries_per_message=self.max_entries_per_message,
            check_quorum=self.check_quorum, pre_vote=self.pre_vote,
            planted_bugs=self.planted_bugs)


class SimRaft(Raft):
    """The Raft core, reporting each acknowledged Ready to its group's checker."""

    observer: Callable[[SimRaft, Ready], None] | None = None
    _handed_out: Ready | None = None

    def ready(self) -> Ready:
        ready = super().ready()
        self._handed_out = ready
        return ready

    def advance(self) -> None:
        super().advance()
        ready, self._handed_out = self._handed_out, None
        if self.observer is not None and ready is not None:
            self.observer(self, ready)


RAFT_MESSAGE_KINDS = AddressedMessageKinds(is_request, InstallSnapshot, describe)


class RaftEngine:
    """Implements `distlab.sim.world.Engine` for Raft: one checker per group."""

    name = "raft"
    kinds = RAFT_MESSAGE_KINDS

    def __init__(self, world: World, options: RaftOptions) -> None:
        self._world = world
        self.options = options
        self.checkers = [RaftInvariants(group) for group in range(world.groups)]
        self.cores: dict[tuple[NodeId, int], SimRaft] = {}

    def start_instance(self, node: NodeId, group: int, voters: frozenset[NodeId],
                       records: Sequence[Record], snapshot_file: bytes | None,
                       rng: Random) -> Instance:
        stored = recover(records, snapshot_file)
        core = SimRaft(self.options.config(node, voters), stored, rng)
        checker = self.checkers[group]
        self._guard(lambda: checker.node_started(node, core))
        core.observer = self._observer(node, checker)
        self.cores[(node, group)] = core
        snapshot = stored.snapshot()
        return Instance(core, RaftFormat(stored.hard_state()),
                        snapshot.data if snapshot is not None else None,
                        startup_records=stored.startup_records)

    def instance_stopped(self, node: NodeId, group: int) -> None:
        core = self.cores.pop((node, group), None)
        if core is not None:
            core.observer = None
        self.checkers[group].node_stopped(node)

    def message_sent(self, node: NodeId, group: int, message: Any) -> None:
        core = self.cores.get((node, group))
        if core is not None:
            try:
                self.checkers[group].message_sent(node, core, message)
            except InvariantViolation as violation:
                self._world.fail(f"invariant violated: {violation}")

    def _observer(self, node: NodeId, checker: RaftInvariants
                  ) -> Callable[[SimRaft, Ready], None]:
        world = self._world
        seen = [(Role.FOLLOWER, -1)]

        def observe(core: SimRaft, ready: Ready) -> None:
            try:
                checker.after_ready(node, core, ready)
            except InvariantViolation as violation:
                world.fail(f"invariant violated: {violation}")
            if world.trace is not None and (core.role, core.term) != seen[0]:
                seen[0] = (core.role, core.term)
                world.note(f"n{node} g{checker.group} is {core.role.value} in term {core.term}")

        return observe

    def _guard(self, check: Callable[[], None]) -> None:
        try:
            check()
        except InvariantViolation as violation:
            self._world.fail(f"invariant violated: {violation}")
