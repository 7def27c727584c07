"""The fault injector: what the tester's nemesis and `distlab chaos` both use to break a
cluster and heal it.

Partitions go through every node's Admin.SetFault, which replaces the set of peers the node
drops peer traffic to and from, so they work on any cluster whose nodes answer Admin. Kills,
pauses and restarts need control of the members: the processes of a local cluster
(`LocalProcesses`) or the containers of a compose project (`ComposeContainers`, which also
acts on any compose service and cuts containers off their networks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Protocol, TypeVar

import grpc

from distlab.core.ids import NodeId
from distlab.ops import docker
from distlab.ops.local_cluster import ClusterStartError, LocalCluster, wait_serving
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.wire.addresses import Address
from distlab.wire.channels import open_channel

ADMIN_TIMEOUT_SECONDS = 1.0
RESTART_TIMEOUT_SECONDS = 30.0
ISOLATION_RETRY_SECONDS = 0.2

T = TypeVar("T")


class FaultError(RuntimeError):
    """A fault that could not be applied; the message says which and why, in one line."""


class NodeControl(Protocol):
    """Stops, resumes and restarts member processes, wherever they run."""

    async def kill(self, node: NodeId) -> None: ...

    async def pause(self, node: NodeId) -> None: ...

    async def resume(self, node: NodeId) -> None: ...

    async def restart(self, node: NodeId) -> str | None:
        """Start a killed node again and wait until it serves; the problem, if any."""
        ...


class LocalProcesses:
    """The node processes of a `LocalCluster`: signals, and restarts from the same plan."""

    def __init__(self, cluster: LocalCluster) -> None:
        self._cluster = cluster

    async def kill(self, node: NodeId) -> None:
        await self._cluster.stop_node(node, signal.SIGKILL)

    async def pause(self, node: NodeId) -> None:
        self._signal(node, signal.SIGSTOP)

    async def resume(self, node: NodeId) -> None:
        self._signal(node, signal.SIGCONT)

    def _signal(self, node: NodeId, sig: int) -> None:
        process = self._cluster.nodes[node].process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)

    async def restart(self, node: NodeId) -> str | None:
        try:
            await self._cluster.start_node(node)
            await self._cluster.wait_serving(node, RESTART_TIMEOUT_SECONDS)
        except ClusterStartError as error:
            return f"restarting node {node}: {error}"
        self._cluster.write_description()
        return None


PAST_TENSE = {"kill": "killed", "stop": "stopped", "start": "started", "pause": "paused",
              "unpause": "unpaused", "restart": "restarted"}


class ComposeContainers:
    """The containers of a compose project (inferred when only one runs the service): node N
    is service `node<N>`, reached at `addresses[N]` once it serves again."""

    def __init__(self, project: str | None,
                 addresses: Mapping[NodeId, Address | str] | None = None) -> None:
        self._project = project
        self._addresses = dict(addresses or {})

    async def _docker(self, what: str, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except (docker.DockerError, LookupError) as error:
            raise FaultError(f"{what}: {error}") from error

    async def operate(self, operation: str, service: str) -> str:
        """`docker kill|stop|start|pause|unpause|restart` on the service's container; returns
        what was done, e.g. "killed node2 (distlab-node2-1)"."""
        def run() -> str:
            container = docker.find_service(service, self._project)
            docker.container_operation(operation, container)
            return container.name

        name = await self._docker(f"{operation} {service}", run)
        return f"{PAST_TENSE[operation]} {service} ({name})"

    async def isolate(self, service: str) -> str:
        """Disconnect the service's container from every network (until `reconnect_all`)."""
        def run() -> str:
            container = docker.find_service(service, self._project)
            networks = docker.isolate(container)
            return (f"isolated {service} ({container.name}) from "
                    f"{', '.join(networks) or 'no network'}")

        return await self._docker(f"isolate {service}", run)

    async def reconnect_all(self) -> str:
        """Reconnect every container of the project to the project's networks."""
        def run() -> str:
            try:
                containers = docker.compose_containers(self._project)
            except docker.DockerError as error:
                return f"no containers to reconnect ({error})"
            projects = sorted({container.project for container in containers})
            if not projects:
                return "no compose containers to reconnect"
            if len(projects) > 1:
                raise LookupError(f"several compose projects run ({', '.join(projects)}): "
                                  "choose one with --project to reconnect its containers")
            networks = docker.project_networks(projects[0])
            reconnected = sorted(container.service for container in containers
                                 if docker.reconnect(container, networks))
            return (f"reconnected {', '.join(reconnected)}" if reconnected
                    else "no container was disconnected")

        return await self._docker("reconnecting containers", run)

    async def kill(self, node: NodeId) -> None:
        await self.operate("kill", f"node{node}")

    async def pause(self, node: NodeId) -> None:
        await self.operate("pause", f"node{node}")

    async def resume(self, node: NodeId) -> None:
        await self.operate("unpause", f"node{node}")

    async def restart(self, node: NodeId) -> str | None:
        try:
            await self.operate("start", f"node{node}")
        except FaultError as error:
            return str(error)
        address = self._addresses.get(node)
        if address is None:
            return None
        problem = await wait_serving(address, RESTART_TIMEOUT_SECONDS)
        return f"node{node} {problem}" if problem is not None else None


@dataclass(frozen=True, slots=True)
class IsolationOutcome:
    """What one node answered to SetFault: the peers it now drops, or why it did not answer."""

    node: NodeId
    isolated_from: tuple[NodeId, ...] = ()
    error: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"node {self.node}: SetFault failed: {self.error}"
        if self.isolated_from:
            return (f"node {self.node} now drops traffic to and from "
                    f"{[int(peer) for peer in self.isolated_from]}")
        return f"node {self.node} reaches every peer"


class FaultInjector:
    """Faults on the members in `addresses`; `control` is given when the caller can stop and
    start the members (needed for kill, pause and restart)."""

    def __init__(self, addresses: Mapping[NodeId, Address | str],
                 control: NodeControl | None = None) -> None:
        self._addresses = dict(addresses)
        self.control = control
        self._channels = {node: open_channel(address) for node, address in addresses.items()}
        self._partitioned = False

    @property
    def nodes(self) -> list[NodeId]:
        return sorted(self._addresses)

    @property
    def partitioned(self) -> bool:
        """Whether the last isolation asked of the nodes cut any link."""
        return self._partitioned

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(grace=None)

    # ---- partitions

    async def isolate(self, isolation: Mapping[NodeId, AbstractSet[NodeId]], *,
                      attempts: int = 1, deadline_seconds: float = ADMIN_TIMEOUT_SECONDS
                      ) -> list[IsolationOutcome]:
        """Tell each node of `isolation` whom to drop (an empty set reconnects it), all at
        once, retrying nodes that do not answer up to `attempts` times in all."""
        assert attempts >= 1
        self._partitioned = any(isolation.values())
        pending = {node: frozenset(peers) - {node} for node, peers in isolation.items()}
        outcomes: dict[NodeId, IsolationOutcome] = {}
        for attempt in range(attempts):
            answers = await asyncio.gather(*(self._set_fault(node, peers, deadline_seconds)
                                             for node, peers in pending.items()))
            for outcome in answers:
                outcomes[outcome.node] = outcome
                if outcome.error is None:
                    del pending[outcome.node]
            if not pending:
                break
            if attempt + 1 < attempts:
                await asyncio.sleep(ISOLATION_RETRY_SECONDS)
        return [outcomes[node] for node in sorted(outcomes)]

    async def heal_partitions(self, *, attempts: int = 1,
                              deadline_seconds: float = ADMIN_TIMEOUT_SECONDS
                              ) -> list[IsolationOutcome]:
        """Every node reaches every peer again."""
        return await self.isolate({node: frozenset() for node in self.nodes},
                                  attempts=attempts, deadline_seconds=deadline_seconds)

    async def _set_fault(self, node: NodeId, peers: frozenset[NodeId], deadline_seconds: float
                         ) -> IsolationOutcome:
        channel = self._channels.get(node)
        if channel is None:
            return IsolationOutcome(node, error="not a member of this cluster")
        request = admin_pb2.FaultRequest(isolate_from=sorted(peers))
        try:
            reply = await admin_pb2_grpc.AdminStub(channel).SetFault(
                request, timeout=deadline_seconds)
        except grpc.aio.AioRpcError as error:
            return IsolationOutcome(node, error=f"{error.code().name}: {error.details()}")
        return IsolationOutcome(node, tuple(NodeId(peer) for peer in sorted(reply.isolated_from)))

    # ---- transactions

    async def arm_txn_faults(self, node: NodeId, faults: AbstractSet[str], *,
                             deadline_seconds: float = ADMIN_TIMEOUT_SECONDS) -> list[str]:
        """Arm `node` with transaction faults by name (replacing those armed before; an
        empty set disarms it): a crash at a moment of the protocol, or a no vote. Returns
        what the node now has armed; raises FaultError if it refuses or does not answer."""
        channel = self._channels.get(node)
        if channel is None:
            raise FaultError(f"node {node} is not a member of this cluster")
        request = admin_pb2.FaultRequest(txn_faults=sorted(faults), set_txn_faults=True)
        try:
            reply = await admin_pb2_grpc.AdminStub(channel).SetFault(
                request, timeout=deadline_seconds)
        except grpc.aio.AioRpcError as error:
            raise FaultError(f"node {node}: {error.code().name}: {error.details()}") from None
        return list(reply.txn_faults)

    # ---- processes

    def _control(self, fault: str) -> NodeControl:
        if self.control is None:
            raise FaultError(f"{fault} needs control of the node processes or containers")
        return self.control

    async def kill(self, node: NodeId) -> None:
        await self._control("kill").kill(node)

    async def pause(self, node: NodeId) -> None:
        await self._control("pause").pause(node)

    async def resume(self, node: NodeId) -> None:
        await self._control("resume").resume(node)

    async def restart(self, node: NodeId) -> str | None:
        return await self._control("restart").restart(node)


def describe_all(outcomes: Sequence[IsolationOutcome]) -> tuple[list[str], list[str]]:
    """(lines for the nodes that applied it, lines for those that did not)."""
    return ([outcome.describe() for outcome in outcomes if outcome.error is None],
            [outcome.describe() for outcome in outcomes if outcome.error is not None])

