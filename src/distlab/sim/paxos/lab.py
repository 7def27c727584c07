"""The 6.824 (2015) Paxos lab's vocabulary on the simulator, over the real driver.

The lab's tester drives Paxos peers with `Start(seq, v)`, counts peers that decided a
sequence number (`ndecided`), makes peers deaf, partitions them, and reads `Done`/`Min`.
Multi-Paxos chooses the slot itself, so here `start(node, v)` offers a command to a node as
a client would (it only lands if that node leads), `slot_of(v)` says where it was decided,
and `ndecided(slot)` counts the members whose state machine applied that slot, failing if
two applied different commands. The lab's `startByClient` retries until its instance is
decided: `offer(v, via)` is such a client, reaching the cluster through one member. Where
the lab sleeps, the cluster runs virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from random import Random
from typing import Any, NoReturn

from distlab.core.ids import NodeId
from distlab.core.replicated_log import EngineError
from distlab.protocols.multipaxos import InstallSnapshot, Ready, is_request
from distlab.runtime.host.driver import Timing
from distlab.sim.command_log import CommandLog
from distlab.sim.disk import Record
from distlab.sim.network import RELIABLE, NetworkConditions
from distlab.sim.paxos.engine import PaxosEngine, PaxosOptions, SimPaxos
from distlab.sim.paxos.invariants import PaxosInvariants
from distlab.sim.world import Instance, SimulationFailure, World

# The lab's timings mapped onto ticks: 20 ms ticks, heartbeats every 80 ms, a member that
# hears no leader for 240-480 ms tries to lead.
TICK_MS = 20
LAB_OPTIONS = PaxosOptions(election_ticks=12, heartbeat_ticks=4, backoff_ticks=8)
# A client that finds no leader it can reach, or whose leader lost its command, tries again
# this much later; it gives up waiting for one attempt after its deadline, as a real client
# does (a deposed leader may never learn the fate of a slot that no later leader fills).
OFFER_RETRY_MS = 50
OFFER_DEADLINE_MS = 1_000


class _LabEngine(PaxosEngine):
    """The Paxos engine, counting the traffic the lab's RPC-count test measures and noting
    the order in which each member learns decisions."""

    def __init__(self, world: World, options: PaxosOptions, lab: PaxosLab) -> None:
        super().__init__(world, options)
        self._lab = lab

    def message_sent(self, node: NodeId, group: int, message: Any) -> None:
        self._lab.messages += 1
        if type(message) is InstallSnapshot:
            self._lab.snapshots_sent += 1
        if is_request(message):
            self._lab.requests += 1
        super().message_sent(node, group, message)

    def start_instance(self, node: NodeId, group: int, voters: frozenset[NodeId],
                       records: Sequence[Record], snapshot_file: bytes | None,
                       rng: Random) -> Instance:
        instance = super().start_instance(node, group, voters, records, snapshot_file, rng)
        core = self.cores[(node, group)]
        check = core.observer
        learned = self._lab.decision_order.setdefault(node, [])

        def observe(observed: SimPaxos, ready: Ready) -> None:
            learned.extend(decision.slot for decision in ready.decided)
            if check is not None:
                check(observed, ready)

        core.observer = observe
        return instance


class _IndexedLog(CommandLog):
    """A member's record of what it applied, telling the lab where each command landed."""

    def __init__(self, landed: Callable[[bytes, int], None]) -> None:
        super().__init__()
        self._landed = landed

    def apply(self, index: int, command: bytes) -> bytes:
        result = super().apply(index, command)
        self._landed(command, index)
        return result

    def restore(self, data: bytes) -> None:
        super().restore(data)
        for index, command in sorted(self.commands.items()):
            self._landed(command, index)


class PaxosLab:
    """One Multi-Paxos group on nodes 1..n under the real driver, as the lab tester sees it."""

    def __init__(self, seed: int, nodes: int = 3, *, options: PaxosOptions = LAB_OPTIONS,
                 conditions: NetworkConditions = RELIABLE, trace: bool = False,
                 snapshot_every: int = 0) -> None:
        self.seed = seed
        self.messages = 0
        self.requests = 0
        self.snapshots_sent = 0
        self.machines: dict[NodeId, CommandLog] = {}
        # Each member's decisions in the order it learned them (across its restarts).
        self.decision_order: dict[NodeId, list[int]] = {}
        # Where some member applied each command first.
        self._landed_at: dict[bytes, int] = {}
        self.world = World(
            seed=seed, nodes=nodes, groups=1,
            make_engine=lambda world: _LabEngine(world, options, self),
            make_machine=self._new_machine,
            timing=Timing(tick_seconds=TICK_MS / 1000.0,
                          snapshot_entries=snapshot_every or 1 << 30),
            conditions=conditions, trace=trace,
            replay_hint=f"PaxosLab(seed={seed}, nodes={nodes})")
        self.ids = sorted(self.world.nodes)
        engine = self.world.engine
        assert isinstance(engine, PaxosEngine)
        # The group's safety checker, which fails the run at the first violation.
        self.invariants: PaxosInvariants = engine.checkers[0]
        self.world.start_all()

    def close(self) -> None:
        self.world.close()

    def _new_machine(self, node: NodeId, group: int) -> CommandLog:
        machine = _IndexedLog(self._landed)
        self.machines[node] = machine
        return machine

    def _landed(self, command: bytes, slot: int) -> None:
        self._landed_at.setdefault(command, slot)

    # ------------------------------------------------------------------ time

    @property
    def now_ms(self) -> float:
        return self.world.now_ms

    def run_for(self, ms: float) -> None:
        self.world.run_for(ms / 1000.0)

    def run_until(self, predicate: Callable[[], bool], timeout_ms: float,
                  step_ms: float = 10) -> bool:
        deadline = self.world.now_ms + timeout_ms
        while not predicate():
            if self.world.now_ms >= deadline:
                return False
            self.run_for(min(step_ms, deadline - self.world.now_ms))
        return True

    def fail(self, problem: str) -> NoReturn:
        raise SimulationFailure(f"seed={self.seed} t={self.now_ms:.0f}ms: {problem}")

    # ------------------------------------------------------------------ members

    def core(self, node: NodeId) -> SimPaxos | None:
        driver = self.world.driver(node)
        return driver.core if driver is not None else None

    def leaders(self) -> list[NodeId]:
        return self.world.leaders()

    def wait_leader(self, timeout_ms: float = 5_000) -> NodeId:
        if not self.run_until(lambda: len(self.leaders()) == 1, timeout_ms):
            self.fail(f"no single leader after {timeout_ms:g} ms: {self.leaders()}")
        return self.leaders()[0]

    def campaign(self, node: NodeId) -> None:
        """Make `node` try to lead now, as an election timeout would."""
        driver = self.world.driver(node)
        if driver is None:
            self.fail(f"n{node} is down")
        self.world.loop.create_task(driver.request(lambda core: core.campaign()))

    def start(self, node: NodeId, value: bytes) -> bool:
        """Offer `value` to `node`, as a client would; False if it does not lead."""
        driver = self.world.driver(node)
        if driver is None or not driver.core.is_leader():
            return False

        async def propose() -> None:
            with contextlib.suppress(EngineError):
                await driver.propose(value)

        self.world.call(lambda: self.world.loop.create_task(propose()))
        return True

    def submit(self, value: bytes, timeout_ms: float = 5_000) -> NodeId:
        """Offer `value` to whoever leads, waiting for a leader if there is none."""
        deadline = self.now_ms + timeout_ms
        while self.now_ms < deadline:
            for node in self.leaders():
                if self.start(node, value):
                    return node
            self.run_for(10)
        self.fail(f"no leader took {value!r} in {timeout_ms:g} ms")

    def offer(self, value: bytes, via: NodeId | None = None) -> None:
        """A client that offers `value` until some member applies it, as the lab's clients
        retry: to whoever leads among the members it reaches through `via` (all of them if
        None), again once that leader has lost it or the deadline passed, or later while
        none leads there."""

        async def keep_offering() -> None:
            while self.slot_of(value) is None:
                leader = self._leader_reached_from(via)
                if leader is not None:
                    driver = self.world.driver(leader)
                    assert driver is not None
                    try:
                        await asyncio.wait_for(driver.propose(value),
                                               OFFER_DEADLINE_MS / 1000.0)
                        return
                    except (EngineError, TimeoutError):
                        pass  # not applied, or not known to be: ask again unless it landed
                await asyncio.sleep(OFFER_RETRY_MS / 1000.0)

        self.world.call(lambda: self.world.loop.create_task(keep_offering()))

    def _leader_reached_from(self, via: NodeId | None) -> NodeId | None:
        topology = self.world.network.topology
        for node in self.leaders():
            if via is None or node == via or (topology.can_deliver(via, node)
                                              and topology.can_deliver(node, via)):
                return node
        return None

    # ------------------------------------------------------------------ what was decided

    def applied(self, node: NodeId) -> dict[int, bytes]:
        machine = self.machines.get(node)
        return dict(machine.commands) if machine is not None else {}

    def slot_of(self, value: bytes) -> int | None:
        """The slot where some member applied `value` (the first seen, if it landed twice)."""
        return self._landed_at.get(value)

    def max_slot(self, node: NodeId) -> int:
        """The lab's Max: the highest slot this member knows of (decided, accepted, or
        proposed in while it leads), whatever it has since forgotten."""
        core = self.core(node)
        if core is None:
            return 0
        return max(core.last_log_index(), max(core.accepted, default=0),
                   max(core.decided, default=0))

    def ndecided(self, slot: int) -> int:
        """How many up members applied `slot`; fails if two applied different commands."""
        seen: bytes | None = None
        count = 0
        for node in self.world.live_nodes():
            command = self.applied(node).get(slot)
            if command is None:
                continue
            if seen is not None and command != seen:
                self.fail(f"decided values do not match at slot {slot}: {seen!r} and "
                          f"{command!r} (n{node})")
            seen = command
            count += 1
        return count

    def check_agreement(self) -> int:
        """Fails if two members applied different commands at one slot; the slots applied."""
        seen: dict[int, bytes] = {}
        for node in self.ids:
            machine = self.machines.get(node)
            for slot, command in (machine.commands.items() if machine is not None else ()):
                known = seen.setdefault(slot, command)
                if known != command:
                    self.fail(f"decided values do not match at slot {slot}: {known!r} and "
                              f"{command!r} (n{node})")
        return len(seen)

    def wait_decided(self, value: bytes, count: int, timeout_ms: float = 10_000) -> int:
        """Wait until `count` members applied `value`; its slot."""

        def enough() -> bool:
            slot = self.slot_of(value)
            return slot is not None and self.ndecided(slot) >= count

        if not self.run_until(enough, timeout_ms):
            slot = self.slot_of(value)
            have = self.ndecided(slot) if slot is not None else 0
            self.fail(f"{value!r} decided by {have} members, not {count}, after "
                      f"{timeout_ms:g} ms")
        slot = self.slot_of(value)
        assert slot is not None
        return slot

    # ------------------------------------------------------------------ faults

    def deafen(self, node: NodeId) -> None:
        """`node` hears nothing (its inbound links are cut) but still sends."""
        for other in self.ids:
            if other != node:
                self.world.network.topology.block(other, node)
        self.world.note(f"n{node} deaf")

    def undeafen(self, node: NodeId) -> None:
        for other in self.ids:
            if other != node:
                self.world.network.topology.unblock(other, node)
        self.world.note(f"n{node} hears again")

    def partition(self, sides: list[list[NodeId]]) -> None:
        self.world.partition(sides)

    def heal(self) -> None:
        self.world.heal()

    def set_network(self, conditions: NetworkConditions) -> None:
        self.world.set_conditions(conditions)

    def crash(self, node: NodeId) -> None:
        self.world.crash(node)

    def restart(self, node: NodeId) -> None:
        self.world.restart(node)

    def forgotten_through(self, node: NodeId) -> int:
        """The lab's Min as this member applies it: every slot up to it is freed."""
        core = self.core(node)
        return core.log_start if core is not None else 0

