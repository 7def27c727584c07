"""The transaction driver: the one loop (`runtime/host/core_loop.py`) around a `TxnNode`.

Inputs (ticks, peer messages, clients' transactions, status requests) are queued; the task
feeds everything queued to the core, then handles each Ready as the contract says: force the
records to the log (fsync), then send (a message to this node itself comes back through the
inbox, after the disk), then report outcomes to the clients waiting for them, then advance.
It reaches the world only through the host's ports (Clock, Transport, Storage), so the
simulator runs this very code on virtual time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from distlab.core.ids import NodeId
from distlab.core.replicated_log import EngineError, OutcomeUnknown
from distlab.core.truetime import NS_PER_SECOND, TrueTime
from distlab.protocols.txn import (
    Decision,
    DecisionAck,
    InDoubt,
    Message,
    Op,
    Outcome,
    Prepare,
    Protocol,
    RecordKind,
    TxnNode,
    TxnReady,
    Vote,
)
from distlab.runtime.host.core_loop import CoreLoop
from distlab.runtime.host.ports import Clock, Storage, Transport, sleep
from distlab.runtime.txn import metrics
from distlab.telemetry.truetime import COMMIT_WAIT

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# Clients' transactions waiting to be begun, at most.
BEGIN_LIMIT = 10_000
DEFAULT_TICK_SECONDS = 0.01

# Transaction faults a node can be armed with (through Admin), each a crash at one moment of
# the protocol, a cut from the network at one, or a refusal. A crash "after sending" strikes
# at the next tick, once the transport has had the time to write what was handed to it.
CRASH_POINTS = (
    "coordinator-crash-after-prepare-some",
    "coordinator-crash-after-commit-logged",
    "coordinator-crash-after-commit-some",
    "participant-crash-after-yes",
    "participant-crash-after-ack",
)
# The node cuts itself off from every peer right after it votes yes in a transaction that
# writes here and has other participants and another coordinator (what it handed to the
# transport still leaves; nothing more comes in), once, until the partition is healed: the
# participants end up on two sides of a partition with the transaction undecided.
ISOLATE_AFTER_YES = "participant-isolate-after-yes"
VOTE_NO = "participant-vote-no"
TXN_FAULTS = (*CRASH_POINTS, ISOLATE_AFTER_YES, VOTE_NO)


@dataclass(slots=True)
class _Inputs:
    # Clients' transactions, each as the call that begins it on the core.
    begins: list[Callable[[TxnNode], None]] = field(default_factory=list)
    requests: list[tuple[Callable[[TxnNode], Any], asyncio.Future[Any]]] = field(
        default_factory=list)


class TxnDriver(CoreLoop):
    core: TxnNode

    def __init__(
        self,
        *,
        node_id: NodeId,
        core: TxnNode,
        storage: Storage,
        transport: Transport,
        clock: Clock,
        tick_seconds: float = DEFAULT_TICK_SECONDS,
        on_failure: Callable[[BaseException], None] = lambda error: None,
        on_ready: Callable[[TxnNode, TxnReady], None] | None = None,
        crash: Callable[[str], None] | None = None,
        participant: str = "node",
        truetime: TrueTime | None = None,
        isolate: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(clock=clock, tick_seconds=tick_seconds, name=f"txn-driver-{node_id}")
        self.node_id = node_id
        self.core = core
        self._storage = storage
        self._transport = transport
        self._on_failure = on_failure
        self._on_ready = on_ready
        # With timestamps: TrueTime, read before each batch of inputs, and waited on before
        # anything reveals a commit (commit wait).
        self._truetime = truetime
        self._inputs = _Inputs()
        self._waiting: dict[str, list[asyncio.Future[Outcome]]] = {}
        self._protocols: dict[str, Protocol] = {}
        # Metrics, labelled with which participant this is ("node", or "group-G").
        self._participant = participant
        self._unfinished_coordinating = metrics.UNFINISHED.labels("coordinator", participant)
        self._unfinished_participating = metrics.UNFINISHED.labels("participant", participant)
        self._in_doubt = metrics.IN_DOUBT.labels(participant)
        self._lock_waits = metrics.LOCK_WAITS.labels(participant)
        self._lock_deaths = metrics.LOCK_DEATHS.labels(participant)
        self._prepare_seconds = metrics.PHASE_SECONDS.labels("prepare", participant)
        self._commit_seconds = metrics.PHASE_SECONDS.labels("commit", participant)
        self._counted_waits = (core.participant.lock_waits, core.participant.lock_deaths)
        # When a transaction coordinated here began, and when it was decided.
        self._began: dict[str, float] = {}
        self._decided: dict[str, float] = {}
        # A traced client's transaction: its span, parent of its messages' spans.
        self._spans: dict[str, trace.Span] = {}
        self._phase_spans: dict[str, trace.Span] = {}
        self.unreachable_reports = 0
        # Armed faults (TXN_FAULTS), and how the process dies at a crash point.
        self.faults: frozenset[str] = frozenset()
        self._crash = crash
        self._isolate = isolate
        self._crash_at_next_tick: str | None = None
        # Whether a Ready's records are being forced: the core can hear nothing until they
        # are, so that time is no silence of its peers and its timeouts do not run. (Over a
        # group it can be long: a leader cut off from its group waits until it is back; fed
        # every tick it missed at once, a 3PC participant would run a whole termination
        # round alone, between two Readys, with no message out.)
        self._persisting = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        super().start()
        # Whatever recovery produced (COMMIT to resend) goes out at once.
        self._wake.set()

    async def stop(self) -> None:
        await self._stop_loop()
        self._fail_waiting(OutcomeUnknown("the node is shutting down"))
        self._storage.close()

    def _wants_tick(self) -> bool:
        if self._crash_at_next_tick is not None and self._crash is not None:
            self._crash(self._crash_at_next_tick)
        # Ticks only time out transactions: an idle core needs none, and an idle node stays
        # idle.
        return not self.core.idle() and not self._persisting

    # ------------------------------------------------------------------ inputs

    def deliver(self, message: Message) -> bool:
        return self._queue_message(message)

    def report_unreachable(self, peer: NodeId) -> None:
        # The cores retransmit on their own timers; the count is for status.
        self.unreachable_reports += 1

    def report_snapshot(self, peer: NodeId, succeeded: bool) -> None:
        raise AssertionError("transaction messages are never snapshots")

    async def execute(self, txn: str, priority: tuple[int, str], ops: tuple[Op, ...],
                      protocol: Protocol) -> Outcome:
        """Begin `txn` here as its coordinator and wait for its outcome. Raises
        OutcomeUnknown if the node stops first (the transaction may still commit)."""
        return await self._run_transaction(
            txn, protocol, len(ops), lambda core: core.begin(txn, priority, ops, protocol))

    async def execute_read(self, txn: str, keys: tuple[str, ...], ts: int | None) -> Outcome:
        """A read-only transaction of `keys` at `ts` (None: TrueTime's latest), without
        locks, coordinated here."""
        return await self._run_transaction(
            txn, Protocol.TWO_PHASE, len(keys), lambda core: core.begin_read(txn, keys, ts))

    async def _run_transaction(self, txn: str, protocol: Protocol, operations: int,
                               begin: Callable[[TxnNode], None]) -> Outcome:
        if self.failed is not None:
            raise OutcomeUnknown(f"this node's storage failed: {self.failed}")
        if len(self._inputs.begins) >= BEGIN_LIMIT:
            raise OutcomeUnknown("too many transactions waiting to begin")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(txn, []).append(future)
        self._protocols[txn] = protocol
        if (trace.get_current_span().is_recording() and txn not in self._spans
                and len(self._spans) < BEGIN_LIMIT):
            span = self._spans[txn] = tracer.start_span(
                "txn.transaction", attributes={"txn.id": txn, "txn.protocol": protocol.value,
                                               "txn.coordinator": self.node_id,
                                               "txn.operations": operations})
            # The prepare phase, until the decision (or, read-only, the last read).
            self._phase_spans[txn] = tracer.start_span(
                "txn.prepare", context=trace.set_span_in_context(span),
                attributes={"txn.id": txn})
        self._inputs.begins.append(begin)
        if len(self._began) < BEGIN_LIMIT:
            self._began.setdefault(txn, self._clock.monotonic())
        self._wake.set()
        try:
            return await future
        finally:
            waiting = self._waiting.get(txn)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiting[txn]
                    self._protocols.pop(txn, None)

    async def request(self, action: Callable[[TxnNode], Any]) -> Any:
        """Run `action` on the core between Readys (status, fault injection)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inputs.requests.append((action, future))
        self._wake.set()
        return await future

    async def in_doubt(self) -> list[InDoubt]:
        result: list[InDoubt] = await self.request(lambda core: core.in_doubt())
        return result

    # ------------------------------------------------------------------ the loop

    def _halted(self) -> bool:
        # Dying at a crash point: nothing more happens here.
        return self._crash_at_next_tick is not None

    def _fail(self, error: Exception) -> None:
        if isinstance(error, EngineError):
            # The log is a consensus group this node no longer leads: its next leader runs
            # the core from the records the group applied.
            self._fail_waiting(OutcomeUnknown(f"this participant's group moved: {error}"))
        else:
            log.exception("node %d: the transaction driver failed; stopping", self.node_id,
                          exc_info=error)
            self._fail_waiting(OutcomeUnknown(f"the transaction driver failed: {error}"))
        self._on_failure(error)

    def _feed_core(self) -> None:
        inputs = self._inputs
        core = self.core
        if self._truetime is not None:
            core.observe_time(self._truetime.now())
        self._feed_ticks_and_messages()
        if inputs.begins:
            begins, inputs.begins = inputs.begins, []
            for begin in begins:
                begin(core)
        if inputs.requests:
            requests, inputs.requests = inputs.requests, []
            for action, future in requests:
                if not future.done():
                    try:
                        future.set_result(action(core))
                    except Exception as error:
                        future.set_exception(error)

    def arm(self, faults: frozenset[str]) -> None:
        unknown = sorted(faults - set(TXN_FAULTS))
        if unknown:
            raise ValueError(f"unknown transaction fault {unknown[0]!r}; known: "
                             f"{', '.join(TXN_FAULTS)}")
        self.faults = faults
        self.core.participant.refusing = ("a participant that votes no (injected fault)"
                                          if VOTE_NO in faults else None)
        log.warning("node %d: transaction faults armed: %s", self.node_id,
                    ", ".join(sorted(faults)) or "none")

    async def _handle_ready(self, ready: TxnReady) -> None:
        self._persisting = True
        try:
            await self._storage.persist(ready)
        finally:
            self._persisting = False
        await self._commit_wait(ready)
        faults = self.faults
        if (self._crash is not None and "coordinator-crash-after-commit-logged" in faults
                and any(record.kind is RecordKind.COORDINATOR_COMMIT
                        for record in ready.records)):
            self._crash("coordinator-crash-after-commit-logged")
        for message in ready.messages:
            if message.recipient == self.node_id:
                self.deliver(message)
            else:
                span = self._spans.get(message.txn)
                self._transport.send(
                    message, trace.set_span_in_context(span) if span is not None else None)
                if faults:
                    self._crash_point_after(message)
                    if self._crash_at_next_tick is not None:
                        break  # the rest never leaves: the process is about to die
            if (ISOLATE_AFTER_YES in self.faults and isinstance(message, Vote) and message.yes
                    and self._isolate is not None and self._shared_write(message.txn)):
                self.faults -= {ISOLATE_AFTER_YES}
                log.warning("transaction fault %s: node %d cuts itself off after its yes to "
                            "%s", ISOLATE_AFTER_YES, self.node_id, message.txn)
                self._isolate()
        now = self._clock.monotonic()
        for record in ready.records:
            metrics.RECORDS_FORCED.labels(record.kind.name.lower(), self._participant).inc()
            traced = self._spans.get(record.txn)
            if traced is not None:
                traced.add_event(f"{record.kind.name.lower().replace('_', ' ')} forced")
                if record.kind is RecordKind.COORDINATOR_COMMIT:
                    self._end_phase(record.txn, "commit", record.ts)
            if record.kind is RecordKind.COORDINATOR_END:
                decided = self._decided.pop(record.txn, None)
                if decided is not None:
                    self._commit_seconds.observe(now - decided)
        for outcome in ready.outcomes:
            protocol = self._protocols.pop(outcome.txn, None)
            metrics.OUTCOMES.labels("committed" if outcome.committed else "aborted",
                                    protocol.value if protocol is not None else "",
                                    self._participant).inc()
            began = self._began.pop(outcome.txn, None)
            if began is not None:
                self._prepare_seconds.observe(now - began)
                if outcome.committed and len(self._decided) < BEGIN_LIMIT:
                    self._decided[outcome.txn] = now
            self._end_phase(outcome.txn, "commit" if outcome.committed else "abort", outcome.ts)
            finished = self._spans.pop(outcome.txn, None)
            if finished is not None:
                if outcome.ts is not None:
                    finished.set_attribute("txn.ts", outcome.ts)
                finished.set_attribute("txn.outcome",
                                       "committed" if outcome.committed else "aborted")
                if outcome.reason:
                    finished.set_attribute("txn.reason", outcome.reason)
                finished.end()
            for future in self._waiting.pop(outcome.txn, []):
                if not future.done():
                    future.set_result(outcome)
        self.core.advance()
        self._unfinished_coordinating.set(len(self.core.coordinator.txns))
        participant = self.core.participant
        self._unfinished_participating.set(len(participant.txns))
        self._in_doubt.set(participant.undecided())
        waits, deaths = participant.lock_waits, participant.lock_deaths
        counted_waits, counted_deaths = self._counted_waits
        if waits > counted_waits:
            self._lock_waits.inc(waits - counted_waits)
        if deaths > counted_deaths:
            self._lock_deaths.inc(deaths - counted_deaths)
        self._counted_waits = (waits, deaths)
        if self._on_ready is not None:
            self._on_ready(self.core, ready)

    async def _commit_wait(self, ready: TxnReady) -> None:
        """Spanner's commit wait: nothing that reveals a commit at timestamp s (COMMIT to the
        participants, the outcome to the client) leaves before TrueTime says s has passed,
        so a transaction that starts after this one completes gets a higher timestamp."""
        committed = [(message.txn, message.ts) for message in ready.messages
                     if isinstance(message, Decision) and message.commit
                     and message.ts is not None]
        committed += [(outcome.txn, outcome.ts) for outcome in ready.outcomes
                      if outcome.commit_wait and outcome.ts is not None]
        truetime = self._truetime
        if (not committed or truetime is None
                or self.core.config.planted_bugs.no_commit_wait):
            return
        ts = max(ts for _, ts in committed)
        spans = [tracer.start_span("txn.commit_wait",
                                   context=trace.set_span_in_context(self._spans[txn]),
                                   attributes={"txn.id": txn, "txn.commit_ts": commit_ts})
                 for txn, commit_ts in dict(committed).items() if txn in self._spans]
        started = self._clock.monotonic()
        while not (now := truetime.now()).after(ts):
            await sleep(self._clock, now.wait_until_after(ts) / NS_PER_SECOND)
        waited = self._clock.monotonic() - started
        COMMIT_WAIT.observe(waited)
        for span in spans:
            span.set_attribute("txn.commit_wait_ms", waited * 1000)
            span.end()

    def _shared_write(self, txn: str) -> bool:
        """Whether `txn` writes here, has other participants and another coordinator: where
        a cut after the yes vote leaves the others deciding without this one."""
        prepared = self.core.participant.txns.get(txn)
        return (prepared is not None and bool(prepared.writes)
                and len(prepared.participants) > 1 and prepared.coordinator != self.node_id)

    def _crash_point_after(self, message: Message) -> None:
        faults = self.faults
        coordinates = self.core.coordinator.knows(message.txn)
        point = None
        if isinstance(message, Prepare):
            point = "coordinator-crash-after-prepare-some"
        elif isinstance(message, Decision) and message.commit and coordinates:
            point = "coordinator-crash-after-commit-some"
        elif isinstance(message, Vote) and message.yes:
            point = "participant-crash-after-yes"
        elif isinstance(message, DecisionAck):
            point = "participant-crash-after-ack"
        if point is not None and point in faults:
            self._crash_at_next_tick = point

    def _end_phase(self, txn: str, decision: str, ts: int | None) -> None:
        """The prepare phase is over: its span ends with the decision and the timestamp
        chosen."""
        span = self._phase_spans.pop(txn, None)
        if span is not None:
            span.set_attribute("txn.decision", decision)
            if ts is not None:
                span.set_attribute("txn.ts", ts)
            span.end()

    def _fail_waiting(self, error: Exception) -> None:
        for txn in list(self._phase_spans):
            self._end_phase(txn, "unknown", None)
        self._began.clear()
        self._decided.clear()
        waiting, self._waiting = self._waiting, {}
        self._protocols.clear()
        spans, self._spans = self._spans, {}
        for span in spans.values():
            span.set_attribute("txn.outcome", "unknown")
            span.end()
        for futures in waiting.values():
            for future in futures:
                if not future.done():
                    future.set_exception(error)
