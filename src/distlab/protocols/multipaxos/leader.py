"""The leader: a scout runs phase 1 once for every slot from the first undecided one, then
commanders run phase 2 per slot, pipelined in a bounded window and batched per message.

A member that hears no leader for its (randomized) election timeout campaigns with a round
above every ballot it has seen. A leader or candidate that meets a higher ballot is
preempted: it steps down and, unless a leader shows up, tries again after a randomized,
bounded backoff. A new leader re-proposes in every slot the value of the highest ballot a
majority reported, fills the holes below the highest reported slot with no-ops, and only
then takes new commands. Reads are served after a round of heartbeats confirms, with a
majority, that no higher ballot was promised (Raft's ReadIndex), once every slot decided
here or adopted by phase 1 is applied.
"""

from __future__ import annotations

from collections.abc import Sequence

from distlab.core.ids import NO_NODE, NodeId
from distlab.protocols.multipaxos.member import MemberState, PendingRead
from distlab.protocols.multipaxos.messages import (
    Accept,
    Accepted,
    AcceptedReply,
    Ballot,
    Commit,
    CommitReply,
    Decision,
    Prepare,
    Promise,
    Value,
)
from distlab.protocols.multipaxos.state import Proposal, ReadState, Role


class Leadership(MemberState):
    # ------------------------------------------------------------------ ticks

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        if self._heartbeat_elapsed >= self.config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._heartbeat()
        self._quorum_elapsed += 1
        if self.config.check_quorum and self._quorum_elapsed >= self.config.election_ticks:
            self._quorum_elapsed = 0
            if len(self._recent) + 1 < self.quorum:
                # Cut off from a majority: another leader may be at work already.
                self._step_down(None, backoff=False)
                return
            self._recent = set()

    def _tick_candidate(self) -> None:
        self._heartbeat_elapsed += 1
        if self._heartbeat_elapsed >= self.config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            for peer in self.peers:
                if peer not in self._promises:
                    self._send(Prepare(self.id, peer, self.ballot, self._scout_first_slot))
        self._election_elapsed += 1
        if self._election_elapsed >= self._election_timeout:
            self._campaign()

    def _tick_follower(self) -> None:
        self._election_elapsed += 1
        if self._election_elapsed >= self._election_timeout:
            if self.config.pre_prepare:
                self._probe()
            else:
                self._campaign()

    def _tick_pre_candidate(self) -> None:
        self._heartbeat_elapsed += 1
        if self._heartbeat_elapsed >= self.config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            for peer in self.peers:
                if peer not in self._probe_yes:
                    self._send(Prepare(self.id, peer, self._probe_ballot,
                                       self.commit_index + 1, probe=True))
        self._election_elapsed += 1
        if self._election_elapsed >= self._election_timeout:
            self._probe()

    # ------------------------------------------------------------------ phase 1

    def _probe(self) -> None:
        """Ask, changing nothing, whether a majority would promise a ballot above every one
        seen; campaign only if so."""
        self._probe_ballot = Ballot(max(self.promised.round, self.ballot.round) + 1, self.id)
        self.role = Role.PRE_CANDIDATE
        self.leader_id = NO_NODE
        self._election_elapsed = 0
        self._election_timeout = self._randomized_timeout()
        self._heartbeat_elapsed = 0
        self._probe_yes = {self.id}
        if len(self._probe_yes) >= self.quorum:
            self._campaign()
            return
        for peer in self.peers:
            self._send(Prepare(self.id, peer, self._probe_ballot, self.commit_index + 1,
                               probe=True))

    def _campaign(self) -> None:
        """Start a scout with a ballot above every one seen."""
        round_ = max(self.promised.round, self.ballot.round) + 1
        self.ballot = Ballot(round_, self.id)
        self.role = Role.CANDIDATE
        self.leader_id = NO_NODE
        self._election_elapsed = 0
        self._election_timeout = self._randomized_timeout()
        self._heartbeat_elapsed = 0
        self._promises = {}
        self._scout_first_slot = self.commit_index + 1
        # Our own acceptor promises first; its promise counts once it is durable, and the
        # prepares wait for the same persist (so a restart never reuses this ballot).
        self.promised = self.ballot
        self._after_persist.append(Promise(
            self.id, self.id, self.ballot, ok=True, promised=self.ballot,
            accepted=tuple(self.accepted[slot] for slot in sorted(self.accepted)
                           if slot >= self._scout_first_slot),
            log_start=self.log_start))
        for peer in self.peers:
            self._send(Prepare(self.id, peer, self.ballot, self._scout_first_slot))

    def _on_promise(self, message: Promise) -> None:
        if message.probe:
            if (self.role is Role.PRE_CANDIDATE and message.ballot == self._probe_ballot
                    and message.ok):
                self._probe_yes.add(message.sender)
                if len(self._probe_yes) >= self.quorum:
                    self._campaign()
            return
        if self.role is not Role.CANDIDATE or message.ballot != self.ballot:
            return  # for an earlier scout
        if not message.ok:
            if message.promised > self.ballot:
                self._step_down(message.promised, backoff=True)
            return
        self._promises[message.sender] = message
        if len(self._promises) >= self.quorum:
            self._become_leader()

    def _become_leader(self) -> None:
        promises = list(self._promises.values())
        start = max([self._scout_first_slot, self.log_start + 1]
                    + [promise.log_start + 1 for promise in promises])
        best: dict[int, Accepted] = {}
        if not self._planted.ignore_accepted_value:
            for promise in promises:
                for triple in promise.accepted:
                    if triple.slot < start:
                        continue
                    known = best.get(triple.slot)
                    if known is None or triple.ballot > known.ballot:
                        best[triple.slot] = triple
        decided_here = [slot for slot in self.decided if slot >= start]
        last = max([start - 1, *best, *decided_here])
        self.role = Role.LEADER
        self.leader_id = self.id
        self.leader_start = start
        self.next_slot = last + 1
        self.adopted_through = last
        self.proposals = {}
        self._acceptances = {}
        self._sent_through = start - 1
        self._recent = set()
        self._quorum_elapsed = 0
        self._heartbeat_elapsed = 0
        self._read_acks = {}
        self._read_round = 0
        for slot in range(start, last + 1):
            known_value = self.decided.get(slot)
            if known_value is None:
                reported = best.get(slot)
                # A hole no majority member accepted anything in: a no-op fills it.
                known_value = reported.value if reported else Value(None, self.ballot)
                self._acceptances[slot] = set()
            self.proposals[slot] = known_value
        self._flush_accepts()

    # ------------------------------------------------------------------ phase 2

    def propose_batch(self, commands: list[bytes]) -> Sequence[Proposal]:
        """Give each command the next slot if this member leads; the empty list if not."""
        self._require_no_outstanding_ready()
        if self.role is not Role.LEADER:
            return []
        term = self.ballot.as_int()
        proposals = []
        for command in commands:
            slot = self.next_slot
            self.next_slot += 1
            self.proposals[slot] = Value(command, self.ballot)
            self._acceptances[slot] = set()
            proposals.append(Proposal(slot, term))
        return proposals

    def _window_end(self) -> int:
        undecided = [slot for slot in self._acceptances if slot <= self._sent_through]
        first = min(undecided) if undecided else self._sent_through + 1
        return min(self.next_slot - 1, first + self.config.max_inflight_slots - 1)

    def _flush_accepts(self) -> None:
        """Send the slots that entered the window; our own acceptor accepts them too, and
        counts once that is durable."""
        if self.role is not Role.LEADER:
            return
        end = self._window_end()
        if end <= self._sent_through:
            return
        first = self._sent_through + 1
        entries = tuple(Decision(slot, self.proposals[slot]) for slot in range(first, end + 1))
        self._sent_through = end
        for entry in entries:
            self._accept(Accepted(entry.slot, self.ballot, entry.value))
        self._after_persist.append(AcceptedReply(
            self.id, self.id, self.ballot, ok=True, promised=self.ballot,
            slots=tuple(entry.slot for entry in entries), applied=self.applied,
            commit_index=self.commit_index))
        for peer in self.peers:
            self._send_accepts(peer, entries)

    def _send_accepts(self, peer: NodeId, entries: Sequence[Decision]) -> None:
        step = self.config.max_entries_per_message
        for at in range(0, len(entries), step):
            self._send(Accept(self.id, peer, self.ballot, tuple(entries[at:at + step]),
                              self.commit_index, self.leader_start, self._min_applied()))

    def _heartbeat(self) -> None:
        """Resend what each peer has not acknowledged; otherwise a Commit, with the latest
        read round (so a read whose own round was lost is confirmed by the next heartbeats,
        as Raft's are). Slots every member applied are freed here too."""
        self._forget(self._min_applied())
        for peer in self.peers:
            missing = [Decision(slot, self.proposals[slot])
                       for slot in sorted(self._acceptances)
                       if slot <= self._sent_through and peer not in self._acceptances[slot]]
            if missing:
                self._send_accepts(peer, missing[:self.config.max_entries_per_message])
            else:
                self._send_commit(peer, self._read_round)

    def _send_commit(self, peer: NodeId, read_round: int = 0) -> None:
        self._send(Commit(self.id, peer, self.ballot, self.commit_index, self.leader_start,
                          self._min_applied(), read_round))

    def _min_applied(self) -> int:
        """The lab's Min: every member has applied up to it, so slots there may be freed."""
        return min([self.applied, *(self.peer_applied.get(peer, 0) for peer in self.peers)])

    def _on_accepted(self, message: AcceptedReply) -> None:
        if self.role is not Role.LEADER or message.ballot != self.ballot:
            return
        if not message.ok:
            if message.promised > self.ballot:
                self._step_down(message.promised, backoff=True)
            return
        self._heard_from_peer(message.sender, message.applied, message.commit_index)
        needed = self.quorum
        if self._planted.decide_without_majority:
            needed = max(1, self.quorum - 1)  # planted: one acceptance short
        for slot in message.slots:
            acceptors = self._acceptances.get(slot)
            if acceptors is None:
                continue
            acceptors.add(message.sender)
            if len(acceptors) >= needed:
                self._decide(slot, self.proposals[slot])
        self._flush_accepts()

    def _on_commit_reply(self, message: CommitReply) -> None:
        if self.role is not Role.LEADER or message.ballot != self.ballot:
            return
        if not message.ok:
            if message.promised > self.ballot:
                self._step_down(message.promised, backoff=True)
            return
        self._heard_from_peer(message.sender, message.applied, message.commit_index)
        if message.read_round > self._read_acks.get(message.sender, 0):
            self._read_acks[message.sender] = message.read_round
            self._confirm_reads()

    def _heard_from_peer(self, peer: NodeId, applied: int, commit_index: int) -> None:
        if peer != self.id:
            self._recent.add(peer)
            if applied > self.peer_applied.get(peer, 0):
                self.peer_applied[peer] = applied
        if commit_index > self.commit_index:
            self._catch_up_from(peer, commit_index)

    # ------------------------------------------------------------------ preemption

    def _step_down(self, higher: Ballot | None, *, backoff: bool) -> None:
        """Preempted (a higher ballot) or cut off: stop leading, and retry after a backoff
        unless a leader is heard from first."""
        was_leading = self.role is Role.LEADER
        self.role = Role.FOLLOWER
        self.leader_id = NO_NODE
        if higher is not None and higher > self.promised:
            self.promised = higher
        self.proposals = {}
        self._acceptances = {}
        self._promises = {}
        self._probe_yes = set()
        self._election_elapsed = 0
        if backoff:
            self._election_timeout = self._rng.randrange(1, self.config.backoff_ticks + 1)
        else:
            self._election_timeout = self._randomized_timeout()
        if was_leading:
            for read in self._pending_reads:
                self._read_states.append(ReadState(read.context, read.index, ok=False))
            self._pending_reads.clear()
            self._read_round_requested = False

    def _heard_from_leader(self, ballot: Ballot) -> None:
        if ballot.node != self.id:
            self.leader_id = ballot.node
            self._election_elapsed = 0
            if self._election_timeout < self.config.election_ticks:
                self._election_timeout = self._randomized_timeout()

    # ------------------------------------------------------------------ reads

    def read_index(self, context: bytes) -> bool:
        """Start a read barrier; False if this member does not lead (or has too many)."""
        self._require_no_outstanding_ready()
        if self.role is not Role.LEADER:
            return False
        if len(self._pending_reads) >= self.config.max_pending_reads:
            return False
        # Every write that completed before this read is decided here already, or was chosen
        # under an earlier ballot and so sits in a slot phase 1 adopted: the read waits for
        # both (writes of ours still in flight have not completed, it need not wait for them).
        index = max(self.commit_index, self.adopted_through)
        if self._planted.read_without_confirm:
            self._read_states.append(ReadState(context, index, ok=True))  # planted
            return True
        self._pending_reads.append(PendingRead(context, index, self._read_round + 1))
        self._read_round_requested = True
        return True

    def _flush_read_round(self) -> None:
        if not self._read_round_requested or self.role is not Role.LEADER:
            return
        self._read_round_requested = False
        self._read_round += 1
        for peer in self.peers:
            self._send_commit(peer, self._read_round)
        self._confirm_reads()

    def _confirm_reads(self) -> None:
        while self._pending_reads:
            read = self._pending_reads[0]
            acks = 1 + sum(1 for peer in self.peers
                           if self._read_acks.get(peer, 0) >= read.round)
            if acks < self.quorum:
                return
            self._pending_reads.popleft()
            self._read_states.append(ReadState(read.context, read.index, ok=True))

