"""Raft messages between members over gRPC.

Each node keeps one long-lived client stream to every peer (`Raft.Stream`) and writes its
messages to that peer on it, in sending order, as etcd's peer streams do: a message costs a
stream write rather than a whole unary call, which in Python is several times cheaper in CPU
and in latency. Messages are one-way; replies travel on the other node's stream.

Sending never waits: each peer has a bounded queue drained by its own task. A full queue drops
the newest message, and a broken stream drops what was on it; Raft tolerates both (the core
retransmits), so a slow or dead peer can never hold up the driver or the other peers. A broken
stream is reopened after a capped backoff; a write stuck behind a peer that stopped reading
(paused, or cut off without a reset) is cancelled by a watchdog.

A separate prober calls `Raft.Probe` on every peer once a second: the round-trip histogram
comes from it, as etcd's does from its prober, since stream writes have no reply to time.

Trace context crosses the stream inside the batch (a message is not a call, so the gRPC
interceptors cannot carry it): the sender's `raft.send` span is the parent of the receiver's
`raft.receive` span, and both join the trace of the proposal whose entries the batch carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from prometheus_client import Counter, Histogram

from distlab.core.ids import NodeId
from distlab.proto import raft_pb2, raft_pb2_grpc
from distlab.protocols import raft
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.grpc.raft_codec import (
    MalformedMessage,
    SnapshotAssembler,
    from_proto,
    snapshot_chunks,
    to_proto,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

SEND_QUEUE_LIMIT = 1024
MAX_BATCH_MESSAGES = 256
# A stream write that has not completed within this long is behind a peer that stopped
# reading: the stream is cancelled and reopened, and what it held is lost.
WRITE_DEADLINE_SECONDS = 1.0
PROBE_INTERVAL_SECONDS = 1.0
PROBE_DEADLINE_SECONDS = 1.0
# A stream that broke is reopened after this long, doubling up to the cap while it keeps
# breaking; low, so a restarted peer hears from its leader within a heartbeat or two.
REOPEN_BACKOFF_SECONDS = 0.05
MAX_REOPEN_BACKOFF_SECONDS = 1.0
SNAPSHOT_DEADLINE_SECONDS = 30.0
MAX_SNAPSHOT_BYTES = 1 << 30

MESSAGES_SENT = Counter(
    "distlab_raft_messages_sent_total",
    "Raft messages to peers, by outcome: written to the peer's stream, failed with it, dropped "
    "by a full queue, or held back by an injected partition.",
    ["outcome"])
MESSAGES_REJECTED = Counter(
    "distlab_raft_messages_rejected_total",
    "Raft messages received from peers and not delivered, by reason.", ["reason"])
ROUND_TRIP = Histogram(
    "distlab_peer_round_trip_time_seconds", "Round trip of a probe call to a peer.",
    ["peer"], buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)

# The children used on every write, looked up once (a labels() call takes a lock).
_SENT = MESSAGES_SENT.labels("sent")
_FAILED = MESSAGES_SENT.labels("failed")
_DROPPED = MESSAGES_SENT.labels("dropped")

Outgoing = tuple[raft.Message, otel_context.Context | None]
PeerStream = grpc.aio.StreamUnaryCall[raft_pb2.RaftBatch, raft_pb2.Delivered]
# A configuration error on one side (wrong address, a message the peer cannot read) rather
# than Raft's normal weather of lost connections: worth a warning each time the stream breaks.
_MISCONFIGURED = frozenset({grpc.StatusCode.FAILED_PRECONDITION,
                            grpc.StatusCode.INVALID_ARGUMENT})


class PeerSender:
    """One peer's outbound queue, the task that writes it to the peer's stream, and a prober.

    Whatever queued while the previous write was out goes in the next batch, so a burst of
    proposals costs one write, and messages arrive in sending order (reordered appends would
    be rejected and resent). Snapshots go on a stream of their own.
    """

    def __init__(self, peer: NodeId, stub: Callable[[], raft_pb2_grpc.RaftAsyncStub],
                 isolated: Callable[[], bool]) -> None:
        self.peer = peer
        self._stub = stub
        self._isolated = isolated
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue(SEND_QUEUE_LIMIT)
        self._stream: PeerStream | None = None
        self._reopen_at = 0.0
        self._backoff = REOPEN_BACKOFF_SECONDS
        self._write_started: float | None = None
        self._snapshot_call: asyncio.Task[None] | None = None
        self._tasks = (
            asyncio.create_task(self._drain(), name=f"raft-send-{peer}"),
            asyncio.create_task(self._probe(), name=f"raft-probe-{peer}"),
        )

    def send(self, message: raft.Message, trace_context: otel_context.Context | None) -> None:
        if isinstance(message, raft.InstallSnapshot):
            self._send_snapshot(message)
            return
        try:
            self._queue.put_nowait((message, trace_context))
        except asyncio.QueueFull:
            _DROPPED.inc()

    def _send_snapshot(self, message: raft.InstallSnapshot) -> None:
        if self._snapshot_call is not None and not self._snapshot_call.done():
            _DROPPED.inc()  # one snapshot at a time; the core resends
            return
        self._snapshot_call = asyncio.create_task(self._deliver_snapshot(message))

    # ---- the stream

    async def _drain(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < MAX_BATCH_MESSAGES and not queue.empty():
                batch.append(queue.get_nowait())
            await self._write(batch)

    async def _write(self, batch: list[Outgoing]) -> None:
        stream = await self._open_stream()
        if stream is None:
            _FAILED.inc(len(batch))
            return
        request = raft_pb2.RaftBatch(messages=[to_proto(message) for message, _ in batch])
        span = self._send_span(batch, request)
        self._write_started = time.monotonic()
        try:
            await stream.write(request)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            _FAILED.inc(len(batch))
            await self._stream_broke(stream)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the sender is closing
            # The watchdog cancelled the call: the peer stopped reading.
            _FAILED.inc(len(batch))
            await self._stream_broke(stream)
        else:
            _SENT.inc(len(batch))
        finally:
            self._write_started = None
            if span is not None:
                span.end()

    async def _open_stream(self) -> PeerStream | None:
        """The live stream to the peer, a new one, or None while backing off after a break."""
        stream = self._stream
        if stream is not None:
            if not stream.done():
                return stream
            await self._stream_broke(stream)  # the peer ended it
        if time.monotonic() < self._reopen_at:
            return None
        # No deadline: the stream lives as long as both nodes do.
        self._stream = stream = self._stub().Stream()
        return stream

    async def _stream_broke(self, stream: PeerStream) -> None:
        if self._stream is stream:
            self._stream = None
            self._reopen_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, MAX_REOPEN_BACKOFF_SECONDS)
        stream.cancel()
        code = await stream.code()
        if code in _MISCONFIGURED:
            log.warning("node %d refused this node's Raft stream: %s", self.peer,
                        await stream.details())
        else:
            log.debug("Raft stream to node %d broke: %s", self.peer, code.name)

    def _send_span(self, batch: list[Outgoing], request: raft_pb2.RaftBatch) -> trace.Span | None:
        """A span for a batch carrying a traced proposal's entries, its context in the batch."""
        parent = next((context for _, context in batch if context is not None), None)
        if parent is None:
            return None
        span = tracer.start_span("raft.send", context=parent, kind=trace.SpanKind.PRODUCER,
                                 attributes={"raft.peer": self.peer,
                                             "raft.messages": len(batch)})
        if span.is_recording():
            propagate.inject(request.trace_context, context=trace.set_span_in_context(span))
        return span

    # ---- the prober and watchdog

    async def _probe(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)
            self._cancel_stuck_write()
            if self._isolated():
                continue
            started = time.perf_counter()
            try:
                await self._stub().Probe(raft_pb2.Delivered(), timeout=PROBE_DEADLINE_SECONDS)
            except grpc.aio.AioRpcError:
                continue
            ROUND_TRIP.labels(str(self.peer)).observe(time.perf_counter() - started)
            self._backoff = REOPEN_BACKOFF_SECONDS

    def _cancel_stuck_write(self) -> None:
        started = self._write_started
        if (started is not None and self._stream is not None
                and time.monotonic() - started > WRITE_DEADLINE_SECONDS):
            log.info("node %d has not read its Raft stream for %.1f s; reopening it",
                     self.peer, time.monotonic() - started)
            self._stream.cancel()

    # ---- snapshots

    async def _deliver_snapshot(self, message: raft.InstallSnapshot) -> None:
        try:
            await self._stub().InstallSnapshot(
                _aiter(snapshot_chunks(message)), timeout=SNAPSHOT_DEADLINE_SECONDS)
        except grpc.aio.AioRpcError as error:
            _FAILED.inc()
            log.info("snapshot to node %d failed: %s", self.peer, error.code().name)
            return
        _SENT.inc()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._snapshot_call is not None:
            self._snapshot_call.cancel()
        if self._stream is not None:
            self._stream.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _aiter(chunks: Iterable[raft_pb2.SnapshotChunk]) -> AsyncIterator[raft_pb2.SnapshotChunk]:
    for chunk in chunks:
        yield chunk


class RaftTransport:
    """Outbound side: routes each message to its peer's sender."""

    def __init__(self, channels: PeerChannels) -> None:
        self._channels = channels
        self._senders: dict[NodeId, PeerSender] = {}
        # Peers this node is cut off from by an injected fault: nothing is sent to them, and
        # the servicer drops what they send.
        self.isolated_from: frozenset[NodeId] = frozenset()

    def learn_address(self, node: NodeId, address: str) -> None:
        self._channels.add(node, address)

    def send(self, message: raft.Message, trace_context: otel_context.Context | None = None
             ) -> None:
        recipient = message.recipient
        if recipient in self.isolated_from:
            MESSAGES_SENT.labels("partitioned").inc()
            return
        sender = self._senders.get(recipient)
        if sender is None:
            if recipient not in self._channels.peers:
                log.warning("no address for node %d; dropping %s", recipient,
                            type(message).__name__)
                return
            sender = self._senders[recipient] = PeerSender(
                recipient,
                # Looked up on every (re)connection: a member's address can change.
                lambda: raft_pb2_grpc.RaftStub(self._channels.get(recipient)),
                lambda: recipient in self.isolated_from,
            )
        sender.send(message, trace_context)

    async def close(self) -> None:
        senders, self._senders = self._senders, {}
        await asyncio.gather(*(sender.close() for sender in senders.values()))


class RaftServicer(raft_pb2_grpc.RaftServicer):
    """Inbound side: decode, check each message is for this node, hand it to the driver."""

    def __init__(self, node_id: NodeId, deliver: Callable[[raft.Message], bool],
                 isolated_from: Callable[[], frozenset[NodeId]] = frozenset) -> None:
        self._node_id = node_id
        self._deliver = deliver
        self._isolated_from = isolated_from

    async def Stream(
        self, request_iterator: AsyncIterator[raft_pb2.RaftBatch],
        context: grpc.aio.ServicerContext[raft_pb2.RaftBatch, raft_pb2.Delivered],
    ) -> raft_pb2.Delivered:
        async for batch in request_iterator:
            refusal = self._accept_batch(batch)
            if refusal is not None:
                await context.abort(*refusal)
        return raft_pb2.Delivered()

    def _accept_batch(self, batch: raft_pb2.RaftBatch) -> tuple[grpc.StatusCode, str] | None:
        """Deliver `batch`; a reason to end the stream when the sender is misconfigured."""
        if not batch.trace_context:
            return self._accept_messages(batch)
        with tracer.start_as_current_span(
            "raft.receive", context=propagate.extract(batch.trace_context),
            kind=trace.SpanKind.CONSUMER,
            attributes={"raft.node": self._node_id, "raft.messages": len(batch.messages)},
        ):
            return self._accept_messages(batch)

    def _accept_messages(self, batch: raft_pb2.RaftBatch) -> tuple[grpc.StatusCode, str] | None:
        try:
            messages = [from_proto(message) for message in batch.messages]
        except MalformedMessage as error:
            MESSAGES_REJECTED.labels("malformed").inc()
            return grpc.StatusCode.INVALID_ARGUMENT, str(error)
        isolated_from = self._isolated_from()
        for message in messages:
            refusal = self._deliver_one(message, isolated_from)
            # A message for another node means the sender has this address wrong: end its
            # stream so it says so. Partitions and a full inbox are weather: drop and go on.
            if refusal is not None and refusal[0] is grpc.StatusCode.FAILED_PRECONDITION:
                return refusal
        return None

    def _deliver_one(self, message: raft.Message, isolated_from: frozenset[NodeId]
                     ) -> tuple[grpc.StatusCode, str] | None:
        """Hand `message` to the driver, or count why not and return the status saying so."""
        if message.recipient != self._node_id:
            reason, refusal = "wrong_recipient", (
                grpc.StatusCode.FAILED_PRECONDITION,
                f"this is node {self._node_id}, not {message.recipient}")
        elif message.sender in isolated_from:
            reason, refusal = "partitioned", (
                grpc.StatusCode.UNAVAILABLE,
                f"node {self._node_id} is partitioned from {message.sender}")
        elif self._deliver(message):
            return None
        else:
            reason, refusal = "inbox_full", (grpc.StatusCode.RESOURCE_EXHAUSTED, "inbox full")
        MESSAGES_REJECTED.labels(reason).inc()
        return refusal

    async def InstallSnapshot(
        self, request_iterator: AsyncIterator[raft_pb2.SnapshotChunk],
        context: grpc.aio.ServicerContext[raft_pb2.SnapshotChunk, raft_pb2.Delivered],
    ) -> raft_pb2.Delivered:
        assembler = SnapshotAssembler(MAX_SNAPSHOT_BYTES)
        message: raft.InstallSnapshot | None = None
        try:
            async for chunk in request_iterator:
                message = assembler.add(chunk)
                if message is not None:
                    break
        except MalformedMessage as error:
            MESSAGES_REJECTED.labels("malformed").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        if message is None:
            MESSAGES_REJECTED.labels("malformed").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "snapshot stream ended early")
        refusal = self._deliver_one(message, self._isolated_from())
        if refusal is not None:
            await context.abort(*refusal)
        return raft_pb2.Delivered()

    async def Probe(
        self, request: raft_pb2.Delivered,
        context: grpc.aio.ServicerContext[raft_pb2.Delivered, raft_pb2.Delivered],
    ) -> raft_pb2.Delivered:
        return raft_pb2.Delivered()
