"""A simulated cluster: nodes hosting instances under the real driver, on virtual time.

Each node hosts one instance per group, as a real node does: the protocol's sans-I/O core
under the generic `Driver` (distlab.runtime.host), wired to the simulator's ports: its own
`NodeClock`, a transport into the seeded `Network`, and a `SimStorage` on the node's
`SimDisk`. The disk and the clock outlive crashes; a restart rebuilds every instance from
what the disk kept, exactly as a restarted process would.

Everything runs on one `VirtualTimeLoop` and every random draw comes from generators derived
from the seed, so a seed replays a run exactly, its event trace included.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any, NoReturn, Protocol, TypeVar, cast

from distlab.core.consensus import ConsensusCore
from distlab.core.ids import NodeId
from distlab.core.replicated_log import StateMachine
from distlab.core.truetime import DEFAULT_EPSILON, Epsilon, TrueTime
from distlab.runtime.host.driver import Driver, Timing
from distlab.runtime.host.machine import AddressBook, HostedMachine
from distlab.runtime.host.metrics import DriverMetrics
from distlab.sim.clock import SIM_EPOCH_NS, NodeClock
from distlab.sim.disk import CorruptRecord, FsyncFailed, Record, Recovered, SimDisk
from distlab.sim.loop import VirtualTimeLoop, cancel_pending
from distlab.sim.network import RELIABLE, Endpoint, MessageKinds, Network, NetworkConditions
from distlab.sim.storage import DurableFormat, SimStorage
from distlab.sim.vclock import SimVectorClocks

T = TypeVar("T")

# The loggers of the code under simulation: their lines join the trace instead of stderr.
HOST_LOGGER = "distlab.runtime.host"
SIMULATED_LOGGERS = (HOST_LOGGER, "distlab.runtime.txn", "distlab.runtime.chain")


class SimulationFailure(AssertionError):
    """A simulated run went wrong; the message names the seed that replays it."""


@dataclass(frozen=True, slots=True)
class Instance:
    """What a protocol builds for one group on one node when the node starts."""

    core: ConsensusCore
    durable_format: DurableFormat
    # The state machine's state to restore before the driver starts (from a snapshot).
    snapshot_data: bytes | None
    # Records the instance writes to its log as it opens, before it runs.
    startup_records: Sequence[tuple[int, bytes]] = ()


class EngineBase(Protocol):
    """What the world asks of every protocol: its messages, and hearing what happens."""

    @property
    def name(self) -> str:
        """The engine's name in metrics (`distlab_<name>_*`)."""
        ...

    @property
    def kinds(self) -> MessageKinds: ...

    def instance_stopped(self, node: NodeId, group: int) -> None: ...

    def message_sent(self, node: NodeId, group: int, message: Any) -> None:
        """An instance's transport took `message`: it has been said."""
        ...


class Engine(EngineBase, Protocol):
    """A consensus protocol's part of a simulated run: building cores, and watching them."""

    def start_instance(self, node: NodeId, group: int, voters: frozenset[NodeId],
                       records: Sequence[Record], snapshot_file: bytes | None,
                       rng: Random) -> Instance: ...


MachineFactory = Callable[[NodeId, int], StateMachine]
# A group's transaction records on a node, kept beside the group's machine (its shard).
TxnLogFactory = Callable[[NodeId, int, StateMachine], StateMachine]


class NodeService(Protocol):
    """An instance a node hosts beside its groups (a chain replica): started after the
    groups' drivers, from the same recovered disk, and stopped with them."""

    def node_started(self, node: NodeId, recovered: Recovered, alive: Callable[[], bool],
                     rng: Random) -> None: ...

    def node_stopped(self, node: NodeId) -> None: ...


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """A node's clock and disk, drawn per run."""

    clock_offset: float = 0.0
    clock_rate: float = 1.0
    # How far the node's wall clock is off the true time at the start (CLOCK_SKEW_MS), and
    # the uncertainty its TrueTime claims (TRUETIME_EPSILON_MS).
    wall_skew_ms: float = 0.0
    epsilon: Epsilon = DEFAULT_EPSILON
    fsync_ms: tuple[float, float] = (0.2, 1.0)
    # Whether the disk can lose what was written but not fsynced (at a power loss, or when
    # an fsync fails); without, every crash keeps all that was written.
    lose_unsynced: bool = True


class SimTransport:
    """Implements the driver's Transport port for one instance of one incarnation."""

    __slots__ = ("_alive", "_group", "_network", "_node", "_observe")

    def __init__(self, network: Network, node: NodeId, group: int, alive: Callable[[], bool],
                 observe: Callable[[NodeId, int, Any], None]) -> None:
        self._network = network
        self._node = node
        self._group = group
        self._alive = alive
        self._observe = observe

    def send(self, message: Any, trace_context: Any) -> None:
        if self._alive():
            self._observe(self._node, self._group, message)
            self._network.send(self._group, message)


class SimNode:
    """One simulated machine: its disk and clock persist, its instances live and die."""

    def __init__(self, node_id: NodeId, disk: SimDisk, clock: NodeClock,
                 epsilon: Epsilon) -> None:
        self.node_id = node_id
        self.disk = disk
        self.clock = clock
        # The node's TrueTime, from its own (skewed, drifting) clock; like the clock, it
        # outlives crashes.
        self.truetime = TrueTime(clock.wall_ns, clock.monotonic, epsilon)
        self.incarnation = 0
        self.up = False
        # The consensus drivers of its groups, or another protocol's driver of its instance.
        self.drivers: list[Any] = []
        # Why the node refused to start (a corrupt log), if it did: it stays down.
        self.refused: str | None = None
        self.stopped_by: str | None = None

    def alive_check(self) -> Callable[[], bool]:
        incarnation = self.incarnation

        def alive() -> bool:
            return self.up and self.incarnation == incarnation

        return alive


class _TraceHandler(logging.Handler):
    def __init__(self, world: World) -> None:
        super().__init__(logging.INFO)
        self._world = world

    def emit(self, record: logging.LogRecord) -> None:
        if self._world.trace is not None:
            self._world.note(f"log {record.levelname.lower()}: {record.getMessage()}")


class World:
    """Nodes 1..n, each hosting `groups` instances, on one virtual-time loop."""

    def __init__(
        self,
        *,
        seed: int,
        nodes: int,
        groups: int,
        make_engine: Callable[[World], EngineBase],
        make_machine: MachineFactory,
        timing: Timing,
        make_chain_master: Callable[[], StateMachine] | None = None,
        make_txn_log: TxnLogFactory | None = None,
        settings: Sequence[NodeSettings] | None = None,
        conditions: NetworkConditions = RELIABLE,
        trace: bool = False,
        replay_hint: str | None = None,
        vclock_log: Callable[[str], object] | None = None,
    ) -> None:
        if nodes < 1 or groups < 1:
            raise ValueError("a cluster has at least one node and one group")
        self.seed = seed
        self.groups = groups
        self.timing = timing
        self.replay_hint = replay_hint
        self.trace: list[str] | None = [] if trace else None
        self.failure: str | None = None
        self.finished = False
        self.detected_faults: list[str] = []
        # Whether faults may still strike; once the run heals, delayed ones stand down.
        self.faults_enabled = True
        self.loop = VirtualTimeLoop()
        self.rng = Random(f"world/{seed}")
        self.voters = frozenset(NodeId(i) for i in range(1, nodes + 1))
        self._make_machine = make_machine
        # Group 0 keeps the chain's master beside its state machine, as a node's does.
        self._make_chain_master = make_chain_master
        # Each group's transaction records, when the groups are transaction participants.
        self._make_txn_log = make_txn_log
        # Instances beside the groups, and the network channels (ids from `groups` up) their
        # messages travel on: an engine registers them as it is built.
        self.services: list[NodeService] = []
        self.channels: dict[int, Callable[[NodeId], Any]] = {}
        self.engine = make_engine(self)
        note = self.note if trace else None
        # With a log, every message's send and receipt are events of its nodes' vector
        # clocks, written as ShiViz reads them.
        self.vector_clocks = (
            SimVectorClocks(self.engine.name, self.engine.kinds, self.loop.time, vclock_log)
            if vclock_log is not None else None)
        self.network = Network(
            rng=Random(self.rng.getrandbits(64)), kinds=self.engine.kinds,
            endpoint=self._endpoint, call_later=self.loop.call_later, now=self.loop.time,
            note=note, on_storm=self.fail, conditions=conditions,
            observer=self.vector_clocks)
        self.addresses = AddressBook({node: f"n{node}" for node in self.voters})
        chosen = list(settings) if settings is not None else [NodeSettings()] * nodes
        if len(chosen) != nodes:
            raise ValueError(f"{len(chosen)} node settings for {nodes} nodes")
        self.nodes: dict[NodeId, SimNode] = {}
        # The voters each node bootstraps with: the initial cluster, or none for a node that
        # joins later and learns the membership from the leader.
        self._bootstrap: dict[NodeId, frozenset[NodeId]] = {}
        for node_id, node_settings in zip(sorted(self.voters), chosen, strict=True):
            self._add(node_id, node_settings, self.voters)
        self._log_handler = _TraceHandler(self)
        self.note(f"start seed={seed} nodes={nodes} groups={groups} network={conditions.name}")

    def _add(self, node_id: NodeId, settings: NodeSettings,
             bootstrap: frozenset[NodeId]) -> None:
        note = self.note if self.trace is not None else None
        disk = SimDisk(rng=Random(self.rng.getrandbits(64)), loop=self.loop, note=note,
                       name=f"n{node_id} disk", fsync_ms=settings.fsync_ms,
                       lose_unsynced=settings.lose_unsynced)
        clock = NodeClock(self.loop, offset=settings.clock_offset, rate=settings.clock_rate,
                          wall_skew=settings.wall_skew_ms / 1000.0)
        self.nodes[node_id] = SimNode(node_id, disk, clock, settings.epsilon)
        self._bootstrap[node_id] = bootstrap

    def add_node(self, node_id: NodeId, settings: NodeSettings = NodeSettings()) -> None:
        """A brand-new machine that knows no membership: it waits to be added by a leader."""
        if node_id in self.nodes:
            raise ValueError(f"n{node_id} already exists")
        self._add(node_id, settings, frozenset())
        self.addresses.learn(node_id, f"n{node_id}")
        self.note(f"n{node_id} added (not yet a member)")

    # ------------------------------------------------------------------ time

    @property
    def now(self) -> float:
        """Virtual seconds since the start."""
        return self.loop.time()

    @property
    def now_ms(self) -> float:
        return self.loop.time() * 1000.0

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run the loop until `awaitable` is done; raises SimulationFailure once a check fails."""
        self._raise_if_failed()
        with self._captured_logs():
            try:
                result = self.loop.run_until_complete(awaitable)
            except RuntimeError:
                if self.failure is None:
                    raise
        self._raise_if_failed()
        return result

    def run_for(self, seconds: float) -> None:
        self.run(asyncio.sleep(seconds))

    def close(self) -> None:
        """Stop everything; the world is done."""
        self.finished = True
        if self.loop.is_closed():
            return
        with self._captured_logs():
            cancel_pending(self.loop)
        self.loop.close()

    def call(self, action: Callable[[], T]) -> T:
        """Run `action` inside the loop (what starts tasks must), now."""
        if self.loop.is_running():
            return action()

        async def inside() -> T:
            return action()

        return self.run(inside())

    @contextlib.contextmanager
    def _captured_logs(self) -> Iterator[None]:
        loggers = [logging.getLogger(name) for name in SIMULATED_LOGGERS]
        saved = [(logger.level, logger.propagate) for logger in loggers]
        for logger in loggers:
            logger.addHandler(self._log_handler)
            logger.propagate = False
            if self.trace is not None:
                logger.setLevel(logging.INFO)
        try:
            yield
        finally:
            for logger, (level, propagate) in zip(loggers, saved, strict=True):
                logger.removeHandler(self._log_handler)
                logger.setLevel(level)
                logger.propagate = propagate

    # ------------------------------------------------------------------ outcome

    def note(self, text: str) -> None:
        if self.trace is not None and not self.finished:
            self.trace.append(f"{self.loop.time() * 1000.0:11.3f} {text}")

    def fail(self, problem: str) -> None:
        """Record the first failure and stop the loop; later ones are consequences."""
        if self.failure is not None or self.finished:
            return
        hint = f" (replay: {self.replay_hint})" if self.replay_hint else ""
        self.failure = f"seed={self.seed} t={self.now_ms:.3f}ms: {problem}{hint}"
        self.note(f"FAILED: {problem}")
        if self.loop.is_running():
            self.loop.stop()

    def raise_failure(self, problem: str) -> NoReturn:
        self.fail(problem)
        self._raise_if_failed()
        raise AssertionError("unreachable")

    def _raise_if_failed(self) -> None:
        if self.failure is not None:
            raise SimulationFailure(self.failure)

    def trace_text(self) -> str:
        return "\n".join(self.trace or []) + "\n"

    # ------------------------------------------------------------------ nodes

    def start_all(self) -> None:
        for node_id in sorted(self.nodes):
            self.start(node_id)

    def start(self, node_id: NodeId) -> bool:
        """Start a node that is down from what its disk holds; False if it refuses."""
        return self.call(lambda: self._start(node_id))

    def _start(self, node_id: NodeId) -> bool:
        node = self.nodes[node_id]
        if node.up or node.refused is not None:
            return node.up
        try:
            recovered = node.disk.recover()
        except CorruptRecord as error:
            node.refused = str(error)
            self.detected_faults.append(str(error))
            self.note(f"n{node_id} refuses to start: {error}")
            return False
        node.incarnation += 1
        node.up = True
        node.stopped_by = None
        drivers = self._start_instances(node_id, node, recovered)
        if drivers is None:
            return False
        node.drivers = drivers
        self.note(f"n{node_id} starts (incarnation {node.incarnation})")
        for driver in drivers:
            driver.start()
        alive = node.alive_check()
        for service in self.services:
            service.node_started(node_id, recovered, alive, Random(self.rng.getrandbits(64)))
        return True

    @functools.cached_property
    def _metrics(self) -> list[DriverMetrics]:
        return [DriverMetrics(self.engine.name, group) for group in range(self.groups)]

    def _start_instances(self, node_id: NodeId, node: SimNode, recovered: Recovered
                         ) -> list[Any] | None:
        """Build the node's drivers from what its disk kept; None (the run failed) if it
        cannot. A world whose nodes host something else than consensus groups overrides
        this."""
        engine = cast(Engine, self.engine)
        alive = node.alive_check()
        drivers = []
        for group in range(self.groups):
            try:
                instance = engine.start_instance(
                    node_id, group, self._bootstrap[node_id], recovered.records.get(group, ()),
                    recovered.snapshots.get(group), Random(self.rng.getrandbits(64)))
                master = (self._make_chain_master()
                          if group == 0 and self._make_chain_master is not None else None)
                machine = self._make_machine(node_id, group)
                txn_log = (self._make_txn_log(node_id, group, machine)
                           if self._make_txn_log is not None else None)
                hosted = HostedMachine(machine, self.addresses, master, txn_log)
                if instance.snapshot_data is not None:
                    hosted.restore(instance.snapshot_data)
                for kind, body in instance.startup_records:
                    node.disk.write(group, kind, body)
            except Exception as error:  # a log that recovers into an impossible state
                self.fail(f"n{node_id} group {group} cannot restart from its disk: "
                          f"{type(error).__name__}: {error}")
                node.up = False
                return None
            driver: Driver[Any] = Driver(
                node_id=node_id, group=group, core=instance.core, machine=hosted,
                storage=SimStorage(node.disk, group, instance.durable_format, alive,
                                   self.loop.time),
                transport=SimTransport(self.network, node_id, group, alive,
                                       self.engine.message_sent),
                clock=node.clock,
                metrics=self._metrics[group], timing=self.timing,
                on_failure=self._on_failure_of(node, group, node.incarnation))
            drivers.append(driver)
        return drivers

    def crash(self, node_id: NodeId, *, power_loss: bool = False, torn: bool = False) -> None:
        """Kill a node. A process crash keeps what it wrote; a power loss keeps only what
        was fsynced, and part of the rest."""
        self.call(lambda: self._crash(node_id, power_loss=power_loss, torn=torn,
                                      why="power loss" if power_loss else "crash"))

    def _crash(self, node_id: NodeId, *, power_loss: bool, torn: bool, why: str) -> None:
        node = self.nodes[node_id]
        if not node.up:
            return
        node.up = False
        node.incarnation += 1
        node.stopped_by = why
        self.note(f"n{node_id} stops ({why})")
        node.disk.crash(power_loss=power_loss, torn=torn)
        drivers, node.drivers = node.drivers, []
        for group in range(self.groups):
            self.engine.instance_stopped(node_id, group)
        for service in self.services:
            service.node_stopped(node_id)
        for driver in drivers:
            self.loop.create_task(driver.stop())

    def restart(self, node_id: NodeId) -> bool:
        self.crash(node_id)
        return self.start(node_id)

    def on_failure_of(self, node_id: NodeId, instance: int) -> Callable[[BaseException], None]:
        """What an instance's driver calls when it fails: a failed fsync stops the node (the
        process exits), anything else fails the run."""
        node = self.nodes[node_id]
        return self._on_failure_of(node, instance, node.incarnation)

    def _on_failure_of(self, node: SimNode, group: int, incarnation: int
                       ) -> Callable[[BaseException], None]:
        def on_failure(error: BaseException) -> None:
            if node.incarnation != incarnation or not node.up:
                return
            if isinstance(error, FsyncFailed):
                # The process exits rather than carry on as if the write were durable.
                self.detected_faults.append(f"n{node.node_id}: {error}")
                self._crash(node.node_id, power_loss=False, torn=False,
                            why=f"group {group}: {error}")
                return
            self.fail(f"n{node.node_id} group {group}: the driver failed: "
                      f"{type(error).__name__}: {error}")

        return on_failure

    def _endpoint(self, node_id: NodeId, group: int) -> Endpoint | None:
        node = self.nodes.get(node_id)
        if node is None or not node.up:
            return None
        if group >= self.groups:
            # A channel of an instance beside the groups (a chain replica's).
            channel = self.channels.get(group)
            return channel(node_id) if channel is not None else None
        endpoint: Endpoint = node.drivers[group]
        return endpoint

    def driver(self, node_id: NodeId, group: int = 0) -> Driver[Any] | None:
        node = self.nodes.get(node_id)
        if node is None or not node.up:
            return None
        driver: Driver[Any] = node.drivers[group]
        return driver

    def live_nodes(self) -> list[NodeId]:
        return [node_id for node_id, node in self.nodes.items() if node.up]

    def leaders(self, group: int = 0) -> list[NodeId]:
        return [node_id for node_id, node in self.nodes.items()
                if node.up and node.drivers[group].core.is_leader()]

    # ------------------------------------------------------------------ network faults

    def disconnect(self, node_id: NodeId) -> None:
        self.network.topology.disconnect(node_id)
        self.note(f"n{node_id} disconnected")

    def connect(self, node_id: NodeId) -> None:
        self.network.topology.connect(node_id)
        self.note(f"n{node_id} connected")

    def partition(self, sides: list[list[NodeId]]) -> None:
        self.network.topology.partition(sides)
        self.note("partition " + " | ".join(",".join(f"n{n}" for n in side) for side in sides))

    def block(self, source: NodeId, destination: NodeId) -> None:
        self.network.topology.block(source, destination)
        self.note(f"link n{source}->n{destination} cut")

    def heal(self) -> None:
        self.network.topology.heal()
        self.note("network healed")

    def set_conditions(self, conditions: NetworkConditions) -> None:
        self.network.conditions = conditions
        self.note(f"network {conditions.name}")

    # ------------------------------------------------------------------ clock and disk faults

    def set_clock_rate(self, node_id: NodeId, rate: float) -> None:
        self.nodes[node_id].clock.set_rate(rate)
        self.note(f"n{node_id} clock rate {rate:.2f}")

    def set_clock_skew(self, node_id: NodeId, ms: float) -> None:
        """Put the node's wall clock `ms` off the true time (TrueTime's error)."""
        self.nodes[node_id].clock.set_wall_skew(ms / 1000.0)
        self.note(f"n{node_id} wall clock {ms:+g} ms off")

    def set_epsilon(self, node_id: NodeId, epsilon: Epsilon) -> None:
        self.nodes[node_id].truetime.epsilon = epsilon
        self.note(f"n{node_id} TrueTime epsilon {epsilon.describe()}")

    def true_time_ns(self) -> int:
        """The true wall time, which no node reads: what TrueTime's intervals must contain."""
        return SIM_EPOCH_NS + round(self.loop.time() * 1e9)

    def jump_clock(self, node_id: NodeId, seconds: float) -> None:
        self.nodes[node_id].clock.jump(seconds)
        self.note(f"n{node_id} clock jumps {seconds * 1000:.0f} ms")

    def set_fsync_latency(self, node_id: NodeId, low_ms: float, high_ms: float) -> None:
        self.nodes[node_id].disk.fsync_ms = (low_ms, high_ms)
        self.note(f"n{node_id} fsync takes {low_ms:.1f}-{high_ms:.1f} ms")

    def fail_next_fsync(self, node_id: NodeId) -> None:
        self.nodes[node_id].disk.fail_next_sync()
        self.note(f"n{node_id} next fsync will fail")

    def power_loss_in_next_fsync(self, node_id: NodeId, *, torn: bool,
                                 back_after: float | None) -> None:
        """Cut a node's power while its next fsync runs (before it completes), and power it
        back on `back_after` seconds later (never, if None)."""
        node = self.nodes[node_id]
        incarnation = node.incarnation
        rng = node.disk.rng

        def strike(remaining: float) -> None:
            def cut() -> None:
                if node.incarnation != incarnation or not node.up or not self.faults_enabled:
                    return
                self._crash(node_id, power_loss=True, torn=torn, why="power loss in fsync")
                if back_after is not None:
                    self.loop.call_later(back_after, self._start, node_id)

            self.loop.call_later(remaining * rng.random(), cut)

        node.disk.on_next_sync(strike)
        self.note(f"n{node_id} will lose power during its next fsync")

    def corrupt_disk(self, node_id: NodeId) -> None:
        self.nodes[node_id].disk.corrupt_a_record()
