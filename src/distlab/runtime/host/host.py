"""A node as a host of protocol instances: its consensus groups (and, later, chain and
transaction roles), with what they share: the address book, the WAL's fsyncs, the peer
transport and its injected faults, and leadership balancing across groups.

Admin and the KV service see groups only through the replicated-log interface and the
optional capabilities of `core.capabilities`, never through an engine's own types.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from distlab.core.capabilities import Members
from distlab.core.ids import NodeId
from distlab.core.replicated_log import ReplicatedLog
from distlab.runtime.host.balancer import BalancedGroup, LeaderBalancer
from distlab.runtime.host.machine import AddressBook

log = logging.getLogger(__name__)


class HostedGroup(ReplicatedLog, Protocol):
    """What the host needs of a consensus group, whichever its engine; groups that can hand
    their leadership over (`BalancedGroup`) are also balanced across the nodes."""

    group: int

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def members(self) -> Members: ...

    def voters(self) -> frozenset[NodeId]: ...


class Partitionable(Protocol):
    """A peer transport that drops every message to and from `isolated_from`."""

    isolated_from: frozenset[NodeId]


class Host:
    """Implements `FaultInjection` for every protocol the node carries."""

    def __init__(self, node_id: NodeId, engine: str, groups: Sequence[HostedGroup],
                 addresses: AddressBook, transport: Partitionable) -> None:
        self.node_id = node_id
        self.engine = engine
        self.groups = tuple(groups)
        self.addresses = addresses
        self._transport = transport
        self._balancer = LeaderBalancer(
            node_id, [group for group in self.groups if isinstance(group, BalancedGroup)])

    def start(self) -> None:
        for group in self.groups:
            group.start()
        self._balancer.start()

    async def stop(self) -> None:
        await self._balancer.stop()
        await asyncio.gather(*(group.stop() for group in self.groups))

    def isolate_from(self, peers: frozenset[NodeId]) -> None:
        """Drop every protocol's traffic to and from `peers` (an injected partition)."""
        self._transport.isolated_from = peers
        log.warning("node %d now isolated from %s", self.node_id, sorted(peers) or "nobody")

    def isolated_from(self) -> frozenset[NodeId]:
        return self._transport.isolated_from
