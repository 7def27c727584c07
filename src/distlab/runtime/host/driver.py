"""The generic driver of a consensus core: the one loop (`core_loop.CoreLoop`) around it,
applying its Readys.

Inputs (ticks, peer messages, transport reports, proposals, read requests, admin requests)
are queued; the task feeds everything queued to the core, then handles each Ready as the
contract says: persist (durable before anything that depends on it leaves), send, apply,
serve reads, advance. Whatever arrives while the disk is busy is folded into the next Ready,
which is how many concurrent proposals come to share one fsync.

The driver reaches the world only through its ports (Clock, Transport, Storage), so the
simulator runs this very code on virtual time, a simulated network and a simulated disk.
It knows no protocol: every engine's core offers `ConsensusCore`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

from distlab.core.consensus import ConsensusCore, ReadState
from distlab.core.ids import NO_NODE, NodeId
from distlab.core.replicated_log import NotLeader, OutcomeUnknown, TimedOut
from distlab.core.status import EngineStatus
from distlab.runtime.host.core_loop import INBOX_LIMIT, CoreLoop
from distlab.runtime.host.machine import AddressBook, HostedMachine, app_command
from distlab.runtime.host.metrics import DriverMetrics
from distlab.runtime.host.ports import Clock, Storage, Transport

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

__all__ = ["INBOX_LIMIT", "Driver", "Timing"]

CoreT = TypeVar("CoreT", bound=ConsensusCore)


@dataclass(frozen=True, slots=True)
class Timing:
    """How long a tick lasts, and how often the driver snapshots."""

    tick_seconds: float = 0.05
    # Take a snapshot once this many entries are applied beyond the last one.
    snapshot_entries: int = 4096
    # A proposal or read barrier with no outcome this long after it was asked for fails
    # with TimedOut (None: it waits as long as it takes). Checked once a tick, so it costs
    # no timer per request.
    wait_seconds: float | None = None
    # How long, at most, a leader holds the next batch for the writers the last one answered
    # (see `Driver._batch_committed`); 0: it never holds.
    batch_wait_seconds: float = 0.0


@dataclass(slots=True)
class _Pending:
    term: int
    future: asyncio.Future[bytes]
    span: trace.Span | None  # None: the request is not traced


@dataclass(slots=True)
class _Inputs:
    unreachable: list[NodeId] = field(default_factory=list)
    snapshot_reports: list[tuple[NodeId, bool]] = field(default_factory=list)
    proposals: list[tuple[bytes, asyncio.Future[bytes], trace.Span | None]] = field(
        default_factory=list)
    reads: list[tuple[bytes, asyncio.Future[None]]] = field(default_factory=list)
    requests: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]] = field(
        default_factory=list)


class Driver(CoreLoop, Generic[CoreT]):
    """Implements `ReplicatedLog` for one instance (one group) over a consensus core."""

    core: CoreT

    def __init__(
        self,
        *,
        node_id: NodeId,
        group: int,
        core: CoreT,
        machine: HostedMachine,
        storage: Storage,
        transport: Transport,
        clock: Clock,
        metrics: DriverMetrics,
        timing: Timing = Timing(),
        on_failure: Callable[[BaseException], None] = lambda error: None,
    ) -> None:
        super().__init__(clock=clock, tick_seconds=timing.tick_seconds,
                         name=f"driver-{node_id}-{group}")
        self.node_id = node_id
        self.group = group
        self.core = core
        self.machine = machine
        self._storage = storage
        self._transport = transport
        self._metrics = metrics
        # Span names and protocol attributes carry the engine's name (`raft.propose`,
        # `raft.index`); `distlab.group` is common to every engine.
        self._engine = metrics.engine
        self._timing = timing
        self._on_failure = on_failure
        self._inputs = _Inputs()
        self._pending: dict[int, _Pending] = {}
        self._reads: dict[bytes, asyncio.Future[None]] = {}
        self._reads_waiting_apply: list[tuple[int, asyncio.Future[None]]] = []
        self._read_counter = 0
        self._last_leader = NO_NODE
        # The log index of the last proposal handed to the core (see `_may_propose`), and how
        # many proposals its batch had (what the next batch waits for, `_batch_committed`).
        self._last_proposed_index = 0
        self._last_batch_size = 0
        self._batch_in_flight = False
        # While the next batch gathers: how many proposals it waits for, and until when.
        self._gathering: tuple[int, float] | None = None
        self._election_span: trace.Span | None = None
        self._status = core.engine_status()
        # Every request's (deadline, future, whether a proposal), oldest first, when requests
        # have a wait.
        self._deadlines: collections.deque[tuple[float, asyncio.Future[Any], bool]] = (
            collections.deque())

    @property
    def addresses(self) -> AddressBook:
        return self.machine.addresses

    # ------------------------------------------------------------------ lifecycle

    async def stop(self) -> None:
        await self._stop_loop()
        stopping = OutcomeUnknown("the node is shutting down")
        self._fail_everything(stopping)
        queued, self._inputs.proposals = self._inputs.proposals, []
        for _, future, _ in queued:
            if not future.done():
                future.set_exception(stopping)
        self._storage.close()

    # ------------------------------------------------------------------ inputs

    def deliver(self, message: Any) -> bool:
        """Queue a message from a peer; False when the inbox is full (the peer retries)."""
        return self._queue_message(message)

    def report_unreachable(self, peer: NodeId) -> None:
        self._inputs.unreachable.append(peer)
        self._wake.set()

    def report_snapshot(self, peer: NodeId, succeeded: bool) -> None:
        self._inputs.snapshot_reports.append((peer, succeeded))
        self._wake.set()

    def propose(self, command: bytes) -> Coroutine[Any, Any, bytes]:
        # Not a coroutine of its own: every layer of coroutines is resumed again on each wake-up.
        return self.propose_envelope(app_command(command))

    async def propose_envelope(self, envelope: bytes) -> bytes:
        """Replicate a host record (see `machine`), wait for it to apply, return its result."""
        self._raise_unless_leader()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        # Only a traced request's proposal gets a span: building one costs more than the rest
        # of a proposal's bookkeeping, and without a collector nobody would see it.
        span = (tracer.start_span(f"{self._engine}.propose",
                                  attributes={f"{self._engine}.node": self.node_id,
                                              "distlab.group": self.group})
                if trace.get_current_span().is_recording() else None)
        self._inputs.proposals.append((envelope, future, span))
        self._wake.set()
        started = self._clock.monotonic()
        self._bound(future, started, proposal=True)
        try:
            return await future
        finally:
            self._metrics.proposal_seconds.observe(self._clock.monotonic() - started)
            if span is not None:
                span.end()

    async def read_barrier(self) -> None:
        self._raise_unless_leader()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._read_counter += 1
        self._inputs.reads.append((self._read_counter.to_bytes(8, "big"), future))
        self._wake.set()
        self._bound(future, self._clock.monotonic(), proposal=False)
        await future

    def _bound(self, future: asyncio.Future[Any], started: float, *, proposal: bool) -> None:
        """Give `future` its deadline, when requests have a wait (see `_after_tick`)."""
        wait = self._timing.wait_seconds
        if wait is not None:
            self._deadlines.append((started + wait, future, proposal))

    async def request(self, action: Callable[[CoreT], Any]) -> Any:
        """Run `action` on the core between Readys (membership, leadership transfer)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inputs.requests.append((action, future))
        self._wake.set()
        return await future

    def status(self) -> EngineStatus:
        return self._status

    def not_leader(self) -> NotLeader:
        leader = self._status.leader_id or None
        return NotLeader(leader, self.addresses.get(leader) if leader else None)

    def _raise_unless_leader(self) -> None:
        if self.failed is not None:
            raise OutcomeUnknown(f"this node's storage failed: {self.failed}")
        if self._status.role != "leader":
            raise self.not_leader()

    # ------------------------------------------------------------------ the loop

    def _after_tick(self) -> None:
        deadlines = self._deadlines
        if not deadlines:
            return
        now = self._clock.monotonic()
        while deadlines and (deadlines[0][0] <= now or deadlines[0][1].done()):
            _, future, proposal = deadlines.popleft()
            if not future.done():
                if proposal:
                    self._metrics.failed_timed_out.inc()
                future.set_exception(TimedOut(
                    f"no outcome within {self._timing.wait_seconds:g} s"))

    def _after_readys(self) -> None:
        self._maybe_snapshot()
        self._refresh_status()

    def _fail(self, error: Exception) -> None:
        # A failed fsync or a broken invariant: this member must stop rather than carry on
        # as if its state were safe.
        log.exception("node %d group %d: the driver failed; stopping", self.node_id,
                      self.group, exc_info=error)
        self._fail_everything(OutcomeUnknown(f"the driver failed: {error}"))
        self._on_failure(error)

    def _feed_core(self) -> None:
        inputs = self._inputs
        core = self.core
        self._feed_ticks_and_messages()
        if inputs.unreachable:
            unreachable, inputs.unreachable = inputs.unreachable, []
            for peer in unreachable:
                core.report_unreachable(peer)
        if inputs.snapshot_reports:
            reports, inputs.snapshot_reports = inputs.snapshot_reports, []
            for peer, succeeded in reports:
                core.report_snapshot(peer, succeeded)
        if inputs.requests:
            requests, inputs.requests = inputs.requests, []
            for action, future in requests:
                if not future.done():
                    future.set_result(action(core))
        if self._batch_in_flight and core.known_committed() >= self._last_proposed_index:
            self._batch_committed()
        if inputs.proposals and self._may_propose():
            self._propose_queued()
        if inputs.reads:
            reads, inputs.reads = inputs.reads, []
            for read_context, future in reads:
                if core.read_index(read_context):
                    self._reads[read_context] = future
                elif not future.done():
                    self._status = core.engine_status()
                    future.set_exception(self.not_leader())

    def _propose_queued(self) -> None:
        inputs = self._inputs
        proposals, inputs.proposals = inputs.proposals, []
        accepted = self.core.propose_batch([envelope for envelope, _, _ in proposals])
        metrics = self._metrics
        if not accepted:
            self._status = self.core.engine_status()
            error = self.not_leader()
            for _, future, _ in proposals:
                metrics.failed_not_leader.inc()
                if not future.done():
                    future.set_exception(error)
            return
        self._last_proposed_index = accepted[-1].index
        self._last_batch_size = len(accepted)
        self._batch_in_flight = True
        for proposal, (_, future, span) in zip(accepted, proposals, strict=True):
            if span is not None:
                span.set_attribute(f"{self._engine}.index", proposal.index)
                span.set_attribute(f"{self._engine}.term", proposal.term)
            self._pending[proposal.index] = _Pending(proposal.term, future, span)
        metrics.pending.set(len(self._pending))

    def _may_propose(self) -> bool:
        """Group commit: while the previous batch of proposals is being replicated, new ones
        wait, and go to the core together once it commits.

        Every batch costs a Ready: an fsync, an append to each follower and their replies,
        each a system call and a wake-up or more. Proposals that arrive while a batch is out
        share the next one, so under load the batch grows with the arrival rate, and a lone
        proposal (nothing in flight) goes at once. Once a batch commits, the next one may
        wait a little longer for the writers it answered (`_batch_committed`). A member that
        is not the leader hands them over at once, to fail them without waiting.
        """
        # The core's own commit index, not the status of the last Ready: acknowledgements
        # stepped in this very feed may have committed the batch, and the next one then
        # leaves in the same Ready as the commit, carrying the new commit index with it
        # instead of a separate commit notice.
        core = self.core
        if not core.is_leader() or core.last_log_index() < self._last_proposed_index:
            self._gathering = None
            return True
        if core.known_committed() < self._last_proposed_index:
            return False
        gathering = self._gathering
        if gathering is None:
            return True
        target, until = gathering
        if len(self._inputs.proposals) >= target or self._clock.monotonic() >= until:
            self._gathering = None
            return True
        return False

    def _batch_committed(self) -> None:
        """The last batch has committed: decide what the next one waits for.

        In a closed loop every writer a batch answers writes again within its own round
        trip. Proposing at once would send whatever trickled in meanwhile, a few entries a
        batch, each batch paying its fsyncs, messages and wake-ups again while the answered
        writers' next requests queue behind it: under 64 writers the batches stayed at five
        or six, and that per-batch work bounded the throughput. So the next batch waits for
        the proposals queued now plus one from each writer this batch answers but one (a
        proposal of the host's own, or a writer that stopped, must not hold every batch for
        the whole wait), or for `batch_wait_seconds`, whichever comes first. A lone writer
        waits for nothing: low load pays no timer.
        """
        self._batch_in_flight = False
        wait = self._timing.batch_wait_seconds
        target = len(self._inputs.proposals) + self._last_batch_size - 1
        if not wait or target <= 1:
            return
        self._gathering = (target, self._clock.monotonic() + wait)
        self._clock.call_later(wait, self._wake.set)

    async def _handle_ready(self, ready: Any) -> None:
        # A leader's own appends do not depend on what it persists in this Ready (it counts
        # its own copy of an entry only once this Ready is done), so they go out first and
        # the followers' disks work while the leader's does, as in etcd. Votes and replies
        # acknowledge persisted state: they wait for the disk.
        core = self.core
        later: list[Any] = []
        transport = self._transport
        early = False
        for message in ready.messages:
            if core.sends_before_persist(message):
                transport.send(message, self._trace_context_for(message))
                early = True
            else:
                later.append(message)
        if early:
            # The peer senders write these (a leader's appends) before this task writes the
            # same entries to its own log: every follower's disk starts that much sooner, and
            # the commit waits for a follower's.
            await asyncio.sleep(0)
        await self._storage.persist(ready)
        if ready.snapshot is not None:
            self.machine.restore(ready.snapshot.data)
            log.info("group %d: restored snapshot at index %d received from node %s",
                     self.group, ready.snapshot.meta.last_index, self._status.leader_id)
        for message in later:
            transport.send(message, self._trace_context_for(message))
        if later:
            # A follower's acknowledgement is what the leader waits for: its peer sender
            # writes it before this task goes on to apply and account for the Ready.
            await asyncio.sleep(0)
        self._apply(ready.committed_entries)
        for read_state in ready.read_states:
            self._serve_read(read_state)
        core.advance()
        # Through the one status refresh, which sees a leader deposed by a message of this
        # Ready step down and fails what it had pending: no later Ready may ever settle it
        # (a slot no new leader fills).
        self._refresh_status()
        self._release_reads()

    def _trace_context_for(self, message: Any) -> otel_context.Context | None:
        """Messages carrying a traced proposal's entry become children of its span; a
        candidate's vote requests, children of its election span."""
        if self._pending:
            index = getattr(message, "last_entry_index", None)
            pending = self._pending.get(index) if index else None
            if pending is not None and pending.span is not None:
                return trace.set_span_in_context(pending.span)
        if self._election_span is not None:
            return trace.set_span_in_context(self._election_span)
        return None

    # ------------------------------------------------------------------ applying

    def _apply(self, entries: Any) -> None:
        if not entries:
            return
        metrics = self._metrics
        metrics.committed.inc(len(entries))
        machine = self.machine
        pending_proposals = self._pending
        for entry in entries:
            command = entry.command
            result = machine.apply(entry.index, command) if command else b""
            pending = pending_proposals.pop(entry.index, None)
            if pending is None:
                continue
            if pending.term == entry.term:
                if pending.span is not None:
                    pending.span.add_event("applied")
                if not pending.future.done():
                    pending.future.set_result(result)
            else:
                metrics.failed_overwritten.inc()
                if not pending.future.done():
                    pending.future.set_exception(
                        OutcomeUnknown("leadership changed before the command committed"))
        metrics.applied.inc(len(entries))
        metrics.pending.set(len(pending_proposals))

    # ------------------------------------------------------------------ reads

    def _serve_read(self, read_state: ReadState) -> None:
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
        applied = self._status.applied_index
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
        applied = self._status.applied_index
        if applied - self.core.snapshot_index() < self._timing.snapshot_entries:
            return
        snapshot = self.core.compact(applied, self.machine.snapshot())
        # Synchronous on purpose: the core already dropped the entries the snapshot covers,
        # so the file must exist before anything else can happen.
        self._storage.save_snapshot(snapshot)
        log.info("group %d: snapshot at index %d (%d bytes)", self.group,
                 snapshot.meta.last_index, len(snapshot.data))

    # ------------------------------------------------------------------ status

    def _refresh_status(self) -> None:
        previous = self._status
        self._status = current = self.core.engine_status()
        if current.leader_id != self._last_leader:
            if current.leader_id != NO_NODE:
                self._metrics.leader_changes.inc()
                log.info("node %d group %d sees leader %d in term %d", self.node_id,
                         self.group, current.leader_id, current.term)
            self._last_leader = current.leader_id
        self._trace_elections(previous, current)
        if previous.role == "leader" and current.role != previous.role:
            log.info("node %d group %d stepped down in term %d", self.node_id, self.group,
                     current.term)
            self._fail_everything(OutcomeUnknown("this node stopped leading"))

    def _trace_elections(self, previous: EngineStatus, current: EngineStatus) -> None:
        candidate = "candidate"
        if current.role == candidate and (previous.role != candidate
                                          or current.term != previous.term):
            if self._election_span is not None:
                self._election_span.set_attribute(f"{self._engine}.outcome", "timed out")
                self._election_span.end()
            self._election_span = tracer.start_span(
                f"{self._engine}.election",
                attributes={f"{self._engine}.node": self.node_id, "distlab.group": self.group,
                            f"{self._engine}.term": current.term})
        elif self._election_span is not None and current.role != candidate:
            won = current.role == "leader"
            self._election_span.set_attribute(f"{self._engine}.outcome",
                                              "won" if won else "lost")
            self._election_span.set_attribute(f"{self._engine}.leader", current.leader_id)
            self._election_span.end()
            self._election_span = None

    def _fail_everything(self, error: Exception) -> None:
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            self._metrics.failed_leadership_lost.inc()
            if not entry.future.done():
                entry.future.set_exception(error)
        reads = list(self._reads.values()) + [f for _, f in self._reads_waiting_apply]
        self._reads.clear()
        self._reads_waiting_apply = []
        for future in reads:
            if not future.done():
                future.set_exception(error)
        self._metrics.pending.set(0)
