"""Chain replication under simulation: group 0 runs the master on the real Raft core and
driver, and every node hosts one chain replica under the real chain driver.

The replica reaches the master as a node does, through group 0's replicated log (its
commands go to the group's leader, when the network lets the replica reach it), and its
copy of the master's state is the state machine of its own node's group-0 member. Its
records go to the node's simulated disk, tagged with the chain's instance, beside group 0's,
and its messages travel the same seeded network on a channel of their own.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any, cast

from distlab.core.ids import NodeId
from distlab.core.replicated_log import NotLeader
from distlab.protocols import raft
from distlab.protocols.chain import (
    MESSAGE_TYPES,
    ChainConfig,
    ChainMaster,
    ChainReplica,
    LeaseMonitor,
    Message,
    Ready,
    ReplicaConfig,
    StoredReplica,
    decode_snapshot,
    encode_snapshot,
)
from distlab.protocols.chain import describe as describe_chain
from distlab.protocols.chain import is_request as chain_is_request
from distlab.runtime.chain.driver import ChainDriver
from distlab.runtime.host.machine import chain_master_command
from distlab.sim.chain.invariants import ChainInvariants, InvariantViolation
from distlab.sim.disk import Record, Recovered, SimDisk
from distlab.sim.network import AddressedMessageKinds
from distlab.sim.raft.engine import RaftEngine, RaftOptions
from distlab.sim.storage import InstanceGone
from distlab.sim.world import Instance, SimTransport, World

# The chain replica's tag in the node's log, and its channel on the network.
CHAIN_INSTANCE = 1000
# A snapshot file starts with how many of the replica's records it stands for.
_COVERED = struct.Struct(">Q")
# How long a replica waits for the master before it gives a call up, when it cannot reach
# the master's leader at all.
UNREACHABLE_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class ChainOptions:
    raft: RaftOptions = field(default_factory=RaftOptions)
    read_mode: str = "cr"
    lease_ticks: int = 12
    removal_ticks: int = 60
    # Small, so that many runs restart some replica from a snapshot.
    snapshot_records: int = 6
    planted_bugs: frozenset[str] = frozenset()

    def replica_config(self, node: NodeId) -> ReplicaConfig:
        return ReplicaConfig(node, lease_ticks=self.lease_ticks,
                             planted_bugs=self.planted_bugs)


def _is_request(message: Any) -> bool:
    if isinstance(message, MESSAGE_TYPES):
        return chain_is_request(cast(Message, message))
    return raft.is_request(message)


def _describe(message: Any) -> str:
    if isinstance(message, MESSAGE_TYPES):
        return describe_chain(cast(Message, message))
    return raft.describe(message)


CHAIN_MESSAGE_KINDS = AddressedMessageKinds(_is_request, raft.InstallSnapshot, _describe)


class SimChainStorage:
    """Implements the chain driver's `ChainStorage` on the node's simulated disk: records in
    the node's log, and a snapshot file that says how many of them it stands for (the disk
    keeps every record, so a restart skips that many)."""

    def __init__(self, disk: SimDisk, alive: Callable[[], bool], recovered: int,
                 snapshot_records: int) -> None:
        self._disk = disk
        self._alive = alive
        self._written = recovered
        self._since_snapshot = 0
        self._snapshot_records = snapshot_records

    async def persist(self, records: tuple[tuple[int, bytes], ...]) -> None:
        if not self._alive():
            raise InstanceGone()
        for kind, body in records:
            self._disk.write(CHAIN_INSTANCE, kind, body)
        self._written += len(records)
        self._since_snapshot += len(records)
        await self._disk.sync()
        if not self._alive():
            raise InstanceGone()

    def wants_snapshot(self) -> bool:
        return self._since_snapshot >= self._snapshot_records

    async def save_snapshot(self, state: StoredReplica) -> None:
        if not self._alive():
            raise InstanceGone()
        self._disk.save_snapshot(CHAIN_INSTANCE,
                                 _COVERED.pack(self._written) + encode_snapshot(state))
        self._since_snapshot = 0

    def close(self) -> None:
        pass


def recover_replica(recovered: Recovered) -> tuple[StoredReplica, int]:
    """A replica's state from its node's disk, and how many of its records that read."""
    records = recovered.records.get(CHAIN_INSTANCE, [])
    snapshot = recovered.snapshots.get(CHAIN_INSTANCE)
    stored, covered = StoredReplica(), 0
    if snapshot is not None:
        (covered,) = _COVERED.unpack_from(snapshot)
        stored = decode_snapshot(snapshot[_COVERED.size:])
    for record in records[covered:]:
        stored.apply(record.kind, record.body)
    return stored, len(records)


class SimMasterPort:
    """Implements `MasterPort` for one node's replica over the simulated group 0."""

    def __init__(self, world: World, node: NodeId) -> None:
        self._world = world
        self._node = node

    def _machine(self, node: NodeId) -> ChainMaster | None:
        driver = self._world.driver(node, 0)
        if driver is None:
            return None
        return cast(ChainMaster, driver.machine.chain_master)

    async def submit(self, command: bytes) -> bytes:
        world = self._world
        topology = world.network.topology
        target: NodeId | None = self._node
        tried: set[NodeId] = set()
        while True:
            if target is None or target in tried:
                untried = [node for node in sorted(world.nodes) if node not in tried]
                if not untried:
                    raise NotLeader(None, None)
                target = untried[0]
            tried.add(target)
            if not (topology.can_deliver(self._node, target)
                    and topology.can_deliver(target, self._node)):
                await asyncio.sleep(UNREACHABLE_SECONDS)
                target = None
                continue
            driver = world.driver(target, 0)
            if driver is None:
                target = None
                continue
            try:
                return await driver.propose_envelope(chain_master_command(command))
            except NotLeader as error:
                target = error.leader_id or None

    def local_config(self) -> ChainConfig | None:
        machine = self._machine(self._node)
        return machine.config if machine is not None else None

    def leads(self) -> bool:
        driver = self._world.driver(self._node, 0)
        return driver is not None and driver.core.is_leader()

    def renewals(self) -> Mapping[NodeId, int]:
        machine = self._machine(self._node)
        return machine.renewals if machine is not None else {}


class ChainEngine:
    """Implements `Engine` (group 0's Raft, delegated) and `NodeService` (the replicas)."""

    name = "raft"
    kinds = CHAIN_MESSAGE_KINDS

    def __init__(self, world: World, options: ChainOptions) -> None:
        self._world = world
        self.options = options
        self.raft = RaftEngine(world, options.raft)
        self.invariants = ChainInvariants()
        self.replicas: dict[NodeId, ChainDriver] = {}
        self.tick_seconds = 0.025
        world.services.append(self)
        world.channels[CHAIN_INSTANCE] = self.replicas.get

    # ------------------------------------------------------------------ group 0

    def start_instance(self, node: NodeId, group: int, voters: frozenset[NodeId],
                       records: Sequence[Record], snapshot_file: bytes | None,
                       rng: Random) -> Instance:
        return self.raft.start_instance(node, group, voters, records, snapshot_file, rng)

    def instance_stopped(self, node: NodeId, group: int) -> None:
        self.raft.instance_stopped(node, group)

    def message_sent(self, node: NodeId, group: int, message: Any) -> None:
        if group == CHAIN_INSTANCE:
            return
        self.raft.message_sent(node, group, message)

    # ------------------------------------------------------------------ the replicas

    def node_started(self, node: NodeId, recovered: Recovered, alive: Callable[[], bool],
                     rng: Random) -> None:
        world = self._world
        try:
            stored, records = recover_replica(recovered)
        except ValueError as error:
            world.fail(f"n{node}'s chain replica cannot restart from its disk: {error}")
            return
        core = ChainReplica(self.options.replica_config(node), stored)
        self._guard(lambda: self.invariants.replica_started(node, core))
        sim_node = world.nodes[node]
        driver = ChainDriver(
            node_id=node, core=core,
            storage=SimChainStorage(sim_node.disk, alive, records,
                                    self.options.snapshot_records),
            transport=SimTransport(world.network, node, CHAIN_INSTANCE, alive,
                                   self.message_sent),
            master=SimMasterPort(world, node), clock=sim_node.clock,
            tick_seconds=self.tick_seconds,
            monitor=LeaseMonitor(self.options.removal_ticks, tuple(sorted(world.voters))),
            on_failure=world.on_failure_of(node, CHAIN_INSTANCE),
            observer=self._observer(node))
        self.replicas[node] = driver
        driver.start()

    def node_stopped(self, node: NodeId) -> None:
        driver = self.replicas.pop(node, None)
        self.invariants.replica_stopped(node)
        if driver is not None:
            driver.observer = None
            self._world.loop.create_task(driver.stop())

    def _observer(self, node: NodeId) -> Callable[[ChainReplica, Ready], None]:
        world = self._world
        seen = [("", -1)]

        def observe(core: ChainReplica, ready: Ready) -> None:
            self._guard(lambda: self.invariants.after_ready(node, core, ready, self.cores()))
            if world.trace is not None and (core.role.value, core.epoch) != seen[0]:
                seen[0] = (core.role.value, core.epoch)
                world.note(f"n{node} chain: {core.role.value} in epoch {core.epoch} "
                           f"{list(core.chain.chain)} joining {core.chain.joining}")

        return observe

    def cores(self) -> dict[NodeId, ChainReplica]:
        return {node: driver.core for node, driver in self.replicas.items()}

    def _guard(self, check: Callable[[], None]) -> None:
        try:
            check()
        except InvariantViolation as violation:
            self._world.fail(f"invariant violated: {violation}")
