"""A simulated cluster whose nodes host the transaction core: the shared world, with one
`TxnDriver` per node instead of consensus groups.

Everything else is the world's own (virtual time, the seeded network, disks that crash,
lose unsynced writes and fail fsyncs, clocks that drift, every fault kind); each node's
transaction log is its disk's log, and a restart rebuilds the core from it alone.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from distlab.core.ids import NodeId
from distlab.core.replicated_log import StateMachine
from distlab.protocols.txn import (
    LogRecord,
    PlantedBugs,
    Timeouts,
    TxnConfig,
    TxnNode,
    TxnReady,
    decode,
    describe,
    is_request,
)
from distlab.runtime.host.driver import Timing
from distlab.runtime.txn.driver import TxnDriver
from distlab.sim.disk import Recovered
from distlab.sim.network import AddressedMessageKinds, NetworkConditions
from distlab.sim.storage import SimStorage
from distlab.sim.txn.invariants import InvariantViolation, TxnInvariants
from distlab.sim.world import NodeSettings, SimNode, SimTransport, World

TICK_SECONDS = 0.01
DEFAULT_TIMEOUTS = Timeouts()
# The transaction log's instance tag on the node's disk.
TXN_INSTANCE = 0


class _NoSnapshot:
    """No transaction message is a snapshot: the network's snapshot type is none of them."""


TXN_MESSAGE_KINDS = AddressedMessageKinds(is_request, _NoSnapshot, describe)


class TxnFormat:
    """The transaction log's records on the simulated disk (DurableFormat)."""

    def encode_ready(self, ready: TxnReady) -> tuple[bytes | None, list[tuple[int, bytes]]]:
        return None, [(int(record.kind), record.encode()) for record in ready.records]

    def encode_snapshot(self, snapshot: Any) -> tuple[bytes, list[tuple[int, bytes]]]:
        raise ValueError("the transaction log takes no snapshots")


TXN_FORMAT = TxnFormat()


def owner_of(nodes: int) -> Any:
    """Each node one shard: key -> node by crc32, as sharding does for groups."""
    def owner(key: str) -> NodeId:
        return NodeId(zlib.crc32(key.encode()) % nodes + 1)

    return owner


class TxnEngine:
    """Implements the world's `EngineBase` for transactions: watches every node."""

    name = "txn"
    kinds = TXN_MESSAGE_KINDS

    def __init__(self, world: World) -> None:
        self._world = world
        self.invariants = TxnInvariants()

    def instance_stopped(self, node: NodeId, group: int) -> None:
        pass  # the invariants concern decisions, which outlive the node

    def message_sent(self, node: NodeId, group: int, message: Any) -> None:
        pass  # the invariants read every Ready's messages, those to the node itself too

    def guard(self, check: Any) -> None:
        try:
            check()
        except InvariantViolation as violation:
            self._world.fail(f"invariant violated: {violation}")


def _no_machine(node: NodeId, group: int) -> StateMachine:
    raise AssertionError("a transaction node hosts no replicated state machine")


class TxnWorld(World):
    def __init__(self, *, seed: int, nodes: int, settings: Sequence[NodeSettings],
                 conditions: NetworkConditions, initial_data: Mapping[str, str],
                 bugs: frozenset[str], timeouts: Timeouts = DEFAULT_TIMEOUTS, trace: bool = False,
                 replay_hint: str | None = None,
                 vclock_log: Callable[[str], object] | None = None) -> None:
        self.owner = owner_of(nodes)
        self.initial_data = dict(initial_data)
        self.planted_bugs = PlantedBugs.from_names(bugs)
        self.timeouts = timeouts
        super().__init__(seed=seed, nodes=nodes, groups=1, make_engine=TxnEngine,
                         make_machine=_no_machine, timing=Timing(tick_seconds=TICK_SECONDS),
                         settings=settings, conditions=conditions, trace=trace,
                         replay_hint=replay_hint, vclock_log=vclock_log)

    @property
    def txn_engine(self) -> TxnEngine:
        engine = self.engine
        assert isinstance(engine, TxnEngine)
        return engine

    def config(self, node_id: NodeId) -> TxnConfig:
        return TxnConfig(
            node_id=node_id, owner=self.owner, timeouts=self.timeouts,
            initial_data={key: value for key, value in self.initial_data.items()
                          if self.owner(key) == node_id},
            planted_bugs=self.planted_bugs)

    def _start_instances(self, node_id: NodeId, node: SimNode, recovered: Recovered
                         ) -> list[Any] | None:
        engine = self.txn_engine
        try:
            records: list[LogRecord] = [decode(record.kind, record.body)
                                        for record in recovered.records.get(TXN_INSTANCE, ())]
            core = TxnNode(self.config(node_id), records)
        except Exception as error:  # a log that recovers into an impossible state
            self.fail(f"n{node_id} cannot restart from its transaction log: "
                      f"{type(error).__name__}: {error}")
            node.up = False
            return None
        engine.guard(lambda: engine.invariants.node_started(node_id, core))
        alive = node.alive_check()

        def observe(core: TxnNode, ready: TxnReady) -> None:
            engine.guard(lambda: engine.invariants.after_ready(node_id, core, ready))

        driver = TxnDriver(
            node_id=node_id, core=core,
            storage=SimStorage(node.disk, TXN_INSTANCE, TXN_FORMAT, alive, self.loop.time),
            transport=SimTransport(self.network, node_id, TXN_INSTANCE, alive,
                                   engine.message_sent),
            clock=node.clock, tick_seconds=TICK_SECONDS,
            on_failure=self._on_failure_of(node, TXN_INSTANCE, node.incarnation),
            on_ready=observe)
        return [driver]

    def txn_driver(self, node_id: NodeId) -> TxnDriver | None:
        node = self.nodes.get(node_id)
        if node is None or not node.up:
            return None
        driver: TxnDriver = node.drivers[TXN_INSTANCE]
        return driver

    def leaders(self, group: int = 0) -> list[NodeId]:
        return []  # no consensus groups: faults aimed at a leader find none
