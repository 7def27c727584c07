"""Who leads: election timeouts, pre-vote, votes, check-quorum and leadership transfer.

Pre-vote (Raft dissertation, section 9.6) polls the voters before a real campaign, so a node
cut off from the cluster cannot inflate its term and depose a working leader when it comes
back. Check-quorum makes a leader that has not heard from a majority for an election timeout
step down. A transfer brings the target's log up to date, then tells it to campaign at once
with TimeoutNow.
"""

from __future__ import annotations

from distlab.core.ids import NO_NODE, NodeId
from distlab.core.quorum import has_quorum, majority
from distlab.protocols.raft.messages import RequestVote, RequestVoteReply, TimeoutNow
from distlab.protocols.raft.roles import RaftRoles
from distlab.protocols.raft.state import Role


class Election(RaftRoles):
    # ------------------------------------------------------------------ requests

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

    # ------------------------------------------------------------------ campaigning

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

    def _handle_vote_reply(self, message: RequestVoteReply) -> None:
        if message.pre_vote == (self.role is Role.PRE_CANDIDATE):
            self._record_vote(message.sender, message.granted)

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

    # ------------------------------------------------------------------ voting

    def _handle_vote_request(self, message: RequestVote) -> None:
        can_vote = (
            self.vote == message.sender
            or (self.vote == NO_NODE and self.leader_id == NO_NODE)
            or (message.pre_vote and message.term > self.term)
        )
        if can_vote and (
            self.log.is_up_to_date(message.last_log_index, message.last_log_term)
            or self._planted.no_up_to_date_check
        ):
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

    # ------------------------------------------------------------------ leader lease

    def _in_lease(self) -> bool:
        """Whether a leader was heard from within the last election timeout."""
        return (
            self.config.check_quorum
            and self.leader_id != NO_NODE
            and self._election_elapsed < self.config.election_ticks
        )

    def _quorum_recently_active(self) -> bool:
        """Whether a quorum answered in the interval that ends now; starts the next one."""
        active = [self.id]
        for member, progress in self.progress.items():
            if progress.recent_active:
                active.append(member)
            progress.recent_active = False
        return has_quorum(self.membership.voters, active)
