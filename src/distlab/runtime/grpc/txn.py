"""The Txn service: a client's transaction, coordinated by this node, and what is unfinished
here. Protocol logic lives in the transaction core; this only translates."""

from __future__ import annotations

from typing import Any

import grpc

from distlab.core.replicated_log import OutcomeUnknown
from distlab.proto import txn_pb2, txn_pb2_grpc
from distlab.protocols.txn import Op, OpKind, Protocol, parse_op
from distlab.runtime.txn.driver import TxnDriver

MAX_OPS = 1000


class TxnServicer(txn_pb2_grpc.TxnServicer):
    def __init__(self, driver: TxnDriver, tick_seconds: float) -> None:
        self._driver = driver
        self._tick_seconds = tick_seconds

    async def Execute(self, request: txn_pb2.ExecuteRequest,
                      context: grpc.aio.ServicerContext[Any, Any]) -> txn_pb2.ExecuteResponse:
        if not request.txn_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "txn_id is empty")
        if len(request.ops) > MAX_OPS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"at most {MAX_OPS} operations in a transaction")
        try:
            protocol = Protocol(request.protocol or "2pc")
            ops = tuple(_op(op) for op in request.ops)
        except ValueError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        try:
            outcome = await self._driver.execute(
                request.txn_id, (request.priority, request.txn_id), ops, protocol)
        except OutcomeUnknown as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        return txn_pb2.ExecuteResponse(
            outcome="committed" if outcome.committed else "aborted", reason=outcome.reason,
            reads=[txn_pb2.ReadValue(key=key, present=value is not None, value=value or "")
                   for key, value in outcome.reads])

    async def Status(self, request: txn_pb2.TxnStatusRequest,
                     context: grpc.aio.ServicerContext[Any, Any]
                     ) -> txn_pb2.TxnStatusResponse:
        entries = await self._driver.in_doubt()
        return txn_pb2.TxnStatusResponse(node_id=self._driver.node_id, transactions=[
            txn_pb2.UnfinishedTxn(
                txn_id=entry.txn, role=entry.role, state=entry.state,
                coordinator=entry.coordinator, age_seconds=entry.age_ticks * self._tick_seconds,
                locks=[f"{key}:{mode}" for key, mode in entry.locks])
            for entry in entries])


def _op(op: txn_pb2.TxnOp) -> Op:
    kind = OpKind(op.kind)
    text = (f"get:{op.key}" if kind is OpKind.GET else
            f"require:{op.key}>={op.argument}" if kind is OpKind.REQUIRE else
            f"{kind.value}:{op.key}={op.argument}")
    return parse_op(text)
