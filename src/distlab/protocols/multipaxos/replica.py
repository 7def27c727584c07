"""The replica (learner): decisions, in slot order to the state machine, and catching up.

A follower learns a slot from the leader's commit index when it accepted that slot under the
leader's very ballot (a leader proposes one value per slot, so that value is the decided
one); any other slot it asks a peer for (`CatchUp`), which answers with the decisions it
holds or, for slots it no longer holds, its snapshot. Decisions are durable before they
are applied (they travel in the Ready's persist part), so a restarted replica replays its
own and never needs a peer for slots it had applied: that is why a slot every member applied
(the lab's Min, carried by the leader) can be freed everywhere.
"""

from __future__ import annotations

from distlab.core.ids import NodeId
from distlab.protocols.multipaxos.member import MemberState
from distlab.protocols.multipaxos.messages import (
    Ballot,
    CatchUp,
    Decision,
    Decisions,
    InstallSnapshot,
    Snapshot,
    SnapshotMeta,
    Value,
)
from distlab.protocols.multipaxos.state import Role

# A replica waits this many heartbeat intervals for an answer before asking again.
CATCH_UP_RETRY_HEARTBEATS = 2


class Replica(MemberState):
    def _decide(self, slot: int, value: Value) -> None:
        if slot <= self.log_start:
            return
        known = self.decided.get(slot)
        if known is not None:
            assert known == value, (
                f"n{self.id}: slot {slot} decided twice, {known} and then {value}")
            return
        self.decided[slot] = value
        self._unstable_decided.append(Decision(slot, value))
        while self.commit_index + 1 in self.decided:
            self.commit_index += 1
        if self.role is Role.LEADER and slot in self._acceptances:
            del self._acceptances[slot]
            if self.proposals.get(slot) != value:
                # Another value was chosen in a slot we propose in: a higher ballot exists.
                self._step_down(None, backoff=True)

    def _learn_from_leader(self, sender: NodeId, ballot: Ballot, commit_index: int,
                           leader_start: int) -> None:
        if commit_index <= self.commit_index:
            return
        first = max(self.commit_index + 1, leader_start)
        # Whichever is shorter: the slots the hint covers, or the slots we accepted.
        if commit_index - first < len(self.accepted):
            candidates: list[int] = list(range(first, commit_index + 1))
        else:
            candidates = sorted(slot for slot in self.accepted if first <= slot <= commit_index)
        for slot in candidates:
            triple = self.accepted.get(slot)
            if triple is not None and triple.ballot == ballot and slot not in self.decided:
                self._decide(slot, triple.value)
        if commit_index > self.commit_index:
            self._catch_up_from(sender, commit_index)

    def _catch_up_from(self, peer: NodeId, upto: int) -> None:
        if upto <= self.commit_index:
            return
        retry = self.config.heartbeat_ticks * CATCH_UP_RETRY_HEARTBEATS
        if self._catchup_wanted > self.commit_index and self._catchup_elapsed < retry:
            return  # a request is out
        self._catchup_wanted = upto
        self._catchup_elapsed = 0
        self._send(CatchUp(self.id, peer, self.promised, self.commit_index + 1))

    def _tick_replica(self) -> None:
        self._catchup_elapsed += 1

    def _on_catch_up(self, message: CatchUp) -> None:
        first = message.first_slot
        if first <= self.log_start:
            if self._snapshot is not None and first <= self._snapshot.meta.last_index:
                self._send(InstallSnapshot(self.id, message.sender, self.promised,
                                           self._snapshot))
            return  # freed without a snapshot: every member had applied it, by the Min
        decisions = []
        limit = self.config.max_entries_per_message
        for slot in range(first, first + limit):
            value = self.decided.get(slot)
            if value is not None:
                decisions.append(Decision(slot, value))
        if decisions:
            self._send(Decisions(self.id, message.sender, self.promised, tuple(decisions)))

    def _on_decisions(self, message: Decisions) -> None:
        before = self.commit_index
        for decision in message.decisions:
            self._decide(decision.slot, decision.value)
        self._catchup_elapsed = CATCH_UP_RETRY_HEARTBEATS * self.config.heartbeat_ticks
        if before < self.commit_index < self._catchup_wanted:
            # Still behind, and this peer had what we asked for: ask for the next batch now
            # rather than at the next heartbeat.
            self._catch_up_from(message.sender, self._catchup_wanted)

    def _on_install_snapshot(self, message: InstallSnapshot) -> None:
        snapshot = message.snapshot
        last = snapshot.meta.last_index
        if last <= self.commit_index or self._received_snapshot is not None:
            return
        if self.role is Role.LEADER and any(slot <= last for slot in self._acceptances):
            # Our proposals there are decided one way or another; we cannot tell which.
            self._step_down(None, backoff=True)
        # The driver restores the state machine from it before applying anything after it.
        self._received_snapshot = snapshot
        self._snapshot = snapshot
        self._drop_through(last)
        self.commit_index = max(self.commit_index, last)
        while self.commit_index + 1 in self.decided:
            self.commit_index += 1
        self.applied = last
        self._catchup_elapsed = CATCH_UP_RETRY_HEARTBEATS * self.config.heartbeat_ticks

    def _forget(self, through: int) -> None:
        """Free slots every member applied (the leader's Min), as far as we applied too."""
        through = min(through, self.applied)
        if through > self.forget_through:
            self.forget_through = through
        if through > self.log_start:
            self._drop_through(through)

    def _drop_through(self, through: int) -> None:
        if through <= self.log_start:
            return
        self.log_start = through
        for table in (self.decided, self.accepted, self.proposals):
            for slot in [slot for slot in table if slot <= through]:
                del table[slot]
        for slot in [slot for slot in self._acceptances if slot <= through]:
            del self._acceptances[slot]

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Take a snapshot whose state is `data` as of `index` (applied), and drop every
        slot it covers; the caller persists it."""
        self._require_no_outstanding_ready()
        snapshot_index = self._snapshot.meta.last_index if self._snapshot else 0
        if not snapshot_index < index <= self.applied:
            raise ValueError(f"can compact only applied slots after the snapshot: "
                             f"{snapshot_index} < {index} <= {self.applied}")
        snapshot = Snapshot(SnapshotMeta(index), data)
        self._snapshot = snapshot
        self._drop_through(index)
        return snapshot

