"""The Raft core: a sans-I/O state machine driven by ticks, messages and requests.

Shape (after etcd-io/raft): `step()` handles terms once, then hands the message to the
function of the current role; becoming another role swaps the tick and step functions.
Outputs accumulate until the caller takes them with `ready()`, persists, sends, applies, and
acknowledges with `advance()`. Between `ready()` and `advance()` the core takes no input.

Membership changes are single-server changes (Raft dissertation, section 4.1), not joint
consensus: each change adds or removes one voter, so any majority of the old configuration
overlaps any majority of the new one and no intermediate joint configuration is needed. That
keeps the quorum arithmetic and the recovery path (a configuration is simply the latest one in
the log) small. A configuration takes effect as soon as it is in a member's log, committed or
not; to stay safe the leader proposes a change only once it has committed an entry of its own
term and the previous change is committed (the fix Ongaro described for single-server changes
across leader changes). New members join as learners, which receive the log but neither vote
nor count towards quorums; the leader promotes a learner to voter once its log has caught up
with the commit index. A leader that removes itself steps down once the change commits.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from distlab.core.ids import NO_NODE, NodeId
from distlab.core.quorum import has_quorum, majority, quorum_index
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
    RequestVote,
    RequestVoteReply,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
)
from distlab.protocols.raft.progress import Progress, ProgressState
from distlab.protocols.raft.state import HardState, ReadState, Ready, Role, Status
from distlab.protocols.raft.storage import Storage
from distlab.protocols.raft.validate import problem_with

# A snapshot's delivery is presumed lost after this many heartbeat replies without its ack.
_SNAPSHOT_RETRY_HEARTBEATS = 4


@dataclass(frozen=True, slots=True)
class Proposal:
    """Where an accepted proposal sits in the log; it is committed only if that entry is."""

    index: int
    term: int


@dataclass(slots=True)
class _PendingRead:
    context: bytes
    index: int
    round: int


class Raft:
    def __init__(self, config: Config, storage: Storage, rng: RandomSource) -> None:
        self.config = config
        self.id = config.node_id
        self._rng = rng
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
        self._snapshot = snapshot  # the latest snapshot, sent to followers that fell behind
        self._received_snapshot: Snapshot | None = None  # to persist and restore
        self.term = hard_state.term
        self.vote = hard_state.vote
        self.membership = self._base_membership
        self._config_index = self.log.snapshot_index
        self._refresh_membership()
        self.role = Role.FOLLOWER
        self.leader_id = NO_NODE
        self.progress: dict[NodeId, Progress] = {}
        self._votes: dict[NodeId, bool] = {}
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_election_timeout = config.election_ticks
        self._transfer_target = NO_NODE
        self._needs_broadcast = False
        # Followers owed a notice of the commit index; sent when the Ready is built, unless an
        # append built for the same Ready carries it (see `_propagate_commit`).
        self._commit_notices: set[NodeId] = set()
        self._read_round = 0
        self._read_round_requested = False
        self._pending_reads: deque[_PendingRead] = deque()
        self._reads_awaiting_term_commit: list[bytes] = []
        self._messages: list[Message] = []
        self._read_states: list[ReadState] = []
        self._persisted_hard_state = hard_state
        self._outstanding: Ready | None = None
        self.rejected_messages = 0
        self.last_rejection = ""
        self._become_follower(self.term, NO_NODE)

    # ------------------------------------------------------------------ inputs

    def tick(self) -> None:
        """One logical clock tick."""
        self._require_no_outstanding_ready()
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

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
            self._answer_stale(message)
            return
        if isinstance(message, RequestVote):
            self._handle_vote_request(message)
        elif self.role is Role.LEADER:
            self._step_leader(message)
        elif self.role is Role.FOLLOWER:
            self._step_follower(message)
        else:
            self._step_candidate(message)

    def propose(self, data: bytes) -> Proposal | None:
        """Appends a command if this node leads; None means "ask the leader"."""
        proposals = self.propose_batch([data])
        return proposals[0] if proposals else None

    def propose_batch(self, commands: list[bytes]) -> list[Proposal]:
        """Appends many commands at once; they travel to followers in as few messages as fit."""
        self._require_no_outstanding_ready()
        if not self._accepts_proposals():
            return []
        first = self.log.last_index() + 1
        entries = [
            Entry(self.term, first + offset, EntryKind.NORMAL, data)
            for offset, data in enumerate(commands)
        ]
        self._append_own(entries)
        return [Proposal(entry.index, entry.term) for entry in entries]

    def campaign(self) -> None:
        """Starts an election now (as if the election timeout had fired)."""
        self._require_no_outstanding_ready()
        if self.role is not Role.LEADER:
            self._start_election(transfer=False)

    def transfer_leadership(self, target: NodeId) -> bool:
        """Hands leadership to `target` once its log is up to date (TimeoutNow)."""
        self._require_no_outstanding_ready()
        if self.role is not Role.LEADER or target == self.id:
            return False
        if target not in self.membership.voters:
            return False
        self._transfer_target = target
        self._election_elapsed = 0  # the transfer is abandoned after one election timeout
        if self.progress[target].match == self.log.last_index():
            self._send(TimeoutNow(self.term, self.id, target))
        else:
            self._send_append(target, send_if_empty=True)
        return True

    def read_index(self, context: bytes) -> bool:
        """Starts a linearizable read; its ReadState appears in a later Ready.

        Returns False when this node cannot serve it (not the leader, or too many pending).
        """
        self._require_no_outstanding_ready()
        if self.role is not Role.LEADER:
            return False
        pending = len(self._pending_reads) + len(self._reads_awaiting_term_commit)
        if pending >= self.config.max_pending_reads:
            return False
        if not self._committed_in_current_term():
            # The commit index may lag what earlier leaders committed until this term's
            # no-op commits; a read index taken now could miss acknowledged writes.
            self._reads_awaiting_term_commit.append(context)
            return True
        self._register_read(context)
        return True

    def add_member(self, node: NodeId) -> bool:
        """Adds `node` as a learner; it is promoted to voter once it has caught up."""
        self._require_no_outstanding_ready()
        if not self._can_change_membership() or node in self.membership.members or node <= 0:
            return False
        membership = Membership(self.membership.voters, self.membership.learners | {node})
        self._append_own([self._config_entry(membership)])
        return True

    def remove_member(self, node: NodeId) -> bool:
        """Removes one voter or learner; the cluster must keep at least one voter."""
        self._require_no_outstanding_ready()
        if not self._can_change_membership() or node not in self.membership.members:
            return False
        voters = self.membership.voters - {node}
        if not voters:
            return False
        membership = Membership(voters, self.membership.learners - {node})
        self._append_own([self._config_entry(membership)])
        return True

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
        self._flush()
        return bool(
            self._messages
            or self._read_states
            or self._received_snapshot is not None
            or self.log.unstable_from <= self.log.last_index()
            or self.log.committed > self.log.applied
            or self._hard_state() != self._persisted_hard_state
        )

    def ready(self) -> Ready:
        """What to persist, send and apply now; acknowledge with `advance()`."""
        self._require_no_outstanding_ready()
        self._flush()
        hard_state = self._hard_state()
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

    # ------------------------------------------------------------------ term handling

    def _accept_higher_term(self, message: Message) -> bool:
        """Moves to a higher term if the message warrants it; False means ignore it."""
        if isinstance(message, RequestVote):
            in_lease = (
                self.config.check_quorum
                and self.leader_id != NO_NODE
                and self._election_elapsed < self.config.election_ticks
            )
            if in_lease and not message.transfer:
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

    def _handle_vote_request(self, message: RequestVote) -> None:
        can_vote = (
            self.vote == message.sender
            or (self.vote == NO_NODE and self.leader_id == NO_NODE)
            or (message.pre_vote and message.term > self.term)
        )
        if can_vote and self.log.is_up_to_date(message.last_log_index, message.last_log_term):
            # the reply carries the requested term, so a pre-candidate can tell it is current
            self._send(
                RequestVoteReply(
                    message.term, self.id, message.sender, granted=True, pre_vote=message.pre_vote
                )
            )
            if not message.pre_vote:
                assert message.term == self.term
                assert self.vote in (NO_NODE, message.sender), "would vote twice in one term"
                self._election_elapsed = 0
                self.vote = message.sender
        else:
            self._send(
                RequestVoteReply(
                    self.term, self.id, message.sender, granted=False, pre_vote=message.pre_vote
                )
            )

    # ------------------------------------------------------------------ roles

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
        self._commit_notices.clear()
        self._fail_pending_reads()

    def _become_follower(self, term: int, leader: NodeId) -> None:
        self._reset(term)
        self.leader_id = leader
        self.role = Role.FOLLOWER
        self.progress = {}

    def _become_pre_candidate(self) -> None:
        assert self.role is not Role.LEADER
        # Term and vote stay as they are: a pre-campaign is a poll, not an election.
        self._votes = {}
        self.leader_id = NO_NODE
        self.role = Role.PRE_CANDIDATE
        self.progress = {}

    def _become_candidate(self) -> None:
        assert self.role is not Role.LEADER
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE
        self.progress = {}

    def _become_leader(self) -> None:
        assert self.role is Role.CANDIDATE
        self._reset(self.term)
        self.leader_id = self.id
        self.role = Role.LEADER
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

    # ------------------------------------------------------------------ elections

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._promotable() and self._election_elapsed >= self._randomized_election_timeout:
            self._election_elapsed = 0
            self._start_election(transfer=False)

    def _start_election(self, transfer: bool) -> None:
        if not self._promotable():
            return
        if self.config.pre_vote and not transfer:
            self._become_pre_candidate()
            self._solicit_votes(pre_vote=True, transfer=False)
        else:
            self._become_candidate()
            self._solicit_votes(pre_vote=False, transfer=transfer)

    def _solicit_votes(self, pre_vote: bool, transfer: bool) -> None:
        term = self.term + 1 if pre_vote else self.term
        if self._record_vote(self.id, granted=True):
            return
        for voter in sorted(self.membership.voters):
            if voter != self.id:
                self._send(
                    RequestVote(
                        term,
                        self.id,
                        voter,
                        self.log.last_index(),
                        self.log.last_term(),
                        pre_vote=pre_vote,
                        transfer=transfer,
                    )
                )

    def _record_vote(self, voter: NodeId, granted: bool) -> bool:
        """Counts one answer; returns True if the election is over (won or lost)."""
        self._votes.setdefault(voter, granted)
        voters = self.membership.voters
        granted_by = [node for node, yes in self._votes.items() if yes]
        rejected_by = [node for node, yes in self._votes.items() if not yes and node in voters]
        if has_quorum(voters, granted_by):
            if self.role is Role.PRE_CANDIDATE:
                self._become_candidate()
                self._solicit_votes(pre_vote=False, transfer=False)
            else:
                self._become_leader()
            return True
        if len(rejected_by) >= majority(len(voters)):
            self._become_follower(self.term, NO_NODE)
            return True
        return False

    def _step_candidate(self, message: Message) -> None:
        match message:
            case AppendEntries() | Heartbeat() | InstallSnapshot():
                # someone won this term's election
                self._become_follower(message.term, message.sender)
                self._step_follower(message)
            case RequestVoteReply():
                if message.pre_vote == (self.role is Role.PRE_CANDIDATE):
                    self._record_vote(message.sender, message.granted)
            case _:
                pass  # replies to a leadership we no longer hold, or TimeoutNow: moot

    # ------------------------------------------------------------------ follower

    def _step_follower(self, message: Message) -> None:
        match message:
            case AppendEntries():
                self._heard_from_leader(message.sender)
                self._handle_append(message)
            case Heartbeat():
                self._heard_from_leader(message.sender)
                self._handle_heartbeat(message)
            case InstallSnapshot():
                self._heard_from_leader(message.sender)
                self._handle_snapshot(message)
            case TimeoutNow():
                self._start_election(transfer=True)
            case _:
                pass  # answers to a candidacy or leadership of ours that is over

    def _heard_from_leader(self, leader: NodeId) -> None:
        if self.leader_id not in (NO_NODE, leader):
            self._reject(f"two leaders in term {self.term}: n{self.leader_id} and n{leader}")
        self._election_elapsed = 0
        self.leader_id = leader

    def _handle_append(self, message: AppendEntries) -> None:
        log = self.log
        if message.prev_log_index < log.committed:
            # Everything up to our commit index matches the leader's log already.
            self._send(
                AppendEntriesReply(
                    self.term,
                    self.id,
                    message.sender,
                    success=True,
                    match_index=log.committed,
                    read_round=message.read_round,
                )
            )
            return
        if log.matches(message.prev_log_index, message.prev_log_term):
            conflict = log.first_conflict(message.entries)
            if conflict and conflict <= log.committed:
                self._reject(f"append would overwrite committed entry {conflict}")
                return
            first_written = log.truncate_and_append(message.entries)
            if first_written:
                self._after_log_write(first_written)
            last_new = message.prev_log_index + len(message.entries)
            log.commit_to(min(message.leader_commit, last_new))
            self._send(
                AppendEntriesReply(
                    self.term,
                    self.id,
                    message.sender,
                    success=True,
                    match_index=last_new,
                    read_round=message.read_round,
                )
            )
            return
        conflict_term = log.term_at(message.prev_log_index)
        if conflict_term is None:
            conflict_term, conflict_index = 0, log.last_index() + 1
        else:
            conflict_index = log.first_index_of_term_at(message.prev_log_index)
        self._send(
            AppendEntriesReply(
                self.term,
                self.id,
                message.sender,
                success=False,
                rejected_index=message.prev_log_index,
                conflict_term=conflict_term,
                conflict_index=conflict_index,
                read_round=message.read_round,
            )
        )

    def _handle_heartbeat(self, message: Heartbeat) -> None:
        if message.commit > self.log.last_index():
            self._reject(f"heartbeat commit {message.commit} beyond our log")
        else:
            self.log.commit_to(message.commit)
        self._send(
            HeartbeatReply(
                self.term,
                self.id,
                message.sender,
                read_round=message.read_round,
                last_log_index=self.log.last_index(),
            )
        )

    def _handle_snapshot(self, message: InstallSnapshot) -> None:
        meta = message.meta
        log = self.log
        if meta.last_index <= log.committed:
            match_index = log.committed
        elif log.matches(meta.last_index, meta.last_term):
            # Our log already holds the snapshot's last entry: only the commit index moves.
            log.commit_to(meta.last_index)
            match_index = meta.last_index
        else:
            log.restore(meta.last_index, meta.last_term)
            snapshot = Snapshot(meta, message.data)
            self._snapshot = snapshot
            self._received_snapshot = snapshot
            self._base_membership = meta.membership
            self.membership = meta.membership
            self._config_index = meta.last_index
            match_index = meta.last_index
        self._send(InstallSnapshotReply(self.term, self.id, message.sender, match_index))

    # ------------------------------------------------------------------ leader

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self.config.election_ticks:
            self._election_elapsed = 0
            if self.config.check_quorum and not self._quorum_recently_active():
                self._become_follower(self.term, NO_NODE)
                return
            self._transfer_target = NO_NODE
        if self._heartbeat_elapsed >= self.config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _quorum_recently_active(self) -> bool:
        active = [self.id]
        for member, progress in self.progress.items():
            if progress.recent_active:
                active.append(member)
            progress.recent_active = False
        return has_quorum(self.membership.voters, active)

    def _step_leader(self, message: Message) -> None:
        match message:
            case AppendEntries() | Heartbeat() | InstallSnapshot():
                self._reject(f"another leader n{message.sender} in our term {self.term}")
                return
            case AppendEntriesReply() | HeartbeatReply() | InstallSnapshotReply():
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

    def _handle_append_success(self, peer: NodeId, progress: Progress, match_index: int) -> None:
        if match_index > self.log.last_index():
            self._reject(f"n{peer} claims to match {match_index}, beyond our log")
            return
        if progress.update_match(match_index):
            snapshot_done = (
                progress.state is ProgressState.SNAPSHOT
                and progress.match >= progress.pending_snapshot
            )
            if progress.state is ProgressState.PROBE or snapshot_done:
                progress.become_replicate()
            if peer == self._transfer_target and progress.match == self.log.last_index():
                self._send(TimeoutNow(self.term, self.id, peer))
            self._maybe_promote(peer, progress)
        self._send_pending_entries(peer)
        if self._maybe_commit():
            for other in self._peers():
                self._propagate_commit(other)
        else:
            self._propagate_commit(peer)

    def _send_pending_entries(self, peer: NodeId) -> bool:
        """Streams entries `peer` lacks until its pipeline is full or nothing is left."""
        progress = self.progress.get(peer)
        sent = False
        while (
            progress is not None
            and progress.next <= self.log.last_index()
            and self._send_append(peer, send_if_empty=False)
        ):
            sent = True
            if progress.state is not ProgressState.REPLICATE:
                break
        return sent

    def _propagate_commit(self, peer: NodeId) -> None:
        """Owes an idle follower a notice of a commit index it has not heard of.

        The notice waits for the Ready: proposals stepped before then go out as appends that
        carry the commit index themselves, and a notice would only repeat it.
        """
        self._commit_notices.add(peer)

    def _send_commit_notices(self) -> None:
        """Notices still owed, to followers no append of this Ready told.

        A follower with appends in flight is left alone: the replies will bring us back here,
        and one notice after the burst beats one per entry.
        """
        notices, self._commit_notices = self._commit_notices, set()
        for peer in notices:
            progress = self.progress.get(peer)
            if progress is None or progress.inflight or progress.state is ProgressState.SNAPSHOT:
                continue
            commit = min(progress.match, self.log.committed)
            if commit > progress.commit_sent:
                progress.commit_sent = commit
                self._send(
                    Heartbeat(self.term, self.id, peer, commit=commit, read_round=self._read_round)
                )

    def _handle_append_rejection(
        self, peer: NodeId, progress: Progress, message: AppendEntriesReply
    ) -> None:
        if message.rejected_index == 0 and message.conflict_index == 0:
            return  # a stale-term notice, already handled by the term check
        if progress.is_stale_rejection(message.rejected_index):
            return
        if message.conflict_term > 0:
            last_of_term = self.log.last_index_of_term(
                message.conflict_term, message.rejected_index
            )
            next_index = last_of_term + 1 if last_of_term is not None else message.conflict_index
        else:
            next_index = message.conflict_index
        next_index = min(next_index, message.rejected_index)
        if progress.state is ProgressState.REPLICATE:
            progress.become_probe()
        progress.back_up_to(next_index)
        self._send_append(peer, send_if_empty=True)

    def _handle_heartbeat_reply(self, peer: NodeId, progress: Progress) -> None:
        if progress.state is ProgressState.SNAPSHOT:
            progress.heartbeats_since_snapshot += 1
            if progress.heartbeats_since_snapshot >= _SNAPSHOT_RETRY_HEARTBEATS:
                progress.become_probe()  # the snapshot was lost: probe, and resend if needed
        elif progress.state is ProgressState.PROBE:
            progress.probe_sent = False
        elif progress.is_paused():
            progress.free_one_inflight()  # an append was probably lost: let one more through
        if progress.match < self.log.last_index():
            self._send_append(peer, send_if_empty=True)

    def _maybe_commit(self) -> bool:
        voters = self.membership.voters
        if not voters:
            return False
        matches = [self.progress[voter].match if voter in self.progress else 0 for voter in voters]
        index = quorum_index(matches)
        # Only entries of the current term commit by counting replicas (Raft, section 5.4.2).
        if index > self.log.committed and self.log.term_at(index) == self.term:
            self.log.commit_to(index)
            self._after_commit()
            return True
        return False

    def _after_commit(self) -> None:
        if self._reads_awaiting_term_commit and self._committed_in_current_term():
            waiting, self._reads_awaiting_term_commit = self._reads_awaiting_term_commit, []
            for context in waiting:
                self._register_read(context)
        if self.id not in self.membership.voters and self.log.committed >= self._config_index:
            self._become_follower(self.term, NO_NODE)  # we removed ourselves

    def _send_append(self, peer: NodeId, send_if_empty: bool) -> bool:
        """Sends the next append (or snapshot) `peer` needs; False if nothing was sent."""
        progress = self.progress[peer]
        if progress.is_paused():
            return False
        prev_index = progress.next - 1
        prev_term = self.log.term_at(prev_index)
        if prev_term is None:
            self._send_snapshot(peer, progress)
            return True
        entries = self._entries_for_message(progress.next)
        if not entries and not send_if_empty:
            return False
        self._send(
            AppendEntries(
                self.term,
                self.id,
                peer,
                prev_index,
                prev_term,
                tuple(entries),
                self.log.committed,
                read_round=self._read_round,
            )
        )
        progress.sent_entries(prev_index + len(entries), len(entries))
        progress.commit_sent = max(
            progress.commit_sent, min(self.log.committed, prev_index + len(entries))
        )
        return True

    def _entries_for_message(self, first: int) -> list[Entry]:
        last = min(self.log.last_index(), first + self.config.max_entries_per_message - 1)
        if last < first:
            return []
        entries = self.log.slice(first, last + 1)
        size = 0
        for count, entry in enumerate(entries):
            size += len(entry.data)
            if size > self.config.max_bytes_per_message and count > 0:
                return entries[:count]
        return entries

    def _send_snapshot(self, peer: NodeId, progress: Progress) -> None:
        snapshot = self._snapshot
        assert snapshot is not None, "entries were compacted without a snapshot"
        progress.become_snapshot(snapshot.meta.last_index)
        self._send(InstallSnapshot(self.term, self.id, peer, snapshot.meta, snapshot.data))

    def _broadcast_append(self) -> None:
        reached_all = True
        for peer in self._peers():
            if not self._send_pending_entries(peer):
                reached_all = False
        if reached_all:
            self._heartbeat_elapsed = 0  # everyone just heard from us: no heartbeat needed

    def _broadcast_heartbeat(self) -> None:
        for peer in self._peers():
            progress = self.progress[peer]
            commit = min(progress.match, self.log.committed)
            progress.commit_sent = max(progress.commit_sent, commit)
            self._send(
                Heartbeat(self.term, self.id, peer, commit=commit, read_round=self._read_round)
            )

    def _peers(self) -> list[NodeId]:
        return [member for member in self.progress if member != self.id]

    def _accepts_proposals(self) -> bool:
        return (
            self.role is Role.LEADER
            and self._transfer_target == NO_NODE
            and self.id in self.membership.voters
        )

    def _append_own(self, entries: list[Entry]) -> None:
        assert self.role is Role.LEADER
        self.log.append(entries)
        self.progress[self.id].update_match(self.log.last_index())
        for entry in entries:
            if entry.kind is EntryKind.CONFIG:
                self._apply_membership(Membership.decode(entry.data), entry.index)
        self._needs_broadcast = True
        if self._maybe_commit():
            self._needs_broadcast = True

    def _flush(self) -> None:
        """Sends what accumulated since the last Ready: new entries and a ReadIndex round."""
        if self.role is not Role.LEADER:
            return
        if self._read_round_requested:
            self._read_round_requested = False
            self._read_round += 1
            self.progress[self.id].read_round = self._read_round
            self._broadcast_heartbeat()
            self._release_confirmed_reads()
        if self._needs_broadcast:
            self._needs_broadcast = False
            self._broadcast_append()
        if self._commit_notices:
            self._send_commit_notices()

    # ------------------------------------------------------------------ reads

    def _committed_in_current_term(self) -> bool:
        return self.log.term_at(self.log.committed) == self.term

    def _register_read(self, context: bytes) -> None:
        # Served at the current commit index once a heartbeat round started after this
        # moment is acknowledged by a majority, proving no newer leader exists.
        self._pending_reads.append(_PendingRead(context, self.log.committed, self._read_round + 1))
        self._read_round_requested = True

    def _acknowledge_read(self, peer: NodeId, read_round: int) -> None:
        progress = self.progress[peer]
        if read_round > progress.read_round:
            progress.read_round = read_round
            self._release_confirmed_reads()

    def _release_confirmed_reads(self) -> None:
        if not self._pending_reads:
            return
        rounds = [
            self.progress[voter].read_round if voter in self.progress else 0
            for voter in self.membership.voters
        ]
        confirmed = quorum_index(rounds)
        while self._pending_reads and self._pending_reads[0].round <= confirmed:
            read = self._pending_reads.popleft()
            self._read_states.append(ReadState(read.context, read.index))

    def _fail_pending_reads(self) -> None:
        for read in self._pending_reads:
            self._read_states.append(ReadState(read.context, read.index, ok=False))
        for context in self._reads_awaiting_term_commit:
            self._read_states.append(ReadState(context, 0, ok=False))
        self._pending_reads.clear()
        self._reads_awaiting_term_commit = []
        self._read_round_requested = False

    # ------------------------------------------------------------------ membership

    def _can_change_membership(self) -> bool:
        return (
            self.role is Role.LEADER
            and self._transfer_target == NO_NODE
            and self._committed_in_current_term()
            and self._config_index <= self.log.committed
        )

    def _config_entry(self, membership: Membership) -> Entry:
        return Entry(self.term, self.log.last_index() + 1, EntryKind.CONFIG, membership.encode())

    def _maybe_promote(self, peer: NodeId, progress: Progress) -> None:
        if (
            peer in self.membership.learners
            and progress.match >= self.log.committed
            and self._can_change_membership()
        ):
            membership = Membership(
                self.membership.voters | {peer}, self.membership.learners - {peer}
            )
            self._append_own([self._config_entry(membership)])

    def _apply_membership(self, membership: Membership, index: int) -> None:
        self.membership = membership
        self._config_index = index
        if self.role is not Role.LEADER:
            return
        next_index = self.log.last_index() + 1
        for member in sorted(membership.members):
            if member not in self.progress:
                self.progress[member] = Progress(next_index, self.config.max_inflight_appends)
        for member in list(self.progress):
            if member not in membership.members and member != self.id:
                del self.progress[member]

    def _after_log_write(self, first_written: int) -> None:
        """Keeps the membership equal to the latest configuration entry in the log."""
        if first_written <= self._config_index:
            self._refresh_membership()
            return
        for index in range(first_written, self.log.last_index() + 1):
            entry = self.log.entry_at(index)
            assert entry is not None
            if entry.kind is EntryKind.CONFIG:
                self.membership = Membership.decode(entry.data)
                self._config_index = index

    def _refresh_membership(self) -> None:
        index = self.log.last_index()
        while index > self.log.snapshot_index:
            entry = self.log.entry_at(index)
            assert entry is not None
            if entry.kind is EntryKind.CONFIG:
                self.membership = Membership.decode(entry.data)
                self._config_index = index
                return
            index -= 1
        self.membership = self._base_membership
        self._config_index = self.log.snapshot_index

    def _membership_at(self, index: int) -> Membership:
        while index > self.log.snapshot_index:
            entry = self.log.entry_at(index)
            assert entry is not None
            if entry.kind is EntryKind.CONFIG:
                return Membership.decode(entry.data)
            index -= 1
        return self._base_membership

    # ------------------------------------------------------------------ plumbing

    def _hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def _send(self, message: Message) -> None:
        self._messages.append(message)

    def _reject(self, reason: str) -> None:
        self.rejected_messages += 1
        self.last_rejection = reason

    def _require_no_outstanding_ready(self) -> None:
        if self._outstanding is not None:
            raise RuntimeError("the last Ready has not been acknowledged with advance()")
