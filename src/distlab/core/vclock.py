"""Vector clocks (Fidge 1988, Mattern 1989): the happened-before order of events in processes
that only exchange messages.

A process counts its own events; its clock maps every process it has heard of to the number
of that process's events it knows happened before now. A local event or a send increments the
process's own entry; a receive first takes the entrywise maximum with the clock the message
carried, then increments. Two clocks then compare exactly as their events do: one before the
other when it is entrywise at most the other and not equal, concurrent when neither is.

`VectorClock` is an immutable value (an entry that is absent counts as zero, so a clock never
needs to know every process); `ProcessClock` is one process's current clock, the mutable
holder that stamps its events.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping


class Order(enum.Enum):
    """How one event stands to another."""

    BEFORE = "before"
    AFTER = "after"
    EQUAL = "equal"
    CONCURRENT = "concurrent"


class VectorClock:
    """An immutable vector timestamp: process name -> count of its events, zeros left out."""

    __slots__ = ("_counts", "_hash")

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        kept: dict[str, int] = {}
        for process, count in (counts or {}).items():
            if count < 0:
                raise ValueError(f"a clock counts events, not {count} of {process!r}")
            if count:
                kept[process] = count
        self._counts = kept
        self._hash: int | None = None

    @property
    def counts(self) -> Mapping[str, int]:
        """The non-zero entries (read-only)."""
        return self._counts

    def get(self, process: str) -> int:
        """How many of `process`'s events this clock has seen."""
        return self._counts.get(process, 0)

    def items(self) -> Iterator[tuple[str, int]]:
        """The non-zero entries, by process name."""
        return iter(sorted(self._counts.items()))

    def as_dict(self) -> dict[str, int]:
        return dict(self.items())

    def increment(self, process: str) -> VectorClock:
        """The clock of `process`'s next local event or send."""
        counts = dict(self._counts)
        counts[process] = counts.get(process, 0) + 1
        return _trusted(counts)

    def merge(self, other: VectorClock) -> VectorClock:
        """The entrywise maximum: what is known once both clocks' events are known."""
        if len(other._counts) > len(self._counts):
            small, large = self._counts, other._counts
        else:
            small, large = other._counts, self._counts
        counts = dict(large)
        for process, count in small.items():
            if count > counts.get(process, 0):
                counts[process] = count
        return _trusted(counts)

    def receive(self, process: str, carried: VectorClock) -> VectorClock:
        """The clock of `process`'s receipt of a message that carried `carried`."""
        return self.merge(carried).increment(process)

    def compare(self, other: VectorClock) -> Order:
        if self._counts == other._counts:
            return Order.EQUAL
        if self <= other:
            return Order.BEFORE
        if other <= self:
            return Order.AFTER
        return Order.CONCURRENT

    def happened_before(self, other: VectorClock) -> bool:
        return self.compare(other) is Order.BEFORE

    def concurrent_with(self, other: VectorClock) -> bool:
        return self.compare(other) is Order.CONCURRENT

    def __le__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        theirs = other._counts
        return all(count <= theirs.get(process, 0) for process, count in self._counts.items())

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self <= other and self._counts != other._counts

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return other <= self

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return other < self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self._counts == other._counts

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._counts.items()))
        return self._hash

    def __repr__(self) -> str:
        entries = ", ".join(f"{process}={count}" for process, count in self.items())
        return f"VectorClock({entries})"


def _trusted(counts: dict[str, int]) -> VectorClock:
    """A clock of counts already known to be positive, without checking them again."""
    clock = VectorClock.__new__(VectorClock)
    clock._counts = counts
    clock._hash = None
    return clock


class ProcessClock:
    """One process's current clock: each event it stamps moves the clock on by one."""

    __slots__ = ("now", "process")

    def __init__(self, process: str, start: VectorClock | None = None) -> None:
        if not process:
            raise ValueError("a process has a name")
        self.process = process
        self.now = start if start is not None else VectorClock()

    def tick(self) -> VectorClock:
        """Stamp a local event or a send; the stamp is what a sent message carries."""
        self.now = self.now.increment(self.process)
        return self.now

    def receive(self, carried: VectorClock | None) -> VectorClock:
        """Stamp the receipt of a message carrying `carried` (None: it carried no clock, and
        the receipt is then known to follow only this process's own events)."""
        self.now = (self.now.increment(self.process) if carried is None
                    else self.now.receive(self.process, carried))
        return self.now
