"""The Multi-Paxos core: a sans-I/O state machine driven by ticks, messages and requests.

Shape (as the Raft core): `step()` validates a peer message, then hands it to the role that
handles it; `tick()` runs the current role's timers. Outputs accumulate until the caller
takes them with `ready()`, persists, sends, applies, and acknowledges with `advance()`;
between the two the core takes no input. What a member says to itself (its own promise, its
own acceptances) is stepped at `advance()`, once the Ready that holds them is durable.

`MultiPaxos` offers `distlab.core.consensus.ConsensusCore`, so the generic driver hosts it
as it hosts Raft.
"""

from __future__ import annotations

from collections import deque

from distlab.core.ids import NO_NODE, NodeId
from distlab.core.status import EngineStatus
from distlab.protocols.multipaxos.acceptor import Acceptor
from distlab.protocols.multipaxos.bugs import PlantedBugs
from distlab.protocols.multipaxos.config import Config, RandomSource
from distlab.protocols.multipaxos.leader import Leadership
from distlab.protocols.multipaxos.messages import (
    ZERO_BALLOT,
    Accept,
    AcceptedReply,
    CatchUp,
    Commit,
    CommitReply,
    Decisions,
    Entry,
    InstallSnapshot,
    Message,
    Prepare,
    Promise,
    Snapshot,
)
from distlab.protocols.multipaxos.replica import Replica
from distlab.protocols.multipaxos.state import Ready, Role, Status
from distlab.protocols.multipaxos.storage import Storage
from distlab.protocols.multipaxos.validate import problem_with

# What may leave before the Ready carrying it is durable: a leader's phase 2 and heartbeats
# (its ballot was durable before its prepares left; its own acceptances count only after
# `advance()`), and catch-up traffic, which answers for facts, not for promises. Promises
# and acceptances wait for the disk.
_SENT_BEFORE_PERSIST = frozenset({Accept, Commit, CatchUp, Decisions, InstallSnapshot})


class MultiPaxos(Acceptor, Leadership, Replica):
    def __init__(self, config: Config, storage: Storage, rng: RandomSource) -> None:
        self.config = config
        self.id = config.node_id
        self.voters = config.voters
        self.peers = tuple(sorted(node for node in config.voters if node != config.node_id))
        self.quorum = self.quorum_of(len(config.voters))
        self._rng = rng
        self._planted = PlantedBugs.from_names(config.planted_bugs)
        self.promised = storage.promised()
        self._persisted_promised = self.promised
        snapshot = storage.snapshot()
        self._snapshot = snapshot
        self._received_snapshot = None
        self.log_start = snapshot.meta.last_index if snapshot is not None else 0
        self.accepted = {triple.slot: triple for triple in storage.accepted()
                         if triple.slot > self.log_start}
        self._unstable_accepted = {}
        self.decided = {decision.slot: decision.value for decision in storage.decided()
                        if decision.slot > self.log_start}
        self._unstable_decided = []
        self.commit_index = self.log_start
        while self.commit_index + 1 in self.decided:
            self.commit_index += 1
        self.applied = self.log_start
        self.forget_through = self.log_start
        self._catchup_elapsed = 0
        self._catchup_wanted = 0
        self.role = Role.FOLLOWER
        self.ballot = ZERO_BALLOT
        self.leader_id = NO_NODE
        self._election_elapsed = 0
        self._election_timeout = self._randomized_timeout()
        self._heartbeat_elapsed = 0
        self._promises = {}
        self._probe_ballot = ZERO_BALLOT
        self._probe_yes = set()
        self._scout_first_slot = 1
        self.leader_start = 1
        self.next_slot = 1
        self.adopted_through = 0
        self.proposals = {}
        self._acceptances = {}
        self._sent_through = 0
        self._recent = set()
        self._quorum_elapsed = 0
        self.peer_applied = {}
        self._read_round = 0
        self._read_round_requested = False
        self._read_acks = {}
        self._pending_reads = deque()
        self._messages = []
        self._after_persist = []
        self._stepping_after_persist: list[Message] = []
        self._read_states = []
        self._outstanding = None
        self.rejected_messages = 0
        self.last_rejection = ""

    # ------------------------------------------------------------------ inputs

    def tick(self) -> None:
        """One logical clock tick."""
        self._require_no_outstanding_ready()
        self._tick_replica()
        if self.role is Role.LEADER:
            self._tick_leader()
        elif self.role is Role.CANDIDATE:
            self._tick_candidate()
        elif self.role is Role.PRE_CANDIDATE:
            self._tick_pre_candidate()
        else:
            self._tick_follower()

    def step(self, message: Message) -> None:
        """Handles one message from a peer. Bad messages are counted, never raised."""
        self._require_no_outstanding_ready()
        problem = problem_with(message, self.id, self.voters)
        if problem is not None:
            self._reject(problem)
            return
        self._dispatch(message)

    def _dispatch(self, message: Message) -> None:
        match message:
            case Prepare():
                self._on_prepare(message)
            case Promise():
                self._on_promise(message)
            case Accept():
                self._on_accept(message)
            case AcceptedReply():
                self._on_accepted(message)
            case Commit():
                self._on_commit(message)
            case CommitReply():
                self._on_commit_reply(message)
            case CatchUp():
                self._on_catch_up(message)
            case Decisions():
                self._on_decisions(message)
            case InstallSnapshot():
                self._on_install_snapshot(message)

    def campaign(self) -> None:
        """Try to lead now, as an election timeout would (Admin, and the lab's tests)."""
        self._require_no_outstanding_ready()
        if self.role is not Role.LEADER:
            self._campaign()

    def report_unreachable(self, peer: NodeId) -> None:
        """Nothing to stop: a leader resends what a peer misses at its next heartbeat."""

    def report_snapshot(self, peer: NodeId, succeeded: bool) -> None:
        """A peer that missed a snapshot asks again with its next CatchUp."""

    # ------------------------------------------------------------------ outputs

    def has_ready(self) -> bool:
        """Whether `ready()` has anything to hand out. A query: it changes nothing."""
        return bool(
            self._messages
            or self._after_persist
            or self._read_states
            or self._unstable_accepted
            or self._unstable_decided
            or self._received_snapshot is not None
            or self.promised != self._persisted_promised
            or self.commit_index > self.applied
            or (self.role is Role.LEADER and (self._read_round_requested
                                               or self._window_end() > self._sent_through))
        )

    def ready(self) -> Ready:
        """What to persist, send and apply now; acknowledge with `advance()`."""
        self._require_no_outstanding_ready()
        self._flush_accepts()
        self._flush_read_round()
        assert self.promised >= self._persisted_promised, (
            f"promise went back from {self._persisted_promised.describe()} to "
            f"{self.promised.describe()}")
        committed = []
        slot = self.applied + 1
        last = min(self.commit_index, self.applied + self.config.max_committed_per_ready)
        while slot <= last:
            value = self.decided[slot]
            committed.append(Entry(slot, value.origin.as_int(), value.command))
            slot += 1
        ready = Ready(
            promised=self.promised if self.promised != self._persisted_promised else None,
            accepted=tuple(self._unstable_accepted[s] for s in sorted(self._unstable_accepted)),
            decided=tuple(self._unstable_decided),
            snapshot=self._received_snapshot,
            messages=tuple(self._messages),
            committed_entries=tuple(committed),
            read_states=tuple(self._read_states),
        )
        self._messages.clear()
        self._read_states.clear()
        self._unstable_accepted = {}
        self._unstable_decided = []
        self._stepping_after_persist, self._after_persist = self._after_persist, []
        self._outstanding = ready
        return ready

    def advance(self) -> None:
        """The caller has persisted, sent and applied the last Ready."""
        ready = self._outstanding
        if ready is None:
            raise RuntimeError("advance() without a ready() to acknowledge")
        self._outstanding = None
        if ready.promised is not None:
            self._persisted_promised = ready.promised
        if ready.snapshot is not None and ready.snapshot is self._received_snapshot:
            self._received_snapshot = None
        if ready.committed_entries:
            applied = ready.committed_entries[-1].index
            assert applied > self.applied, f"applied index went back to {applied}"
            self.applied = applied
        local, self._stepping_after_persist = self._stepping_after_persist, []
        for message in local:
            self._dispatch(message)

    def _require_no_outstanding_ready(self) -> None:
        if self._outstanding is not None:
            raise RuntimeError("a Ready is outstanding: call advance() first")

    def status(self) -> Status:
        return Status(
            node_id=self.id, role=self.role, ballot=self.ballot, promised=self.promised,
            leader_id=self.leader_id, commit_index=self.commit_index, applied_index=self.applied,
            next_slot=self.next_slot, log_start=self.log_start)

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest snapshot this member holds (taken here or installed)."""
        return self._snapshot

    # ------------------------------------------------------------------ for a driver

    def engine_status(self) -> EngineStatus:
        leading = self.role is Role.LEADER or self.role is Role.CANDIDATE
        ballot = self.ballot if leading else self.promised
        return EngineStatus(role=self.role.value, term=ballot.round, leader_id=self.leader_id,
                            commit_index=self.commit_index, applied_index=self.applied)

    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def known_committed(self) -> int:
        """The highest slot up to which every slot is known decided."""
        return self.commit_index

    def last_log_index(self) -> int:
        """The highest slot this member proposes in, or knows decided."""
        return max(self.next_slot - 1 if self.role is Role.LEADER else 0, self.commit_index)

    def snapshot_index(self) -> int:
        return self._snapshot.meta.last_index if self._snapshot is not None else 0

    def sends_before_persist(self, message: Message) -> bool:
        return type(message) in _SENT_BEFORE_PERSIST
