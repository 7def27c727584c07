"""The nemesis: applies one fault at a time to a cluster, and heals it.

The faults themselves are the fault injector's (distlab.ops.faults): kills and pauses need
control of the members (the processes of a cluster the tester started, or the containers of
a compose project); partitions go through every node's Admin.SetFault. Every fault is healed
before the next one starts, and `heal_all` undoes whatever may be left (a paused process, a
partition) at the end.

A transaction crash (`txn-crash`) arms one node, through Admin.SetFault, to crash at a
dangerous moment of the commit protocol; the node dies when a transaction next reaches it.
While armed the node is watched, so the heal knows how long it has been down; before
restarting it the heal asks the other nodes which transactions they hold unfinished, which
is what shows 2PC blocking on a crashed coordinator (the bank checker's outages).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from random import Random

from distlab.check import Outage
from distlab.check.tester.report import FaultRecord
from distlab.check.tester.schedule import (
    TXN_PARTITION_FAULT,
    Partition,
    choose_partition,
    choose_txn_crash,
    is_kill,
    is_partition,
    is_pause,
    is_txn_crash,
    is_txn_partition,
    targets_leader,
)
from distlab.client import TxnClient
from distlab.core.ids import NodeId
from distlab.ops.faults import FaultError, FaultInjector, NodeControl, describe_all
from distlab.ops.status import ClusterTimeout, collect_status, leadership, wait_for_leader
from distlab.wire.addresses import Address

# Partitions are set, and healed, with a few attempts: a node that is restarting or briefly
# overloaded must not keep its partition for the rest of the run.
ISOLATION_ATTEMPTS = 10
# How often an armed node is asked whether it still answers (to time its outage).
WATCH_INTERVAL_SECONDS = 0.1
WATCH_DEADLINE_SECONDS = 0.5


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
    # A transaction crash: the watch of the armed node, and when it stopped answering.
    watch: asyncio.Task[None] | None = None
    down_since: float | None = None


class Nemesis:
    """Faults on the members in `addresses`; `control` is given when the tester can stop and
    start the members (needed for kill and pause)."""

    def __init__(self, addresses: Mapping[NodeId, Address], rng: Random,
                 control: NodeControl | None = None) -> None:
        self._addresses = dict(addresses)
        self._rng = rng
        self._injector = FaultInjector(addresses, control)
        self._killed: set[NodeId] = set()
        self._paused: set[NodeId] = set()
        self.outages: list[Outage] = []

    @property
    def nodes(self) -> list[NodeId]:
        return sorted(self._addresses)

    async def close(self) -> None:
        await self._injector.close()

    # ---- looking at the cluster ----

    def _reachable(self) -> dict[NodeId, Address]:
        """The members that can answer: neither killed nor paused by this nemesis."""
        return {node: address for node, address in self._addresses.items()
                if node not in self._killed and node not in self._paused}

    async def leader(self) -> NodeId | None:
        """The leader of group 0 (the one the `-leader` faults aim at), among the members
        that answer; None when there is none."""
        current = leadership(await collect_status(self._reachable()))
        return current.leaders.get(0)

    async def wait_for_leader(self, timeout: float) -> dict[int, NodeId] | None:
        """Group -> leader once every group has one; None when `timeout` passes first."""
        try:
            return await wait_for_leader(self._reachable(), timeout)
        except ClusterTimeout:
            return None

    # ---- faults ----

    def check_supported(self, fault: str) -> None:
        if (is_kill(fault) or is_pause(fault) or is_txn_crash(fault)) and \
                self._injector.control is None:
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
        if is_txn_crash(fault):
            return await self._arm_txn_crash(fault)
        if is_txn_partition(fault):
            return await self._arm_txn_partition(fault)
        target = leader if targets_leader(fault) and leader is not None else \
            self._rng.choice(self.nodes)
        role = "leader " if target == leader else ""
        start_ns = time.monotonic_ns()
        if is_kill(fault):
            await self._injector.kill(target)
            self._killed.add(target)
            return ActiveFault(fault, "kill", f"kill {role}node {target}", (target,), start_ns)
        if is_pause(fault):
            await self._injector.pause(target)
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
            for node in active.targets:
                await self._injector.resume(node)
                self._paused.discard(node)
        elif active.kind == "partition":
            active.errors.extend(await self._heal_partitions())
        elif active.kind == "txn-crash":
            active.description += await self._heal_txn_crash(active)
        elif active.kind == "txn-partition":
            active.description += await self._heal_txn_partition(active)
        return FaultRecord(active.fault, active.kind, active.description,
                           tuple(int(node) for node in active.targets), active.start_ns,
                           time.monotonic_ns(), tuple(active.errors))

    async def heal_all(self) -> list[str]:
        """Whatever state the run left: resume paused nodes, restart killed ones, and
        clear every node's partition. Returns the problems met."""
        errors = []
        for node in sorted(self._paused):
            await self._injector.resume(node)
        self._paused.clear()
        for node in sorted(self._killed):
            error = await self._restart(node)
            if error:
                errors.append(error)
        if self._injector.partitioned:
            errors.extend(await self._heal_partitions())
        return errors

    async def _partition(self, fault: str, leader: NodeId | None) -> ActiveFault:
        partition = choose_partition(fault, self.nodes, self._rng, leader)
        start_ns = time.monotonic_ns()
        isolation = partition.isolation(self.nodes)
        outcomes = await self._injector.isolate(isolation, attempts=ISOLATION_ATTEMPTS)
        errors = describe_all(outcomes)[1]
        targets = tuple(node for node in self.nodes if isolation[node])
        description = f"partition {partition.shape}: {partition.description}"
        if partition.shape.endswith("leader") and leader is not None:
            description += f" (leader {leader})"
        return ActiveFault(fault, "partition", description, targets, start_ns, partition,
                           errors)

    async def _arm_txn_crash(self, fault: str) -> ActiveFault:
        target = self._rng.choice(self.nodes)
        name = choose_txn_crash(fault, self._rng)
        start_ns = time.monotonic_ns()
        active = ActiveFault(fault, "txn-crash", f"arm node {target} with {name}", (target,),
                             start_ns)
        try:
            await self._injector.arm_txn_faults(target, {name})
        except FaultError as error:
            active.errors.append(str(error))
            return active
        active.watch = asyncio.create_task(self._watch(target, active))
        return active

    async def _arm_txn_partition(self, fault: str) -> ActiveFault:
        target = self._rng.choice(self.nodes)
        active = ActiveFault(fault, "txn-partition",
                             f"arm node {target} with {TXN_PARTITION_FAULT}", (target,),
                             time.monotonic_ns())
        try:
            await self._injector.arm_txn_faults(target, {TXN_PARTITION_FAULT})
        except FaultError as error:
            active.errors.append(str(error))
        return active

    async def _heal_txn_partition(self, active: ActiveFault) -> str:
        """Disarm the node (if it never voted yes meanwhile) and reconnect every node."""
        try:
            await self._injector.arm_txn_faults(active.targets[0], set())
        except FaultError as error:
            active.errors.append(str(error))
        active.errors.extend(await self._heal_partitions())
        return " (disarmed; every node reconnected)"

    async def _watch(self, node: NodeId, active: ActiveFault) -> None:
        """Note when the armed node stops answering (it crashed)."""
        members = {node: self._addresses[node]}
        while True:
            report = (await collect_status(members, WATCH_DEADLINE_SECONDS))[0]
            if report.health == "down":
                active.down_since = time.monotonic()
                self._killed.add(node)  # heal_all restarts it, whatever happens
                return
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)

    async def _heal_txn_crash(self, active: ActiveFault) -> str:
        """Disarm the node if it still runs; otherwise list what the others hold
        unfinished, then restart it. Returns what to add to the fault's description."""
        node = active.targets[0]
        if active.watch is not None:
            active.watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await active.watch
        if active.errors:
            return ""  # it was never armed
        try:
            await self._injector.arm_txn_faults(node, set())
        except FaultError:
            # It crashed (just now, if the watch had not seen it yet).
            active.down_since = active.down_since or time.monotonic()
            self._killed.add(node)
        else:
            # Still running (a watch that saw no answer met a slow node, not a dead one).
            self._killed.discard(node)
            return " (it did not crash; disarmed)"
        assert active.down_since is not None
        down_seconds = time.monotonic() - active.down_since
        others = {n: str(a) for n, a in self._addresses.items()
                  if n != node and n not in self._killed and n not in self._paused}
        client = TxnClient(others)
        try:
            unfinished = tuple({"node": int(status.node), **txn}
                               for status in await client.status()
                               for txn in status.transactions)
        finally:
            await client.close()
        self.outages.append(Outage(int(node), down_seconds, unfinished, time.monotonic_ns()))
        error = await self._restart(node)
        if error:
            active.errors.append(error)
        return (f" (crashed; down {down_seconds:.1f} s, {len(unfinished)} transaction"
                f"{'s' if len(unfinished) != 1 else ''} unfinished elsewhere; restarted)")

    async def _heal_partitions(self) -> list[str]:
        """Reconnect every node; the problems met (nodes that never answered)."""
        outcomes = await self._injector.heal_partitions(attempts=ISOLATION_ATTEMPTS)
        return describe_all(outcomes)[1]

    async def _restart(self, node: NodeId) -> str | None:
        error = await self._injector.restart(node)
        if error is None:
            self._killed.discard(node)
        return error
