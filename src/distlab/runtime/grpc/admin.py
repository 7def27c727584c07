"""The Admin service: a node's own status, and the status of every member as it sees them;
membership changes and leadership transfers, group by group.

A membership change of group 0 also changes the chain's (§14): once group 0 has removed a
node, this node proposes `retire` to the chain's master (on group 0, whose leader this is,
as the change was made here), which takes the node out of the chain at once and keeps it
out; once group 0 has added one, `admit`, after which the node joins the chain by itself as
its new tail. Both are proposed too when group 0 was as asked already (a retried change),
so that the chain follows group 0 whatever answer was lost; a leader that removes itself
proposes `retire` before the change instead. Before the chain's first configuration, the
master remembers a retired node and leaves it out of the first chain.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import grpc

from distlab import __version__
from distlab.core.capabilities import LeadershipTransfer, Members, MembershipChanges
from distlab.core.ids import NodeId
from distlab.core.replicated_log import EngineError, NotLeader, OutcomeUnknown
from distlab.core.status import IDLE, EngineStatus
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.protocols.chain import admit_command, decode_result, retire_command
from distlab.runtime.chain.driver import MASTER_CALL_SECONDS, MasterPort
from distlab.runtime.config import ConfigError, NodeConfig, parse_address
from distlab.runtime.grpc.channels import PeerChannels
from distlab.runtime.host.host import Host, HostedGroup
from distlab.runtime.txn.driver import TxnDriver
from distlab.runtime.txn.groups import GroupParticipants
from distlab.wire.not_leader import encode_not_leader

DEFAULT_PEER_TIMEOUT_SECONDS = 1.0
MAX_PEER_TIMEOUT_SECONDS = 30.0


TRANSFER_WAIT_SECONDS = 5.0
# How long a membership change waits for the chain's master to take its news (its proposal
# made again while group 0's leadership moves).
CHAIN_NEWS_SECONDS = 5.0
# The chain's master lives on group 0.
MASTER_GROUP = 0

GroupRequest = (admin_pb2.AddMemberRequest | admin_pb2.RemoveMemberRequest
                | admin_pb2.TransferLeaderRequest)


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(self, config: NodeConfig, host: Host | None, channels: PeerChannels,
                 txn: TxnDriver | None = None,
                 group_txn: GroupParticipants | None = None,
                 chain_master: MasterPort | None = None) -> None:
        """`chain_master`: the chain's master as this node's replica reaches it; without one
        (a node serving no chain), membership changes leave the chain alone."""
        self._config = config
        self._host = host
        self._chain_master = chain_master
        self._txn = txn
        self._group_txn = group_txn
        self._channels = channels
        self._started = time.monotonic()

    def local_status(self) -> admin_pb2.NodeStatus:
        host = self._host
        groups = [group_status(group.group, group.status(), group.members())
                  for group in host.groups] if host is not None else []
        first = groups[0] if groups else admin_pb2.GroupStatus(role=IDLE.role)
        return admin_pb2.NodeStatus(
            voters=first.voters,
            learners=first.learners,
            node_id=self._config.node_id,
            role=first.role,
            term=first.term,
            leader_id=first.leader_id,
            commit_index=first.commit_index,
            applied_index=first.applied_index,
            pid=os.getpid(),
            uptime_seconds=time.monotonic() - self._started,
            version=__version__,
            address=str(self._config.cluster[self._config.node_id]),
            engine=host.engine if host is not None else "",
            group_count=len(groups),
            groups=groups,
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
        node = NodeId(request.node_id)
        if node <= 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "node_id must be positive")
        try:
            address = parse_address(request.address, "address")
        except ConfigError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        groups = await self._chosen(request, context)
        for group in groups:
            changes = await self._membership_changes(group, context)
            refused = None
            try:
                await changes.add_member(node, str(address))
            except NotLeader as error:
                await abort_not_leader(context, error, group.group)
            except (ValueError, OutcomeUnknown) as error:
                refused = str(error)
            if group.group == MASTER_GROUP and is_member(changes, node):
                await self._tell_chain(admit_command(node), f"node {node} is in group 0, but",
                                       context)
            if refused is not None:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, refused)
        return membership_response(groups)

    async def RemoveMember(
        self,
        request: admin_pb2.RemoveMemberRequest,
        context: grpc.aio.ServicerContext[
            admin_pb2.RemoveMemberRequest, admin_pb2.MembershipResponse],
    ) -> admin_pb2.MembershipResponse:
        node = NodeId(request.node_id)
        groups = await self._chosen(request, context)
        for group in groups:
            changes = await self._membership_changes(group, context)
            # A leader that removes itself steps down once the change commits and, no longer
            # a member, hears of no new leader to take the news to: it tells the chain first.
            itself = (group.group == MASTER_GROUP and node == self._config.node_id
                      and group.status().role == "leader")
            if itself:
                await self._tell_chain(retire_command(node), f"node {node} stays in group 0, as",
                                       context)
            refused = None
            try:
                await changes.remove_member(node)
            except NotLeader as error:
                await abort_not_leader(context, error, group.group)
            except ValueError as error:
                refused = str(error)
            if group.group == MASTER_GROUP and not itself and not is_member(changes, node):
                await self._tell_chain(retire_command(node),
                                       f"node {node} is out of group 0, but", context)
            if refused is not None:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, refused)
        return membership_response(groups)

    async def TransferLeader(
        self,
        request: admin_pb2.TransferLeaderRequest,
        context: grpc.aio.ServicerContext[
            admin_pb2.TransferLeaderRequest, admin_pb2.MembershipResponse],
    ) -> admin_pb2.MembershipResponse:
        target = NodeId(request.node_id)
        groups = await self._chosen(request, context)
        for group in groups:
            if not isinstance(group, LeadershipTransfer):
                await unsupported(context, group, "leadership transfer")
            try:
                started = await group.transfer_leadership(target)
            except NotLeader as error:
                await abort_not_leader(context, error, group.group)
            if not started:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                    f"group {group.group}: node {target} is not a voter that "
                                    "can take over")
        deadline = time.monotonic() + TRANSFER_WAIT_SECONDS
        while any(group.status().leader_id != target for group in groups):
            if time.monotonic() > deadline:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                    f"node {target} did not take over within "
                                    f"{TRANSFER_WAIT_SECONDS:.0f} s")
            await asyncio.sleep(0.02)  # polling interval while the transfer completes
        return membership_response(groups)

    async def SetFault(
        self,
        request: admin_pb2.FaultRequest,
        context: grpc.aio.ServicerContext[admin_pb2.FaultRequest, admin_pb2.FaultResponse],
    ) -> admin_pb2.FaultResponse:
        host = await self._require_host(context)
        if request.set_txn_faults:
            # Transaction faults alone: the partition stays as it is.
            if self._txn is None:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                    "this node runs no transaction roles")
            assert self._txn is not None
            try:
                self._txn.arm(frozenset(request.txn_faults))
                if self._group_txn is not None:
                    self._group_txn.arm(frozenset(request.txn_faults))
            except ValueError as error:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            return admin_pb2.FaultResponse(isolated_from=sorted(host.isolated_from()),
                                           txn_faults=sorted(self._txn.faults))
        isolated = frozenset(NodeId(n) for n in request.isolate_from if n != host.node_id)
        host.isolate_from(isolated)
        return admin_pb2.FaultResponse(
            isolated_from=sorted(isolated),
            txn_faults=sorted(self._txn.faults) if self._txn is not None else [])

    async def _tell_chain(self, command: bytes, state: str,
                          context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Propose `command` (retire or admit) to the chain's master through group 0 (the
        path this node's replica takes, which follows a new leader should this one have
        stepped down); made again while its outcome is unknown, which both commands allow.
        Aborts the call, its message opening with `state`, if the master does not take it."""
        if self._chain_master is None:
            return
        deadline = time.monotonic() + CHAIN_NEWS_SECONDS
        while True:
            try:
                async with asyncio.timeout(MASTER_CALL_SECONDS):
                    result = await self._chain_master.submit(command)
                break
            except (EngineError, TimeoutError) as error:
                if time.monotonic() > deadline:
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE,
                        f"{state} the chain's master did not answer within "
                        f"{CHAIN_NEWS_SECONDS:.0f} s: {error or 'no answer'}")
            await asyncio.sleep(0.05)  # polling interval while group 0 finds its leader
        _, outcome = decode_result(result)
        if outcome != "ok":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"{state} the chain's master refused: {outcome}")

    async def _require_host(self, context: grpc.aio.ServicerContext[Any, Any]) -> Host:
        if self._host is None or not self._host.groups:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                "this node runs no consensus engine")
        assert self._host is not None
        return self._host

    async def _chosen(self, request: GroupRequest, context: grpc.aio.ServicerContext[Any, Any]
                      ) -> tuple[HostedGroup, ...]:
        """The group the request names, or every group."""
        host = await self._require_host(context)
        if not request.HasField("group"):
            return host.groups
        if request.group >= len(host.groups):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"group {request.group} does not exist: this cluster has "
                                f"{len(host.groups)} (GROUPS)")
        return (host.groups[request.group],)

    async def _membership_changes(self, group: HostedGroup,
                                  context: grpc.aio.ServicerContext[Any, Any]
                                  ) -> MembershipChanges:
        if not isinstance(group, MembershipChanges):
            await unsupported(context, group, "membership changes")
        return group

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


async def unsupported(context: grpc.aio.ServicerContext[Any, Any], group: HostedGroup,
                      capability: str) -> NoReturn:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                        f"group {group.group}'s engine does not offer {capability}")


def is_member(changes: MembershipChanges, node: NodeId) -> bool:
    members = changes.members()
    return node in members.voters or node in members.learners


def group_status(group: int, status: EngineStatus, members: Members) -> admin_pb2.GroupStatus:
    return admin_pb2.GroupStatus(
        group=group, role=status.role, term=status.term, leader_id=status.leader_id,
        commit_index=status.commit_index, applied_index=status.applied_index,
        voters=sorted(members.voters), learners=sorted(members.learners))


def membership_response(groups: Sequence[HostedGroup]) -> admin_pb2.MembershipResponse:
    rows = [group_status(group.group, group.status(), group.members()) for group in groups]
    first = rows[0]
    return admin_pb2.MembershipResponse(voters=first.voters, learners=first.learners,
                                        leader_id=first.leader_id, groups=rows)


async def abort_not_leader(context: grpc.aio.ServicerContext[Any, Any], error: NotLeader,
                           group: int = 0) -> NoReturn:
    """FAILED_PRECONDITION, with the group and its leader's id and address as trailers."""
    encoded = encode_not_leader(error.leader_id, error.leader_address, group)
    await context.abort(encoded.code, encoded.details, encoded.trailing_metadata)
