"""The Raft core: a sans-I/O state machine driven by ticks, messages and requests.

Shape (after etcd-io/raft): `step()` handles terms once, then hands the message to the
function of the current role; becoming another role swaps the tick and step functions
(`roles.py`). Outputs accumulate until the caller takes them with `ready()`, persists, sends,
applies, and acknowledges with `advance()`. Between `ready()` and `advance()` the core takes
no input.

`Raft` composes one part per idea, each a mixin over the state `RaftRoles` declares:
`election.py` (pre-vote, votes, campaign, check-quorum, leadership transfer),
`replication.py` (proposals, appends, the commit rule, snapshots to followers),
`read_only.py` (ReadIndex) and `membership.py` (single-server changes, learners, promotion).
"""

from __future__ import annotations

from collections import deque

from distlab.core.ids import NO_NODE, NodeId
from distlab.core.status import EngineStatus
from distlab.protocols.raft.bugs import PlantedBugs
from distlab.protocols.raft.config import Config, RandomSource
from distlab.protocols.raft.election import Election
from distlab.protocols.raft.log import RaftLog
from distlab.protocols.raft.membership import MembershipChanges
from distlab.protocols.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    Heartbeat,
    InstallSnapshot,
    Membership,
    Message,
    RequestVote,
    RequestVoteReply,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
)
from distlab.protocols.raft.read_only import ReadOnly
from distlab.protocols.raft.replication import Replication
from distlab.protocols.raft.state import Ready, Role, Status
from distlab.protocols.raft.storage import Storage
from distlab.protocols.raft.validate import problem_with

# What a leader sends about its own log: nothing in them depends on what the Ready carrying
# them persists. The leader counts its own copy of a new entry towards a commit, but no reply
# can be counted with it before `advance()`, which comes after the persist; so these may leave
# before the fsync and the followers' disks work while the leader's does (as in etcd). Votes
# and replies acknowledge persisted state: they wait for it.
_SENT_BEFORE_PERSIST = frozenset({AppendEntries, Heartbeat, InstallSnapshot, TimeoutNow})


class Raft(Election, Replication, ReadOnly, MembershipChanges):
    def __init__(self, config: Config, storage: Storage, rng: RandomSource) -> None:
        self.config = config
        self.id = config.node_id
        self._rng = rng
        self._planted = PlantedBugs.from_names(config.planted_bugs)
        hard_state = storage.hard_state()
        snapshot = storage.snapshot()
        if snapshot is not None:
            self._base_membership = snapshot.meta.membership
            self.log = RaftLog(
                snapshot.meta.last_index,
                snapshot.meta.last_term,
                storage.entries(),
                hard_state.commit,
            )
        else:
            self._base_membership = Membership(config.voters)
            self.log = RaftLog(0, 0, storage.entries(), hard_state.commit)
        self._snapshot = snapshot
        self._received_snapshot = None
        self.term = hard_state.term
        self.vote = hard_state.vote
        self.membership = self._base_membership
        self._config_index = self.log.snapshot_index
        self._refresh_membership()
        self.role = Role.FOLLOWER
        self.leader_id = NO_NODE
        self.progress = {}
        self._votes = {}
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_election_timeout = config.election_ticks
        self._transfer_target = NO_NODE
        self._needs_broadcast = False
        self._commit_notices = set()
        self._read_round = 0
        self._read_round_requested = False
        self._pending_reads = deque()
        self._reads_awaiting_term_commit = []
        self._messages = []
        self._read_states = []
        self._persisted_hard_state = hard_state
        self._outstanding = None
        self.rejected_messages = 0
        self.last_rejection = ""
        self._become_follower(self.term, NO_NODE)

    # ------------------------------------------------------------------ inputs

    def tick(self) -> None:
        """One logical clock tick."""
        self._require_no_outstanding_ready()
        self._tick_role()

    def step(self, message: Message) -> None:
        """Handles one message from a peer. Bad messages are counted, never raised."""
        self._require_no_outstanding_ready()
        problem = problem_with(message, self.id)
        if problem is not None:
            self._reject(problem)
            return
        if message.term > self.term:
            if not self._accept_higher_term(message):
                return
        elif message.term < self.term:
            if self._planted.stale_vote_count and isinstance(message, RequestVoteReply):
                self._step_role(message)  # planted: counted as if it answered this term
                return
            self._answer_stale(message)
            return
        if isinstance(message, RequestVote):
            self._handle_vote_request(message)  # any role answers votes in its term
        else:
            self._step_role(message)

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Replaces the log up to `index` (already applied) by the state machine's `data`.

        The caller persists the returned snapshot (storage keeps the entries after it).
        """
        self._require_no_outstanding_ready()
        if not self.log.snapshot_index < index <= self.log.applied:
            raise ValueError(
                f"can compact only applied entries after the snapshot: "
                f"{self.log.snapshot_index} < {index} <= {self.log.applied}"
            )
        term = self.log.term_at(index)
        assert term is not None
        membership = self._membership_at(index)
        snapshot = Snapshot(SnapshotMeta(index, term, membership), data)
        self.log.compact(index)
        self._base_membership = membership
        self._snapshot = snapshot
        return snapshot

    # ------------------------------------------------------------------ outputs

    def has_ready(self) -> bool:
        """Whether `ready()` has anything to hand out. A query: it changes nothing."""
        log = self.log
        persisted = self._persisted_hard_state
        # The hard state is compared field by field: building one costs more than the rest.
        return bool(
            self._messages
            or self._read_states
            or self._received_snapshot is not None
            or log.unstable_from <= log.last_index()
            or log.committed > log.applied
            or log.committed != persisted.commit
            or self.term != persisted.term
            or (self.vote != persisted.vote and self._hard_state().vote != persisted.vote)
            or self._flush_would_send()
        )

    def ready(self) -> Ready:
        """What to persist, send and apply now; acknowledge with `advance()`."""
        self._require_no_outstanding_ready()
        self._flush()
        hard_state = self._hard_state()
        assert hard_state.commit >= self._persisted_hard_state.commit, (
            f"commit index went back from {self._persisted_hard_state.commit} "
            f"to {hard_state.commit}"
        )
        ready = Ready(
            hard_state=hard_state if hard_state != self._persisted_hard_state else None,
            entries=tuple(self.log.unstable_entries()),
            snapshot=self._received_snapshot,
            messages=tuple(self._messages),
            committed_entries=tuple(
                self.log.next_committed(self.config.max_committed_per_ready)
            ),
            read_states=tuple(self._read_states),
        )
        self._messages.clear()
        self._read_states.clear()
        self._outstanding = ready
        return ready

    def advance(self) -> None:
        """The caller has persisted, sent and applied the last Ready."""
        ready = self._outstanding
        if ready is None:
            raise RuntimeError("advance() without a ready() to acknowledge")
        self._outstanding = None
        if ready.hard_state is not None:
            self._persisted_hard_state = ready.hard_state
        if ready.snapshot is not None and ready.snapshot is self._received_snapshot:
            self._received_snapshot = None
        if ready.entries:
            self.log.stable_to(ready.entries[-1].index)
        if ready.committed_entries:
            self.log.applied_to(ready.committed_entries[-1].index)

    def status(self) -> Status:
        return Status(
            node_id=self.id,
            role=self.role,
            term=self.term,
            leader_id=self.leader_id,
            commit_index=self.log.committed,
            applied_index=self.log.applied,
            last_index=self.log.last_index(),
            snapshot_index=self.log.snapshot_index,
            voters=self.membership.voters,
            learners=self.membership.learners,
        )

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest snapshot this node holds (taken locally or installed)."""
        return self._snapshot

    # ------------------------------------------------------------------ for a driver

    def engine_status(self) -> EngineStatus:
        """Role, term, leader and indexes; built from fields, cheap enough for every batch."""
        log = self.log
        return EngineStatus(
            role=self.role.value,
            term=self.term,
            leader_id=self.leader_id,
            commit_index=log.committed,
            applied_index=log.applied,
        )

    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def last_log_index(self) -> int:
        return self.log.last_index()

    def known_committed(self) -> int:
        return self.log.committed

    def snapshot_index(self) -> int:
        """The last index the latest snapshot covers (0 with none)."""
        return self.log.snapshot_index

    def sends_before_persist(self, message: Message) -> bool:
        """Whether `message`, from the current Ready, may be sent before the Ready persists."""
        if type(message) in _SENT_BEFORE_PERSIST:
            return True
        # planted: an acknowledgement of entries that may not be durable yet
        return (
            self._planted.ack_before_persist
            and isinstance(message, AppendEntriesReply)
            and message.success
        )

    def leader_progress(self) -> dict[NodeId, tuple[int, bool]]:
        """For a leader, each peer's (match index, recently active); empty otherwise.

        Recently active: the peer has answered since the start of the leader's current
        election timeout (the check-quorum interval), so it is alive and its match is current.
        """
        if self.role is not Role.LEADER:
            return {}
        return {
            peer: (progress.match, progress.recent_active)
            for peer, progress in self.progress.items()
            if peer != self.id
        }

    # ------------------------------------------------------------------ terms

    def _accept_higher_term(self, message: Message) -> bool:
        """Moves to a higher term if the message warrants it; False means ignore it."""
        if isinstance(message, RequestVote):
            if self._in_lease() and not message.transfer:
                # A leader was heard from recently: a candidate with a higher term is most
                # likely a node that was cut off, and must not depose a working leader.
                return False
            if message.pre_vote:
                return True  # a pre-vote never changes our term
        if isinstance(message, RequestVoteReply) and message.pre_vote and message.granted:
            return True  # a granted pre-vote carries the term we would campaign in
        if isinstance(message, AppendEntries | Heartbeat | InstallSnapshot):
            self._become_follower(message.term, message.sender)
        else:
            self._become_follower(message.term, NO_NODE)
        return True

    def _answer_stale(self, message: Message) -> None:
        """Tells a node still living in an older term about ours, where that helps."""
        if isinstance(message, AppendEntries | Heartbeat) and (
            self.config.check_quorum or self.config.pre_vote
        ):
            # With check-quorum or pre-vote a node that moved to a higher term during a
            # partition may never disrupt the old leader by votes; this reply makes the old
            # leader step down so the cluster can elect someone at the higher term.
            self._send(AppendEntriesReply(self.term, self.id, message.sender, success=False))
        elif isinstance(message, RequestVote) and message.pre_vote:
            self._send(
                RequestVoteReply(self.term, self.id, message.sender, granted=False, pre_vote=True)
            )

    def _flush(self) -> None:
        """Sends what waited for the Ready: a ReadIndex round, new entries, commit notices.

        A requested read round always sends (heartbeats to the peers; with none, the read is
        confirmed at once), so `has_ready` can tell without flushing.
        """
        if self.role is not Role.LEADER:
            return
        self._flush_read_round()
        self._flush_appends()

    def _flush_would_send(self) -> bool:
        return self.role is Role.LEADER and (
            self._read_round_requested or self._appends_to_flush()
        )
