"""Raft messages between members over gRPC.

Sending never waits: each peer has a bounded queue drained by its own task, which keeps a few
calls in flight. A full queue drops the newest message, which Raft tolerates (the core
retransmits), so a slow or dead peer can never hold up the driver or the other peers.
Receiving hands each decoded message to the driver's inbox and returns at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
from opentelemetry import context as otel_context
from prometheus_client import Counter, Histogram

from distlab.core.ids import NodeId
from distlab.proto import raft_pb2, raft_pb2_grpc
from distlab.protocols import raft
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.grpc.raft_codec import (
    MalformedMessage,
    SnapshotAssembler,
    from_proto,
    is_quiet,
    snapshot_chunks,
    to_proto,
)

log = logging.getLogger(__name__)

SEND_QUEUE_LIMIT = 1024
MAX_BATCH_MESSAGES = 256
MESSAGE_DEADLINE_SECONDS = 1.0
SNAPSHOT_DEADLINE_SECONDS = 30.0
MAX_SNAPSHOT_BYTES = 1 << 30

MESSAGES_SENT = Counter("distlab_raft_messages_sent_total", "Raft messages sent, by outcome.",
                        ["outcome"])
MESSAGES_REJECTED = Counter("distlab_raft_messages_rejected_total",
                            "Malformed Raft messages received from peers and rejected.")
ROUND_TRIP = Histogram(
    "distlab_peer_round_trip_time_seconds", "Time for a peer to accept one Raft message.",
    ["peer"], buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)

Outgoing = tuple[raft.Message, otel_context.Context | None]


class PeerSender:
    """One peer's outbound queue and the task that delivers it.

    One call is in flight at a time and carries everything queued while the previous one was
    out, so a burst of proposals costs one round trip and messages arrive in sending order
    (reordered appends would be rejected and resent). Snapshots go on their own stream.
    """

    def __init__(self, peer: NodeId, stub: raft_pb2_grpc.RaftAsyncStub) -> None:
        self.peer = peer
        self._stub = stub
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue(SEND_QUEUE_LIMIT)
        self._snapshot_call: asyncio.Task[None] | None = None
        self._task = asyncio.create_task(self._drain(), name=f"raft-send-{peer}")

    def send(self, message: raft.Message, trace_context: otel_context.Context | None) -> None:
        if isinstance(message, raft.InstallSnapshot):
            self._send_snapshot(message)
            return
        try:
            self._queue.put_nowait((message, trace_context))
        except asyncio.QueueFull:
            MESSAGES_SENT.labels("dropped").inc()

    def _send_snapshot(self, message: raft.InstallSnapshot) -> None:
        if self._snapshot_call is not None and not self._snapshot_call.done():
            MESSAGES_SENT.labels("dropped").inc()  # one snapshot at a time; the core resends
            return
        self._snapshot_call = asyncio.create_task(self._deliver_snapshot(message))

    async def _drain(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH_MESSAGES and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            trace_context = next((context for _, context in batch if context is not None), None)
            if trace_context is None:
                await self._deliver(batch)
            else:
                # Make the proposal's span current for this call, so the gRPC client span (and
                # the follower's server span under it) joins the proposal's trace.
                token = otel_context.attach(trace_context)
                try:
                    await self._deliver(batch)
                finally:
                    otel_context.detach(token)

    async def _deliver(self, batch: list[Outgoing]) -> None:
        messages = [message for message, _ in batch]
        request = raft_pb2.RaftBatch(messages=[to_proto(message) for message in messages])
        started = time.perf_counter()
        try:
            if all(is_quiet(message) for message in messages):
                await self._stub.DeliverQuiet(request, timeout=MESSAGE_DEADLINE_SECONDS)
            else:
                await self._stub.Deliver(request, timeout=MESSAGE_DEADLINE_SECONDS)
        except grpc.aio.AioRpcError as error:
            # Lost messages are Raft's normal weather: the core retries on its own schedule.
            MESSAGES_SENT.labels("failed").inc(len(messages))
            log.debug("to node %d: %d messages failed: %s", self.peer, len(messages),
                      error.code().name)
            return
        ROUND_TRIP.labels(str(self.peer)).observe(time.perf_counter() - started)
        MESSAGES_SENT.labels("delivered").inc(len(messages))

    async def _deliver_snapshot(self, message: raft.InstallSnapshot) -> None:
        try:
            await self._stub.InstallSnapshot(
                _aiter(snapshot_chunks(message)), timeout=SNAPSHOT_DEADLINE_SECONDS)
        except grpc.aio.AioRpcError as error:
            MESSAGES_SENT.labels("failed").inc()
            log.info("snapshot to node %d failed: %s", self.peer, error.code().name)
            return
        MESSAGES_SENT.labels("delivered").inc()

    async def close(self) -> None:
        self._task.cancel()
        if self._snapshot_call is not None:
            self._snapshot_call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def _aiter(chunks: Iterable[raft_pb2.SnapshotChunk]) -> AsyncIterator[raft_pb2.SnapshotChunk]:
    for chunk in chunks:
        yield chunk


class RaftTransport:
    """Outbound side: routes each message to its peer's sender."""

    def __init__(self, channels: PeerChannels) -> None:
        self._channels = channels
        self._senders: dict[NodeId, PeerSender] = {}
        # Peers this node is cut off from by an injected fault: nothing is sent to them, and
        # the servicer refuses what they send.
        self.isolated_from: frozenset[NodeId] = frozenset()

    def learn_address(self, node: NodeId, address: str) -> None:
        self._channels.add(node, address)

    def send(self, message: raft.Message, trace_context: otel_context.Context | None = None
             ) -> None:
        if message.recipient in self.isolated_from:
            MESSAGES_SENT.labels("partitioned").inc()
            return
        sender = self._senders.get(message.recipient)
        if sender is None:
            if message.recipient not in self._channels.peers:
                log.warning("no address for node %d; dropping %s", message.recipient,
                            type(message).__name__)
                return
            stub = raft_pb2_grpc.RaftStub(self._channels.get(message.recipient))
            sender = self._senders[message.recipient] = PeerSender(message.recipient, stub)
        sender.send(message, trace_context)

    async def close(self) -> None:
        senders, self._senders = self._senders, {}
        await asyncio.gather(*(sender.close() for sender in senders.values()))


class RaftServicer(raft_pb2_grpc.RaftServicer):
    """Inbound side: decode, check the message is for this node, hand it to the driver."""

    def __init__(self, node_id: NodeId, deliver: Callable[[raft.Message], bool],
                 isolated_from: Callable[[], frozenset[NodeId]] = frozenset) -> None:
        self._node_id = node_id
        self._deliver = deliver
        self._isolated_from = isolated_from

    async def _accept(self, message: raft.Message,
                      context: grpc.aio.ServicerContext[Any, raft_pb2.Delivered]
                      ) -> raft_pb2.Delivered:
        if message.recipient != self._node_id:
            MESSAGES_REJECTED.inc()
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"this is node {self._node_id}, not {message.recipient}")
        if message.sender in self._isolated_from():
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                f"node {self._node_id} is partitioned from {message.sender}")
        if not self._deliver(message):
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "inbox full")
        return raft_pb2.Delivered()

    async def _accept_batch(
        self, request: raft_pb2.RaftBatch,
        context: grpc.aio.ServicerContext[raft_pb2.RaftBatch, raft_pb2.Delivered],
    ) -> raft_pb2.Delivered:
        try:
            messages = [from_proto(message) for message in request.messages]
        except MalformedMessage as error:
            MESSAGES_REJECTED.inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        for message in messages:
            await self._accept(message, context)
        return raft_pb2.Delivered()

    async def Deliver(
        self, request: raft_pb2.RaftBatch,
        context: grpc.aio.ServicerContext[raft_pb2.RaftBatch, raft_pb2.Delivered],
    ) -> raft_pb2.Delivered:
        return await self._accept_batch(request, context)

    async def DeliverQuiet(
        self, request: raft_pb2.RaftBatch,
        context: grpc.aio.ServicerContext[raft_pb2.RaftBatch, raft_pb2.Delivered],
    ) -> raft_pb2.Delivered:
        return await self._accept_batch(request, context)

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
            MESSAGES_REJECTED.inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        if message is None:
            MESSAGES_REJECTED.inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "snapshot stream ended early")
        return await self._accept(message, context)
