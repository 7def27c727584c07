"""Replicated logs for KV tests, and a real gRPC server around the KV service.

`SingleMemberLog` is a complete replicated log for a cluster of one: it orders proposals,
keeps every entry, and applies each to the state machine in order before answering, so a
proposal is answered with the result of its own entry. Read barriers are trivially satisfied
because every committed entry is already applied when its proposal returns.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import grpc

from distlab.apps.kv import KVStateMachine
from distlab.core.ids import NodeId
from distlab.core.replicated_log import NotLeader, OutcomeUnknown, ReplicatedLog
from distlab.core.status import EngineStatus
from distlab.proto import admin_pb2, admin_pb2_grpc, kv_pb2, kv_pb2_grpc
from distlab.runtime.grpc.kv import KVServicer, Shard


class SingleMemberLog:
    def __init__(self, machine: KVStateMachine, node_id: int = 1) -> None:
        self.machine = machine
        self.node_id = NodeId(node_id)
        self.entries: list[bytes] = []
        self.read_barriers = 0
        self._lock = asyncio.Lock()

    async def propose(self, command: bytes) -> bytes:
        async with self._lock:
            self.entries.append(command)
            return self.machine.apply(len(self.entries), command)

    async def read_barrier(self) -> None:
        self.read_barriers += 1
        async with self._lock:
            assert self.machine.applied_index == len(self.entries)

    def status(self) -> EngineStatus:
        index = len(self.entries)
        return EngineStatus("leader", 1, self.node_id, index, index)


class StuckLog:
    """A leader that commits the first `commits` proposals, then loses its quorum: later
    proposals and read barriers wait for ever (until their caller gives up)."""

    def __init__(self, inner: SingleMemberLog, commits: int) -> None:
        self.inner = inner
        self.commits = commits
        self.stuck_proposals = 0

    async def propose(self, command: bytes) -> bytes:
        if self.commits > 0:
            self.commits -= 1
            return await self.inner.propose(command)
        self.stuck_proposals += 1
        await asyncio.Event().wait()
        raise AssertionError("a stuck log never answers")

    async def read_barrier(self) -> None:
        await asyncio.Event().wait()

    def status(self) -> EngineStatus:
        return self.inner.status()


class FollowerLog:
    """A member that is not the leader: refuses everything, naming the leader it knows."""

    def __init__(self, leader_id: int | None, leader_address: str | None) -> None:
        self.leader_id = NodeId(leader_id) if leader_id else None
        self.leader_address = leader_address
        self.calls = 0

    async def propose(self, command: bytes) -> bytes:
        self.calls += 1
        raise NotLeader(self.leader_id, self.leader_address)

    async def read_barrier(self) -> None:
        self.calls += 1
        raise NotLeader(self.leader_id, self.leader_address)

    def status(self) -> EngineStatus:
        return EngineStatus("follower", 1, self.leader_id or NodeId(0), 0, 0)


def operation_of(command: bytes) -> str | None:
    message = kv_pb2.KVCommand()
    message.ParseFromString(command)
    return message.WhichOneof("op")


class LosesLeadershipLog:
    """Commits and applies every proposal, but answers the first `failures` proposals of the
    operations `ops` (any, when None) with OutcomeUnknown, as a leader does when it steps
    down between committing and answering."""

    def __init__(
        self, inner: SingleMemberLog, failures: int, ops: Sequence[str] | None = None
    ) -> None:
        self.inner = inner
        self.failures = failures
        self.ops = ops

    async def propose(self, command: bytes) -> bytes:
        result = await self.inner.propose(command)
        if self.failures > 0 and (self.ops is None or operation_of(command) in self.ops):
            self.failures -= 1
            raise OutcomeUnknown("stepped down before answering")
        return result

    async def read_barrier(self) -> None:
        await self.inner.read_barrier()

    def status(self) -> EngineStatus:
        return self.inner.status()


@asynccontextmanager
async def kv_server(
    log: ReplicatedLog, machine: KVStateMachine, interceptors: Sequence[Any] = ()
) -> AsyncIterator[str]:
    """A gRPC server on a free loopback port serving KV over `log`; yields its address."""
    server = grpc.aio.server(interceptors=list(interceptors))
    kv_pb2_grpc.add_KVServicer_to_server(KVServicer([Shard(log, machine)]), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@contextmanager
def kv_server_thread(machine: KVStateMachine | None = None, log: ReplicatedLog | None = None
                     ) -> Iterator[str]:
    """A KV server (over `log`, by default a single member's) on its own event loop thread,
    for testing code that runs its own loop (the command line)."""
    machine = machine if machine is not None else KVStateMachine()
    served_log = log if log is not None else SingleMemberLog(machine)
    started = threading.Event()
    address: list[str] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with kv_server(served_log, machine) as bound:
            address.append(bound)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10), "the KV server did not start"
    try:
        yield address[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


class GroupedAdmin(admin_pb2_grpc.AdminServicer):
    """Admin.Status of a node hosting groups whose logs are `logs`."""

    def __init__(self, node_id: int, logs: Sequence[ReplicatedLog]) -> None:
        self._node_id = node_id
        self._logs = list(logs)
        self.status_calls = 0

    async def Status(self, request: Any, context: Any) -> admin_pb2.NodeStatus:
        self.status_calls += 1
        groups = [admin_pb2.GroupStatus(group=number, role=status.role, term=status.term,
                                        leader_id=status.leader_id,
                                        commit_index=status.commit_index,
                                        applied_index=status.applied_index)
                  for number, status in enumerate(log.status() for log in self._logs)]
        first = groups[0]
        return admin_pb2.NodeStatus(node_id=self._node_id, role=first.role, term=first.term,
                                    leader_id=first.leader_id, engine="raft",
                                    group_count=len(groups), groups=groups)


@asynccontextmanager
async def grouped_node(node_id: int, logs: Sequence[ReplicatedLog],
                       machines: Sequence[KVStateMachine]
                       ) -> AsyncIterator[tuple[str, GroupedAdmin]]:
    """A node serving KV and Admin.Status over one log per group; yields its address and
    its Admin servicer."""
    server = grpc.aio.server()
    admin = GroupedAdmin(node_id, logs)
    kv_pb2_grpc.add_KVServicer_to_server(
        KVServicer([Shard(log, machine) for log, machine in zip(logs, machines, strict=True)]),
        server)
    admin_pb2_grpc.add_AdminServicer_to_server(admin, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", admin
    finally:
        await server.stop(None)
