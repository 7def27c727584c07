"""Optional capabilities of a replicated group, after hashicorp/raft's small interfaces.

Admin and the operators' tools use these without importing any engine: a group either
offers a capability (membership changes, leadership transfer) or it does not, and an
injected fault applies to a node's whole peer transport, whichever protocols it carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from distlab.core.ids import NodeId


@dataclass(frozen=True, slots=True)
class Members:
    """Who votes and who only follows the log, as of the latest configuration."""

    voters: frozenset[NodeId]
    learners: frozenset[NodeId] = frozenset()


@runtime_checkable
class MembershipChanges(Protocol):
    """Single-server membership changes: add (as a learner, promoted when caught up), remove."""

    def members(self) -> Members: ...

    async def add_member(self, node: NodeId, address: str) -> None:
        """Raises NotLeader, or ValueError when a change is already under way."""
        ...

    async def remove_member(self, node: NodeId) -> None:
        """Raises NotLeader, or ValueError when the change cannot be made now."""
        ...


@runtime_checkable
class LeadershipTransfer(Protocol):
    async def transfer_leadership(self, target: NodeId) -> bool:
        """Ask the leader to hand over to `target`; False when it cannot start now."""
        ...


class FaultInjection(Protocol):
    """An injected network partition: drop every message to and from `peers`."""

    def isolate_from(self, peers: frozenset[NodeId]) -> None: ...

    def isolated_from(self) -> frozenset[NodeId]: ...
