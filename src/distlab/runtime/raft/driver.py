"""The Raft driver: one asyncio task that owns the core and applies its Readys in order.

Inputs (ticks, peer messages, proposals, read requests, admin requests) are queued; the task
feeds everything queued to the core, then handles each Ready as the contract says: persist
(in a worker thread, one fsync per Ready), send, apply, serve reads, advance. Whatever
arrives while the disk is busy is folded into the next Ready, which is how many concurrent
proposals come to share one fsync.

Commands are wrapped in an envelope so that the driver can keep state of its own in the log
next to the application's: the address book of members added at run time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from distlab.core.ids import NO_NODE, NodeId
from distlab.core.replicated_log import NotLeader, OutcomeUnknown, StateMachine
from distlab.core.status import EngineStatus
from distlab.protocols import raft
from distlab.runtime.raft.storage import DurableStorage
from distlab.runtime.raft.transport import RaftTransport

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

APP_COMMAND = b"A"
MEMBER_ADDRESS = b"M"
SNAPSHOT_FORMAT = 1
INBOX_LIMIT = 10_000
LEADER_OUTBOUND = (raft.AppendEntries, raft.Heartbeat, raft.InstallSnapshot, raft.TimeoutNow)

LEADER_CHANGES = Counter("distlab_raft_leader_changes_seen_total",
                         "Leader changes seen by this node.")
PROPOSALS_COMMITTED = Counter("distlab_raft_proposals_committed_total",
                              "Entries this node has seen committed.")
PROPOSALS_APPLIED = Counter("distlab_raft_proposals_applied_total",
                            "Entries applied to the state machine.")
PROPOSALS_PENDING = Gauge("distlab_raft_proposals_pending",
                          "Proposals accepted here and waiting to be applied.")
PROPOSAL_SECONDS = Histogram(
    "distlab_raft_proposal_duration_seconds",
    "From a proposal's arrival at the leader to its result (applied, or failed).",
    buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.0),
)
PROPOSALS_FAILED = Counter("distlab_raft_proposals_failed_total",
                           "Proposals that failed, by reason.", ["reason"])


@dataclass(frozen=True, slots=True)
class Timing:
    """How long a tick lasts, and the core's timeouts in ticks."""

    tick_seconds: float = 0.05
    election_ticks: int = 10
    # At most 10 heartbeats a second, as the 6.5840 lab asks of a Raft implementation.
    heartbeat_ticks: int = 2
    # Take a snapshot once this many entries are applied beyond the last one.
    snapshot_entries: int = 4096


@dataclass(slots=True)
class _Pending:
    term: int
    future: asyncio.Future[bytes]
    span: trace.Span


@dataclass(slots=True)
class _Inputs:
    ticks: int = 0
    messages: collections.deque[raft.Message] = field(default_factory=collections.deque)
    proposals: list[tuple[bytes, asyncio.Future[bytes], trace.Span]] = field(default_factory=list)
    reads: list[tuple[bytes, asyncio.Future[None]]] = field(default_factory=list)
    requests: list[tuple[Callable[[raft.Raft], Any], asyncio.Future[Any]]] = field(
        default_factory=list)


class RaftDriver:
    """Implements `ReplicatedLog` over a Raft core for one node."""

    def __init__(
        self,
        node_id: NodeId,
        addresses: Mapping[NodeId, str],
        storage: DurableStorage,
        machine: StateMachine,
        transport: RaftTransport,
        timing: Timing = Timing(),
        *,
        bootstrap: bool = True,
        learn_address: Callable[[NodeId, str], None] = lambda node, address: None,
    ) -> None:
        self.node_id = node_id
        self._addresses = dict(addresses)
        self._storage = storage
        self._machine = machine
        self._transport = transport
        self._timing = timing
        self._learn_address = learn_address
        config = raft.Config(
            node_id=node_id,
            voters=frozenset(addresses) if bootstrap else frozenset(),
            election_ticks=timing.election_ticks,
            heartbeat_ticks=timing.heartbeat_ticks,
        )
        snapshot = storage.snapshot()
        if snapshot is not None:
            self._restore(snapshot.data)
            log.info("restored snapshot at index %d from disk", snapshot.meta.last_index)
        self.core = raft.Raft(config, storage, random.Random())
        self._inputs = _Inputs()
        self._wake = asyncio.Event()
        self._pending: dict[int, _Pending] = {}
        self._reads: dict[bytes, asyncio.Future[None]] = {}
        self._reads_waiting_apply: list[tuple[int, asyncio.Future[None]]] = []
        self._read_counter = 0
        self._last_leader = NO_NODE
        # The log index of the last proposal handed to the core (see `_may_propose`).
        self._last_proposed_index = 0
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._election_span: trace.Span | None = None
        self._status = self._engine_status()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"raft-driver-{self.node_id}")
        self._schedule_tick()

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_everything(OutcomeUnknown("the node is shutting down"))
        await self._transport.close()
        self._storage.close()

    def _schedule_tick(self) -> None:
        loop = asyncio.get_running_loop()
        self._ticker = loop.call_later(self._timing.tick_seconds, self._on_tick)

    def _on_tick(self) -> None:
        self._inputs.ticks += 1
        self._wake.set()
        self._schedule_tick()

    # ------------------------------------------------------------------ inputs

    def deliver(self, message: raft.Message) -> bool:
        """Queue a message from a peer; False when the inbox is full (the peer retries)."""
        if len(self._inputs.messages) >= INBOX_LIMIT:
            return False
        self._inputs.messages.append(message)
        self._wake.set()
        return True

    async def propose(self, command: bytes) -> bytes:
        return await self._propose_envelope(APP_COMMAND + command)

    async def _propose_envelope(self, envelope: bytes) -> bytes:
        self._raise_unless_leader()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        # Only a traced request's proposal gets a span: building one costs more than the rest
        # of a proposal's bookkeeping, and without a collector nobody would see it.
        span = (tracer.start_span("raft.propose", attributes={"raft.node": self.node_id})
                if trace.get_current_span().is_recording() else trace.INVALID_SPAN)
        self._inputs.proposals.append((envelope, future, span))
        self._wake.set()
        started = time.perf_counter()
        try:
            return await future
        finally:
            PROPOSAL_SECONDS.observe(time.perf_counter() - started)
            span.end()

    async def read_barrier(self) -> None:
        self._raise_unless_leader()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._read_counter += 1
        self._inputs.reads.append((self._read_counter.to_bytes(8, "big"), future))
        self._wake.set()
        await future

    async def request(self, action: Callable[[raft.Raft], Any]) -> Any:
        """Run `action` on the core between Readys (membership, leadership transfer)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inputs.requests.append((action, future))
        self._wake.set()
        return await future

    async def add_member(self, node: NodeId, address: str) -> None:
        """Record `node`'s address in the log, then add it as a learner (promoted when caught
        up). Raises NotLeader, or ValueError when a membership change is already under way."""
        await self._propose_envelope(
            MEMBER_ADDRESS + json.dumps({"id": int(node), "address": address}).encode())
        if not await self.request(lambda core: core.add_member(node)):
            raise ValueError(f"cannot add node {node} now (a change is in progress, "
                             "or it is already a member)")

    def status(self) -> EngineStatus:
        return self._status

    def raft_status(self) -> raft.Status:
        return self.core.status()

    def isolate_from(self, peers: frozenset[NodeId]) -> None:
        """Drop Raft traffic to and from `peers` (an injected partition); empty heals it."""
        self._transport.isolated_from = peers
        log.warning("node %d now isolated from %s", self.node_id, sorted(peers) or "nobody")

    def isolated_from(self) -> frozenset[NodeId]:
        return self._transport.isolated_from

    def address_of(self, node: NodeId) -> str | None:
        return self._addresses.get(node)

    def _raise_unless_leader(self) -> None:
        status = self._status
        if status.role != raft.Role.LEADER.value:
            leader = status.leader_id or None
            raise NotLeader(leader, self._addresses.get(leader) if leader else None)

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self._feed_core()
                while self.core.has_ready():
                    await self._handle_ready(self.core.ready())
                    self._feed_core()
                self._maybe_snapshot()
                self._refresh_status()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the Raft driver failed; stopping the node's consensus")
            self._fail_everything(OutcomeUnknown("the Raft driver failed"))
            raise

    def _feed_core(self) -> None:
        inputs = self._inputs
        core = self.core
        while inputs.ticks:
            inputs.ticks -= 1
            core.tick()
        while inputs.messages:
            core.step(inputs.messages.popleft())
        if inputs.requests:
            requests, inputs.requests = inputs.requests, []
            for action, future in requests:
                if not future.done():
                    future.set_result(action(core))
        if inputs.proposals and self._may_propose():
            proposals, inputs.proposals = inputs.proposals, []
            accepted = core.propose_batch([envelope for envelope, _, _ in proposals])
            if not accepted:
                status = core.status()
                leader = status.leader_id or None
                error = NotLeader(leader, self._addresses.get(leader) if leader else None)
                for _, future, _ in proposals:
                    PROPOSALS_FAILED.labels("not_leader").inc()
                    if not future.done():
                        future.set_exception(error)
            if accepted:
                self._last_proposed_index = accepted[-1].index
            for proposal, (_, future, span) in zip(accepted, proposals, strict=False):
                span.set_attribute("raft.index", proposal.index)
                span.set_attribute("raft.term", proposal.term)
                self._pending[proposal.index] = _Pending(proposal.term, future, span)
            PROPOSALS_PENDING.set(len(self._pending))
        if inputs.reads:
            reads, inputs.reads = inputs.reads, []
            for read_context, future in reads:
                if core.read_index(read_context):
                    self._reads[read_context] = future
                elif not future.done():
                    status = core.status()
                    leader = status.leader_id or None
                    future.set_exception(
                        NotLeader(leader, self._addresses.get(leader) if leader else None))

    def _may_propose(self) -> bool:
        """Group commit: while the previous batch of proposals is being replicated, new ones
        wait, and go to the core together once it commits.

        Every batch costs a Ready: an fsync, an append to each follower and their replies,
        each a system call and a wake-up or more. Proposals that arrive while a batch is out
        share the next one, so under load the batch grows with the arrival rate, and a lone
        proposal (nothing in flight) goes at once. A node that is not the leader hands them
        over at once too, to fail them without waiting.
        """
        core = self.core
        log_ = core.log
        return (core.role is not raft.Role.LEADER
                or log_.committed >= self._last_proposed_index
                or log_.last_index() < self._last_proposed_index)

    async def _handle_ready(self, ready: raft.Ready) -> None:
        # A leader's own appends, heartbeats and snapshots do not depend on what it persists
        # in this Ready (it counts its own copy of an entry only once this Ready is done), so
        # they go out first and the followers' disks work while the leader's does, as in etcd.
        # Votes and replies acknowledge persisted state: they wait for the disk.
        later: list[raft.Message] = []
        sent_early = False
        for message in ready.messages:
            if isinstance(message, LEADER_OUTBOUND):
                self._transport.send(message, self._trace_context_for(message))
                sent_early = True
            else:
                later.append(message)
        storage = self._storage
        if storage.needs_disk(ready):
            if not storage.persists_inline():
                await asyncio.to_thread(storage.persist, ready)
            else:
                if sent_early:
                    # Let the peer senders write the appends to their streams before this
                    # thread blocks in fsync, or the followers' fsyncs would wait for ours.
                    await asyncio.sleep(0)
                storage.persist(ready)
        elif ready.must_sync:
            storage.persist(ready)  # bookkeeping only: nothing touches the disk
        if ready.snapshot is not None:
            self._restore(ready.snapshot.data)
            log.info("restored snapshot at index %d received from node %s",
                     ready.snapshot.meta.last_index, self.core.status().leader_id)
        for message in later:
            self._transport.send(message, self._trace_context_for(message))
        self._apply(ready.committed_entries)
        for read_state in ready.read_states:
            self._serve_read(read_state)
        self.core.advance()
        self._release_reads()

    def _trace_context_for(self, message: raft.Message) -> otel_context.Context | None:
        """Appends carrying a traced proposal's entry become children of its span."""
        if isinstance(message, raft.AppendEntries) and message.entries:
            pending = self._pending.get(message.entries[-1].index)
            if pending is not None and pending.span.is_recording():
                return trace.set_span_in_context(pending.span)
        if isinstance(message, raft.RequestVote) and self._election_span is not None:
            return trace.set_span_in_context(self._election_span)
        return None

    # ------------------------------------------------------------------ applying

    def _apply(self, entries: tuple[raft.Entry, ...]) -> None:
        if not entries:
            return
        PROPOSALS_COMMITTED.inc(len(entries))
        for entry in entries:
            result = b""
            if entry.kind is raft.EntryKind.NORMAL and entry.data:
                tag, body = entry.data[:1], entry.data[1:]
                if tag == APP_COMMAND:
                    result = self._machine.apply(entry.index, body)
                elif tag == MEMBER_ADDRESS:
                    self._note_address(body)
                else:
                    log.error("entry %d has unknown envelope %r; skipped", entry.index, tag)
            pending = self._pending.pop(entry.index, None)
            if pending is not None:
                if pending.term == entry.term:
                    pending.span.add_event("applied")
                    if not pending.future.done():
                        pending.future.set_result(result)
                else:
                    PROPOSALS_FAILED.labels("overwritten").inc()
                    if not pending.future.done():
                        pending.future.set_exception(
                            OutcomeUnknown("leadership changed before the command committed"))
        PROPOSALS_APPLIED.inc(len(entries))
        PROPOSALS_PENDING.set(len(self._pending))

    def _note_address(self, body: bytes) -> None:
        try:
            record = json.loads(body)
            node, address = NodeId(int(record["id"])), str(record["address"])
        except (ValueError, KeyError, TypeError):
            log.error("unreadable member address record %r; skipped", body)
            return
        self._addresses[node] = address
        self._learn_address(node, address)

    # ------------------------------------------------------------------ reads

    def _serve_read(self, read_state: raft.ReadState) -> None:
        future = self._reads.pop(read_state.context, None)
        if future is None or future.done():
            return
        if not read_state.ok:
            future.set_exception(OutcomeUnknown("leadership was lost before the read"))
            return
        self._reads_waiting_apply.append((read_state.index, future))

    def _release_reads(self) -> None:
        if not self._reads_waiting_apply:
            return
        applied = self.core.log.applied
        still_waiting = []
        for index, future in self._reads_waiting_apply:
            if index <= applied:
                if not future.done():
                    future.set_result(None)
            else:
                still_waiting.append((index, future))
        self._reads_waiting_apply = still_waiting

    # ------------------------------------------------------------------ snapshots

    def _maybe_snapshot(self) -> None:
        applied = self.core.log.applied
        if applied - self.core.log.snapshot_index < self._timing.snapshot_entries:
            return
        snapshot = self.core.compact(applied, self._snapshot_data())
        # Synchronous on purpose: the core already dropped the entries the snapshot covers,
        # so the file must exist before anything else can happen.
        self._storage.save_snapshot(snapshot)
        log.info("snapshot at index %d (%d bytes)", snapshot.meta.last_index,
                 len(snapshot.data))

    def _snapshot_data(self) -> bytes:
        header = json.dumps({
            "format": SNAPSHOT_FORMAT,
            "addresses": {str(node): address for node, address in self._addresses.items()},
        }).encode()
        return len(header).to_bytes(4, "big") + header + self._machine.snapshot()

    def _restore(self, data: bytes) -> None:
        size = int.from_bytes(data[:4], "big")
        header = json.loads(data[4 : 4 + size])
        if header.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"snapshot format {header.get('format')} is not {SNAPSHOT_FORMAT}")
        for node_text, address in header["addresses"].items():
            node = NodeId(int(node_text))
            if self._addresses.get(node) != address:
                self._addresses[node] = address
                self._learn_address(node, address)
        self._machine.restore(data[4 + size :])

    # ------------------------------------------------------------------ status

    def _engine_status(self) -> EngineStatus:
        # Built from the core's fields rather than `core.status()`: this runs after every
        # batch of inputs, and the full status costs several times as much.
        core = self.core
        return EngineStatus(
            role=core.role.value, term=core.term, leader_id=core.leader_id,
            commit_index=core.log.committed, applied_index=core.log.applied,
        )

    def _refresh_status(self) -> None:
        previous = self._status
        self._status = current = self._engine_status()
        if current.leader_id != self._last_leader:
            if current.leader_id != NO_NODE:
                LEADER_CHANGES.inc()
                log.info("node %d sees leader %d in term %d", self.node_id, current.leader_id,
                         current.term)
            self._last_leader = current.leader_id
        self._trace_elections(previous, current)
        if previous.role == raft.Role.LEADER.value and current.role != previous.role:
            log.info("node %d stepped down in term %d", self.node_id, current.term)
            self._fail_everything(OutcomeUnknown("this node stopped leading"))

    def _trace_elections(self, previous: EngineStatus, current: EngineStatus) -> None:
        candidate = raft.Role.CANDIDATE.value
        if current.role == candidate and (previous.role != candidate
                                          or current.term != previous.term):
            if self._election_span is not None:
                self._election_span.set_attribute("raft.outcome", "timed out")
                self._election_span.end()
            self._election_span = tracer.start_span(
                "raft.election", attributes={"raft.node": self.node_id, "raft.term": current.term})
        elif self._election_span is not None and current.role != candidate:
            won = current.role == raft.Role.LEADER.value
            self._election_span.set_attribute("raft.outcome", "won" if won else "lost")
            self._election_span.set_attribute("raft.leader", current.leader_id)
            self._election_span.end()
            self._election_span = None

    def _fail_everything(self, error: Exception) -> None:
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            PROPOSALS_FAILED.labels("leadership_lost").inc()
            if not entry.future.done():
                entry.future.set_exception(error)
        reads = list(self._reads.values()) + [f for _, f in self._reads_waiting_apply]
        self._reads.clear()
        self._reads_waiting_apply = []
        for future in reads:
            if not future.done():
                future.set_exception(error)
        PROPOSALS_PENDING.set(0)
