"""Roles: what a follower, a candidate and a leader do with a tick or a message, and what
changes when a member becomes one (etcd-io/raft's tick*, step* and become* functions).

The state every part of the core shares is declared here, once. The parts (election,
replication, read-only, membership) are mixins over it, and `Raft` composes them. Becoming a
role swaps `_tick_role` and `_step_role`, so `Raft.tick` and `Raft.step` never ask which role
they are in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from distlab.core.ids import NO_NODE, NodeId
from distlab.protocols.raft.bugs import PlantedBugs
from distlab.protocols.raft.config import Config, RandomSource
from distlab.protocols.raft.log import RaftLog
from distlab.protocols.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    Membership,
    Message,
    RequestVoteReply,
    Snapshot,
    TimeoutNow,
)
from distlab.protocols.raft.progress import Progress
from distlab.protocols.raft.state import HardState, ReadState, Ready, Role

if TYPE_CHECKING:
    from distlab.protocols.raft.read_only import PendingRead


class RaftRoles:
    # --- identity and configuration
    config: Config
    id: NodeId
    _rng: RandomSource
    _planted: PlantedBugs  # the mistakes `config.planted_bugs` names; none in a real node
    # --- durable state (term and vote) and the log
    term: int
    vote: NodeId
    log: RaftLog
    _snapshot: Snapshot | None  # the latest snapshot, sent to followers that fell behind
    _received_snapshot: Snapshot | None  # installed from a leader, still to persist
    # --- membership: the latest configuration in the log, or the snapshot's
    membership: Membership
    _base_membership: Membership
    _config_index: int
    # --- role
    role: Role
    leader_id: NodeId
    _tick_role: Callable[[], None]
    _step_role: Callable[[Message], None]
    _election_elapsed: int
    _heartbeat_elapsed: int
    _randomized_election_timeout: int
    # --- candidate
    _votes: dict[NodeId, bool]
    # --- leader
    progress: dict[NodeId, Progress]
    _transfer_target: NodeId
    _needs_broadcast: bool
    _read_round: int
    _read_round_requested: bool
    _pending_reads: deque[PendingRead]
    _reads_awaiting_term_commit: list[bytes]
    # --- output, and what the caller has acknowledged
    _messages: list[Message]
    _read_states: list[ReadState]
    _persisted_hard_state: HardState
    _outstanding: Ready | None
    # --- peers' faults, counted
    rejected_messages: int
    last_rejection: str

    if TYPE_CHECKING:
        # What the parts provide each other; each is defined in the part named.

        # election
        def _tick_election(self) -> None: ...
        def _start_election(self, transfer: bool) -> None: ...
        def _handle_vote_reply(self, message: RequestVoteReply) -> None: ...
        def _quorum_recently_active(self) -> bool: ...
        # replication
        def _append_own(self, entries: list[Entry]) -> None: ...
        def _send_append(self, peer: NodeId, send_if_empty: bool) -> bool: ...
        def _handle_append(self, message: AppendEntries) -> None: ...
        def _handle_heartbeat(self, message: Heartbeat) -> None: ...
        def _handle_snapshot(self, message: InstallSnapshot) -> None: ...
        def _handle_append_rejection(
            self, peer: NodeId, progress: Progress, message: AppendEntriesReply
        ) -> None: ...
        def _handle_heartbeat_reply(self, peer: NodeId, progress: Progress) -> None: ...
        def _handle_append_success(
            self, peer: NodeId, progress: Progress, match_index: int
        ) -> None: ...
        def _broadcast_heartbeat(self) -> None: ...
        # read-only
        def _acknowledge_read(self, peer: NodeId, read_round: int) -> None: ...
        def _fail_pending_reads(self) -> None: ...
        def _committed_in_current_term(self) -> bool: ...
        def _register_reads_awaiting_term_commit(self) -> None: ...
        # membership
        def _after_log_write(self, first_written: int) -> None: ...
        def _maybe_promote(self, peer: NodeId, progress: Progress) -> None: ...
        def _apply_membership(self, membership: Membership, index: int) -> None: ...
        def _after_membership_commit(self) -> None: ...

    # ------------------------------------------------------------------ becoming a role

    def _reset(self, term: int) -> None:
        if term != self.term:
            assert term > self.term, "terms never go back"
            self.term = term
            self.vote = NO_NODE
        self.leader_id = NO_NODE
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_election_timeout = self.config.election_ticks + self._rng.randrange(
            0, self.config.election_ticks
        )
        self._votes = {}
        self._transfer_target = NO_NODE
        self._needs_broadcast = False
        self._fail_pending_reads()

    def _become_follower(self, term: int, leader: NodeId) -> None:
        self._reset(term)
        self.leader_id = leader
        self.role = Role.FOLLOWER
        self._tick_role = self._tick_election
        self._step_role = self._step_follower
        self.progress = {}

    def _become_pre_candidate(self) -> None:
        assert self.role is not Role.LEADER
        # Term and vote stay as they are: a pre-campaign is a poll, not an election.
        self._votes = {}
        self.leader_id = NO_NODE
        self.role = Role.PRE_CANDIDATE
        self._tick_role = self._tick_election
        self._step_role = self._step_candidate
        self.progress = {}

    def _become_candidate(self) -> None:
        assert self.role is not Role.LEADER
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE
        self._tick_role = self._tick_election
        self._step_role = self._step_candidate
        self.progress = {}

    def _become_leader(self) -> None:
        assert self.role is Role.CANDIDATE
        assert self.vote == self.id, f"n{self.id} would lead term {self.term} without its own vote"
        self._reset(self.term)
        self.leader_id = self.id
        self.role = Role.LEADER
        self._tick_role = self._tick_leader
        self._step_role = self._step_leader
        next_index = self.log.last_index() + 1
        self.progress = {
            member: Progress(next_index, self.config.max_inflight_appends)
            for member in sorted(self.membership.members | {self.id})
        }
        self.progress[self.id].become_replicate()
        self.progress[self.id].update_match(self.log.last_index())
        # Entries of earlier terms commit only once an entry of this term commits.
        self._append_own([Entry(self.term, next_index, EntryKind.NOOP, b"")])

    def _promotable(self) -> bool:
        return self.id in self.membership.voters

    # ------------------------------------------------------------------ ticks

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self.config.election_ticks:
            self._election_elapsed = 0
            # asked even without check-quorum: it starts the next interval of activity
            quorum_active = self._quorum_recently_active()
            if self.config.check_quorum and not quorum_active:
                self._become_follower(self.term, NO_NODE)
                return
            self._transfer_target = NO_NODE  # a transfer that took a whole timeout failed
        if self._heartbeat_elapsed >= self.config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    # ------------------------------------------------------------------ messages of our term

    def _step_follower(self, message: Message) -> None:
        match message:
            case AppendEntries():
                if self._heard_from_leader(message.sender):
                    self._handle_append(message)
            case Heartbeat():
                if self._heard_from_leader(message.sender):
                    self._handle_heartbeat(message)
            case InstallSnapshot():
                if self._heard_from_leader(message.sender):
                    self._handle_snapshot(message)
            case TimeoutNow():
                self._start_election(transfer=True)
            case _:
                pass  # answers to a candidacy or leadership of ours that is over

    def _step_candidate(self, message: Message) -> None:
        match message:
            case AppendEntries() | Heartbeat() | InstallSnapshot():
                # someone won this term's election
                self._become_follower(message.term, message.sender)
                self._step_follower(message)
            case RequestVoteReply():
                self._handle_vote_reply(message)
            case _:
                pass  # replies to a leadership we no longer hold, or TimeoutNow: moot

    def _step_leader(self, message: Message) -> None:
        match message:
            case AppendEntries() | Heartbeat() | InstallSnapshot():
                # Only a leader sends these, and a term has at most one leader.
                assert message.sender not in self.membership.voters, (
                    f"two leaders in term {self.term}: n{self.id} and n{message.sender}"
                )
                self._reject(f"a leader's message from n{message.sender}, not a voter")
                return
            case AppendEntriesReply() | HeartbeatReply():
                if message.read_round > self._read_round:
                    self._reject(f"n{message.sender} echoes read round {message.read_round}")
                    return
            case InstallSnapshotReply():
                pass
            case _:
                return  # vote replies and TimeoutNow mean nothing to a leader
        progress = self.progress.get(message.sender)
        if progress is None:
            return  # not a member (any more)
        progress.recent_active = True
        match message:
            case AppendEntriesReply():
                self._acknowledge_read(message.sender, message.read_round)
                if message.success:
                    self._handle_append_success(message.sender, progress, message.match_index)
                else:
                    self._handle_append_rejection(message.sender, progress, message)
            case HeartbeatReply():
                self._acknowledge_read(message.sender, message.read_round)
                self._handle_heartbeat_reply(message.sender, progress)
            case InstallSnapshotReply():
                self._handle_append_success(message.sender, progress, message.match_index)

    def _heard_from_leader(self, leader: NodeId) -> bool:
        """Notes who leads our term; False means the message must be dropped."""
        known = self.leader_id
        if known != leader and known != NO_NODE:
            voters = self.membership.voters
            assert known not in voters or leader not in voters, (
                f"two leaders in term {self.term}: n{known} and n{leader}"
            )
            self._reject(f"n{leader} claims term {self.term}, led by n{known}")
            return False
        self._election_elapsed = 0
        self.leader_id = leader
        return True

    # ------------------------------------------------------------------ plumbing

    def _peers(self) -> list[NodeId]:
        return [member for member in self.progress if member != self.id]

    def _hard_state(self) -> HardState:
        vote = self.vote
        if self._planted.vote_not_persisted and vote != self.id:
            vote = NO_NODE  # planted: a vote for another node never reaches stable storage
        return HardState(self.term, vote, self.log.committed)

    def _send(self, message: Message) -> None:
        self._messages.append(message)

    def _reject(self, reason: str) -> None:
        self.rejected_messages += 1
        self.last_rejection = reason

    def _require_no_outstanding_ready(self) -> None:
        if self._outstanding is not None:
            raise RuntimeError("the last Ready has not been acknowledged with advance()")
