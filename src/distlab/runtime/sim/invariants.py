"""Raft's safety properties, checked after every simulated step.

The checker sees each node's Ready batches and its core's log, and keeps global records that
outlive crashes: which node led which term, every (index, term) ever written to a log, every
committed entry, and every vote granted. The properties (Raft paper, Figure 3):

- election safety: at most one leader per term;
- log matching: two logs holding an entry with the same index and term agree on it and on
  everything before it (checked inductively: the same (index, term) always carries the same
  command and follows the same previous term);
- leader completeness: a leader's log holds every entry committed before or during its term;
- state-machine safety: no two nodes apply different entries at one index, and each node
  applies in index order, each entry once per incarnation;
- commit and applied indexes never go back (the persisted commit index not even across
  restarts), and no node grants two votes in one term, across restarts too.
"""

from __future__ import annotations

from dataclasses import dataclass

from distlab.core.ids import NodeId
from distlab.protocols.raft import (
    Entry,
    EntryKind,
    Message,
    Raft,
    Ready,
    RequestVoteReply,
    Role,
)


class InvariantViolation(AssertionError):
    """A safety property of Raft does not hold."""


@dataclass(frozen=True, slots=True)
class _Written:
    kind: EntryKind
    data: bytes
    previous_term: int


@dataclass(slots=True)
class _Cursor:
    commit: int
    applied: int


class InvariantChecker:
    def __init__(self) -> None:
        self.leaders: dict[int, NodeId] = {}
        self.written: dict[tuple[int, int], _Written] = {}
        self.committed: dict[int, Entry] = {}
        self.votes: dict[tuple[NodeId, int], NodeId] = {}
        self.persisted_commit: dict[NodeId, int] = {}
        self._cursors: dict[NodeId, _Cursor] = {}
        self._rafts: dict[NodeId, Raft] = {}
        self.checks = 0

    # --- lifecycle ---

    def node_started(self, node: NodeId, raft: Raft) -> None:
        self._rafts[node] = raft
        self._cursors[node] = _Cursor(raft.log.committed, raft.log.applied)
        hard_commit = self.persisted_commit.get(node, 0)
        self._require(
            raft.log.committed >= hard_commit,
            f"n{node} restarted with commit {raft.log.committed} below persisted {hard_commit}",
        )
        if raft.vote:
            self._record_vote(node, raft.term, raft.vote)

    def node_stopped(self, node: NodeId) -> None:
        self._rafts.pop(node, None)
        self._cursors.pop(node, None)

    # --- observations ---

    def message_sent(self, message: Message) -> None:
        if isinstance(message, RequestVoteReply) and message.granted and not message.pre_vote:
            self._record_vote(message.sender, message.term, message.recipient)

    def after_ready(self, node: NodeId, raft: Raft, ready: Ready) -> None:
        self.checks += 1
        if ready.snapshot is not None:
            meta = ready.snapshot.meta
            known = self.committed.get(meta.last_index)
            if known is not None:
                self._require(
                    known.term == meta.last_term,
                    f"n{node} installed a snapshot at {meta.last_index}/{meta.last_term} "
                    f"but {meta.last_index}/{known.term} was committed",
                )
            self._cursors[node].applied = meta.last_index
        if ready.entries:
            self._check_written(node, raft, ready.entries)
        if ready.hard_state is not None:
            hard_state = ready.hard_state
            if hard_state.vote:
                self._record_vote(node, hard_state.term, hard_state.vote)
            previous = self.persisted_commit.get(node, 0)
            self._require(
                hard_state.commit >= previous,
                f"n{node} persisted commit {hard_state.commit} after {previous}",
            )
            self.persisted_commit[node] = hard_state.commit
        for entry in ready.committed_entries:
            self._check_applied(node, entry)

    def after_step(self, node: NodeId, raft: Raft) -> None:
        """Checks that hold between steps: leaders, commit progress, completeness."""
        cursor = self._cursors[node]
        committed = raft.log.committed
        self._require(
            committed >= cursor.commit, f"n{node} commit index went back {cursor.commit} -> "
            f"{committed}"
        )
        self._require(
            raft.log.applied >= cursor.applied,
            f"n{node} applied index went back {cursor.applied} -> {raft.log.applied}",
        )
        if committed > cursor.commit:
            for index in range(max(cursor.commit, raft.log.snapshot_index) + 1, committed + 1):
                entry = raft.log.entry_at(index)
                assert entry is not None
                self._record_committed(node, entry)
            cursor.commit = committed
        if raft.role is Role.LEADER:
            leader = self.leaders.get(raft.term)
            if leader is None:
                self.leaders[raft.term] = node
                self._check_leader_complete(node, raft)
            else:
                self._require(
                    leader == node, f"two leaders in term {raft.term}: n{leader} and n{node}"
                )

    # --- the properties ---

    def _check_written(self, node: NodeId, raft: Raft, entries: tuple[Entry, ...]) -> None:
        previous_term = raft.log.term_at(entries[0].index - 1)
        assert previous_term is not None
        for entry in entries:
            record = _Written(entry.kind, entry.data, previous_term)
            key = (entry.index, entry.term)
            known = self.written.get(key)
            if known is None:
                self.written[key] = record
            else:
                self._require(
                    known == record,
                    f"log matching: n{node} wrote {entry.index}/{entry.term} as "
                    f"{record} but it was written before as {known}",
                )
            previous_term = entry.term

    def _record_committed(self, node: NodeId, entry: Entry) -> None:
        known = self.committed.get(entry.index)
        if known is None:
            self.committed[entry.index] = entry
            for other, raft in self._rafts.items():
                if raft.role is Role.LEADER and raft.term > entry.term:
                    self._require_holds(other, raft, entry)
        else:
            self._require(
                known == entry,
                f"n{node} committed {entry} at {entry.index}, but {known} was committed there",
            )

    def _check_leader_complete(self, node: NodeId, raft: Raft) -> None:
        for index, entry in self.committed.items():
            if index > raft.log.snapshot_index:
                self._require_holds(node, raft, entry)

    def _require_holds(self, node: NodeId, raft: Raft, entry: Entry) -> None:
        if entry.index <= raft.log.snapshot_index:
            return
        self._require(
            raft.log.entry_at(entry.index) == entry,
            f"leader completeness: n{node}, leader of term {raft.term}, lacks committed "
            f"entry {entry.index}/{entry.term} (has {raft.log.entry_at(entry.index)})",
        )

    def _check_applied(self, node: NodeId, entry: Entry) -> None:
        cursor = self._cursors[node]
        self._require(
            entry.index == cursor.applied + 1,
            f"n{node} applied {entry.index} after {cursor.applied}",
        )
        cursor.applied = entry.index
        known = self.committed.get(entry.index)
        if known is None:
            self._record_committed(node, entry)
        else:
            self._require(
                known == entry,
                f"state machine safety: n{node} applied {entry} at {entry.index}, "
                f"another node applied {known}",
            )

    def _record_vote(self, voter: NodeId, term: int, candidate: NodeId) -> None:
        known = self.votes.setdefault((voter, term), candidate)
        self._require(
            known == candidate,
            f"n{voter} voted for n{known} and n{candidate} in term {term}",
        )

    @staticmethod
    def _require(condition: bool, problem: str) -> None:
        if not condition:
            raise InvariantViolation(problem)
