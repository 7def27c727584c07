"""The Admin service: a node's own status, and the status of every member as it sees them."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import grpc

from distlab import __version__
from distlab.core.ids import NodeId
from distlab.core.status import EngineStatus
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.runtime.config import NodeConfig
from distlab.runtime.grpc.channels import PeerChannels

DEFAULT_PEER_TIMEOUT_SECONDS = 1.0
MAX_PEER_TIMEOUT_SECONDS = 30.0


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(
        self,
        config: NodeConfig,
        engine_status: Callable[[], EngineStatus],
        channels: PeerChannels,
    ) -> None:
        self._config = config
        self._engine_status = engine_status
        self._channels = channels
        self._started = time.monotonic()

    def local_status(self) -> admin_pb2.NodeStatus:
        engine = self._engine_status()
        return admin_pb2.NodeStatus(
            node_id=self._config.node_id,
            role=engine.role,
            term=engine.term,
            leader_id=engine.leader_id,
            commit_index=engine.commit_index,
            applied_index=engine.applied_index,
            pid=os.getpid(),
            uptime_seconds=time.monotonic() - self._started,
            version=__version__,
            address=str(self._config.cluster[self._config.node_id]),
        )

    async def Status(
        self,
        request: admin_pb2.StatusRequest,
        context: grpc.aio.ServicerContext[admin_pb2.StatusRequest, admin_pb2.NodeStatus],
    ) -> admin_pb2.NodeStatus:
        return self.local_status()

    async def ClusterStatus(
        self,
        request: admin_pb2.ClusterStatusRequest,
        context: grpc.aio.ServicerContext[
            admin_pb2.ClusterStatusRequest, admin_pb2.ClusterStatusResponse
        ],
    ) -> admin_pb2.ClusterStatusResponse:
        timeout = request.timeout_seconds or DEFAULT_PEER_TIMEOUT_SECONDS
        if not 0 < timeout <= MAX_PEER_TIMEOUT_SECONDS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"timeout_seconds must be in (0, {MAX_PEER_TIMEOUT_SECONDS}], got {timeout}",
            )
        own = admin_pb2.MemberStatus(
            node_id=self._config.node_id,
            address=str(self._config.cluster[self._config.node_id]),
            up=True,
            status=self.local_status(),
        )
        peer_rows: list[admin_pb2.MemberStatus] = await asyncio.gather(
            *(self._ask_peer(node_id, timeout) for node_id in sorted(self._config.peers))
        )
        rows = sorted([own, *peer_rows], key=lambda row: row.node_id)
        return admin_pb2.ClusterStatusResponse(answered_by=self._config.node_id, members=rows)

    async def _ask_peer(
        self, node_id: NodeId, deadline_seconds: float
    ) -> admin_pb2.MemberStatus:
        address = str(self._config.cluster[node_id])
        stub = admin_pb2_grpc.AdminStub(self._channels.get(node_id))
        try:
            status = await stub.Status(admin_pb2.StatusRequest(), timeout=deadline_seconds)
        except grpc.aio.AioRpcError as error:
            return admin_pb2.MemberStatus(
                node_id=node_id,
                address=address,
                up=False,
                error=f"{error.code().name}: {error.details()}",
            )
        return admin_pb2.MemberStatus(node_id=node_id, address=address, up=True, status=status)
