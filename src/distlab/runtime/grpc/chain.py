"""The Chain service: clients' writes (at the head) and reads (at the tail, or any replica in
CRAQ), the replica's status, and the master's commands forwarded to group 0's leader.

A replica that is not the head answers a write with FAILED_PRECONDITION naming the head
(`leader-id`, `leader-address`), as a follower of a group does; one that cannot serve a read
now (no lease, not caught up, not the tail in CR) with FAILED_PRECONDITION too: both are
definite. A write whose outcome is unknown is UNAVAILABLE (indefinite).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from distlab.core.ids import NodeId
from distlab.core.replicated_log import NotLeader, OutcomeUnknown
from distlab.proto import chain_pb2, chain_pb2_grpc
from distlab.protocols.chain import Outcome, ReadMode, Role
from distlab.runtime.chain.driver import ChainDriver, ChainRefused
from distlab.runtime.grpc.kv import Rejection, check_key, check_value, not_leader_rejection
from distlab.runtime.host.machine import chain_master_command
from distlab.wire.metadata import (
    ERROR_REASON,
    LEADER_ADDRESS,
    LEADER_ID,
    REASON_OUTCOME_UNKNOWN,
    REASON_TIMED_OUT,
)

Context = grpc.aio.ServicerContext[Any, Any]
WAIT_SECONDS = 10.0

CHAIN_READS = Counter("distlab_chain_reads", "Chain reads answered here, by mode and outcome.",
                      ["mode", "outcome"])
CHAIN_WRITES = Counter("distlab_chain_writes", "Chain writes taken here, by outcome.",
                       ["outcome"])

_MODES = {chain_pb2.CHAIN_READ_MODE_CR: ReadMode.CR, chain_pb2.CHAIN_READ_MODE_CRAQ: ReadMode.CRAQ}
# Refusals other than these are FAILED_PRECONDITION: definite, and worth asking elsewhere.
_REFUSAL_CODES = {Outcome.UNKNOWN: grpc.StatusCode.UNAVAILABLE,
                  Outcome.STALE: grpc.StatusCode.ABORTED}


class ChainServicer(chain_pb2_grpc.ChainServicer):
    def __init__(self, replica: ChainDriver, group0: Any,
                 address_of: Callable[[NodeId], str | None]) -> None:
        self._replica = replica
        self._group0 = group0
        self._address_of = address_of

    async def Write(self, request: chain_pb2.ChainWriteRequest, context: Context
                    ) -> chain_pb2.ChainWriteResponse:
        try:
            check_key(request.key)
            check_value(request.value)
        except Rejection as rejection:
            await context.abort(rejection.code, rejection.message, rejection.metadata)
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                seq = await self._replica.write(request.key, request.value,
                                                request.client_id, request.request)
        except ChainRefused as refused:
            CHAIN_WRITES.labels(outcome=refused.outcome.value).inc()
            await self._refuse(context, refused)
            raise
        except OutcomeUnknown as error:
            CHAIN_WRITES.labels(outcome="unknown").inc()
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"outcome unknown: {error}",
                                ((ERROR_REASON, REASON_OUTCOME_UNKNOWN),))
            raise
        except TimeoutError:
            CHAIN_WRITES.labels(outcome="unknown").inc()
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                f"no outcome within {WAIT_SECONDS:g} s; the write may still "
                                "be applied", ((ERROR_REASON, REASON_TIMED_OUT),))
            raise
        CHAIN_WRITES.labels(outcome="ok").inc()
        return chain_pb2.ChainWriteResponse(seq=seq)

    async def Read(self, request: chain_pb2.ChainReadRequest, context: Context
                   ) -> chain_pb2.ChainReadResponse:
        try:
            check_key(request.key)
        except Rejection as rejection:
            await context.abort(rejection.code, rejection.message, rejection.metadata)
        mode = _MODES.get(request.mode, ReadMode.CR)
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                result = await self._replica.read(request.key, mode)
        except ChainRefused as refused:
            CHAIN_READS.labels(mode=mode.value, outcome="refused").inc()
            await self._refuse(context, refused)
            raise
        except (OutcomeUnknown, TimeoutError) as error:
            CHAIN_READS.labels(mode=mode.value, outcome="failed").inc()
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"no answer: {error}")
            raise
        CHAIN_READS.labels(mode=mode.value, outcome=result.how).inc()
        return chain_pb2.ChainReadResponse(found=result.value is not None,
                                           value=result.value or b"", seq=result.seq,
                                           how=result.how)

    async def Status(self, request: chain_pb2.ChainStatusRequest, context: Context
                     ) -> chain_pb2.ChainStatusResponse:
        core = self._replica.core
        return chain_pb2.ChainStatusResponse(
            epoch=core.epoch, chain=list(core.chain.chain), joining=core.chain.joining or 0,
            node=core.node_id, role=core.role.value, sent=core.sent, applied=core.committed)

    async def Submit(self, request: chain_pb2.ChainSubmitRequest, context: Context
                     ) -> chain_pb2.ChainSubmitResponse:
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                result = await self._group0.propose_envelope(
                    chain_master_command(request.command))
        except NotLeader as error:
            rejection = not_leader_rejection(error)
            await context.abort(rejection.code, rejection.message, rejection.metadata)
            raise
        except (OutcomeUnknown, TimeoutError) as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"outcome unknown: {error}")
            raise
        return chain_pb2.ChainSubmitResponse(result=result)

    async def _refuse(self, context: Context, refused: ChainRefused) -> None:
        metadata: list[tuple[str, str]] = [(ERROR_REASON, refused.outcome.value)]
        if refused.hint:
            metadata.append((LEADER_ID, str(refused.hint)))
            address = self._address_of(refused.hint)
            if address:
                metadata.append((LEADER_ADDRESS, address))
        code = _REFUSAL_CODES.get(refused.outcome, grpc.StatusCode.FAILED_PRECONDITION)
        await context.abort(code, str(refused), tuple(metadata))


class ChainCollector(Collector):
    """`distlab_chain_*` gauges of this node's replica, read at each scrape."""

    def __init__(self, replica: ChainDriver) -> None:
        self._replica = replica

    def collect(self) -> Iterator[Any]:
        core = self._replica.core
        role = GaugeMetricFamily("distlab_chain_role", "1 for this replica's role.",
                                 labels=["role"])
        for each in Role:
            role.add_metric([each.value], 1.0 if core.role is each else 0.0)
        yield role
        yield GaugeMetricFamily("distlab_chain_epoch", "The chain configuration's epoch.",
                                value=core.epoch)
        yield GaugeMetricFamily("distlab_chain_sent", "Updates forwarded, not yet acknowledged.",
                                value=core.sent)
        yield GaugeMetricFamily("distlab_chain_applied", "Updates known applied at the tail.",
                                value=core.committed)
        refused = CounterMetricFamily("distlab_chain_messages_refused",
                                      "Peer messages the replica refused, by reason.",
                                      labels=["reason"])
        refused.add_metric(["stale-epoch"], core.counters.refused_stale)
        refused.add_metric(["other"], core.counters.refused_other)
        yield refused
        stale = CounterMetricFamily("distlab_chain_stale_messages_refused",
                                    "Peer messages of an older epoch the replica refused, by "
                                    "sender.", labels=["sender"])
        for sender, count in sorted(core.counters.stale_messages.items()):
            stale.add_metric([str(sender)], count)
        yield stale
        yield CounterMetricFamily("distlab_chain_reconfigurations",
                                  "Configurations this replica moved to.",
                                  value=self._replica.reconfigurations)
