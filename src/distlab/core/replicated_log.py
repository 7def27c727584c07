"""The replicated-log interface that applications run on, whichever consensus engine is behind it.

An application (the KV store) is a `StateMachine`; a node hosts one `ReplicatedLog` that
orders commands, applies them to the state machine on every member in the same order, and
tells each caller the result of its own command. Raft implements it today; Multi-Paxos can
implement the same interface, so the KV store, the checker and the tests run over either.
"""

from __future__ import annotations

from typing import Protocol

from distlab.core.ids import NodeId
from distlab.core.status import EngineStatus


class StateMachine(Protocol):
    """Deterministic: the same commands in the same order give the same state and results."""

    def apply(self, index: int, command: bytes) -> bytes:
        """Apply one committed command and return its result, encoded for the proposer.

        Must not raise for a well-formed command that fails by the application's rules
        (a compare-and-set that does not match): that is a result. A command that cannot be
        decoded is also answered with a result that says so, so one bad entry can never stop
        every replica at the same index.
        """
        ...

    def snapshot(self) -> bytes:
        """The whole state, as of the last applied command."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's."""
        ...


class EngineError(Exception):
    """Base of the errors a replicated log reports to the code that proposed or read."""


class NotLeader(EngineError):
    """Definite: this member is not the leader, so the command was not accepted.

    `leader_id` and `leader_address` name the leader this member knows of, if any.
    """

    def __init__(self, leader_id: NodeId | None, leader_address: str | None) -> None:
        self.leader_id = leader_id
        self.leader_address = leader_address
        where = f"node {leader_id} at {leader_address}" if leader_id else "unknown"
        super().__init__(f"not the leader; leader is {where}")


class OutcomeUnknown(EngineError):
    """Indefinite: the command was accepted but this member lost leadership (or stopped)
    before learning whether it committed. It may have been applied; retry with the same
    request id and let the state machine deduplicate."""


class TimedOut(OutcomeUnknown):
    """Indefinite: no outcome within the log's wait for a proposal (no quorum, say). The
    command may still be applied later."""


class ReplicatedLog(Protocol):
    async def propose(self, command: bytes) -> bytes:
        """Replicate `command`, wait until it is committed and applied locally, and return the
        state machine's result for it. Raises NotLeader (definite) or OutcomeUnknown, which
        is TimedOut when the log gave up waiting."""
        ...

    async def read_barrier(self) -> None:
        """Return once this member's state machine reflects every command committed before
        the call (ReadIndex: the leader confirms it still leads, then waits to apply).
        Reads made right after are linearizable. Raises NotLeader or OutcomeUnknown."""
        ...

    def status(self) -> EngineStatus: ...
