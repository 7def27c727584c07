"""What the core reports: durable state, roles, status, and the Ready batch."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from distlab.core.ids import NO_NODE, NodeId
from distlab.protocols.raft.messages import Entry, Message, Snapshot


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on stable storage before any message that depends on it is sent."""

    term: int = 0
    vote: NodeId = NO_NODE
    commit: int = 0


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class ReadState:
    """The outcome of a ReadIndex request.

    When `ok`, the read is linearizable once the state machine has applied `index`.
    When not, leadership was lost before the read was confirmed: retry elsewhere.
    """

    context: bytes
    index: int
    ok: bool = True


@dataclass(frozen=True, slots=True)
class Status:
    node_id: NodeId
    role: Role
    term: int
    leader_id: NodeId
    commit_index: int
    applied_index: int
    last_index: int
    snapshot_index: int
    voters: frozenset[NodeId]
    learners: frozenset[NodeId]


@dataclass(frozen=True, slots=True)
class Ready:
    """Everything the caller must do, in this order, before calling `advance()`.

    1. Persist `snapshot` (if any): it replaces the state machine and the log up to its index.
    2. Persist `entries`: they REPLACE the stored log from `entries[0].index` on (any stored
       entry at or after that index is discarded first).
    3. Persist `hard_state` (if any).
    4. Send `messages`.
    5. Apply `committed_entries` in order, then serve `read_states` once applied.
    """

    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    messages: tuple[Message, ...]
    committed_entries: tuple[Entry, ...]
    read_states: tuple[ReadState, ...]

    @property
    def must_sync(self) -> bool:
        """Whether anything has to reach stable storage before messages go out."""
        return self.hard_state is not None or bool(self.entries) or self.snapshot is not None
