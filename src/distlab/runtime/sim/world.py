"""A deterministic, virtual-time world of Raft nodes.

One event queue orders everything that happens: node ticks, message deliveries and scheduled
calls (faults, client requests). Time jumps from event to event, so simulated seconds cost
only the work done in them. Every source of randomness derives from the seed, and nothing
iterates in an order that is not itself determined by the seed, so a seed replays a run
exactly, event trace included.

Each node's durable state is a MemoryStorage that outlives the node: a crash discards the
core and the state machine, and a restart rebuilds both from what had been persisted. Every
Ready is applied atomically in contract order (persist, send, apply), so a crash between
events loses exactly what a real crash after an fsync would.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from random import Random
from typing import Any, NoReturn

from distlab.core.ids import NodeId
from distlab.protocols.raft import (
    AppendEntries,
    AppendEntriesReply,
    Config,
    InstallSnapshot,
    MemoryStorage,
    Message,
    Proposal,
    Raft,
    ReadState,
    Role,
    describe,
    is_request,
)
from distlab.runtime.sim.invariants import InvariantChecker, InvariantViolation
from distlab.runtime.sim.network import RELIABLE, Network, NetworkConditions
from distlab.runtime.sim.state_machine import CommandLog

_TICK = 0
_DELIVER = 1
_CALL = 2


class SimulationFailure(AssertionError):
    """A simulated run went wrong; the message names the seed that replays it."""


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Timing and behaviour of a simulated cluster.

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


@dataclass(slots=True)
class ReadRecord:
    context: bytes
    node: NodeId
    required_index: int
    read_index: int = -1
    ok: bool | None = None
    served: bool = False
    commands_seen: int = 0


class SimNode:
    __slots__ = ("incarnation", "last_role", "node_id", "raft", "state_machine", "storage")

    def __init__(self, node_id: NodeId) -> None:
        self.node_id = node_id
        self.storage = MemoryStorage()
        self.raft: Raft | None = None
        self.state_machine = CommandLog()
        self.incarnation = 0
        self.last_role: tuple[Role, int] | None = None

    @property
    def up(self) -> bool:
        return self.raft is not None

    def require_raft(self) -> Raft:
        assert self.raft is not None, f"n{self.node_id} is down"
        return self.raft


class Simulation:
    def __init__(
        self,
        seed: int,
        nodes: int = 3,
        *,
        options: SimOptions | None = None,
        conditions: NetworkConditions = RELIABLE,
        trace: bool = False,
        raft_class: type[Raft] = Raft,
        replay_hint: str | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster has at least one node")
        self.seed = seed
        self.replay_hint = replay_hint
        self.options = options or SimOptions()
        self.raft_class = raft_class
        self._rng = Random(seed)
        self.network = Network(Random(self._rng.getrandbits(64)), conditions)
        self.checker = InvariantChecker()
        self.now = 0
        self._queue: list[tuple[int, int, int, Any, Any]] = []
        self._sequence = 0
        self.trace_lines: list[str] | None = [] if trace else None
        self.requests_sent = 0
        self.requests_by_type: Counter[str] = Counter()
        self.entry_bytes_sent = 0  # command bytes carried by appends and snapshots
        self.append_rejections = 0  # log-consistency rejections (not stale-term notices)
        self.events_processed = 0
        self.reads: dict[bytes, ReadRecord] = {}
        self._reads_waiting: dict[NodeId, list[ReadRecord]] = {}
        self._drain_scheduled: set[NodeId] = set()
        self.voters = frozenset(NodeId(i) for i in range(1, nodes + 1))
        self.nodes: dict[NodeId, SimNode] = {node: SimNode(node) for node in sorted(self.voters)}
        self.note(f"start seed={seed} nodes={nodes} network={conditions.name}")
        for node in self.nodes:
            self._start(node)

    # ------------------------------------------------------------------ running

    def run_for(self, ms: int) -> None:
        self.run_until_time(self.now + ms)

    def run_until_time(self, until: int) -> None:
        queue = self._queue
        try:
            while queue and queue[0][0] <= until:
                when, _, kind, first, second = heapq.heappop(queue)
                self.now = when
                self.events_processed += 1
                if kind == _TICK:
                    self._tick(first, second)
                elif kind == _DELIVER:
                    self._deliver(first)
                else:
                    first()
        except SimulationFailure:
            raise
        except InvariantViolation as violation:
            raise self.failure(f"invariant violated: {violation}") from violation
        except Exception as error:
            raise self.failure(f"{type(error).__name__}: {error}") from error
        self.now = max(self.now, until)

    def run_until(self, predicate: Callable[[], bool], timeout_ms: int, step_ms: int = 10) -> bool:
        """Runs until `predicate()` holds (checked every `step_ms`) or the timeout passes."""
        deadline = self.now + timeout_ms
        while not predicate():
            if self.now >= deadline:
                return False
            self.run_until_time(min(deadline, self.now + step_ms))
        return True

    def schedule(self, delay_ms: int, action: Callable[[], None]) -> None:
        self._push(self.now + delay_ms, _CALL, action, None)

    def failure(self, problem: str) -> SimulationFailure:
        hint = f" (replay: {self.replay_hint})" if self.replay_hint else ""
        return SimulationFailure(f"seed={self.seed} t={self.now}ms: {problem}{hint}")

    def fail(self, problem: str) -> NoReturn:
        """Raises a failure naming the seed that replays the run."""
        raise self.failure(problem)

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            raise self.failure(problem)

    def note(self, text: str) -> None:
        if self.trace_lines is not None:
            self.trace_lines.append(f"t={self.now}ms {text}")

    def _push(self, when: int, kind: int, first: Any, second: Any) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (when, self._sequence, kind, first, second))

    # ------------------------------------------------------------------ nodes

    def add_node(self, node_id: NodeId) -> None:
        """Starts a brand-new node that knows no membership: it waits to be added."""
        if node_id in self.nodes:
            raise ValueError(f"n{node_id} already exists")
        self.nodes[node_id] = SimNode(node_id)
        self.note(f"n{node_id} added (not yet a member)")
        self._start(node_id, bootstrap=False)

    def _start(self, node_id: NodeId, bootstrap: bool = True) -> None:
        node = self.nodes[node_id]
        options = self.options
        config = Config(
            node_id=node_id,
            voters=self.voters if bootstrap else frozenset(),
            election_ticks=options.election_ticks,
            heartbeat_ticks=options.heartbeat_ticks,
            max_inflight_appends=options.max_inflight_appends,
            max_entries_per_message=options.max_entries_per_message,
            check_quorum=options.check_quorum,
            pre_vote=options.pre_vote,
        )
        raft = self.raft_class(config, node.storage, Random(self._rng.getrandbits(64)))
        node.raft = raft
        node.incarnation += 1
        node.state_machine = CommandLog.from_snapshot(node.storage.snapshot())
        node.last_role = (raft.role, raft.term)
        self.checker.node_started(node_id, raft)
        phase = self._rng.randrange(1, options.tick_ms + 1)
        self._push(self.now + phase, _TICK, node_id, node.incarnation)
        self._after_input(node)

    def _tick(self, node_id: NodeId, incarnation: int) -> None:
        node = self.nodes[node_id]
        if node.raft is None or node.incarnation != incarnation:
            return
        node.raft.tick()
        self._after_input(node)
        self._push(self.now + self.options.tick_ms, _TICK, node_id, incarnation)

    def _deliver(self, message: Message) -> None:
        node = self.nodes.get(message.recipient)
        if node is None or node.raft is None:
            if self.trace_lines is not None:
                self.note(
                    f"n{message.sender}->n{message.recipient} {describe(message)} "
                    f"dropped (n{message.recipient} down)"
                )
            return
        if not self.network.can_deliver(message.sender, message.recipient):
            if self.trace_lines is not None:
                self.note(
                    f"n{message.sender}->n{message.recipient} {describe(message)} "
                    f"dropped (link down)"
                )
            return
        if self.trace_lines is not None:
            self.note(f"n{message.sender}->n{message.recipient} {describe(message)}")
        node.raft.step(message)
        self._after_input(node)

    def _after_input(self, node: SimNode) -> None:
        raft = node.raft
        assert raft is not None
        while raft.has_ready():
            ready = raft.ready()
            storage = node.storage
            if ready.snapshot is not None:
                storage.apply_snapshot(ready.snapshot)
                node.state_machine = CommandLog.from_snapshot(ready.snapshot)
                self.note(
                    f"n{node.node_id} installs snapshot "
                    f"{ready.snapshot.meta.last_index}/{ready.snapshot.meta.last_term}"
                )
            if ready.entries:
                storage.append(ready.entries)
            if ready.hard_state is not None:
                storage.set_hard_state(ready.hard_state)
            for message in ready.messages:
                self._send(message)
            machine = node.state_machine
            for entry in ready.committed_entries:
                machine.apply(entry)
            if ready.committed_entries and self.trace_lines is not None:
                first, last = ready.committed_entries[0].index, ready.committed_entries[-1].index
                self.note(f"n{node.node_id} applies {first}..{last}")
            for read_state in ready.read_states:
                self._read_state(node, read_state)
            raft.advance()
            self.checker.after_ready(node.node_id, raft, ready)
            self._serve_reads(node)
            self._maybe_compact(node, raft)
        self.checker.after_step(node.node_id, raft)
        role = (raft.role, raft.term)
        if role != node.last_role:
            node.last_role = role
            if self.trace_lines is not None:
                leader = f" leader=n{raft.leader_id}" if raft.leader_id else ""
                self.note(f"n{node.node_id} becomes {raft.role.value} term={raft.term}{leader}")

    def _schedule_drain(self, node: SimNode) -> None:
        """Handles the node's Ready once every request arriving at this instant is in.

        A driver drains its input queue before taking a Ready, so requests arriving together
        are batched into one append per follower; this models that.
        """
        if node.node_id in self._drain_scheduled:
            return
        self._drain_scheduled.add(node.node_id)
        incarnation = node.incarnation

        def drain() -> None:
            self._drain_scheduled.discard(node.node_id)
            if node.raft is not None and node.incarnation == incarnation:
                self._after_input(node)

        self._push(self.now, _CALL, drain, None)

    def _maybe_compact(self, node: SimNode, raft: Raft) -> None:
        every = self.options.snapshot_every
        if every and raft.log.applied - raft.log.snapshot_index >= every:
            snapshot = raft.compact(raft.log.applied, node.state_machine.snapshot_data())
            node.storage.apply_snapshot(snapshot)
            if self.trace_lines is not None:
                self.note(f"n{node.node_id} compacts log up to {snapshot.meta.last_index}")

    def _send(self, message: Message) -> None:
        self.checker.message_sent(message)
        request = is_request(message)
        if request:
            self.requests_sent += 1
            self.requests_by_type[type(message).__name__] += 1
            if isinstance(message, AppendEntries):
                self.entry_bytes_sent += sum(len(entry.data) for entry in message.entries)
            elif isinstance(message, InstallSnapshot):
                self.entry_bytes_sent += len(message.data)
        elif (
            isinstance(message, AppendEntriesReply)
            and not message.success
            and message.conflict_index
        ):
            self.append_rejections += 1
        if not self.network.can_deliver(message.sender, message.recipient):
            if self.trace_lines is not None:
                self.note(
                    f"n{message.sender}->n{message.recipient} {describe(message)} "
                    f"dropped (link down)"
                )
            return
        delays = self.network.delays_for(request)
        if not delays and self.trace_lines is not None:
            self.note(f"n{message.sender}->n{message.recipient} {describe(message)} dropped")
        for delay in delays:
            self._push(self.now + delay, _DELIVER, message, None)

    # ------------------------------------------------------------------ faults

    def crash(self, node_id: NodeId) -> None:
        """Stops a node: its core and state machine are gone, its storage stays."""
        node = self.nodes[node_id]
        if node.raft is None:
            return
        node.raft = None
        self.checker.node_stopped(node_id)
        self._reads_waiting.pop(node_id, None)
        self.note(f"n{node_id} crashes")

    def restart(self, node_id: NodeId) -> None:
        """Starts a crashed node again from its persisted state (a running one is crashed)."""
        self.crash(node_id)
        self.note(f"n{node_id} restarts")
        self._start(node_id)

    def disconnect(self, node_id: NodeId) -> None:
        self.network.disconnect(node_id)
        self.note(f"n{node_id} disconnected")

    def connect(self, node_id: NodeId) -> None:
        self.network.connect(node_id)
        self.note(f"n{node_id} connected")

    def partition(self, groups: list[list[NodeId]]) -> None:
        self.network.partition(groups)
        text = " | ".join(",".join(f"n{n}" for n in group) for group in groups)
        self.note(f"partition {text}")

    def block(self, source: NodeId, destination: NodeId) -> None:
        self.network.block(source, destination)
        self.note(f"link n{source}->n{destination} cut")

    def heal(self) -> None:
        self.network.heal()
        self.note("network healed")

    def set_conditions(self, conditions: NetworkConditions) -> None:
        self.network.conditions = conditions
        self.note(f"network {conditions.name}")

    # ------------------------------------------------------------------ clients

    def propose(self, node_id: NodeId, command: bytes, client: str = "client") -> Proposal | None:
        """Offers `command` to a node, as a client would; None if the node is not leader."""
        node = self.nodes[node_id]
        if node.raft is None:
            return None
        proposal = node.raft.propose(command)
        if self.trace_lines is not None:
            outcome = (
                f"index={proposal.index} term={proposal.term}" if proposal else "not leader"
            )
            self.note(f"{client} proposes {command.decode(errors='replace')} at n{node_id}: "
                      f"{outcome}")
        self._schedule_drain(node)
        return proposal

    def read(self, node_id: NodeId, context: bytes) -> ReadRecord | None:
        """Starts a ReadIndex read; the record fills in when the node serves it.

        The read must observe every entry any node knew to be committed when it started.
        """
        node = self.nodes[node_id]
        if node.raft is None or not node.raft.read_index(context):
            return None
        required = max(
            [n.raft.log.committed for n in self.nodes.values() if n.raft is not None]
            + list(self.checker.persisted_commit.values())
        )
        record = ReadRecord(context, node_id, required)
        self.reads[context] = record
        self.note(f"read {context.decode(errors='replace')} at n{node_id} needs >= {required}")
        self._schedule_drain(node)
        return record

    def _read_state(self, node: SimNode, read_state: ReadState) -> None:
        record = self.reads.get(read_state.context)
        if record is None:
            return
        record.ok = read_state.ok
        record.read_index = read_state.index
        if not read_state.ok:
            self.note(f"read {read_state.context.decode(errors='replace')} failed")
            return
        if read_state.index < record.required_index:
            raise InvariantViolation(
                f"read {read_state.context!r} at n{node.node_id} got index {read_state.index}, "
                f"but {record.required_index} was committed when it started"
            )
        self._reads_waiting.setdefault(node.node_id, []).append(record)

    def _serve_reads(self, node: SimNode) -> None:
        waiting = self._reads_waiting.get(node.node_id)
        if not waiting:
            return
        applied = node.state_machine.applied_index
        still_waiting = []
        for record in waiting:
            if applied >= record.read_index:
                record.served = True
                record.commands_seen = len(node.state_machine.commands)
                self.note(
                    f"read {record.context.decode(errors='replace')} served at "
                    f"n{node.node_id} index={record.read_index}"
                )
            else:
                still_waiting.append(record)
        self._reads_waiting[node.node_id] = still_waiting

    # ------------------------------------------------------------------ views

    def raft(self, node_id: NodeId) -> Raft:
        return self.nodes[node_id].require_raft()

    def live_nodes(self) -> list[NodeId]:
        return [node_id for node_id, node in self.nodes.items() if node.raft is not None]

    def leaders(self) -> list[NodeId]:
        return [
            node_id
            for node_id, node in self.nodes.items()
            if node.raft is not None and node.raft.role is Role.LEADER
        ]

    def persisted_log_bytes(self, node_id: NodeId) -> int:
        """The size of a node's stored log, counting 16 bytes of framing per entry."""
        return sum(16 + len(entry.data) for entry in self.nodes[node_id].storage.entries())

    def trace_text(self) -> str:
        return "\n".join(self.trace_lines or []) + "\n"
