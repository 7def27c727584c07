"""The nemesis: applies one fault at a time to a cluster, and heals it.

Kills and pauses need control of the members: the processes of a cluster the tester started
(`LocalProcesses`) or the containers of a compose project (`ComposeContainers`); partitions
go through every node's Admin.SetFault, so they work on any cluster whose nodes answer Admin.
Every fault is healed before the next one starts, and
`heal_all` undoes whatever may be left (a paused process, a partition) at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Protocol

import grpc

from distlab.check.tester.report import FaultRecord
from distlab.check.tester.schedule import (
    Partition,
    choose_partition,
    is_kill,
    is_partition,
    is_pause,
    targets_leader,
)
from distlab.core.ids import NodeId
from distlab.proto import admin_pb2, admin_pb2_grpc
from distlab.runtime.config import Address
from distlab.runtime.docker import DockerError, container_operation, find_service
from distlab.runtime.health import is_serving
from distlab.runtime.local_cluster import ClusterStartError, LocalCluster
from distlab.wire.channels import open_channel

ADMIN_TIMEOUT_SECONDS = 1.0
RESTART_TIMEOUT_SECONDS = 30.0
HEAL_ATTEMPTS = 10
HEAL_RETRY_SECONDS = 0.2


class NemesisError(RuntimeError):
    """A fault that cannot be applied to this cluster (for instance a kill without the
    node processes)."""


@dataclass(slots=True)
class ActiveFault:
    fault: str
    kind: str
    description: str
    targets: tuple[NodeId, ...]
    start_ns: int
    partition: Partition | None = None
    errors: list[str] = field(default_factory=list)


class NodeControl(Protocol):
    """Stops, resumes and restarts member processes, wherever they run."""

    async def kill(self, node: NodeId) -> None: ...

    async def pause(self, node: NodeId) -> None: ...

    async def resume(self, node: NodeId) -> None: ...

    async def restart(self, node: NodeId) -> str | None:
        """Start a killed node again and wait until it serves; the problem, if any."""
        ...


class LocalProcesses:
    """The node processes of a `LocalCluster` the tester started: signals and restarts."""

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


class ComposeContainers:
    """The `node<N>` containers of a compose project: docker kill, pause, unpause, start."""

    def __init__(self, addresses: Mapping[NodeId, Address], project: str | None) -> None:
        self._addresses = dict(addresses)
        self._project = project

    async def _operate(self, operation: str, node: NodeId) -> None:
        def run() -> None:
            container_operation(operation, find_service(f"node{node}", self._project))

        try:
            await asyncio.to_thread(run)
        except (DockerError, LookupError) as error:
            raise NemesisError(f"docker {operation} node{node}: {error}") from error

    async def kill(self, node: NodeId) -> None:
        await self._operate("kill", node)

    async def pause(self, node: NodeId) -> None:
        await self._operate("pause", node)

    async def resume(self, node: NodeId) -> None:
        await self._operate("unpause", node)

    async def restart(self, node: NodeId) -> str | None:
        try:
            await self._operate("start", node)
        except NemesisError as error:
            return str(error)
        channel = open_channel(self._addresses[node])
        try:
            deadline = time.monotonic() + RESTART_TIMEOUT_SECONDS
            while not await is_serving(channel, deadline_seconds=0.5):
                if time.monotonic() > deadline:
                    return f"node{node} did not serve within {RESTART_TIMEOUT_SECONDS:.0f} s"
                await asyncio.sleep(0.1)  # polling interval while the container starts
        finally:
            await channel.close()
        return None


class Nemesis:
    """Faults on the members in `addresses`; `control` is given when the tester can stop and
    start the members (needed for kill and pause)."""

    def __init__(self, addresses: Mapping[NodeId, Address], rng: Random,
                 control: NodeControl | None = None) -> None:
        self._addresses = dict(addresses)
        self._rng = rng
        self._control = control
        self._channels = {node: open_channel(address) for node, address in addresses.items()}
        self._killed: set[NodeId] = set()
        self._paused: set[NodeId] = set()
        self._partitioned = False

    @property
    def nodes(self) -> list[NodeId]:
        return sorted(self._addresses)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(grace=None)

    # ---- looking at the cluster ----

    async def status(self, node: NodeId) -> admin_pb2.NodeStatus | None:
        stub = admin_pb2_grpc.AdminStub(self._channels[node])
        try:
            return await stub.Status(admin_pb2.StatusRequest(), timeout=ADMIN_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError:
            return None

    async def leader(self) -> NodeId | None:
        """The node that says it leads in the highest term, among those that answer."""
        candidates = [node for node in self.nodes
                      if node not in self._killed and node not in self._paused]
        statuses = await asyncio.gather(*(self.status(node) for node in candidates))
        leaders = [(status.term, node) for node, status in zip(candidates, statuses, strict=True)
                   if status is not None and status.role == "leader"]
        return max(leaders)[1] if leaders else None

    async def wait_for_leader(self, timeout: float) -> NodeId | None:
        deadline = time.monotonic() + timeout
        while True:
            leader = await self.leader()
            if leader is not None or time.monotonic() >= deadline:
                return leader
            await asyncio.sleep(0.1)  # polling interval while an election runs

    # ---- faults ----

    def check_supported(self, fault: str) -> None:
        if (is_kill(fault) or is_pause(fault)) and self._control is None:
            raise NemesisError(f"{fault} needs the node processes: it works on a cluster "
                               "the tester starts, not on one given with --cluster")
        if is_partition(fault) and len(self._addresses) < 2:
            raise NemesisError(f"{fault} needs at least two nodes")

    async def start(self, fault: str) -> ActiveFault:
        """Apply `fault` and return what was done; the caller heals it with `heal`."""
        self.check_supported(fault)
        leader = await self.leader()
        if is_partition(fault):
            return await self._partition(fault, leader)
        target = leader if targets_leader(fault) and leader is not None else \
            self._rng.choice(self.nodes)
        role = "leader " if target == leader else ""
        start_ns = time.monotonic_ns()
        assert self._control is not None
        if is_kill(fault):
            await self._control.kill(target)
            self._killed.add(target)
            return ActiveFault(fault, "kill", f"kill {role}node {target}", (target,), start_ns)
        if is_pause(fault):
            await self._control.pause(target)
            self._paused.add(target)
            return ActiveFault(fault, "pause", f"pause {role}node {target}", (target,),
                               start_ns)
        raise NemesisError(f"unknown fault {fault!r}")

    async def heal(self, active: ActiveFault) -> FaultRecord:
        """Undo `active`: restart the killed node, resume the paused one, or reconnect."""
        if active.kind == "kill":
            for node in active.targets:
                error = await self._restart(node)
                if error:
                    active.errors.append(error)
        elif active.kind == "pause":
            assert self._control is not None
            for node in active.targets:
                await self._control.resume(node)
                self._paused.discard(node)
        elif active.kind == "partition":
            active.errors.extend(await self._set_isolation({}))
        return FaultRecord(active.fault, active.kind, active.description,
                           tuple(int(node) for node in active.targets), active.start_ns,
                           time.monotonic_ns(), tuple(active.errors))

    async def heal_all(self) -> list[str]:
        """Whatever state the run left: resume paused nodes, restart killed ones, and
        clear every node's partition. Returns the problems met."""
        errors = []
        for node in sorted(self._paused):
            assert self._control is not None
            await self._control.resume(node)
        self._paused.clear()
        for node in sorted(self._killed):
            error = await self._restart(node)
            if error:
                errors.append(error)
        if self._partitioned:
            errors.extend(await self._set_isolation({}))
        return errors

    async def _partition(self, fault: str, leader: NodeId | None) -> ActiveFault:
        partition = choose_partition(fault, self.nodes, self._rng, leader)
        start_ns = time.monotonic_ns()
        isolation = partition.isolation(self.nodes)
        errors = await self._set_isolation(isolation)
        targets = tuple(node for node in self.nodes if isolation[node])
        description = f"partition {partition.shape}: {partition.description}"
        if partition.shape.endswith("leader") and leader is not None:
            description += f" (leader {leader})"
        return ActiveFault(fault, "partition", description, targets, start_ns, partition,
                           errors)

    async def _set_isolation(self, isolation: Mapping[NodeId, frozenset[NodeId]]
                             ) -> list[str]:
        """Tell every node whom to drop (an empty mapping heals), retrying nodes that do
        not answer for a short while; returns the nodes that never did."""
        self._partitioned = any(isolation.values())
        pending = {node: isolation.get(node, frozenset()) for node in self.nodes}
        last_error: dict[NodeId, str] = {}
        for attempt in range(HEAL_ATTEMPTS):
            results = await asyncio.gather(*(self._set_fault(node, peers)
                                             for node, peers in pending.items()))
            for (node, _), error in zip(list(pending.items()), results, strict=True):
                if error is None:
                    del pending[node]
                else:
                    last_error[node] = error
            if not pending:
                return []
            if attempt + 1 < HEAL_ATTEMPTS:
                await asyncio.sleep(HEAL_RETRY_SECONDS)
        return [f"node {node}: SetFault failed: {last_error[node]}" for node in pending]

    async def _set_fault(self, node: NodeId, peers: frozenset[NodeId]) -> str | None:
        stub = admin_pb2_grpc.AdminStub(self._channels[node])
        request = admin_pb2.FaultRequest(isolate_from=sorted(peers))
        try:
            await stub.SetFault(request, timeout=ADMIN_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name}: {error.details()}"
        return None

    async def _restart(self, node: NodeId) -> str | None:
        assert self._control is not None
        error = await self._control.restart(node)
        if error is None:
            self._killed.discard(node)
        return error
