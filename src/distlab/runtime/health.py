"""Asking a gRPC server whether it serves, the way orchestrators and `distlab up` do."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def is_serving(channel: grpc.aio.Channel, deadline_seconds: float) -> bool:
    """Whether the server behind `channel` reports SERVING within the deadline."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=deadline_seconds)
    except grpc.aio.AioRpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
