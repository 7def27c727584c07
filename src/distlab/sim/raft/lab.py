"""The 6.5840 Raft tester (config.go) on the simulator: the real driver, on virtual time.

`LabCluster` offers the lab tester's vocabulary (`one`, `n_committed`, `wait`,
`check_one_leader`, `check_terms`, `check_no_leader`, `crash1`, `start1`, `connect`,
`disconnect`, `rpc_total`) over a `World` of Raft groups under the generic driver, each
node with its simulated disk. Where the lab sleeps, the cluster runs virtual time forward.
Commands are decimal integers encoded as bytes, like the lab's `int` commands, applied to
`CommandLog`, the lab's record of what each server applied at each index.

The tester's own "goroutines" are generators that yield how many virtual milliseconds to
sleep; they run between steps of the event loop, never inside it, so that they can call
the blocking vocabulary (a `start` waits for the driver to hand the command to its core).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Generator
from dataclasses import dataclass
from random import Random
from typing import Any, NoReturn, TypeVar

from distlab.core.ids import NodeId
from distlab.core.replicated_log import EngineError
from distlab.protocols.raft import (
    AppendEntries,
    AppendEntriesReply,
    InstallSnapshot,
    Proposal,
    Role,
    Snapshot,
)
from distlab.runtime.host.driver import Driver, Timing
from distlab.runtime.host.machine import app_command
from distlab.sim.command_log import CommandLog
from distlab.sim.network import (
    LONG_REORDERING,
    RELIABLE,
    UNRELIABLE,
    UNRELIABLE_LONG_REORDERING,
    NetworkConditions,
)
from distlab.sim.raft.engine import RaftEngine, RaftOptions, SimRaft
from distlab.sim.raft.storage import decode_snapshot_file, recover
from distlab.sim.world import SimulationFailure, World

T = TypeVar("T")
Process = Generator[int, None, int]

# The tester's election timeout: its tests sleep in multiples of it.
ELECTION_TIMEOUT_MS = 1000
# The tester's snapshot interval: the applier compacts after this many applied entries.
SNAPSHOT_INTERVAL = 10
# How long a request to a driver (a Start) may wait for the driver to take it.
REQUEST_SECONDS = 1.0


def command(value: int) -> bytes:
    return str(value).encode()


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Timing and behaviour of a lab cluster.

    The defaults map the 6.5840 timings onto ticks: a 20 ms tick, heartbeats every 100 ms
    (at most 10 a second) and election timeouts drawn from 300-600 ms.
    """

    tick_ms: int = 20
    heartbeat_ticks: int = 5
    election_ticks: int = 15
    max_inflight_appends: int = 8
    max_entries_per_message: int = 64
    pre_vote: bool = True
    check_quorum: bool = True
    snapshot_every: int = 0  # compact after this many applied entries; 0 never compacts
    planted_bugs: frozenset[str] = frozenset()  # from the core's bug catalogue


@dataclass(slots=True)
class ReadRecord:
    """A ReadIndex read under way; it fills in when the driver serves it."""

    context: bytes
    node: NodeId
    ok: bool | None = None
    served: bool = False
    read_index: int = -1
    commands_seen: int = 0


class _StoredState:
    """What a node's disk holds for group 0, read as a restart would read it."""

    def __init__(self, cluster: Simulation, node: NodeId) -> None:
        self._cluster = cluster
        self._node = node

    def snapshot(self) -> Snapshot | None:
        data = self._cluster.world.nodes[self._node].disk.recover().snapshots.get(0)
        return decode_snapshot_file(data) if data is not None else None


class LabNode:
    """One server as the tester sees it."""

    def __init__(self, cluster: Simulation, node_id: NodeId) -> None:
        self._cluster = cluster
        self.node_id = node_id
        self.state_machine = CommandLog()
        self.storage = _StoredState(cluster, node_id)

    @property
    def up(self) -> bool:
        return self._cluster.world.nodes[self.node_id].up

    @property
    def raft(self) -> SimRaft | None:
        driver = self._cluster.world.driver(self.node_id)
        return driver.core if driver is not None else None

    def require_raft(self) -> SimRaft:
        raft = self.raft
        assert raft is not None, f"n{self.node_id} is down"
        return raft


class _LabEngine(RaftEngine):
    """The Raft engine, counting what the lab's tests measure of the traffic."""

    def __init__(self, world: World, options: RaftOptions, cluster: Simulation) -> None:
        super().__init__(world, options)
        self._cluster = cluster

    def message_sent(self, node: NodeId, group: int, message: Any) -> None:
        kind = type(message)
        if kind is AppendEntries:
            self._cluster.entry_bytes_sent += sum(len(e.data) for e in message.entries)
        elif kind is InstallSnapshot:
            self._cluster.entry_bytes_sent += len(message.data)
        elif kind is AppendEntriesReply and not message.success and message.conflict_index:
            self._cluster.append_rejections += 1
        super().message_sent(node, group, message)


class _Scheduled:
    __slots__ = ("handle", "process", "wake")

    def __init__(self, process: Process, handle: ProcessHandle, wake: float) -> None:
        self.process = process
        self.handle = handle
        self.wake = wake


class ProcessHandle:
    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = False
        self.result = -1


class Simulation:
    """A cluster of Raft servers (one group) under the real driver. Node ids are 1..n."""

    def __init__(self, seed: int, nodes: int = 3, *, options: SimOptions | None = None,
                 conditions: NetworkConditions = RELIABLE, trace: bool = False,
                 replay_hint: str | None = None) -> None:
        self.seed = seed
        self.options = options = options or SimOptions()
        self.entry_bytes_sent = 0
        self.append_rejections = 0
        raft_options = RaftOptions(
            election_ticks=options.election_ticks, heartbeat_ticks=options.heartbeat_ticks,
            max_inflight_appends=options.max_inflight_appends,
            max_entries_per_message=options.max_entries_per_message,
            pre_vote=options.pre_vote, check_quorum=options.check_quorum,
            planted_bugs=options.planted_bugs)
        self.nodes: dict[NodeId, LabNode] = {
            NodeId(i): LabNode(self, NodeId(i)) for i in range(1, nodes + 1)}
        self.world = World(
            seed=seed, nodes=nodes, groups=1,
            make_engine=lambda world: _LabEngine(world, raft_options, self),
            make_machine=self._new_machine,
            timing=Timing(tick_seconds=options.tick_ms / 1000.0,
                          snapshot_entries=options.snapshot_every or 1 << 30),
            conditions=conditions, trace=trace, replay_hint=replay_hint)
        self._processes: list[_Scheduled] = []
        self.reads: dict[bytes, ReadRecord] = {}
        self.world.start_all()

    def close(self) -> None:
        """Stop every node and the loop."""
        self.world.close()

    def _new_machine(self, node: NodeId, group: int) -> CommandLog:
        machine = CommandLog()
        self.nodes[node].state_machine = machine
        return machine

    # ------------------------------------------------------------------ time

    @property
    def now(self) -> int:
        """Virtual milliseconds since the start."""
        return round(self.world.now_ms)

    def run_for(self, ms: int) -> None:
        self.run_until_time(self.world.now_ms + ms)

    def run_until_time(self, until_ms: float) -> None:
        """Run the loop to `until_ms`, resuming the tester's processes as they wake."""
        while True:
            wake = min((p.wake for p in self._processes), default=None)
            target = until_ms if wake is None or wake > until_ms else wake
            if target > self.world.now_ms:
                self.world.run_for((target - self.world.now_ms) / 1000.0)
            if wake is None or wake > until_ms:
                return
            self._resume_due()

    def run_until(self, predicate: Callable[[], bool], timeout_ms: int,
                  step_ms: int = 10) -> bool:
        """Runs until `predicate()` holds (checked every `step_ms`) or the timeout passes."""
        deadline = self.world.now_ms + timeout_ms
        while not predicate():
            if self.world.now_ms >= deadline:
                return False
            self.run_until_time(min(deadline, self.world.now_ms + step_ms))
        return True

    def _resume_due(self) -> None:
        now = self.world.now_ms
        due = [p for p in self._processes if p.wake <= now]
        for scheduled in due:
            self._processes.remove(scheduled)
            try:
                delay = next(scheduled.process)
            except StopIteration as finished:
                scheduled.handle.done = True
                scheduled.handle.result = finished.value
                continue
            scheduled.wake = self.world.now_ms + delay
            self._processes.append(scheduled)

    def spawn(self, process: Process) -> ProcessHandle:
        """Starts a process alongside the caller; `join` waits for it."""
        handle = ProcessHandle()
        self._processes.append(_Scheduled(process, handle, self.world.now_ms))
        return handle

    def join(self, handles: list[ProcessHandle], timeout_ms: int = 60_000) -> list[int]:
        if not self.run_until(lambda: all(h.done for h in handles), timeout_ms, step_ms=5):
            self.fail(f"processes still running after {timeout_ms} ms")
        return [h.result for h in handles]

    def run_process(self, process: Process) -> int:
        """Runs one process to completion, advancing virtual time as it sleeps."""
        handle = self.spawn(process)
        self.run_until(lambda: handle.done, 10 * 60_000, step_ms=5)
        if not handle.done:
            self.fail("a tester process never finished")
        return handle.result

    # ------------------------------------------------------------------ outcome

    def failure(self, problem: str) -> SimulationFailure:
        hint = f" (replay: {self.world.replay_hint})" if self.world.replay_hint else ""
        return SimulationFailure(f"seed={self.seed} t={self.now}ms: {problem}{hint}")

    def fail(self, problem: str) -> NoReturn:
        """Raises a failure naming the seed that replays the run."""
        raise self.failure(problem)

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            raise self.failure(problem)

    def note(self, text: str) -> None:
        self.world.note(text)

    def trace_text(self) -> str:
        return self.world.trace_text()

    @property
    def trace_lines(self) -> list[str] | None:
        return self.world.trace

    # ------------------------------------------------------------------ nodes

    def add_node(self, node_id: NodeId) -> None:
        """Starts a brand-new node that knows no membership: it waits to be added."""
        self.nodes[node_id] = LabNode(self, node_id)
        self.world.add_node(node_id)
        self.world.start(node_id)

    def crash(self, node_id: NodeId) -> None:
        """Stops a node: its driver and state machine are gone, its disk stays."""
        self.world.crash(node_id)

    def restart(self, node_id: NodeId) -> None:
        """Starts a crashed node again from its disk (a running one is crashed first)."""
        self.world.restart(node_id)

    def disconnect(self, node_id: NodeId) -> None:
        self.world.disconnect(node_id)

    def connect(self, node_id: NodeId) -> None:
        self.world.connect(node_id)

    def partition(self, groups: list[list[NodeId]]) -> None:
        self.world.partition(groups)

    def block(self, source: NodeId, destination: NodeId) -> None:
        self.world.block(source, destination)

    def heal(self) -> None:
        self.world.heal()

    def set_conditions(self, conditions: NetworkConditions) -> None:
        self.world.set_conditions(conditions)

    @property
    def network_conditions(self) -> NetworkConditions:
        return self.world.network.conditions

    # ------------------------------------------------------------------ requests

    def driver(self, node_id: NodeId) -> Driver[Any] | None:
        return self.world.driver(node_id)

    def request(self, node_id: NodeId, action: Callable[[SimRaft], T]) -> T | None:
        """Run `action` on a node's core between its Readys, as Admin does through the
        driver; None if the node is down or does not take it in time."""
        driver = self.driver(node_id)
        if driver is None:
            return None

        async def ask() -> T | None:
            try:
                result: T = await asyncio.wait_for(driver.request(action), REQUEST_SECONDS)
            except (TimeoutError, EngineError):
                return None
            return result

        return self.world.run(ask())

    def propose(self, node_id: NodeId, value: bytes) -> Proposal | None:
        """Offers `value` to a node, as the lab's Start does; None if it is not the leader."""
        proposal = self.request(node_id, lambda core: core.propose(app_command(value)))
        self.note(f"propose {value.decode(errors='replace')} at n{node_id}: "
                  + (f"index={proposal.index} term={proposal.term}" if proposal
                     else "not leader"))
        return proposal

    def read(self, node_id: NodeId, context: bytes) -> ReadRecord | None:
        """Starts a ReadIndex read through the driver; None if the node cannot serve it."""
        driver = self.driver(node_id)
        if driver is None or not driver.core.is_leader():
            return None
        record = ReadRecord(context, node_id)
        self.reads[context] = record
        machine = self.nodes[node_id].state_machine

        async def serve() -> None:
            try:
                await driver.read_barrier()
            except EngineError:
                record.ok = False
                return
            record.ok = True
            record.served = True
            record.read_index = driver.status().applied_index
            record.commands_seen = len(machine.commands)

        self.world.loop.create_task(serve())
        return record

    # ------------------------------------------------------------------ views

    def raft(self, node_id: NodeId) -> SimRaft:
        return self.nodes[node_id].require_raft()

    def live_nodes(self) -> list[NodeId]:
        return self.world.live_nodes()

    def leaders(self) -> list[NodeId]:
        return self.world.leaders(0)

    def persisted_log_bytes(self, node_id: NodeId) -> int:
        """The size of the log a restart would read, counting 16 bytes of framing per entry
        (the lab's persisted Raft state, less the snapshot)."""
        recovered = self.world.nodes[node_id].disk.recover()
        stored = recover(recovered.records.get(0, ()), recovered.snapshots.get(0))
        return sum(16 + len(entry.data) for entry in stored.entries())

    @property
    def requests_sent(self) -> int:
        return self.world.network.requests_sent

    @property
    def requests_by_type(self) -> dict[str, int]:
        return self.world.network.sent_by_type


class LabCluster(Simulation):
    """A simulated cluster with the lab tester's checks."""

    def __init__(self, seed: int, nodes: int = 3, *, unreliable: bool = False,
                 options: SimOptions | None = None, trace: bool = False,
                 replay_hint: str | None = None) -> None:
        super().__init__(seed, nodes, options=options, trace=trace, replay_hint=replay_hint)
        self._unreliable = unreliable
        self._long_reordering = False
        # the tester's own draws (sleep lengths, commands) must not perturb the cluster's
        self._tester_rng = Random(seed * 7919 + 17)
        self._apply_conditions()

    @property
    def tester_rng(self) -> Random:
        """The tester's own generator (sleep lengths, victims, commands)."""
        return self._tester_rng

    @property
    def n(self) -> int:
        return len(self.nodes)

    def ids(self) -> list[NodeId]:
        return list(self.nodes)

    # --- network modes ---

    def set_unreliable(self, unreliable: bool) -> None:
        self._unreliable = unreliable
        self._apply_conditions()

    def set_long_reordering(self, long_reordering: bool) -> None:
        self._long_reordering = long_reordering
        self._apply_conditions()

    def _apply_conditions(self) -> None:
        table: dict[tuple[bool, bool], NetworkConditions] = {
            (False, False): RELIABLE,
            (True, False): UNRELIABLE,
            (False, True): LONG_REORDERING,
            (True, True): UNRELIABLE_LONG_REORDERING,
        }
        conditions = table[(self._unreliable, self._long_reordering)]
        if conditions is not self.network_conditions:
            self.set_conditions(conditions)

    # --- servers ---

    def connected(self, node: NodeId) -> bool:
        return self.world.network.topology.is_connected(node) and self.nodes[node].up

    def crash1(self, node: NodeId) -> None:
        """The lab's crash: disconnect, then kill; only what the disk kept survives."""
        self.disconnect(node)
        self.crash(node)

    def start1(self, node: NodeId) -> None:
        """Restarts a crashed server from its disk; it stays disconnected."""
        if self.world.network.topology.is_connected(node):
            self.disconnect(node)
        self.restart(node)

    def start(self, node: NodeId, value: bytes) -> tuple[int, int, bool]:
        """The lab's `Start`: (index, term, is_leader)."""
        raft = self.nodes[node].raft
        if raft is None:
            return -1, -1, False
        proposal = self.propose(node, value)
        if proposal is None:
            return -1, raft.term, False
        return proposal.index, proposal.term, True

    def get_state(self, node: NodeId) -> tuple[int, bool]:
        raft = self.nodes[node].require_raft()
        return raft.term, raft.role is Role.LEADER

    def rpc_total(self) -> int:
        return self.requests_sent

    # --- the tester's checks ---

    def sleep(self, ms: int) -> None:
        self.run_for(ms)

    def check_one_leader(self) -> NodeId:
        for _ in range(10):
            self.run_for(450 + self._tester_rng.randrange(100))
            by_term: dict[int, list[NodeId]] = defaultdict(list)
            for node in self.nodes:
                if self.connected(node):
                    term, is_leader = self.get_state(node)
                    if is_leader:
                        by_term[term].append(node)
            for term, leaders in by_term.items():
                if len(leaders) > 1:
                    self.fail(f"term {term} has {len(leaders)} (>1) leaders")
            if by_term:
                return by_term[max(by_term)][0]
        self.fail("expected one leader, got none")

    def check_terms(self) -> int:
        term = -1
        for node in self.nodes:
            if self.connected(node):
                node_term, _ = self.get_state(node)
                if term == -1:
                    term = node_term
                elif term != node_term:
                    self.fail("servers disagree on term")
        return term

    def check_no_leader(self) -> None:
        for node in self.nodes:
            if self.connected(node) and self.get_state(node)[1]:
                self.fail(f"expected no leader among connected servers, but n{node} claims it")

    def n_committed(self, index: int) -> tuple[int, bytes | None]:
        """How many servers have applied `index`, and the command there (they must agree)."""
        count = 0
        value: bytes | None = None
        for node in self.nodes.values():
            applied = node.state_machine.commands.get(index)
            if applied is None:
                continue
            if count > 0 and applied != value:
                self.fail(f"committed values do not match: index {index}, {value!r}, {applied!r}")
            count += 1
            value = applied
        return count, value

    def one(self, value: bytes, expected_servers: int, retry: bool) -> int:
        """Gets `value` committed on at least `expected_servers`; returns its index."""
        return self.run_process(self.one_process(value, expected_servers, retry))

    def one_process(self, value: bytes, expected_servers: int, retry: bool) -> Process:
        """`one` as a process, so that several can run at once (the lab's goroutines)."""
        started = self.now
        starts = 0
        while self.now - started < 10_000:
            index = -1
            for _ in range(self.n):
                starts = starts % self.n + 1
                node = NodeId(starts)
                if self.connected(node):
                    index1, _, ok = self.start(node, value)
                    if ok:
                        index = index1
                        break
            if index != -1:
                waited_from = self.now
                while self.now - waited_from < 2_000:
                    count, applied = self.n_committed(index)
                    if count > 0 and count >= expected_servers and applied == value:
                        return index
                    yield 20
                if not retry:
                    self.fail(f"one({value!r}) failed to reach agreement")
            else:
                yield 50
        self.fail(f"one({value!r}) failed to reach agreement")

    def wait(self, index: int, servers: int, start_term: int) -> bytes | None:
        delay = 10
        for _ in range(30):
            count, _ = self.n_committed(index)
            if count >= servers:
                break
            self.run_for(delay)
            if delay < 1000:
                delay *= 2
            if start_term > -1:
                for node in self.nodes.values():
                    raft = node.raft
                    if raft is not None and raft.term > start_term:
                        return None  # someone moved on; the caller retries
        count, value = self.n_committed(index)
        if count < servers:
            self.fail(f"only {count} decided for index {index}; wanted {servers}")
        return value

    def tester_random(self) -> int:
        """A large random integer from the tester's own seeded generator (lab: rand.Int())."""
        return self._tester_rng.randrange(1 << 30)


MakeCluster = Callable[..., LabCluster]

__all__ = [
    "ELECTION_TIMEOUT_MS",
    "SNAPSHOT_INTERVAL",
    "CommandLog",
    "LabCluster",
    "MakeCluster",
    "Process",
    "ProcessHandle",
    "ReadRecord",
    "SimOptions",
    "Simulation",
    "command",
]
