"""The chain replica's driver: the one loop (`runtime/host/core_loop.py`) around a
`ChainReplica` core.

As every driver does, it queues inputs (ticks, peer
messages, clients' reads and writes, the master's answers), feeds them to the core, and
handles each Ready in contract order: persist (fsynced before anything that depends on it
leaves), send, answer clients, ask the master. It reaches the world through ports only: a
Clock, a Transport, a `ChainStorage` and a `MasterPort` (the master's group, reached through
its replicated log), so the simulator runs this very code on virtual time.

On the node that leads the master's group it also runs the master's failure detector
(`LeaseMonitor`), which proposes the removal of replicas that stopped renewing.

Tracing: a traced write gets a `chain.write` span at the head, from arrival to answer, and
every message that carries its update down the chain (and the acknowledgement that comes
back for it) travels in its trace, so each hop's send and receipt are spans of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace

from distlab.core.ids import NodeId
from distlab.core.replicated_log import EngineError, OutcomeUnknown
from distlab.protocols.chain import (
    Ack,
    ChainConfig,
    ChainReplica,
    Forward,
    LeaseMonitor,
    MasterCall,
    MasterRequest,
    Outcome,
    Problem,
    ReadMode,
    Ready,
    Reply,
    StoredReplica,
    decode_result,
    join_command,
    promote_command,
    renew_command,
)
from distlab.runtime.host.core_loop import CoreLoop
from distlab.runtime.host.ports import Clock, Transport

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# A call to the master that takes longer than this is given up (and made again later).
MASTER_CALL_SECONDS = 1.0


class ChainStorage(Protocol):
    """The replica's records in the node's log: `persist` returns once they are fsynced.
    Once it `wants_snapshot`, the driver hands it the replica's durable state, which then
    stands for every record persisted so far."""

    async def persist(self, records: tuple[tuple[int, bytes], ...]) -> None: ...

    def wants_snapshot(self) -> bool: ...

    async def save_snapshot(self, state: StoredReplica) -> None: ...

    def close(self) -> None: ...


class MasterPort(Protocol):
    """The master, as a replica reaches it: commands through group 0's replicated log, and
    what this node's copy of the master holds."""

    async def submit(self, command: bytes) -> bytes:
        """The master's answer to `command`, once applied; raises EngineError or
        TimeoutError if it may not have been."""
        ...

    def local_config(self) -> ChainConfig | None: ...

    def leads(self) -> bool:
        """Whether this node leads the master's group (and so runs the failure detector)."""
        ...

    def renewals(self) -> Mapping[NodeId, int]: ...


class ChainRefused(EngineError):
    """Definite: the replica did not take the request; `hint` names where to go instead."""

    def __init__(self, outcome: Outcome, why: str, hint: NodeId | None = None) -> None:
        super().__init__(why)
        self.outcome = outcome
        self.hint = hint


@dataclass(frozen=True, slots=True)
class ReadResult:
    value: bytes | None
    seq: int
    how: str


@dataclass(frozen=True, slots=True)
class _Write:
    key: bytes
    value: bytes
    # The client's name for the write (0, 0: unnamed).
    client: int
    request: int


@dataclass(slots=True)
class _Inputs:
    configs: list[ChainConfig] = field(default_factory=list)
    leases: list[int] = field(default_factory=list)
    writes: list[tuple[_Write, asyncio.Future[Reply], otel_context.Context | None]] = \
        field(default_factory=list)
    reads: list[tuple[bytes, ReadMode, asyncio.Future[Reply]]] = field(default_factory=list)


class ChainDriver(CoreLoop):
    core: ChainReplica

    def __init__(
        self,
        *,
        node_id: NodeId,
        core: ChainReplica,
        storage: ChainStorage,
        transport: Transport,
        master: MasterPort,
        clock: Clock,
        tick_seconds: float = 0.05,
        monitor: LeaseMonitor | None = None,
        on_failure: Callable[[BaseException], None] = lambda error: None,
        observer: Callable[[ChainReplica, Ready], None] | None = None,
    ) -> None:
        super().__init__(clock=clock, tick_seconds=tick_seconds, name=f"chain-{node_id}")
        self.node_id = node_id
        self.core = core
        self._storage = storage
        self._transport = transport
        self._master = master
        self._monitor = monitor or LeaseMonitor()
        self._on_failure = on_failure
        self.observer = observer
        self._inputs = _Inputs()
        # Where the clock stood at the last tick fed (None: before the first feed).
        self._ticked_at: float | None = None
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._next_request = 1
        self._calls: dict[str, asyncio.Task[None]] = {}
        # The master's latest answer to each kind of call.
        self._answers: dict[str, str] = {}
        self.reconfigurations = 0
        # The trace each traced update travels in, by sequence number, until it commits.
        self._traces: dict[int, otel_context.Context] = {}

    # ------------------------------------------------------------------ lifecycle

    async def stop(self) -> None:
        calls = list(self._calls.values())
        for call in calls:
            call.cancel()
        await self._stop_loop()
        for call in calls:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await call
        self._fail_everything(OutcomeUnknown("the node is shutting down"))
        self._storage.close()

    # ------------------------------------------------------------------ inputs

    def deliver(self, message: Any) -> bool:
        if isinstance(message, Forward) and message.updates \
                and trace.get_current_span().is_recording():
            # The transport's receive span of a traced update: the next hop continues it.
            current = otel_context.get_current()
            for update in message.updates:
                self._traces.setdefault(update.seq, current)
        return self._queue_message(message)

    def report_unreachable(self, peer: NodeId) -> None:
        """Nothing to do: a successor's next report of its position repairs any loss."""

    def report_snapshot(self, peer: NodeId, succeeded: bool) -> None:
        """State transfers are repeated until the joining replica reports it has one."""

    async def write(self, key: bytes, value: bytes, client: int = 0, request: int = 0) -> int:
        """Write at the head; returns the write's sequence number once the tail applied it.
        `client` and `request` name the write, so that a retry is applied at most once.
        Raises ChainRefused (definite) or OutcomeUnknown."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        write = _Write(key, value, client, request)
        if not trace.get_current_span().is_recording():
            self._inputs.writes.append((write, future, None))
            self._wake.set()
            return (await future).seq
        with tracer.start_as_current_span("chain.write",
                                          attributes={"chain.node": self.node_id}) as span:
            self._inputs.writes.append((write, future, otel_context.get_current()))
            self._wake.set()
            reply = await future
            span.set_attribute("chain.seq", reply.seq)
            return reply.seq

    async def read(self, key: bytes, mode: ReadMode) -> ReadResult:
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._inputs.reads.append((key, mode, future))
        self._wake.set()
        reply = await future
        return ReadResult(reply.value, reply.seq, reply.how)

    # ------------------------------------------------------------------ the loop

    def _fail(self, error: Exception) -> None:
        log.exception("node %d: the chain replica failed; stopping", self.node_id,
                      exc_info=error)
        self._fail_everything(OutcomeUnknown(f"the chain replica failed: {error}"))
        self._on_failure(error)

    def _after_tick(self) -> None:
        self._watch_leases()

    def _catch_up_ticks(self) -> None:
        """Count the ticks the clock says have passed, not only those the timer delivered.

        A paused process (SIGSTOP, a stalled VM) misses its tick timer: on waking it gets
        one late tick for the whole pause, and a lease counted in ticks would outlive the
        pause, so a replica dropped from the chain meanwhile would answer a read queued
        during it from its stale state. Feeding every tick period that passed keeps the
        lease to real time. Only the replica gets the missed ticks: the lease monitor, which
        counts how long the others have been silent, heard nothing during the pause either,
        and must not take its own pause for their silence.
        """
        now = self._clock.monotonic()
        if self._ticked_at is None:
            self._ticked_at = now
            return
        due = int((now - self._ticked_at) / self._tick_seconds)
        for _ in range(due - self._ticks):
            self.core.tick()
        self._ticked_at += max(due, self._ticks) * self._tick_seconds

    def _feed_core(self) -> None:
        inputs = self._inputs
        core = self.core
        self._catch_up_ticks()
        if self._ticks:
            local = self._master.local_config()
            if local is not None:
                self._configure(local)
        self._feed_ticks()
        # The configurations and leases that arrived go in before the messages, which may be
        # of the new epoch.
        if inputs.configs:
            configs, inputs.configs = inputs.configs, []
            for config in configs:
                self._configure(config)
        if inputs.leases:
            leases, inputs.leases = inputs.leases, []
            for tick in leases:
                core.lease_granted(tick)
        self._feed_messages()
        if inputs.writes:
            writes, inputs.writes = inputs.writes, []
            for write, future, traced in writes:
                seq = self._take(future, core.write, write.key, write.value, write.client,
                                 write.request)
                if seq is not None and traced is not None:
                    self._traces[seq] = traced
        if inputs.reads:
            reads, inputs.reads = inputs.reads, []
            for key, mode, future in reads:
                self._take(future, core.read, key, mode)

    def _configure(self, config: ChainConfig) -> None:
        epoch = self.core.epoch
        self.core.configure(config)
        if self.core.epoch > epoch:
            self.reconfigurations += 1
            log.info("node %d: chain epoch %d: %s, joining %s; this replica is %s",
                     self.node_id, config.epoch, list(config.chain), config.joining,
                     self.core.role.value)

    def _take(self, future: asyncio.Future[Reply], hand: Callable[..., Any], *args: Any
              ) -> Any:
        if future.done():
            return None
        request = self._next_request
        self._next_request += 1
        try:
            result = hand(request, *args)
        except Problem as problem:
            future.set_exception(ChainRefused(problem.outcome, str(problem), problem.hint))
            return None
        self._pending[request] = future
        return result

    async def _handle_ready(self, ready: Ready) -> None:
        if ready.persist:
            await self._storage.persist(ready.persist)
        for message in ready.messages:
            self._transport.send(message, self._trace_of(message))
        for reply in ready.replies:
            self._answer(reply)
        for request in ready.master:
            self._ask_master(request)
        if ready.persist and self._storage.wants_snapshot():
            # Nothing is fed to the core until this Ready is done: its state is exactly what
            # the records persisted so far replay to.
            await self._storage.save_snapshot(self.core.durable_state())
        self.core.advance()
        if self._traces:
            committed = self.core.committed
            for seq in [seq for seq in self._traces if seq <= committed]:
                del self._traces[seq]
        if self.observer is not None:
            self.observer(self.core, ready)

    def _trace_of(self, message: Any) -> otel_context.Context | None:
        """The trace a message travels in: that of the first traced update it carries, or
        (an acknowledgement) of the update it acknowledges."""
        if not self._traces:
            return None
        if isinstance(message, Forward):
            for update in message.updates:
                traced = self._traces.get(update.seq)
                if traced is not None:
                    return traced
            return None
        if isinstance(message, Ack):
            return self._traces.get(message.received)
        return None

    def _answer(self, reply: Reply) -> None:
        future = self._pending.pop(reply.request, None)
        if future is None or future.done():
            return
        if reply.outcome is Outcome.OK:
            future.set_result(reply)
        elif reply.outcome is Outcome.UNKNOWN:
            future.set_exception(OutcomeUnknown(reply.why))
        else:
            future.set_exception(ChainRefused(reply.outcome, reply.why))

    def _fail_everything(self, error: Exception) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)
        for _, future, _ in self._inputs.writes:
            if not future.done():
                future.set_exception(error)
        for _, _, future in self._inputs.reads:
            if not future.done():
                future.set_exception(ChainRefused(Outcome.NOT_SERVING, str(error)))
        self._inputs.writes, self._inputs.reads = [], []

    # ------------------------------------------------------------------ the master

    def _ask_master(self, request: MasterRequest) -> None:
        """One call of each kind at a time; the core asks again on its next round."""
        kind = request.call.value
        if kind in self._calls:
            return
        if request.call is MasterCall.RENEW:
            command = renew_command(self.node_id)
        elif request.call is MasterCall.JOIN:
            command = join_command(self.node_id)
        else:
            command = promote_command(self.node_id, request.epoch)
        task = asyncio.create_task(self._call_master(request, command),
                                   name=f"chain-{self.node_id}-{kind}")
        self._track(kind, task)

    def _track(self, kind: str, task: asyncio.Task[None]) -> None:
        self._calls[kind] = task

        def done(_: asyncio.Task[None]) -> None:
            if self._calls.get(kind) is task:
                del self._calls[kind]

        task.add_done_callback(done)

    async def _call_master(self, request: MasterRequest, command: bytes) -> None:
        try:
            async with asyncio.timeout(MASTER_CALL_SECONDS):
                result = await self._master.submit(command)
        except (EngineError, TimeoutError) as error:
            log.debug("node %d: %s went unanswered: %s", self.node_id, request.call.value, error)
            return
        config, outcome = decode_result(result)
        self._inputs.configs.append(config)
        kind = request.call.value
        if outcome != "ok" and self._answers.get(kind) != outcome:
            # Said once, not at every renewal round while it lasts (a retired node's).
            log.info("node %d: the master refused its %s: %s", self.node_id, kind, outcome)
        self._answers[kind] = outcome
        if request.call is MasterCall.RENEW and outcome == "ok":
            # A refused renewal (a retired node's) grants no lease.
            self._inputs.leases.append(request.tick)
        self._wake.set()

    def _watch_leases(self) -> None:
        config = self._master.local_config()
        if config is None:
            return
        for command in self._monitor.tick(self._master.leads(), config,
                                          self._master.renewals()):
            if "monitor" not in self._calls:
                task = asyncio.create_task(self._monitor_call(command),
                                           name=f"chain-{self.node_id}-monitor")
                self._track("monitor", task)

    async def _monitor_call(self, command: bytes) -> None:
        try:
            async with asyncio.timeout(MASTER_CALL_SECONDS):
                result = await self._master.submit(command)
        except (EngineError, TimeoutError):
            return
        config, outcome = decode_result(result)
        log.info("node %d: the master's %s: %s (epoch %d: %s)", self.node_id,
                 json.loads(command)["op"], outcome, config.epoch, list(config.chain))
        self._inputs.configs.append(config)
        self._wake.set()
