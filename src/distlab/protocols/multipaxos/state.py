"""What the core reports: roles, proposals, read states, status, and the Ready batch."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos.messages import (
    Accepted,
    Ballot,
    Decision,
    Entry,
    Message,
    Snapshot,
)


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"  # its probe asks whether a majority would promise
    CANDIDATE = "candidate"  # its scout runs phase 1
    LEADER = "leader"  # phase 1 done: its commanders run phase 2


@dataclass(frozen=True, slots=True)
class Proposal:
    """Where a proposed command sits: it succeeded only if this slot decides it with this
    origin (`term` is the ballot it was proposed under, as one integer)."""

    index: int
    term: int


@dataclass(frozen=True, slots=True)
class ReadState:
    """The outcome of a read barrier: when `ok`, reads are linearizable once `index` is
    applied; when not, leadership was lost before the ballot was confirmed."""

    context: bytes
    index: int
    ok: bool = True


@dataclass(frozen=True, slots=True)
class Status:
    node_id: NodeId
    role: Role
    ballot: Ballot
    promised: Ballot
    leader_id: NodeId
    commit_index: int
    applied_index: int
    next_slot: int
    log_start: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Everything the caller must do, in this order, before calling `advance()`.

    1. Persist `snapshot` (if any): it replaces the state machine and every slot up to its
       index.
    2. Persist `promised` (if any), `accepted` and `decided`, and fsync. Nothing that depends
       on them leaves before: promises and acceptances answer for what is durable.
    3. Send `messages` (`sends_before_persist` names those that may go before step 2).
    4. Apply `committed_entries` in order, then serve `read_states` once applied.
    """

    promised: Ballot | None
    accepted: tuple[Accepted, ...]
    decided: tuple[Decision, ...]
    snapshot: Snapshot | None
    messages: tuple[Message, ...]
    committed_entries: tuple[Entry, ...]
    read_states: tuple[ReadState, ...]

    @property
    def must_sync(self) -> bool:
        """Whether anything has to reach stable storage before replies go out."""
        return (self.promised is not None or bool(self.accepted) or bool(self.decided)
                or self.snapshot is not None)
