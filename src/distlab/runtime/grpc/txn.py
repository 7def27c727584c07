"""The Txn service: a client's transaction, coordinated by this node, and what is unfinished
here. Protocol logic lives in the transaction core; this only translates."""

from __future__ import annotations

from typing import Any

import grpc

from distlab.apps.mvcc import ReadBelowHorizon, ReadNotSafe
from distlab.core.replicated_log import NotLeader, OutcomeUnknown
from distlab.proto import txn_pb2, txn_pb2_grpc
from distlab.protocols.txn import InDoubt, Op, OpKind, Outcome, Protocol, parse_op
from distlab.runtime.txn.driver import TxnDriver
from distlab.runtime.txn.groups import GroupParticipants, group_of_participant
from distlab.wire.not_leader import encode_not_leader

MAX_OPS = 1000
# A snapshot read waits at most this long for a replica's safe time (less within the call's
# deadline, so that the answer still arrives).
SNAPSHOT_READ_SECONDS = 5.0
DEADLINE_MARGIN_SECONDS = 0.05


class TxnServicer(txn_pb2_grpc.TxnServicer):
    def __init__(self, driver: TxnDriver, groups: GroupParticipants, tick_seconds: float
                 ) -> None:
        self._driver = driver
        self._groups = groups
        self._tick_seconds = tick_seconds

    async def Execute(self, request: txn_pb2.ExecuteRequest,
                      context: grpc.aio.ServicerContext[Any, Any]) -> txn_pb2.ExecuteResponse:
        if not request.txn_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "txn_id is empty")
        if len(request.ops) > MAX_OPS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"at most {MAX_OPS} operations in a transaction")
        participants = request.participants or "nodes"
        if participants not in ("nodes", "groups"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"participants {participants!r} is not nodes or groups")
        try:
            protocol = Protocol(request.protocol or "2pc")
            ops = tuple(_op(op) for op in request.ops)
        except ValueError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        priority = (request.priority, request.txn_id)
        reading = request.read_only or request.HasField("at_ts")
        if reading and (participants != "groups" or protocol is not Protocol.TWO_PHASE
                        or any(op.kind is not OpKind.GET for op in ops)):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "read-only transactions and snapshot reads are gets only, "
                                "over groups, with 2pc")
        if request.HasField("at_ts"):
            return await self._read_replicas(ops, request.at_ts, context)
        outcome: Outcome
        try:
            if request.read_only:
                outcome = await self._groups.execute_read(
                    request.txn_id, tuple(op.key for op in ops), None)
            elif participants == "groups":
                outcome = await self._groups.execute(request.txn_id, priority, ops, protocol)
            else:
                outcome = await self._driver.execute(request.txn_id, priority, ops, protocol)
        except NotLeader as refusal:
            status = encode_not_leader(refusal.leader_id, refusal.leader_address,
                                       self._groups.coordinator_group(ops))
            await context.abort(status.code, status.details, status.trailing_metadata)
        except OutcomeUnknown as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        return txn_pb2.ExecuteResponse(
            outcome="committed" if outcome.committed else "aborted", reason=outcome.reason,
            reads=_reads(outcome.reads), ts=outcome.ts)

    async def _read_replicas(self, ops: tuple[Op, ...], ts: int,
                             context: grpc.aio.ServicerContext[Any, Any]
                             ) -> txn_pb2.ExecuteResponse:
        remaining = context.time_remaining()
        timeout = (SNAPSHOT_READ_SECONDS if remaining is None
                   else max(0.0, min(SNAPSHOT_READ_SECONDS, remaining - DEADLINE_MARGIN_SECONDS)))
        try:
            reads = await self._groups.read_replicas([op.key for op in ops], ts, timeout)
        except ReadNotSafe as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        except ReadBelowHorizon as error:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        return txn_pb2.ExecuteResponse(outcome="committed", reads=_reads(reads), ts=ts)

    async def Status(self, request: txn_pb2.TxnStatusRequest,
                     context: grpc.aio.ServicerContext[Any, Any]
                     ) -> txn_pb2.TxnStatusResponse:
        entries = [self._unfinished(entry) for entry in await self._driver.in_doubt()]
        for group, entry in await self._groups.in_doubt():
            unfinished = self._unfinished(entry)
            unfinished.group = group
            unfinished.coordinator = group_of_participant(entry.coordinator)
            entries.append(unfinished)
        return txn_pb2.TxnStatusResponse(node_id=self._driver.node_id, transactions=entries)

    def _unfinished(self, entry: InDoubt) -> txn_pb2.UnfinishedTxn:
        return txn_pb2.UnfinishedTxn(
            txn_id=entry.txn, role=entry.role, state=entry.state,
            coordinator=entry.coordinator, age_seconds=entry.age_ticks * self._tick_seconds,
            locks=[f"{key}:{mode}" for key, mode in entry.locks])


def _reads(reads: tuple[tuple[str, str | None], ...]) -> list[txn_pb2.ReadValue]:
    return [txn_pb2.ReadValue(key=key, present=value is not None, value=value or "")
            for key, value in reads]


def _op(op: txn_pb2.TxnOp) -> Op:
    kind = OpKind(op.kind)
    text = (f"get:{op.key}" if kind is OpKind.GET else
            f"require:{op.key}>={op.argument}" if kind is OpKind.REQUIRE else
            f"{kind.value}:{op.key}={op.argument}")
    return parse_op(text)
