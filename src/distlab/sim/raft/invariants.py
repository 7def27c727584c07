"""Raft's safety properties, checked after every Ready of every member of one group.

The checker sees each member's Readys (as the driver acknowledges them) and its core's log,
and keeps records that outlive crashes: which member led which term, every (index, term)
ever written to a log, every committed entry and the term in which it was first known to be
committed, and every vote granted. The properties (Raft paper, Figure 3):

- election safety: at most one leader per term, and a leader of term T was granted votes in
  term T by a majority;
- log matching: two logs holding an entry with the same index and term agree on it and on
  everything before it (checked inductively: the same (index, term) always carries the same
  command and follows the same previous term);
- leader completeness: an entry committed in term T is in the log of every leader of every
  term after T (a stale leader of an earlier term need not hold it);
- the commitment rule (section 5.4.2): a leader moves its commit index by counting replicas
  only onto an entry of its own term (older entries commit with it, by log matching);
- state-machine safety: no two members apply different entries at one index, and each
  member applies in index order, each entry once per incarnation;
- commit and applied indexes never go back; a member restarts with a commit index whose
  entries are the committed ones; no member grants two votes in one term, across restarts;
- what a member said is durable when it said it (Figure 2: "updated on stable storage before
  responding"): a restarted member's term is at least any term it sent a message in, it
  still holds the vote it granted in that term, and it still holds every entry it
  acknowledged, unless a later leader replaced it since.

Messages are observed as the transport takes them, not when the driver finishes the Ready:
a reply that leaves before its Ready is durable has been said, whatever happens next.
"""

from __future__ import annotations

from dataclasses import dataclass

from distlab.core.ids import NodeId
from distlab.core.quorum import majority
from distlab.protocols.raft import (
    AppendEntriesReply,
    Entry,
    EntryKind,
    Message,
    Raft,
    Ready,
    RequestVote,
    RequestVoteReply,
    Role,
)


class InvariantViolation(AssertionError):
    """A safety property does not hold."""


@dataclass(frozen=True, slots=True)
class _Written:
    kind: EntryKind
    data: bytes
    previous_term: int


@dataclass(frozen=True, slots=True)
class _Committed:
    entry: Entry
    term: int  # the term in which it was first known committed


@dataclass(slots=True)
class _Cursor:
    commit: int
    applied: int
    led_term: int = 0  # the term it led in when last seen, 0 when it was not leading


class RaftInvariants:
    """The invariants of one Raft group, over all its members and their incarnations."""

    def __init__(self, group: int) -> None:
        self.group = group
        self.leaders: dict[int, NodeId] = {}
        self.written: dict[tuple[int, int], _Written] = {}
        self.committed: dict[int, _Committed] = {}
        self.votes: dict[tuple[NodeId, int], NodeId] = {}
        # The highest term each member has sent a message in (pre-votes aside), and the last
        # entry (index, term) it acknowledged to a leader, which it must not forget.
        self.sent_terms: dict[NodeId, int] = {}
        self.acknowledged: dict[NodeId, tuple[int, int]] = {}
        # Each member's log as the checker last saw it: (index of its first entry - 1, the
        # terms of its entries), to tell a rightful truncation from a wrongful one.
        self._logs: dict[NodeId, tuple[int, list[int]]] = {}
        self._cursors: dict[NodeId, _Cursor] = {}
        self._rafts: dict[NodeId, Raft] = {}
        self.checks = 0

    # --- lifecycle ---

    def node_started(self, node: NodeId, raft: Raft) -> None:
        self._rafts[node] = raft
        log = raft.log
        self._logs[node] = (log.snapshot_index, [entry.term for entry in log.entries])
        self._cursors[node] = _Cursor(log.committed, log.applied)
        for index in range(log.snapshot_index + 1, log.committed + 1):
            entry = log.entry_at(index)
            assert entry is not None
            known = self.committed.get(index)
            self._require(
                known is None or known.entry == entry,
                f"n{node} restarted with commit index {log.committed}, but holds {entry} at "
                f"{index} where {known.entry if known else None} was committed")
        if raft.vote:
            self._record_vote(node, raft.term, raft.vote)
        sent_term = self.sent_terms.get(node, 0)
        self._require(raft.term >= sent_term,
                      f"durability: n{node} restarted in term {raft.term}, but it had sent "
                      f"messages in term {sent_term}")
        granted = self.votes.get((node, raft.term))
        self._require(granted is None or raft.vote == granted,
                      f"durability: n{node} voted for n{granted} in term {raft.term}, but "
                      f"restarted with vote {raft.vote or 'none'}")
        acknowledged = self.acknowledged.get(node)
        if acknowledged is not None and acknowledged[0] > log.snapshot_index:
            index, term = acknowledged
            held = log.term_at(index)
            self._require(held == term,
                          f"durability: n{node} acknowledged entry {index}/{term}, but "
                          f"restarted with {f'{index}/{held}' if held else 'nothing'} there")

    def node_stopped(self, node: NodeId) -> None:
        self._rafts.pop(node, None)
        self._cursors.pop(node, None)

    # --- observations ---

    def message_sent(self, node: NodeId, raft: Raft, message: Message) -> None:
        kind = type(message)
        if kind is RequestVote or kind is RequestVoteReply:
            if message.pre_vote:  # type: ignore[union-attr]
                return  # a pre-vote carries the term it would campaign in, not its own
            if kind is RequestVoteReply and message.granted:  # type: ignore[union-attr]
                self._record_vote(node, message.term, message.recipient)
        if message.term > self.sent_terms.get(node, 0):
            self.sent_terms[node] = message.term
        if kind is AppendEntriesReply and message.success:  # type: ignore[union-attr]
            index = message.match_index  # type: ignore[union-attr]
            term = raft.log.term_at(index)
            if term is not None:
                self.acknowledged[node] = (index, term)

    def after_ready(self, node: NodeId, raft: Raft, ready: Ready) -> None:
        self.checks += 1
        if ready.snapshot is not None:
            meta = ready.snapshot.meta
            known = self.committed.get(meta.last_index)
            self._require(
                known is None or known.entry.term == meta.last_term,
                f"n{node} installed a snapshot at {meta.last_index}/{meta.last_term} "
                f"but {meta.last_index}/{known.entry.term if known else 0} was committed")
            self._cursors[node].applied = meta.last_index
            self.acknowledged.pop(node, None)  # the log it had is replaced by the snapshot's
            self._logs[node] = (raft.log.snapshot_index, [e.term for e in raft.log.entries])
        if ready.entries:
            self._check_written(node, raft, ready.entries)
            self._check_truncation(node, ready.entries)
            acknowledged = self.acknowledged.get(node)
            if acknowledged is not None and ready.entries[0].index <= acknowledged[0]:
                # A newer leader replaced what this member had acknowledged to an older one.
                del self.acknowledged[node]
        if ready.hard_state is not None and ready.hard_state.vote:
            self._record_vote(node, ready.hard_state.term, ready.hard_state.vote)
        for entry in ready.committed_entries:
            self._check_applied(node, raft, entry)
        self._after_step(node, raft)

    def _after_step(self, node: NodeId, raft: Raft) -> None:
        cursor = self._cursors[node]
        log = raft.log
        committed = log.committed
        self._require(committed >= cursor.commit,
                      f"n{node} commit index went back {cursor.commit} -> {committed}")
        self._require(log.applied >= cursor.applied,
                      f"n{node} applied index went back {cursor.applied} -> {log.applied}")
        leading = raft.role is Role.LEADER
        if committed > cursor.commit:
            if leading and cursor.led_term == raft.term:
                term = log.term_at(committed)
                self._require(
                    term == raft.term,
                    f"commitment rule: n{node}, leader of term {raft.term}, moved its commit "
                    f"index to {committed}/{term}, an entry of an older term, by counting "
                    "replicas (only entries of the current term commit that way: section 5.4.2)")
            for index in range(max(cursor.commit, log.snapshot_index) + 1, committed + 1):
                entry = log.entry_at(index)
                assert entry is not None
                self._record_committed(node, raft, entry)
            cursor.commit = committed
        cursor.led_term = raft.term if leading else 0
        if leading:
            leader = self.leaders.get(raft.term)
            if leader is None:
                self.leaders[raft.term] = node
                self._check_elected(node, raft)
                self._check_leader_complete(node, raft)
            else:
                self._require(leader == node,
                              f"election safety: two leaders in term {raft.term}: n{leader} "
                              f"and n{node}")

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
                self._require(known == record,
                              f"log matching: n{node} wrote {entry.index}/{entry.term} as "
                              f"{record} but it was written before as {known}")
            previous_term = entry.term

    def _check_truncation(self, node: NodeId, entries: tuple[Entry, ...]) -> None:
        """Entries are replaced from `entries[0]` on; what followed may go only if one of
        them conflicts (AppendEntries rule 3: a matching append never truncates)."""
        base, terms = self._logs[node]
        first = entries[0].index - base - 1
        end = first + len(entries)
        if first < 0:
            entries = entries[-first:]
            first = 0
        if end < len(terms):
            conflict = any(terms[first + offset] != entry.term
                           for offset, entry in enumerate(entries))
            self._require(
                conflict,
                f"n{node} cut its log after {base + end} (entries {base + end + 1}.."
                f"{base + len(terms)}) for an append of entries that all match it")
        del terms[first:]
        terms.extend(entry.term for entry in entries)

    def _record_committed(self, node: NodeId, raft: Raft, entry: Entry) -> None:
        known = self.committed.get(entry.index)
        if known is None:
            self.committed[entry.index] = _Committed(entry, raft.term)
            for other, other_raft in self._rafts.items():
                if other_raft.role is Role.LEADER and other_raft.term > raft.term:
                    self._require_holds(other, other_raft, entry, raft.term)
        else:
            self._require(known.entry == entry,
                          f"state machine safety: n{node} committed {_describe(entry)}, but "
                          f"{_describe(known.entry)} was committed there")

    def _check_elected(self, node: NodeId, raft: Raft) -> None:
        voters = raft.membership.voters
        granted = sorted(voter for voter in voters
                         if self.votes.get((voter, raft.term)) == node)
        self._require(
            len(granted) >= majority(len(voters)),
            f"election rule: n{node} leads term {raft.term} with the votes of "
            f"{', '.join(f'n{v}' for v in granted) or 'nobody'} granted in that term, not a "
            f"majority of {len(voters)}")

    def _check_leader_complete(self, node: NodeId, raft: Raft) -> None:
        for index, known in self.committed.items():
            if index > raft.log.snapshot_index and known.term < raft.term:
                self._require_holds(node, raft, known.entry, known.term)

    def _require_holds(self, node: NodeId, raft: Raft, entry: Entry, commit_term: int) -> None:
        if entry.index <= raft.log.snapshot_index:
            return
        held = raft.log.entry_at(entry.index)
        self._require(held == entry,
                      f"leader completeness: n{node}, leader of term {raft.term}, lacks "
                      f"{_describe(entry)} committed in term {commit_term} (has "
                      f"{_describe(held) if held else 'nothing'} there)")

    def _check_applied(self, node: NodeId, raft: Raft, entry: Entry) -> None:
        cursor = self._cursors[node]
        self._require(entry.index == cursor.applied + 1,
                      f"n{node} applied {entry.index} after {cursor.applied}")
        cursor.applied = entry.index
        known = self.committed.get(entry.index)
        if known is None:
            self._record_committed(node, raft, entry)
        else:
            self._require(known.entry == entry,
                          f"state machine safety: n{node} applied {_describe(entry)}, "
                          f"another member applied {_describe(known.entry)}")

    def _record_vote(self, voter: NodeId, term: int, candidate: NodeId) -> None:
        known = self.votes.setdefault((voter, term), candidate)
        self._require(known == candidate,
                      f"n{voter} voted for n{known} and n{candidate} in term {term}")

    def _require(self, condition: bool, problem: str) -> None:
        if not condition:
            raise InvariantViolation(f"group {self.group}: {problem}")


def _describe(entry: Entry) -> str:
    return f"entry {entry.index}/{entry.term} ({entry.kind.name.lower()}, {len(entry.data)} B)"
