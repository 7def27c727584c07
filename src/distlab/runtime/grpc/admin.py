"""The Admin service: a node's own status, and the status of every member as it sees them."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from distlab import __version__
from distlab.core.ids import NodeId
from distlab.core.replicated_log import NotLeader, OutcomeUnknown
from distlab.core.status import EngineStatus
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.runtime.config import ConfigError, NodeConfig, parse_address
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.raft.driver import RaftDriver
from distlab.wire.not_leader import encode_not_leader

DEFAULT_PEER_TIMEOUT_SECONDS = 1.0
MAX_PEER_TIMEOUT_SECONDS = 30.0


TRANSFER_WAIT_SECONDS = 5.0


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(
        self,
        config: NodeConfig,
        engine_status: Callable[[], EngineStatus],
        channels: PeerChannels,
        driver: RaftDriver | None = None,
    ) -> None:
        self._config = config
        self._engine_status = engine_status
        self._channels = channels
        self._driver = driver
        self._started = time.monotonic()

    def local_status(self) -> admin_pb2.NodeStatus:
        engine = self._engine_status()
        voters: list[int] = []
        learners: list[int] = []
        if self._driver is not None:
            membership = self._driver.raft_status()
            voters, learners = sorted(membership.voters), sorted(membership.learners)
        return admin_pb2.NodeStatus(
            voters=voters,
            learners=learners,
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

    async def AddMember(
        self,
        request: admin_pb2.AddMemberRequest,
        context: grpc.aio.ServicerContext[admin_pb2.AddMemberRequest, admin_pb2.MembershipResponse],
    ) -> admin_pb2.MembershipResponse:
        driver = await self._require_driver(context)
        node = NodeId(request.node_id)
        if node <= 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "node_id must be positive")
        try:
            address = parse_address(request.address, "address")
        except ConfigError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        try:
            await driver.add_member(node, str(address))
        except NotLeader as error:
            await abort_not_leader(context, error)
        except (ValueError, OutcomeUnknown) as error:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error))
        return self._membership(driver)

    async def RemoveMember(
        self,
        request: admin_pb2.RemoveMemberRequest,
        context: grpc.aio.ServicerContext[
            admin_pb2.RemoveMemberRequest, admin_pb2.MembershipResponse],
    ) -> admin_pb2.MembershipResponse:
        driver = await self._require_driver(context)
        node = NodeId(request.node_id)
        await self._require_leader(driver, context)
        if not await driver.request(lambda core: core.remove_member(node)):
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"cannot remove node {node} now (not a member, the last voter, or another "
                "change is in progress)")
        return self._membership(driver)

    async def TransferLeader(
        self,
        request: admin_pb2.TransferLeaderRequest,
        context: grpc.aio.ServicerContext[
            admin_pb2.TransferLeaderRequest, admin_pb2.MembershipResponse],
    ) -> admin_pb2.MembershipResponse:
        driver = await self._require_driver(context)
        target = NodeId(request.node_id)
        await self._require_leader(driver, context)
        if target != driver.node_id:
            if not await driver.request(lambda core: core.transfer_leadership(target)):
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                    f"node {target} is not a voter that can take over")
            deadline = time.monotonic() + TRANSFER_WAIT_SECONDS
            while driver.status().leader_id != target:
                if time.monotonic() > deadline:
                    await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                        f"node {target} did not take over within "
                                        f"{TRANSFER_WAIT_SECONDS:.0f} s")
                await asyncio.sleep(0.02)  # polling interval while the transfer completes
        return self._membership(driver)

    async def SetFault(
        self,
        request: admin_pb2.FaultRequest,
        context: grpc.aio.ServicerContext[admin_pb2.FaultRequest, admin_pb2.FaultResponse],
    ) -> admin_pb2.FaultResponse:
        driver = await self._require_driver(context)
        isolated = frozenset(NodeId(n) for n in request.isolate_from if n != driver.node_id)
        driver.isolate_from(isolated)
        return admin_pb2.FaultResponse(isolated_from=sorted(isolated))

    def _membership(self, driver: RaftDriver) -> admin_pb2.MembershipResponse:
        status = driver.raft_status()
        return admin_pb2.MembershipResponse(
            voters=sorted(status.voters), learners=sorted(status.learners),
            leader_id=status.leader_id)

    async def _require_driver(self, context: grpc.aio.ServicerContext[Any, Any]) -> RaftDriver:
        if self._driver is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                "this node runs no consensus engine")
        assert self._driver is not None
        return self._driver

    async def _require_leader(self, driver: RaftDriver,
                              context: grpc.aio.ServicerContext[Any, Any]) -> None:
        status = driver.status()
        if status.role != "leader":
            leader = status.leader_id or None
            await abort_not_leader(
                context, NotLeader(leader, driver.address_of(leader) if leader else None))

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


async def abort_not_leader(context: grpc.aio.ServicerContext[Any, Any], error: NotLeader,
                           group: int = 0) -> NoReturn:
    """FAILED_PRECONDITION, with the group and its leader's id and address as trailers."""
    encoded = encode_not_leader(error.leader_id, error.leader_address, group)
    await context.abort(encoded.code, encoded.details, encoded.trailing_metadata)
