"""Everything this node sends one peer: its queue and stream, its prober, its bulk transfers."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from distlab.core.ids import NodeId
from distlab.core.vclock import VectorClock
from distlab.core.vclock_log import clock_json
from distlab.proto import peer_pb2, peer_pb2_grpc
from distlab.runtime.peer._bulk import bulk_chunks
from distlab.runtime.peer._handshake import Handshake, acceptance_problem
from distlab.runtime.peer._metrics import (
    BULK_TRANSFERS,
    OUTBOUND,
    ROUND_TRIP,
    count_sent,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# Envelopes waiting for one peer; past this the newest are dropped. Shared by every instance
# on the node, so it is sized for many groups' heartbeats and appends in one tick.
SEND_QUEUE_LIMIT = 4096
MAX_BATCH_ENVELOPES = 256
# A batch stops growing past this many payload bytes, so that one write does not sit on the
# stream's flow-control window for long while the queue behind it waits.
MAX_BATCH_BYTES = 4 << 20
# A payload larger than this cannot go on the stream (the channel refuses messages over
# 64 MiB, and that would break the stream for every instance); it needs a bulk transfer.
MAX_ENVELOPE_BYTES = 32 << 20
# A handshake or a stream write that has not completed within this long is behind a peer
# that stopped reading (paused, or cut off without a reset): the stream is cancelled and
# reopened, and what it held is lost.
WRITE_DEADLINE_SECONDS = 1.0
PROBE_INTERVAL_SECONDS = 1.0
PROBE_DEADLINE_SECONDS = 1.0
# A stream that broke is reopened after this long, doubling up to the cap while it keeps
# breaking; low, so a restarted peer hears from this node within a heartbeat or two.
REOPEN_BACKOFF_SECONDS = 0.05
MAX_REOPEN_BACKOFF_SECONDS = 1.0
BULK_DEADLINE_SECONDS = 30.0

# (service, group, payload, trace context of the operation it belongs to, the sender's vector
# clock at the send when the node keeps one)
Outgoing = tuple[str, int, bytes, otel_context.Context | None, VectorClock | None]
PeerStream = grpc.aio.StreamUnaryCall[peer_pb2.EnvelopeBatch, peer_pb2.PeerAck]
# A configuration error on one side (a wrong address, another GROUPS value, a message the peer
# cannot read) rather than the normal weather of lost connections: worth a warning each time.
_MISCONFIGURED = frozenset({grpc.StatusCode.FAILED_PRECONDITION,
                            grpc.StatusCode.INVALID_ARGUMENT})
_T = TypeVar("_T")


class _Failed(enum.Enum):
    FAILED = enum.auto()


class PeerSender:
    """One peer's outbound queue, the task writing it to the peer's stream, a prober, and the
    bulk transfers under way to the peer.

    Whatever queued while the previous write was out goes in the next batch, so a burst costs
    one write, and envelopes arrive in sending order whatever instance they are for.
    """

    def __init__(self, handshake: Handshake, stub: Callable[[], peer_pb2_grpc.PeerAsyncStub],
                 isolated: Callable[[], bool], report_unreachable: Callable[[NodeId], None]
                 ) -> None:
        self.peer = handshake.recipient
        self._handshake = handshake
        self._metadata = handshake.metadata()
        self._stub = stub
        self._isolated = isolated
        self._report_unreachable = report_unreachable
        self._queue: deque[Outgoing] = deque()
        self._queued = asyncio.Event()
        # The stream the peer accepted; None while there is none.
        self._stream: PeerStream | None = None
        self._reopen_at = 0.0
        self._backoff = REOPEN_BACKOFF_SECONDS
        # The peer refused the last stream at the handshake: its probes answering says
        # nothing about whether the next stream would be accepted.
        self._refused = False
        # The call and the time this sender has been waiting on it (a handshake or a write),
        # for the watchdog.
        self._waiting_on: tuple[PeerStream, float] | None = None
        self._transfers: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._tasks = (
            asyncio.create_task(self._drain(), name=f"peer-send-{self.peer}"),
            asyncio.create_task(self._probe(), name=f"peer-probe-{self.peer}"),
        )

    @property
    def stream_open(self) -> bool:
        return self._stream is not None

    def enqueue(self, outgoing: Outgoing) -> bool:
        """Queue `outgoing`; False when the queue is full."""
        if len(self._queue) >= SEND_QUEUE_LIMIT:
            return False
        self._queue.append(outgoing)
        self._queued.set()
        return True

    # ---- the stream

    async def _drain(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._queued.clear()
                await self._queued.wait()
                continue
            batch = [queue.popleft()]
            size = len(batch[0][2])
            while queue and len(batch) < MAX_BATCH_ENVELOPES and size < MAX_BATCH_BYTES:
                outgoing = queue.popleft()
                size += len(outgoing[2])
                batch.append(outgoing)
            try:
                await self._write(batch)
            except Exception:
                # A bug, not the network: say so loudly, but keep the peer's traffic flowing.
                log.exception("sending a batch to node %d failed", self.peer)

    async def _write(self, batch: list[Outgoing]) -> None:
        stream = await self._open_stream()
        if stream is None:
            self._lost(batch)
            return
        request = peer_pb2.EnvelopeBatch()
        add = request.envelopes.add
        spans: list[trace.Span] = []
        counts: dict[str, int] = {}
        for service, group, payload, parent, stamp in batch:
            envelope = add(service=service, group=group, payload=payload)
            counts[service] = counts.get(service, 0) + 1
            if stamp is not None:
                envelope.vector_clock.update(stamp.counts)
            if parent is not None:
                self._start_send_span(spans, parent, service, group, len(batch), envelope,
                                      stamp)
        try:
            written = await self._wait_on(stream, stream.write(request))
        finally:
            for span in spans:
                span.end()
        if written is not _Failed.FAILED:
            for service, count in counts.items():
                count_sent(service, "sent", count)
        else:
            await self._stream_ended(stream)
            self._lost(batch)

    def _start_send_span(self, spans: list[trace.Span], parent: otel_context.Context,
                         service: str, group: int, batch_size: int,
                         envelope: peer_pb2.Envelope, stamp: VectorClock | None) -> None:
        """A span for an envelope of a traced operation, its context in the envelope, so that
        the receiver's span for it is a child of this one."""
        attributes: dict[str, str | int] = {"distlab.peer": self.peer, "distlab.group": group,
                                            "distlab.batch_envelopes": batch_size}
        if stamp is not None:
            attributes["distlab.vclock"] = clock_json(stamp)
        span = tracer.start_span(f"{service}.send", context=parent,
                                 kind=trace.SpanKind.PRODUCER, attributes=attributes)
        if span.is_recording():
            propagate.inject(envelope.trace_context, context=trace.set_span_in_context(span))
        spans.append(span)

    def _lost(self, batch: list[Outgoing]) -> None:
        counts: dict[str, int] = {}
        for service, _, _, _, _ in batch:
            counts[service] = counts.get(service, 0) + 1
        for service, count in counts.items():
            count_sent(service, "failed", count)
        self._report_unreachable(self.peer)

    async def _open_stream(self) -> PeerStream | None:
        """The accepted stream to the peer, a newly accepted one, or None: the peer cannot be
        reached now, refused the stream, or this sender is backing off after a break."""
        stream = self._stream
        if stream is not None:
            if not stream.done():
                return stream
            await self._stream_ended(stream)  # the peer ended it
        if time.monotonic() < self._reopen_at:
            return None
        # No deadline: the stream lives as long as both nodes do.
        stream = self._stub().Stream(metadata=self._metadata)
        answer = await self._wait_on(stream, stream.initial_metadata())
        if answer is not _Failed.FAILED and not answer:
            # A refusal is a status without initial metadata: wait for it to say why.
            await self._wait_on(stream, stream.code())
        if answer is _Failed.FAILED or stream.done():
            await self._stream_ended(stream)
            return None
        problem = acceptance_problem(answer, self.peer, self._handshake.groups,
                                     self._handshake.engine)
        if problem is not None:
            log.warning("node %d answered this node's peer stream wrongly: %s", self.peer,
                        problem)
            await self._stream_ended(stream, refused=True)
            return None
        self._stream = stream
        OUTBOUND.inc()
        self._backoff = REOPEN_BACKOFF_SECONDS
        self._refused = False
        return stream

    async def _wait_on(self, stream: PeerStream, step: Awaitable[_T]) -> _T | _Failed:
        """What `step`, a handshake or a write on `stream`, returns; FAILED when the stream
        failed under it or the watchdog gave up on it."""
        self._waiting_on = (stream, time.monotonic())
        try:
            return await step
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            return _Failed.FAILED
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                stream.cancel()  # the sender is closing, perhaps halfway through a handshake
                raise
            return _Failed.FAILED  # the watchdog cancelled the call: the peer stopped reading
        finally:
            self._waiting_on = None

    async def _stream_ended(self, stream: PeerStream, *, refused: bool = False) -> None:
        if self._stream is stream:
            self._stream = None
            OUTBOUND.dec()
        stream.cancel()
        code = await stream.code()
        if code in _MISCONFIGURED:
            refused = True
            log.warning("node %d refused this node's peer stream: %s", self.peer,
                        await stream.details())
        else:
            log.debug("peer stream to node %d ended: %s", self.peer, code.name)
        if refused:
            # Retried at the slowest pace: it takes a person to fix the configuration.
            self._backoff = MAX_REOPEN_BACKOFF_SECONDS
        self._refused = refused
        self._reopen_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, MAX_REOPEN_BACKOFF_SECONDS)

    # ---- the prober and watchdog

    async def _probe(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)
            self._cancel_stuck_call()
            if self._isolated():
                continue
            started = time.perf_counter()
            try:
                await self._stub().Probe(peer_pb2.PeerAck(), timeout=PROBE_DEADLINE_SECONDS)
            except grpc.aio.AioRpcError:
                continue
            ROUND_TRIP.labels(str(self.peer)).observe(time.perf_counter() - started)
            if not self._refused:
                # The peer answers: the next batch may open a stream at once.
                self._backoff = REOPEN_BACKOFF_SECONDS
                self._reopen_at = min(self._reopen_at, time.monotonic())

    def _cancel_stuck_call(self) -> None:
        waiting = self._waiting_on
        if waiting is None:
            return
        stream, since = waiting
        if time.monotonic() - since > WRITE_DEADLINE_SECONDS:
            log.info("node %d has not read this node's peer stream for %.1f s; reopening it",
                     self.peer, time.monotonic() - since)
            stream.cancel()

    # ---- bulk transfers

    def send_bulk(self, service: str, group: int, payload: bytes,
                  on_done: Callable[[bool], None], stamp: VectorClock | None = None) -> None:
        key = (service, group)
        if key in self._transfers:
            BULK_TRANSFERS.labels(service, "busy").inc()
            asyncio.get_running_loop().call_soon(on_done, False)
            return
        self._transfers[key] = asyncio.create_task(
            self._transfer(service, group, payload, on_done, stamp),
            name=f"peer-transfer-{self.peer}-{service}-{group}")

    async def _transfer(self, service: str, group: int, payload: bytes,
                        on_done: Callable[[bool], None], stamp: VectorClock | None) -> None:
        try:
            await self._stub().Transfer(bulk_chunks(service, group, payload, stamp),
                                        timeout=BULK_DEADLINE_SECONDS, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            level = logging.WARNING if error.code() in _MISCONFIGURED else logging.INFO
            log.log(level, "%s transfer for group %d to node %d failed: %s %s", service, group,
                    self.peer, error.code().name, error.details())
            accepted = False
        else:
            accepted = True
        finally:
            del self._transfers[service, group]
        BULK_TRANSFERS.labels(service, "accepted" if accepted else "failed").inc()
        try:
            on_done(accepted)
        except Exception:
            log.exception("the %s group %d callback for a transfer to node %d failed", service,
                          group, self.peer)

    async def close(self) -> None:
        """Stop sending; bulk transfers under way are abandoned without calling on_done."""
        tasks = [*self._tasks, *self._transfers.values()]
        for task in tasks:
            task.cancel()
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None
            OUTBOUND.dec()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
