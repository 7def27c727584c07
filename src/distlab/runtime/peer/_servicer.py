"""The receiving half of the node's peer transport: the Peer gRPC service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc
from opentelemetry import propagate, trace

from distlab.core.ids import NodeId
from distlab.core.vclock import VectorClock
from distlab.core.vclock_log import clock_json
from distlab.proto import peer_pb2, peer_pb2_grpc
from distlab.runtime.peer._bulk import BulkAssembler, MalformedTransfer
from distlab.runtime.peer._clocks import PeerClock
from distlab.runtime.peer._handshake import (
    DEFAULT_ENGINE,
    BadHandshake,
    Handshake,
    acceptance,
    refusal,
)
from distlab.runtime.peer._metrics import INBOUND, STREAMS_REFUSED, count_rejected
from distlab.runtime.peer._router import Delivery, PeerRouter

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# Bulk payloads being received at once; each is held whole in memory until its instance
# takes it, so more are refused (the sender's protocol retries later).
MAX_CONCURRENT_TRANSFERS = 4

_TRANSFER_REFUSALS = {
    Delivery.UNKNOWN_INSTANCE: grpc.StatusCode.NOT_FOUND,
    Delivery.MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
    Delivery.NOT_ACCEPTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class PeerServicer(peer_pb2_grpc.PeerServicer):
    """Checks each peer's handshake, then hands what it sends to the router.

    A peer cut off by an injected partition, an envelope for an instance this node does not
    run and one its instance cannot take are weather: counted and dropped, the stream goes
    on. A peer calling the wrong node, or running another GROUPS value, is refused.

    With `clock`, each message that arrives is an event of the node's vector clock, merged
    with the clock the sender stamped on it.
    """

    def __init__(self, node_id: NodeId, groups: int, router: PeerRouter,
                 isolated_from: Callable[[], frozenset[NodeId]] = frozenset, *,
                 engine: str = DEFAULT_ENGINE, clock: PeerClock | None = None) -> None:
        self._node_id = node_id
        self._clock = clock
        self._groups = groups
        self._engine = engine
        self._router = router
        self._isolated_from = isolated_from
        self._acceptance = acceptance(node_id, groups, engine)
        self._streams: Counter[NodeId] = Counter()
        self._stream_contexts: set[grpc.aio.ServicerContext[Any, Any]] = set()
        self._transfers = 0

    @property
    def streams_open(self) -> dict[NodeId, int]:
        """Peer -> the streams from it this servicer is reading now."""
        return {peer: count for peer, count in self._streams.items() if count}

    async def end_streams(self) -> None:
        """End every stream from a peer now, as UNAVAILABLE: at shutdown, so that they do
        not hold the server's grace for client calls (they never end by themselves); each
        peer's sender reconnects, to this node once it is back."""
        for context in list(self._stream_contexts):
            # Aborting from outside the handler ends the call, then raises here.
            with contextlib.suppress(grpc.aio.AbortError):
                await context.abort(grpc.StatusCode.UNAVAILABLE,
                                    f"node {self._node_id} is shutting down")

    async def Stream(
        self, request_iterator: AsyncIterator[peer_pb2.EnvelopeBatch],
        context: grpc.aio.ServicerContext[peer_pb2.EnvelopeBatch, peer_pb2.PeerAck],
    ) -> peer_pb2.PeerAck:
        sender = (await self._handshake(context)).sender
        await context.send_initial_metadata(self._acceptance)
        self._streams[sender] += 1
        INBOUND.inc()
        self._stream_contexts.add(context)
        try:
            async for batch in request_iterator:
                self._receive(sender, batch)
                # The instances this batch woke run before the stream reads the next one:
                # asking gRPC for a message costs tens of microseconds, which would otherwise
                # delay every append's fsync (on a follower) and every commit (on a leader).
                await asyncio.sleep(0)
        finally:
            self._stream_contexts.discard(context)
            self._streams[sender] -= 1
            INBOUND.dec()
        return peer_pb2.PeerAck()

    def _receive(self, sender: NodeId, batch: peer_pb2.EnvelopeBatch) -> None:
        if sender in self._isolated_from():
            label = self._router.label
            for service, count in Counter(e.service for e in batch.envelopes).items():
                count_rejected(label(service), "partitioned", count)
            return
        deliver = self._router.deliver
        clock = self._clock
        for envelope in batch.envelopes:
            stamp = None
            if clock is not None:
                # Stamped before the instance sees it: what it sends in answer comes after.
                stamp = clock.on_receive(
                    sender, envelope.service, envelope.group, envelope.payload,
                    VectorClock(envelope.vector_clock) if envelope.vector_clock else None)
            if not envelope.trace_context:
                deliver(sender, envelope.service, envelope.group, envelope.payload)
                continue
            attributes: dict[str, str | int] = {
                "distlab.node": self._node_id, "distlab.peer": sender,
                "distlab.group": envelope.group,
                "distlab.batch_envelopes": len(batch.envelopes)}
            if stamp is not None:
                attributes["distlab.vclock"] = clock_json(stamp)
            with tracer.start_as_current_span(
                f"{self._router.label(envelope.service)}.receive",
                context=propagate.extract(envelope.trace_context),
                kind=trace.SpanKind.CONSUMER, attributes=attributes,
            ):
                deliver(sender, envelope.service, envelope.group, envelope.payload)

    async def Transfer(
        self, request_iterator: AsyncIterator[peer_pb2.BulkChunk],
        context: grpc.aio.ServicerContext[peer_pb2.BulkChunk, peer_pb2.PeerAck],
    ) -> peer_pb2.PeerAck:
        sender = (await self._handshake(context)).sender
        await self._refuse_if_isolated(sender, "", context)
        if self._transfers >= MAX_CONCURRENT_TRANSFERS:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"node {self._node_id} is receiving "
                                f"{MAX_CONCURRENT_TRANSFERS} transfers already")
        self._transfers += 1
        try:
            assembler = BulkAssembler()
            async for chunk in request_iterator:
                assembler.add(chunk)
                if assembler.done:
                    break
            if not assembler.done:
                raise MalformedTransfer("the transfer ended before its last chunk")
        except MalformedTransfer as error:
            count_rejected(self._router.label(assembler.service), "malformed")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        finally:
            self._transfers -= 1
        await self._refuse_if_isolated(sender, assembler.service, context)
        payload = assembler.payload()
        if self._clock is not None:
            self._clock.on_receive(sender, assembler.service, assembler.group, payload,
                                   assembler.carried)
        delivery = self._router.deliver_bulk(sender, assembler.service, assembler.group,
                                             payload)
        if delivery is not Delivery.ACCEPTED:
            await context.abort(
                _TRANSFER_REFUSALS[delivery],
                f"node {self._node_id} did not take the {assembler.service} transfer for "
                f"group {assembler.group}: {delivery.value}")
        return peer_pb2.PeerAck()

    async def _refuse_if_isolated(self, sender: NodeId, service: str,
                                  context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if sender in self._isolated_from():
            count_rejected(self._router.label(service), "partitioned")
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                f"node {self._node_id} is partitioned from {sender}")

    async def Probe(
        self, request: peer_pb2.PeerAck,
        context: grpc.aio.ServicerContext[peer_pb2.PeerAck, peer_pb2.PeerAck],
    ) -> peer_pb2.PeerAck:
        return peer_pb2.PeerAck()

    async def _handshake(self, context: grpc.aio.ServicerContext[Any, Any]) -> Handshake:
        """The caller's handshake; the call is aborted when it is refused."""
        try:
            handshake = Handshake.from_metadata(context.invocation_metadata())
        except BadHandshake as error:
            await self._refuse(context, "bad_handshake", grpc.StatusCode.INVALID_ARGUMENT,
                               str(error))
        refused = refusal(self._node_id, self._groups, handshake, self._engine)
        if refused is not None:
            reason, text = refused
            await self._refuse(context, reason, grpc.StatusCode.FAILED_PRECONDITION, text)
        return handshake

    async def _refuse(self, context: grpc.aio.ServicerContext[Any, Any], reason: str,
                      code: grpc.StatusCode, text: str) -> NoReturn:
        STREAMS_REFUSED.labels(reason).inc()
        log.warning("refusing a peer call from %s: %s", context.peer(), text)
        await context.abort(code, text)
        raise AssertionError("abort returns only by raising")
