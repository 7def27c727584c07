"""The in-memory shape of a log store: a compacted prefix and a list of live entries.

Both log stores keep one of these: the file store rebuilds it by replaying its WAL, the
in-memory store keeps it directly. The `check_*` methods validate a caller's request
against the live log; the `apply_*` methods change it. Splitting the two lets the file
store write the WAL record between them, and lets replay apply records without the
checks that only make sense against the whole log.

Replay after old segments were deleted starts part-way through the history, knowing only
the entries above the compacted prefix. The `apply_*` methods are written for that: on an
empty list an entry may start anywhere, and a truncation below the first known entry
empties the list. `check_consistent` verifies the end result.
"""

from collections.abc import Sequence
from itertools import pairwise

from distlab.storage.errors import LogCompactedError, LogUnavailableError
from distlab.storage.model import LogEntry, PaxosRecord, PaxosRecordKind


class EntryLog:
    """A compacted prefix ending at (snapshot_index, snapshot_term), then live entries."""

    def __init__(self) -> None:
        self.snapshot_index = 0
        self.snapshot_term = 0
        self._entries: list[LogEntry] = []
        # A Multi-Paxos group keeps records keyed by slot instead of entries.
        self.paxos = PaxosRecords()

    def copy(self) -> "EntryLog":
        duplicate = EntryLog()
        duplicate.snapshot_index = self.snapshot_index
        duplicate.snapshot_term = self.snapshot_term
        duplicate._entries = list(self._entries)
        duplicate.paxos = self.paxos.copy()
        return duplicate

    def first_index(self) -> int:
        return self.snapshot_index + 1

    def last_index(self) -> int:
        return self._entries[-1].index if self._entries else self.snapshot_index

    def term(self, index: int) -> int:
        if index == self.snapshot_index:
            return self.snapshot_term
        return self.entry(index).term

    def entry(self, index: int) -> LogEntry:
        if index <= self.snapshot_index:
            raise LogCompactedError(
                f"index {index} is compacted (snapshot covers up to {self.snapshot_index})"
            )
        if index > self.last_index():
            raise LogUnavailableError(f"index {index} is beyond the last index {self.last_index()}")
        return self._entries[index - self._entries[0].index]

    def entries(self, low: int, high: int, max_bytes: int | None = None) -> list[LogEntry]:
        if low > high:
            raise ValueError(f"entries({low}, {high}): low is above high")
        if low <= self.snapshot_index:
            raise LogCompactedError(
                f"index {low} is compacted (snapshot covers up to {self.snapshot_index})"
            )
        if high > self.last_index() + 1:
            raise LogUnavailableError(
                f"entries up to {high - 1} asked for, the last index is {self.last_index()}"
            )
        if low == high:
            return []
        offset = self._entries[0].index
        selected = self._entries[low - offset : high - offset]
        if max_bytes is None:
            return selected
        total = 0
        for count, entry in enumerate(selected):
            total += len(entry.data)
            if total > max_bytes and count > 0:
                return selected[:count]
        return selected

    def check_append(self, entries: Sequence[LogEntry]) -> list[LogEntry]:
        """Validate an append; return the entries that are actually new to write.

        Entries at or below the snapshot are dropped: they are committed, the snapshot
        already holds their effect, and a leader may legitimately resend them.
        """
        if entries:
            first = entries[0].index
            # One comparison of two lists: this runs for every batch a node writes.
            if [entry.index for entry in entries] != list(range(first, first + len(entries))):
                for previous, current in pairwise(entries):
                    if current.index != previous.index + 1:
                        raise ValueError(f"appended entries are not consecutive: "
                                         f"{previous.index} then {current.index}")
        if not entries or entries[0].index > self.snapshot_index:
            fresh = list(entries)
        else:
            fresh = [entry for entry in entries if entry.index > self.snapshot_index]
        if fresh and fresh[0].index > self.last_index() + 1:
            raise ValueError(
                f"append at index {fresh[0].index} would leave a gap after {self.last_index()}"
            )
        return fresh

    def check_truncate(self, from_index: int) -> None:
        if from_index <= self.snapshot_index:
            raise LogCompactedError(
                f"cannot truncate from {from_index}: the snapshot covers up to "
                f"{self.snapshot_index}"
            )
        if from_index > self.last_index() + 1:
            raise LogUnavailableError(
                f"cannot truncate from {from_index}: the last index is {self.last_index()}"
            )

    def keeps_suffix_after(self, snapshot_index: int, snapshot_term: int) -> bool:
        """Raft's rule: keep the entries after a snapshot only if the log agrees with it."""
        return (
            self.snapshot_index < snapshot_index <= self.last_index()
            and self.term(snapshot_index) == snapshot_term
        )

    def apply_entry(self, entry: LogEntry) -> None:
        self.apply_entries((entry,))

    def apply_entries(self, entries: Sequence[LogEntry]) -> None:
        """Consecutive entries (as `check_append` returns them), after the last one."""
        if self._entries and entries and entries[0].index != self._entries[-1].index + 1:
            raise ValueError(
                f"entry {entries[0].index} does not follow {self._entries[-1].index}")
        self._entries.extend(entries)

    def apply_truncate(self, from_index: int) -> None:
        if not self._entries:
            return
        first = self._entries[0].index
        if from_index > self._entries[-1].index + 1:
            raise ValueError(
                f"truncation from {from_index} is beyond the last index {self._entries[-1].index}"
            )
        del self._entries[max(0, from_index - first) :]

    def apply_compact(self, snapshot_index: int, snapshot_term: int, keep_suffix: bool) -> None:
        if keep_suffix:
            if self._entries:
                del self._entries[: max(0, snapshot_index - self._entries[0].index + 1)]
        else:
            self._entries.clear()
        self.snapshot_index = snapshot_index
        self.snapshot_term = snapshot_term

    def check_consistent(self) -> str | None:
        """What is wrong with the log after a replay, or None if it is whole."""
        if self._entries and self._entries[0].index != self.snapshot_index + 1:
            return (
                f"entries start at index {self._entries[0].index} but the compacted prefix "
                f"ends at {self.snapshot_index}"
            )
        return None


class PaxosRecords:
    """A Multi-Paxos group's live records, in the order they were written.

    What a later record makes useless is dropped as it is applied, so the list holds what a
    restart needs: the latest promise, the latest compaction, and the acceptances and
    decisions that name a slot after it.
    """

    def __init__(self) -> None:
        self.compacted_through = 0
        self._records: list[PaxosRecord] = []

    def copy(self) -> "PaxosRecords":
        duplicate = PaxosRecords()
        duplicate.compacted_through = self.compacted_through
        duplicate._records = list(self._records)
        return duplicate

    def records(self) -> list[PaxosRecord]:
        return list(self._records)

    def apply(self, record: PaxosRecord) -> None:
        kind = record.kind
        if kind is PaxosRecordKind.PROMISE:
            self._records = [r for r in self._records if r.kind is not PaxosRecordKind.PROMISE]
        elif kind is PaxosRecordKind.COMPACT:
            through = max(self.compacted_through, record.slot)
            self.compacted_through = through
            self._records = [
                r for r in self._records
                if r.kind is PaxosRecordKind.PROMISE
                or (r.kind is not PaxosRecordKind.COMPACT and r.slot > through)
            ]
        self._records.append(record)
