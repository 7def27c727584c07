"""The acceptor: it promises ballots and accepts values, durably, before it answers.

A promise or an acceptance lives first in memory and reaches the Ready's persist part
(`promised`, `accepted`); the answer is a reply that the driver sends only after the persist
(`sends_before_persist` is False for replies), so nothing is acknowledged before it is on
disk. A promise is never taken back: `promised` only grows, across restarts too.
"""

from __future__ import annotations

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos.member import MemberState
from distlab.protocols.multipaxos.messages import (
    Accept,
    Accepted,
    AcceptedReply,
    Ballot,
    Commit,
    CommitReply,
    Prepare,
    Promise,
)
from distlab.protocols.multipaxos.state import Role


class Acceptor(MemberState):
    def _promise(self, ballot: Ballot, *, durable: bool = True) -> None:
        assert ballot >= self.promised, (
            f"promise went back from {self.promised.describe()} to {ballot.describe()}")
        self.promised = ballot
        if not durable:
            # planted: the promise never reaches the Ready, so a restart forgets it
            self._persisted_promised = ballot

    def _reported_from(self, first_slot: int) -> tuple[Accepted, ...]:
        return tuple(self.accepted[slot] for slot in sorted(self.accepted)
                     if slot >= first_slot)

    def _on_prepare(self, message: Prepare) -> None:
        ballot = message.ballot
        if message.probe:
            would = ballot > self.promised and not self._in_lease()
            self._send(Promise(self.id, message.sender, ballot, ok=would,
                               promised=self.promised, probe=True))
            return
        if ballot < self.promised:
            self._send(Promise(self.id, message.sender, ballot, ok=False,
                               promised=self.promised))
            return
        if ballot > self.promised and message.sender != self.leader_id and self._in_lease():
            return  # a working leader was heard from lately: this candidate is cut off
        if ballot > self.promised:
            self._promise(ballot, durable=not self._planted.promise_not_persisted)
            if self.role is not Role.FOLLOWER and ballot > self.ballot:
                self._step_down(ballot, backoff=False)
            self.leader_id = NodeId(0)
            self._election_elapsed = 0
        self._send(Promise(self.id, message.sender, ballot, ok=True, promised=ballot,
                           accepted=self._reported_from(message.first_slot),
                           log_start=self.log_start))

    def _admit_leader_message(self, ballot: Ballot) -> bool:
        """Whether a message of a leader at `ballot` may be acted on; raises our promise to
        it (a leader sends phase 2 only after a majority promised its ballot)."""
        if ballot < self.promised:
            return False
        if ballot > self.promised:
            self._promise(ballot)
        if self.role is Role.PRE_CANDIDATE or (self.role is not Role.FOLLOWER
                                               and ballot > self.ballot):
            self._step_down(ballot, backoff=False)
        self._heard_from_leader(ballot)
        return True

    def _on_accept(self, message: Accept) -> None:
        ballot = message.ballot
        lower = ballot < self.promised
        if lower and not self._planted.accept_lower_ballot:
            self._send(AcceptedReply(self.id, message.sender, ballot, ok=False,
                                     promised=self.promised, slots=(),
                                     applied=self.applied, commit_index=self.commit_index))
            return
        if not lower:
            self._admit_leader_message(ballot)
        slots = []
        for entry in message.entries:
            if entry.slot <= self.log_start:
                continue  # decided and dropped here: the leader learns it by catching up
            self._accept(Accepted(entry.slot, ballot, entry.value))
            slots.append(entry.slot)
        self._send(AcceptedReply(self.id, message.sender, ballot, ok=True,
                                 promised=self.promised, slots=tuple(slots),
                                 applied=self.applied, commit_index=self.commit_index))
        if not lower:
            self._learn_from_leader(message.sender, ballot, message.commit_index,
                                    message.leader_start)
            self._forget(message.forget_through)

    def _on_commit(self, message: Commit) -> None:
        ballot = message.ballot
        if not self._admit_leader_message(ballot):
            self._send(CommitReply(self.id, message.sender, ballot, ok=False,
                                   promised=self.promised, applied=self.applied,
                                   commit_index=self.commit_index))
            return
        self._learn_from_leader(message.sender, ballot, message.commit_index,
                                message.leader_start)
        self._forget(message.forget_through)
        self._send(CommitReply(self.id, message.sender, ballot, ok=True,
                               promised=self.promised, applied=self.applied,
                               commit_index=self.commit_index,
                               read_round=message.read_round))
