"""The in-memory Raft log: a snapshot boundary, the entries after it, and three cursors.

`committed` and `applied` only move forward. `unstable_from` is the first index not yet
handed to the caller for persistence; truncating a conflicting suffix moves it back.
"""

from __future__ import annotations

from collections.abc import Sequence

from distlab.protocols.raft.messages import Entry


class RaftLog:
    def __init__(
        self,
        snapshot_index: int,
        snapshot_term: int,
        entries: Sequence[Entry],
        committed: int,
    ) -> None:
        self.snapshot_index = snapshot_index
        self.snapshot_term = snapshot_term
        self.entries: list[Entry] = list(entries)
        for offset, entry in enumerate(self.entries):
            assert entry.index == snapshot_index + 1 + offset, "stored log is not contiguous"
        assert committed <= self.last_index(), "stored commit index beyond the stored log"
        self.committed = max(committed, snapshot_index)
        self.applied = snapshot_index
        self.unstable_from = self.last_index() + 1

    # --- reading ---

    def last_index(self) -> int:
        return self.snapshot_index + len(self.entries)

    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot_term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at `index`; None if compacted away or past the end."""
        if index == self.snapshot_index:
            return self.snapshot_term
        if index < self.snapshot_index or index > self.last_index():
            return None
        return self.entries[index - self.snapshot_index - 1].term

    def entry_at(self, index: int) -> Entry | None:
        if index <= self.snapshot_index or index > self.last_index():
            return None
        return self.entries[index - self.snapshot_index - 1]

    def matches(self, index: int, term: int) -> bool:
        return self.term_at(index) == term

    def slice(self, low: int, high: int) -> list[Entry]:
        """Entries with low <= index < high; `low` must be after the snapshot."""
        assert self.snapshot_index < low <= high <= self.last_index() + 1
        base = self.snapshot_index + 1
        return self.entries[low - base : high - base]

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a log ending at (last_index, last_term) is at least as recent as ours."""
        our_term = self.last_term()
        return last_term > our_term or (last_term == our_term and last_index >= self.last_index())

    def first_index_of_term_at(self, index: int) -> int:
        """The first index, going back from `index`, whose entry has the same term."""
        term = self.term_at(index)
        assert term is not None
        first = index
        while first - 1 > self.snapshot_index and self.term_at(first - 1) == term:
            first -= 1
        return first

    def last_index_of_term(self, term: int, at_most: int) -> int | None:
        """The last index <= at_most holding an entry of `term`, if the log still has one."""
        index = min(at_most, self.last_index())
        while index > self.snapshot_index:
            entry_term = self.term_at(index)
            assert entry_term is not None
            if entry_term == term:
                return index
            if entry_term < term:
                return None  # terms only grow along the log
            index -= 1
        return None

    def unstable_entries(self) -> list[Entry]:
        if self.unstable_from > self.last_index():
            return []
        return self.slice(max(self.unstable_from, self.snapshot_index + 1), self.last_index() + 1)

    def next_committed(self, limit: int) -> list[Entry]:
        """Committed entries not yet applied, at most `limit` of them."""
        high = min(self.committed, self.applied + limit)
        if high <= self.applied:
            return []
        return self.slice(self.applied + 1, high + 1)

    # --- writing ---

    def append(self, entries: Sequence[Entry]) -> None:
        """Appends entries that follow the last one directly (the leader's own proposals)."""
        if not entries:
            return
        assert entries[0].term >= self.last_term(), "terms go back along the log"
        first = self.last_index() + 1
        assert [e.index for e in entries] == list(range(first, first + len(entries))), (
            "appended entries are not contiguous")
        self.entries.extend(entries)

    def truncate_and_append(self, entries: Sequence[Entry]) -> int:
        """Appends entries from a leader, dropping our conflicting suffix first.

        Returns the index of the first entry written (or 0 when nothing changed). The caller
        has checked that the entry before `entries[0]` matches, and that no committed entry
        conflicts.
        """
        if entries and entries[0].index == self.last_index() + 1:
            # The common case, a leader's next entries: nothing of ours to compare or drop.
            assert entries[0].term >= self.last_term(), "terms go back along the log"
            self.entries.extend(entries)
            self.unstable_from = min(self.unstable_from, entries[0].index)
            return entries[0].index
        for entry in entries:
            if entry.index <= self.snapshot_index:
                continue
            existing = self.term_at(entry.index)
            if existing == entry.term:
                continue
            # first conflict or first new entry: everything from here comes from the leader
            assert entry.index > self.committed, "a committed entry would be overwritten"
            previous_term = self.term_at(entry.index - 1)
            assert previous_term is not None and previous_term <= entry.term, (
                f"entry {entry.index} of term {entry.term} follows one of term {previous_term}"
            )
            base = self.snapshot_index + 1
            del self.entries[entry.index - base :]
            for new_entry in entries[entries.index(entry) :]:
                assert new_entry.index == self.last_index() + 1
                self.entries.append(new_entry)
            self.unstable_from = min(self.unstable_from, entry.index)
            return entry.index
        return 0

    def overwrite_from(self, entries: Sequence[Entry]) -> int:
        """Replaces the log from `entries[0].index` on by `entries`, matching or not.

        Raft never does this: a reordered older append would cut off entries a newer one
        wrote. It exists for the planted bug `truncate-on-stale-append`. Returns the index of
        the first entry written.
        """
        first = entries[0]
        assert first.index > self.committed, "a committed entry would be overwritten"
        previous_term = self.term_at(first.index - 1)
        assert previous_term is not None and previous_term <= first.term
        del self.entries[first.index - self.snapshot_index - 1 :]
        self.entries.extend(entries)
        self.unstable_from = min(self.unstable_from, first.index)
        return first.index

    def first_conflict(self, entries: Sequence[Entry]) -> int:
        """The index of the first entry that disagrees with our log, or 0 if none does."""
        if not entries or entries[0].index > self.last_index():
            return 0  # all of them are past our end: nothing to disagree with
        for entry in entries:
            term = self.term_at(entry.index)
            if term is not None and term != entry.term:
                return entry.index
        return 0

    def commit_to(self, index: int) -> bool:
        if index <= self.committed:
            return False
        assert index <= self.last_index(), "commit index beyond the log"
        self.committed = index
        return True

    def applied_to(self, index: int) -> None:
        assert self.applied <= index <= self.committed, "applied out of order"
        self.applied = index

    def stable_to(self, index: int) -> None:
        self.unstable_from = max(self.unstable_from, index + 1)

    def compact(self, index: int) -> None:
        """Drops entries up to `index`, which the state machine has applied."""
        assert self.snapshot_index < index <= self.applied
        term = self.term_at(index)
        assert term is not None
        del self.entries[: index - self.snapshot_index]
        self.snapshot_index = index
        self.snapshot_term = term

    def restore(self, index: int, term: int) -> None:
        """Replaces the whole log by a snapshot boundary (a leader's snapshot was installed)."""
        assert index > self.committed
        self.entries = []
        self.snapshot_index = index
        self.snapshot_term = term
        self.committed = index
        self.applied = index
        self.unstable_from = index + 1
