"""What the core reads when it starts, and an in-memory store that keeps it.

The core holds its state in memory while running and hands changes out through `Ready`; it
reads storage once, at construction: the acceptor's promised ballot and accepted triples,
the replica's decisions, and the latest snapshot (slots up to its index are gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from distlab.protocols.multipaxos.messages import (
    ZERO_BALLOT,
    Accepted,
    Ballot,
    Decision,
    Snapshot,
)
from distlab.protocols.multipaxos.state import Ready


class Storage(Protocol):
    """The durable state a member restarts from."""

    def promised(self) -> Ballot: ...

    def accepted(self) -> Sequence[Accepted]:
        """The latest accepted triple of each slot after the snapshot."""
        ...

    def decided(self) -> Sequence[Decision]:
        """Every decision after the snapshot, in slot order."""
        ...

    def snapshot(self) -> Snapshot | None: ...


class MemoryStorage:
    """Durable state kept in memory: tests keep one alive across a member's restarts."""

    def __init__(self) -> None:
        self._promised = ZERO_BALLOT
        self._accepted: dict[int, Accepted] = {}
        self._decided: dict[int, Decision] = {}
        self._snapshot: Snapshot | None = None

    def promised(self) -> Ballot:
        return self._promised

    def accepted(self) -> Sequence[Accepted]:
        return [self._accepted[slot] for slot in sorted(self._accepted)]

    def decided(self) -> Sequence[Decision]:
        return [self._decided[slot] for slot in sorted(self._decided)]

    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def persist(self, ready: Ready) -> None:
        """Keeps what a Ready asks to keep, in the order the contract gives."""
        if ready.snapshot is not None:
            self.save_snapshot(ready.snapshot)
        if ready.promised is not None:
            self._promised = ready.promised
        for triple in ready.accepted:
            self._accepted[triple.slot] = triple
        for decision in ready.decided:
            self._decided[decision.slot] = decision

    def save_snapshot(self, snapshot: Snapshot) -> None:
        last = snapshot.meta.last_index
        if self._snapshot is not None and last <= self._snapshot.meta.last_index:
            return
        self._snapshot = snapshot
        self._accepted = {s: a for s, a in self._accepted.items() if s > last}
        self._decided = {s: d for s, d in self._decided.items() if s > last}
