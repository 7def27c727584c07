"""Multi-Paxos under simulation: the real core, built from the simulated disk, watched by
the group's checker.

`SimPaxos` is `MultiPaxos` itself plus observation: the checker sees the commands proposed
and, when the driver acknowledges a Ready with `advance()`, the Ready and the core's state.
Nothing in the core's behaviour changes; planted bugs come in through its configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos import (
    Config,
    InstallSnapshot,
    MultiPaxos,
    Proposal,
    Ready,
    Role,
    describe,
    is_request,
)
from distlab.sim.disk import Record
from distlab.sim.network import AddressedMessageKinds
from distlab.sim.paxos.invariants import InvariantViolation, PaxosInvariants
from distlab.sim.paxos.storage import PaxosFormat, recover
from distlab.sim.world import Instance, World


@dataclass(frozen=True, slots=True)
class PaxosOptions:
    """The core's tuning for a run (ticks are the driver's, `Timing.tick_seconds` long)."""

    election_ticks: int = 12
    heartbeat_ticks: int = 4
    backoff_ticks: int = 8
    max_inflight_slots: int = 64
    max_entries_per_message: int = 64
    pre_prepare: bool = True
    check_quorum: bool = True
    # The driver snapshots once this many slots are applied beyond the last snapshot.
    snapshot_entries: int = 1 << 30
    planted_bugs: frozenset[str] = frozenset()

    def config(self, node: NodeId, voters: frozenset[NodeId]) -> Config:
        return Config(
            node_id=node, voters=voters, election_ticks=self.election_ticks,
            heartbeat_ticks=self.heartbeat_ticks, backoff_ticks=self.backoff_ticks,
            max_inflight_slots=self.max_inflight_slots,
            max_entries_per_message=self.max_entries_per_message,
            pre_prepare=self.pre_prepare, check_quorum=self.check_quorum,
            planted_bugs=self.planted_bugs)


class SimPaxos(MultiPaxos):
    """The Multi-Paxos core, reporting proposals and acknowledged Readys to its checker."""

    observer: Callable[[SimPaxos, Ready], None] | None = None
    on_propose: Callable[[list[bytes], SimPaxos], None] | None = None
    _handed_out: Ready | None = None

    def propose_batch(self, commands: list[bytes]) -> Sequence[Proposal]:
        if self.on_propose is not None and self.role is Role.LEADER:
            self.on_propose(commands, self)
        return super().propose_batch(commands)

    def ready(self) -> Ready:
        ready = super().ready()
        self._handed_out = ready
        return ready

    def advance(self) -> None:
        ready, self._handed_out = self._handed_out, None
        super().advance()
        if self.observer is not None and ready is not None:
            self.observer(self, ready)


PAXOS_MESSAGE_KINDS = AddressedMessageKinds(is_request, InstallSnapshot, describe)


class PaxosEngine:
    """Implements `distlab.sim.world.Engine` for Multi-Paxos: one checker per group."""

    name = "paxos"
    kinds = PAXOS_MESSAGE_KINDS

    def __init__(self, world: World, options: PaxosOptions) -> None:
        self._world = world
        self.options = options
        self.checkers = [PaxosInvariants(group, world.voters) for group in range(world.groups)]
        self.cores: dict[tuple[NodeId, int], SimPaxos] = {}

    def start_instance(self, node: NodeId, group: int, voters: frozenset[NodeId],
                       records: Sequence[Record], snapshot_file: bytes | None,
                       rng: Random) -> Instance:
        stored = recover(records, snapshot_file)
        core = SimPaxos(self.options.config(node, voters), stored, rng)
        checker = self.checkers[group]
        self._guard(lambda: checker.node_started(node, core))
        core.observer = self._observer(node, checker)
        core.on_propose = lambda commands, c: checker.proposed_commands(commands, c.ballot)
        self.cores[(node, group)] = core
        snapshot = stored.snapshot()
        return Instance(core, PaxosFormat(), snapshot.data if snapshot is not None else None)

    def instance_stopped(self, node: NodeId, group: int) -> None:
        core = self.cores.pop((node, group), None)
        if core is not None:
            core.observer = None
            core.on_propose = None
        self.checkers[group].node_stopped(node)

    def message_sent(self, node: NodeId, group: int, message: Any) -> None:
        if (node, group) in self.cores:
            self._guard(lambda: self.checkers[group].message_sent(node, message))

    def _observer(self, node: NodeId, checker: PaxosInvariants
                  ) -> Callable[[SimPaxos, Ready], None]:
        world = self._world
        seen = [(Role.FOLLOWER, -1)]

        def observe(core: SimPaxos, ready: Ready) -> None:
            self._guard(lambda: checker.after_ready(node, core, ready))
            if world.trace is not None and (core.role, core.ballot.as_int()) != seen[0]:
                seen[0] = (core.role, core.ballot.as_int())
                world.note(f"n{node} g{checker.group} is {core.role.value} at ballot "
                           f"{core.ballot.describe()}")

        return observe

    def _guard(self, check: Callable[[], None]) -> None:
        try:
            check()
        except InvariantViolation as violation:
            self._world.fail(f"invariant violated: {violation}")
