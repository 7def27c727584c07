"""A client of the Admin service's group changes: membership and leadership transfer.

Each change goes to the leader of its group, found as the KV client finds it (the one
`LeaderDirectory`): from every member's Status first, then by following NOT_LEADER hints, so
a leader the caller was not told of (a member added since) is reached all the same. Only a
refusal that names a leader, or a member that could not be connected to at all, is retried
elsewhere; any other failure is the answer, since a change that reached a leader may have
been made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

import grpc

from distlab.client._kv import never_sent
from distlab.client._leaders import LeaderDirectory
from distlab.core.ids import NodeId
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.wire.channels import open_channel
from distlab.wire.not_leader import decode_not_leader
from distlab.wire.status import group_count

STATUS_DEADLINE_SECONDS = 1.0
# A change waits for its log entry to commit, a transfer for the new leader to take over.
CHANGE_DEADLINE_SECONDS = 15.0
# How long to look for a group's leader (an election may be under way).
LEADER_SEARCH_SECONDS = 15.0
INITIAL_BACKOFF_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 0.5

Call = Callable[["admin_pb2_grpc.AdminAsyncStub", float],
                Awaitable[admin_pb2.MembershipResponse]]


class AdminError(Exception):
    """A change failed: the leader refused it, its outcome is unknown, or no leader answered.
    The message is one line saying which."""


class AdminClient:
    """Group changes sent to each group's leader; `cluster` as for `KVClient`."""

    def __init__(self, cluster: Mapping[NodeId, object] | Mapping[int, object]
                 | Sequence[object], *, search_seconds: float = LEADER_SEARCH_SECONDS,
                 call_timeout: float = CHANGE_DEADLINE_SECONDS) -> None:
        self._directory = LeaderDirectory(cluster)
        self.search_seconds = search_seconds
        self.call_timeout = call_timeout
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close(grace=None)

    def leader_of(self, group: int) -> str:
        """The member the next change of `group` goes to first."""
        return self._directory.leader_of(group)

    def node_at(self, address: str) -> NodeId | None:
        """The id of the member at `address`, when the client knows it."""
        return next((NodeId(node) for node, known in self._directory.members.items()
                     if known == address), None)

    async def group_count(self) -> int:
        """How many groups the cluster has, from every member's Status (asked at once), which
        also tells the client who leads each group. Raises AdminError when nobody answers."""
        addresses = list(self._directory.addresses)
        answers = await asyncio.gather(*(self._status(address) for address in addresses))
        counts = []
        for address, status in zip(addresses, answers, strict=True):
            if status is not None:
                self._directory.learn_from(address, status)
                counts.append(group_count(status))
        if not counts:
            raise AdminError(f"no member answers ({', '.join(addresses)})")
        return max(counts)

    async def add_member(self, group: int, node: NodeId, address: str
                         ) -> admin_pb2.MembershipResponse:
        request = admin_pb2.AddMemberRequest(node_id=node, address=address, group=group)
        return await self._on_leader(group, lambda stub, t: stub.AddMember(request, timeout=t))

    async def remove_member(self, group: int, node: NodeId) -> admin_pb2.MembershipResponse:
        request = admin_pb2.RemoveMemberRequest(node_id=node, group=group)
        return await self._on_leader(group,
                                     lambda stub, t: stub.RemoveMember(request, timeout=t))

    async def transfer_leader(self, group: int, node: NodeId) -> admin_pb2.MembershipResponse:
        request = admin_pb2.TransferLeaderRequest(node_id=node, group=group)
        return await self._on_leader(group,
                                     lambda stub, t: stub.TransferLeader(request, timeout=t))

    async def _on_leader(self, group: int, call: Call) -> admin_pb2.MembershipResponse:
        """`call` on the leader of `group`, wherever it turns out to be."""
        directory = self._directory
        clock = asyncio.get_running_loop()
        deadline = clock.time() + self.search_seconds
        address = directory.leader_of(group)
        backoff = INITIAL_BACKOFF_SECONDS
        failures_in_a_row = 0
        last_error = "no member was asked"
        while True:
            try:
                response = await call(self._stub(address), self.call_timeout)
            except grpc.aio.AioRpcError as error:
                hint = decode_not_leader(error)
                if hint is None and not never_sent(error):
                    raise AdminError(f"{address} answered {error.code().name}: "
                                     f"{error.details()}") from None
                last_error = f"{address} answered {error.code().name}: {error.details()}"
                hinted = directory.follow(hint) if hint is not None else None
            else:
                directory.answered(group, address)
                return response
            if clock.time() > deadline:
                raise AdminError(f"no leader of group {group} answered within "
                                 f"{self.search_seconds:g} s; last: {last_error}")
            # A hint is followed at once; a chain of stale hints counts as failures all the
            # same, so members pointing at each other during an election are not hammered.
            if hinted is not None and hinted != address:
                address = hinted
            else:
                address = directory.next_after(address)
            failures_in_a_row += 1
            if failures_in_a_row >= len(directory.addresses):
                # Every member failed in turn: likely an election; give it time.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                failures_in_a_row = 0

    async def _status(self, address: str) -> admin_pb2.NodeStatus | None:
        try:
            status: admin_pb2.NodeStatus = await self._stub(address).Status(
                admin_pb2.StatusRequest(), timeout=STATUS_DEADLINE_SECONDS)
        except grpc.aio.AioRpcError:
            return None
        return status

    def _stub(self, address: str) -> admin_pb2_grpc.AdminAsyncStub:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = open_channel(address)
        return admin_pb2_grpc.AdminStub(channel)
