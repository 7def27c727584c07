"""The state one member holds in all three roles, and what the roles share.

`MultiPaxos` composes one part per role (Paxos Made Moderately Complex): `acceptor.py`
(promises and acceptances, durable before they are answered), `leader.py` (the scout's
phase 1, the commanders' phase 2, backoff, the read barrier) and `replica.py` (decisions,
catch-up, freeing slots, snapshots). Each part is a mixin over the state declared here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from distlab.core.ids import NodeId
from distlab.core.quorum import majority
from distlab.protocols.multipaxos.bugs import PlantedBugs
from distlab.protocols.multipaxos.config import Config, RandomSource
from distlab.protocols.multipaxos.messages import (
    Accepted,
    Ballot,
    Decision,
    Message,
    Promise,
    Snapshot,
    Value,
)
from distlab.protocols.multipaxos.state import ReadState, Ready, Role


@dataclass(slots=True)
class PendingRead:
    context: bytes
    index: int  # reads see every slot up to it once it is applied
    round: int  # the confirmation round that answers it


class MemberState:
    """Declares the state the role mixins share; `MultiPaxos.__init__` fills it in."""

    config: Config
    id: NodeId
    voters: frozenset[NodeId]
    peers: tuple[NodeId, ...]
    quorum: int
    _rng: RandomSource
    _planted: PlantedBugs

    # --- acceptor: durable
    promised: Ballot
    accepted: dict[int, Accepted]
    _persisted_promised: Ballot
    _unstable_accepted: dict[int, Accepted]

    # --- replica
    decided: dict[int, Value]
    _unstable_decided: list[Decision]
    commit_index: int  # every slot up to it is decided here
    applied: int
    log_start: int  # slots up to it are decided and dropped (snapshot or Min)
    _snapshot: Snapshot | None
    _received_snapshot: Snapshot | None
    forget_through: int  # the Min this member last heard: every member applied that far
    _catchup_elapsed: int
    _catchup_wanted: int  # the slot up to which a peer said it has decisions we lack

    # --- leader
    role: Role
    ballot: Ballot  # the ballot this member leads or tries to lead (or last did)
    leader_id: NodeId
    _election_elapsed: int
    _election_timeout: int
    _heartbeat_elapsed: int
    _promises: dict[NodeId, Promise]
    _probe_ballot: Ballot
    _probe_yes: set[NodeId]
    _scout_first_slot: int
    leader_start: int
    next_slot: int
    adopted_through: int  # the last slot phase 1 adopted (re-proposed or filled)
    proposals: dict[int, Value]
    _acceptances: dict[int, set[NodeId]]
    _sent_through: int
    _recent: set[NodeId]
    _quorum_elapsed: int
    peer_applied: dict[NodeId, int]
    _read_round: int
    _read_round_requested: bool
    _read_acks: dict[NodeId, int]
    _pending_reads: deque[PendingRead]

    # --- output
    _messages: list[Message]
    _after_persist: list[Message]  # to itself, stepped once the Ready is durable
    _read_states: list[ReadState]
    _outstanding: Ready | None
    rejected_messages: int
    last_rejection: str

    # ------------------------------------------------------------------ shared helpers

    @staticmethod
    def quorum_of(size: int) -> int:
        return majority(size)

    def _accept(self, triple: Accepted) -> None:
        """Our acceptor accepts `triple`; it is answered for once the Ready persists it."""
        self.accepted[triple.slot] = triple
        self._unstable_accepted[triple.slot] = triple

    def _send(self, message: Message) -> None:
        self._messages.append(message)

    def _reject(self, problem: str) -> None:
        self.rejected_messages += 1
        self.last_rejection = problem

    def _randomized_timeout(self) -> int:
        ticks = self.config.election_ticks
        return ticks + self._rng.randrange(0, ticks)

    def _in_lease(self) -> bool:
        """Whether a live leader was heard from lately: prepares from others are ignored, so
        a member cut off for a while (or deaf) cannot depose a working leader."""
        if self.role is Role.LEADER:
            return True
        return bool(self.leader_id) and self._election_elapsed < self.config.election_ticks

    # --- what the role mixins implement for one another: declared for the type checker only,
    # so that a method missing from every mixin is an AttributeError, never a silent stub
    if TYPE_CHECKING:
        def _step_down(self, higher: Ballot | None, *, backoff: bool) -> None: ...

        def _decide(self, slot: int, value: Value) -> None: ...

        def _learn_from_leader(self, sender: NodeId, ballot: Ballot, commit_index: int,
                               leader_start: int) -> None: ...

        def _forget(self, through: int) -> None: ...

        def _catch_up_from(self, peer: NodeId, upto: int) -> None: ...

        def _heard_from_leader(self, ballot: Ballot) -> None: ...

        def _require_no_outstanding_ready(self) -> None: ...
